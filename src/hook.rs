//! `imagegate hook install|uninstall`: writes git's pre-push hook where git looks for it
//! (`core.hooksPath`, else `.git/hooks`). It never replaces a hook it did not write unless
//! told to, and it can keep an existing hook and run it first.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::HookCommand;
use crate::error::Error;
use crate::git::Repo;

/// Marks a hook as imagegate's own.
const MARKER: &str = "# installed by imagegate";
const CHAINED: &str = "pre-push.imagegate-chained";

pub fn run(cmd: &HookCommand, out: &mut dyn Write) -> Result<i32, Error> {
    let cwd = std::env::current_dir().map_err(|e| Error::Path {
        path: ".".into(),
        source: e,
    })?;
    let open = |repo: &Option<PathBuf>| {
        Repo::open(&repo.as_ref().map_or(cwd.clone(), |r| cwd.join(r))).map_err(crate::git_error)
    };
    match cmd {
        HookCommand::Install {
            force,
            chain,
            repo,
            undecided,
        } => {
            let dir = open(repo)?.hooks_dir();
            let command = crate::hook_command::recorded();
            let extra = match undecided {
                Some(crate::undecided::Undecided::Warn) => " --undecided warn",
                Some(crate::undecided::Undecided::Error) => " --undecided error",
                None => "",
            };
            let path = install(&dir, *force, *chain, &command.path, extra)?;
            writeln!(
                out,
                "imagegate: pre-push hook written to {}; it runs {}",
                path.display(),
                command.path.display()
            )
            .map_err(Error::Output)?;
            if !command.on_path {
                eprintln!(
                    "imagegate: warning: no imagegate on PATH, so the hook runs {}, which `cargo clean` \
                     or a rebuild elsewhere removes; install imagegate on PATH (README: Install) and \
                     run `imagegate hook install` again",
                    command.path.display()
                );
            }
        }
        HookCommand::Uninstall { repo } => {
            let dir = open(repo)?.hooks_dir();
            let message = uninstall(&dir)?;
            writeln!(out, "imagegate: {message}").map_err(Error::Output)?;
        }
    }
    Ok(0)
}

fn hook_error(path: &Path, e: std::io::Error) -> Error {
    Error::Hook(format!("cannot write {}: {e}", path.display()))
}

/// Writes the hook that runs `exe pre-push<extra>`; returns its path.
pub fn install(
    dir: &Path,
    force: bool,
    chain: bool,
    exe: &Path,
    extra: &str,
) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| hook_error(dir, e))?;
    let path = dir.join("pre-push");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.contains(MARKER) {
            if chain {
                let kept = dir.join(CHAINED);
                std::fs::rename(&path, &kept).map_err(|e| hook_error(&kept, e))?;
            } else if !force {
                return Err(Error::Hook(format!(
                    "{} exists and imagegate did not write it; pass --chain to run it before imagegate, or --force to replace it",
                    path.display()
                )));
            }
        }
    } else if path.symlink_metadata().is_ok() && !force {
        return Err(Error::Hook(format!(
            "{} exists and is not a readable script; pass --force to replace it",
            path.display()
        )));
    }
    let exe = exe.display().to_string();
    std::fs::write(&path, script(&exe, extra)).map_err(|e| hook_error(&path, e))?;
    make_executable(&path)?;
    Ok(path)
}

/// Removes imagegate's hook and puts a chained one back.
pub fn uninstall(dir: &Path) -> Result<String, Error> {
    let path = dir.join("pre-push");
    match std::fs::read_to_string(&path) {
        Ok(text) if text.contains(MARKER) => {
            std::fs::remove_file(&path).map_err(|e| hook_error(&path, e))?;
            let kept = dir.join(CHAINED);
            if kept.exists() {
                std::fs::rename(&kept, &path).map_err(|e| hook_error(&path, e))?;
                Ok(format!(
                    "removed; the earlier hook is back at {}",
                    path.display()
                ))
            } else {
                Ok(format!("removed {}", path.display()))
            }
        }
        Ok(_) => Err(Error::Hook(format!(
            "{} was not written by imagegate; left as it is",
            path.display()
        ))),
        Err(_) => Ok("no pre-push hook to remove".into()),
    }
}

/// Quotes a string for POSIX sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn script(exe: &str, extra: &str) -> String {
    format!(
        r#"#!/bin/sh
{MARKER}: it checks the image references a push adds.
# Remove it with `imagegate hook uninstall`; skip it once with `git push --no-verify`.
input=$(cat)
hook_dir=$(dirname "$0")
if [ -x "$hook_dir/{CHAINED}" ]; then
  printf '%s\n' "$input" | "$hook_dir/{CHAINED}" "$@" || exit $?
fi
imagegate={exe}
if [ ! -x "$imagegate" ]; then
  if command -v imagegate >/dev/null 2>&1; then
    imagegate=imagegate
  else
    echo "imagegate: this pre-push hook runs $imagegate, which is gone (\`cargo clean\` deletes target/), and no imagegate is on PATH." >&2
    echo "imagegate: install imagegate (see the README's Install section) and run \`imagegate hook install\` again; to push once without the check: git push --no-verify" >&2
    exit 1
  fi
fi
printf '%s\n' "$input" | "$imagegate" pre-push{extra} "$@"
"#,
        exe = sh_quote(exe)
    )
}

#[cfg(unix)]
fn make_executable(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| hook_error(path, e))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_refuses_foreign_hooks_chains_and_uninstalls() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path();
        std::fs::write(hooks.join("pre-push"), "#!/bin/sh\necho mine\n").unwrap();
        assert!(
            install(hooks, false, false, Path::new("imagegate"), "").is_err(),
            "never overwrites a foreign hook"
        );
        install(hooks, false, true, Path::new("imagegate"), "").unwrap();
        assert!(hooks.join(CHAINED).exists());
        let ours = std::fs::read_to_string(hooks.join("pre-push")).unwrap();
        assert!(ours.contains(MARKER) && ours.contains(CHAINED));
        install(hooks, false, false, Path::new("imagegate"), "").unwrap(); // updating our own hook is fine
        uninstall(hooks).unwrap();
        assert_eq!(
            std::fs::read_to_string(hooks.join("pre-push")).unwrap(),
            "#!/bin/sh\necho mine\n"
        );
        assert!(uninstall(hooks).is_err(), "a foreign hook is left alone");
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
