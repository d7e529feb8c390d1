//! `imagegate hook install|uninstall`: writes git's pre-push hook where git looks for it
//! (`core.hooksPath`, else `.git/hooks`). It never replaces a hook it did not write unless
//! told to, and it can keep an existing hook and run it first.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::HookCommand;
use crate::error::{Error, HookError};
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
        Repo::open(&repo.as_ref().map_or(cwd.clone(), |r| cwd.join(r))).map_err(Error::from)
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
            let (path, note) = install_with_note(&dir, *force, *chain, &command.path, extra)?;
            writeln!(
                out,
                "imagegate: pre-push hook written to {}; it runs {}",
                path.display(),
                command.path.display()
            )
            .map_err(Error::Output)?;
            if !command.on_path {
                log::warn!(
                    "no imagegate on PATH, so the hook runs {}, which `cargo clean` or a rebuild \
                     elsewhere removes; install imagegate on PATH (README: Install) and run \
                     `imagegate hook install` again",
                    command.path.display()
                );
            }
            if let Some(note) = note {
                writeln!(out, "imagegate: {note}").map_err(Error::Output)?;
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
    HookError::Write {
        path: path.to_path_buf(),
        source: e,
    }
    .into()
}

/// Writes the hook; returns its path and what happened to what was there. It never writes
/// through a symbolic link, never deletes a hook it did not write (`--force` moves it aside),
/// keeps every chained hook across installs, and keeps lines a user added to its own hook.
pub fn install(
    dir: &Path,
    force: bool,
    chain: bool,
    exe: &Path,
    extra: &str,
) -> Result<PathBuf, Error> {
    install_with_note(dir, force, chain, exe, extra).map(|(p, _)| p)
}

/// [`install`], with a sentence about a hook moved aside, if one was.
pub fn install_with_note(
    dir: &Path,
    force: bool,
    chain: bool,
    exe: &Path,
    extra: &str,
) -> Result<(PathBuf, Option<String>), Error> {
    std::fs::create_dir_all(dir).map_err(|e| hook_error(dir, e))?;
    let path = dir.join("pre-push");
    let block = block(&exe.display().to_string(), extra);
    let mut note = None;
    let existing = match std::fs::symlink_metadata(&path) {
        Err(_) => None,
        Ok(m) if m.file_type().is_symlink() => Some(Existing::Link),
        Ok(_) => match std::fs::read_to_string(&path) {
            Ok(text) if text.contains(MARKER) => Some(Existing::Ours(text)),
            Ok(_) => Some(Existing::Foreign),
            Err(_) => Some(Existing::Unreadable),
        },
    };
    let text = match existing {
        None => format!("#!/bin/sh\n{block}"),
        Some(Existing::Ours(text)) => match replace_block(&text, &block) {
            Some(updated) => updated,
            None => {
                // An earlier version's hook, with no block markers: replaced when it is
                // exactly what that version wrote, else moved aside first.
                if !is_pristine_legacy(&text) {
                    let kept = move_aside(dir, &path, BACKUP)?;
                    note = Some(format!(
                        "the earlier hook had lines imagegate did not write; it is kept at {}",
                        kept.display()
                    ));
                }
                format!("#!/bin/sh\n{block}")
            }
        },
        Some(other) => {
            let what = match other {
                Existing::Link => "is a symbolic link",
                Existing::Unreadable => "is not a readable script",
                _ => "was not written by imagegate",
            };
            if chain {
                let kept = move_aside(dir, &path, CHAINED)?;
                note = Some(format!(
                    "the earlier hook runs first, from {}",
                    kept.display()
                ));
            } else if force {
                let kept = move_aside(dir, &path, BACKUP)?;
                note = Some(format!("the earlier hook is kept at {}", kept.display()));
            } else {
                return Err(HookError::Occupied { path, what }.into());
            }
            format!("#!/bin/sh\n{block}")
        }
    };
    write_new(&path, &text)?;
    Ok((path, note))
}

/// What stands at the hook's path.
enum Existing {
    Link,
    Ours(String),
    Foreign,
    Unreadable,
}

/// Renames a hook (or link: the link itself, never its target) to the first free name
/// `<stem>`, `<stem>-02`, `<stem>-03`, …
fn move_aside(dir: &Path, path: &Path, stem: &str) -> Result<PathBuf, Error> {
    let kept = (1..100)
        .map(|i| {
            if i == 1 {
                dir.join(stem)
            } else {
                dir.join(format!("{stem}-{i:02}"))
            }
        })
        .find(|p| p.symlink_metadata().is_err())
        .ok_or_else(|| HookError::TooMany {
            stem: stem.to_string(),
            dir: dir.to_path_buf(),
        })?;
    std::fs::rename(path, &kept).map_err(|e| hook_error(&kept, e))?;
    Ok(kept)
}

/// Writes a new file in place of whatever is at `path` without following a link there: the
/// text goes to a temporary file that is renamed over the path.
fn write_new(path: &Path, text: &str) -> Result<(), Error> {
    let tmp = path.with_extension(format!("imagegate-tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| hook_error(&tmp, e))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| hook_error(&tmp, e))?;
    drop(f);
    make_executable(&tmp)?;
    std::fs::rename(&tmp, path).map_err(|e| hook_error(path, e))
}

/// The text with imagegate's block replaced, or `None` when it has no block.
fn replace_block(text: &str, block: &str) -> Option<String> {
    let start = text.find(BEGIN)?;
    let end = text[start..].find(END).map(|i| start + i + END.len())?;
    let end = if text[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Some(format!("{}{block}{}", &text[..start], &text[end..]))
}

/// Whether a hook without block markers is exactly what an earlier imagegate wrote.
fn is_pristine_legacy(text: &str) -> bool {
    let exe = text
        .lines()
        .find_map(|l| l.strip_prefix("imagegate="))
        .unwrap_or_default();
    let exe = exe
        .strip_prefix('\'')
        .and_then(|e| e.strip_suffix('\''))
        .map(|e| e.replace(r"'\''", "'"))
        .unwrap_or_default();
    text == legacy_script(&exe)
}

/// Removes imagegate's hook and puts the newest chained one back. Lines a user added to the
/// hook are kept, and then chained hooks stay where they are.
pub fn uninstall(dir: &Path) -> Result<String, Error> {
    let path = dir.join("pre-push");
    if path
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(HookError::NotOurs {
            path,
            why: "is a symbolic link imagegate did not write",
        }
        .into());
    }
    match std::fs::read_to_string(&path) {
        Ok(text) if text.contains(MARKER) => {
            let rest = replace_block(&text, "").unwrap_or_default();
            let user_lines = rest
                .lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with("#!"));
            if user_lines {
                write_new(&path, &rest)?;
                return Ok(format!(
                    "removed imagegate's lines from {}; the lines you added stay",
                    path.display()
                ));
            }
            std::fs::remove_file(&path).map_err(|e| hook_error(&path, e))?;
            let newest = chained_hooks(dir).pop();
            match newest {
                Some(kept) => {
                    std::fs::rename(&kept, &path).map_err(|e| hook_error(&path, e))?;
                    Ok(format!(
                        "removed; the earlier hook is back at {}",
                        path.display()
                    ))
                }
                None => Ok(format!("removed {}", path.display())),
            }
        }
        Ok(_) => Err(HookError::NotOurs {
            path,
            why: "was not written by imagegate",
        }
        .into()),
        Err(_) => Ok("no pre-push hook to remove".into()),
    }
}

/// The chained hooks, oldest first.
fn chained_hooks(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n == CHAINED || n.starts_with(&format!("{CHAINED}-")))
        })
        .collect();
    found.sort();
    found
}

/// Quotes a string for POSIX sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Where imagegate's lines in the hook begin and end; lines outside them are the user's.
const BEGIN: &str = "# >>> imagegate pre-push >>>";
const END: &str = "# <<< imagegate pre-push <<<";
/// Where `--force` moves a hook imagegate did not write.
const BACKUP: &str = "pre-push.imagegate-backup";

/// imagegate's block of the hook: chained hooks first, oldest first, then the check, with a
/// clear message when the recorded binary is gone and none is on `PATH`.
fn block(exe: &str, extra: &str) -> String {
    format!(
        r#"{BEGIN}
{MARKER}: it checks the image references a push adds.
# Remove it with `imagegate hook uninstall`; skip it once with `git push --no-verify`.
# Lines outside this block are yours and survive `imagegate hook install`.
input=$(cat)
hook_dir=$(dirname "$0")
for chained in "$hook_dir"/{CHAINED} "$hook_dir"/{CHAINED}-*; do
  [ -x "$chained" ] || continue
  printf '%s\n' "$input" | "$chained" "$@" || exit $?
done
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
printf '%s\n' "$input" | "$imagegate" pre-push{extra} "$@" || exit $?
{END}
"#,
        exe = sh_quote(exe)
    )
}

/// The hook earlier versions wrote, to recognise one nobody edited.
fn legacy_script(exe: &str) -> String {
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
[ -x "$imagegate" ] || imagegate=imagegate
printf '%s\n' "$input" | "$imagegate" pre-push "$@"
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

    /// Runs a hook with sh and git's pre-push arguments; returns its exit code.
    #[cfg(unix)]
    fn run_hook(hooks: &Path) -> i32 {
        std::process::Command::new("sh")
            .arg(hooks.join("pre-push"))
            .args(["origin", "url"])
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap()
            .code()
            .unwrap_or(-1)
    }

    #[cfg(unix)]
    #[test]
    fn chained_hooks_survive_repeated_installs() {
        // Issue 13, row 11: `--chain` twice kept only the second foreign hook.
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path();
        let foreign = |name: &str| {
            let script = format!("#!/bin/sh\ntouch \"$(dirname \"$0\")/ran-{name}\"\n");
            std::fs::write(hooks.join("pre-push"), script).unwrap();
            make_executable(&hooks.join("pre-push")).unwrap();
        };
        foreign("a");
        install(hooks, false, true, Path::new("imagegate"), "").unwrap();
        foreign("b"); // another tool writes over imagegate's hook
        install(hooks, false, true, Path::new("imagegate"), "").unwrap();
        install(hooks, false, true, Path::new("imagegate"), "").unwrap();
        assert_eq!(chained_hooks(hooks).len(), 2, "both earlier hooks are kept");
        // The recorded imagegate is this test binary, which runs no test for these words.
        run_hook(hooks);
        assert!(hooks.join("ran-a").exists(), "the first chained hook runs");
        assert!(hooks.join("ran-b").exists(), "the second chained hook runs");
    }

    #[cfg(unix)]
    #[test]
    fn force_never_writes_through_a_link_or_deletes_a_hook() {
        // Issue 13, row 11: `--force` through a symlinked hook overwrote the link's target.
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path().join("hooks");
        std::fs::create_dir_all(&hooks).unwrap();
        let tracked = dir.path().join("tracked-pre-push");
        std::fs::write(&tracked, "#!/bin/sh\necho tracked\n").unwrap();
        std::os::unix::fs::symlink(&tracked, hooks.join("pre-push")).unwrap();
        assert!(
            install(&hooks, false, false, Path::new("imagegate"), "").is_err(),
            "a link is not ours"
        );
        install(&hooks, true, false, Path::new("imagegate"), "").unwrap();
        assert_eq!(
            std::fs::read_to_string(&tracked).unwrap(),
            "#!/bin/sh\necho tracked\n",
            "the link's target is untouched"
        );
        let pre_push = hooks.join("pre-push");
        assert!(
            !pre_push
                .symlink_metadata()
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(std::fs::read_to_string(&pre_push).unwrap().contains(MARKER));
        let backup = hooks.join(BACKUP);
        assert!(backup.symlink_metadata().unwrap().file_type().is_symlink());
        // A foreign file under --force is moved aside, not deleted.
        std::fs::write(&pre_push, "#!/bin/sh\necho other\n").unwrap();
        install(&hooks, true, false, Path::new("imagegate"), "").unwrap();
        assert_eq!(
            std::fs::read_to_string(hooks.join(format!("{BACKUP}-02"))).unwrap(),
            "#!/bin/sh\necho other\n"
        );
    }

    #[test]
    fn lines_a_user_adds_survive_reinstall_and_uninstall() {
        // Issue 13, row 11: re-installing dropped lines a user had added to the hook.
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path();
        install(hooks, false, false, Path::new("imagegate"), "").unwrap();
        let path = hooks.join("pre-push");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("echo my own check\n");
        std::fs::write(&path, &text).unwrap();
        install(hooks, false, false, Path::new("imagegate"), "").unwrap();
        let again = std::fs::read_to_string(&path).unwrap();
        assert!(again.contains("echo my own check"), "{again}");
        assert_eq!(again.matches(BEGIN).count(), 1, "{again}");
        let said = uninstall(hooks).unwrap();
        assert!(said.contains("stay"), "{said}");
        let left = std::fs::read_to_string(&path).unwrap();
        assert!(
            left.contains("echo my own check") && !left.contains(MARKER),
            "{left}"
        );
    }

    #[test]
    fn an_edited_hook_of_an_earlier_version_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = dir.path();
        let pristine = legacy_script("/opt/imagegate");
        assert!(is_pristine_legacy(&pristine));
        std::fs::write(hooks.join("pre-push"), &pristine).unwrap();
        install(hooks, false, false, Path::new("imagegate"), "").unwrap();
        assert!(
            hooks.join(BACKUP).symlink_metadata().is_err(),
            "nothing to keep"
        );
        let edited = format!("{pristine}echo extra\n");
        std::fs::write(hooks.join("pre-push"), &edited).unwrap();
        install(hooks, false, false, Path::new("imagegate"), "").unwrap();
        assert_eq!(std::fs::read_to_string(hooks.join(BACKUP)).unwrap(), edited);
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
