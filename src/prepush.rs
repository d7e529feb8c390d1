//! `imagegate pre-push`: git's pre-push hook. It reads git's lines on stdin (`<local ref>
//! <local sha> <remote ref> <remote sha>`) and checks what each pushed ref adds: an update
//! against the remote's old tip, a new branch against its merge base with the remote's
//! default branch. Deletions are skipped. A non-zero exit blocks the push.

use std::io::{BufRead, Write};

use crate::cli::PrePushArgs;
use crate::error::Error;
use crate::git::{BaseChoice, Repo};
use crate::settings::{DiffSettings, Mode, Settings};

/// One line of git's pre-push input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub local_ref: String,
    pub local_sha: String,
    pub remote_ref: String,
    pub remote_sha: String,
}

fn is_zero(sha: &str) -> bool {
    sha.bytes().all(|b| b == b'0')
}

/// Parses git's pre-push lines; blank lines are ignored.
pub fn parse(input: impl BufRead) -> Result<Vec<Update>, Error> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line =
            line.map_err(|e| Error::Usage(format!("cannot read git's pre-push input: {e}")))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [] => continue,
            [a, b, c, d] => out.push(Update {
                local_ref: a.into(),
                local_sha: b.into(),
                remote_ref: c.into(),
                remote_sha: d.into(),
            }),
            _ => {
                return Err(Error::Usage(format!(
                    "line {} of the pre-push input is not `<local ref> <local sha> <remote ref> <remote sha>`: {line:?}",
                    i + 1
                )));
            }
        }
    }
    Ok(out)
}

pub fn run(args: &PrePushArgs, input: impl BufRead, out: &mut dyn Write) -> Result<i32, Error> {
    let updates = parse(input)?;
    let mode = Mode::Diff(DiffSettings {
        repo: ".".into(),
        base: None,
        head: "HEAD".into(),
        all_refs: args.all_refs,
        worktree: false,
    });
    let settings = Settings::new(&args.common, mode)?;
    let repo = Repo::open(&settings.cwd)?;
    let mut worst = 0;
    for u in updates {
        if is_zero(&u.local_sha) {
            log::debug!(
                "{} is deleted on {}; nothing to check",
                u.remote_ref,
                args.remote
            );
            continue;
        }
        let base = if !is_zero(&u.remote_sha) && repo.has_commit(&u.remote_sha) {
            BaseChoice {
                rev: u.remote_sha.clone(),
                reason: format!("the current tip of {} on {}", u.remote_ref, args.remote),
            }
        } else {
            let rev = repo.remote_default_base(&args.remote).ok_or_else(|| {
                crate::git::GitError::NoRemoteDefault {
                    remote: args.remote.clone(),
                    local_ref: u.local_ref.clone(),
                }
            })?;
            let why = if is_zero(&u.remote_sha) {
                "a new branch"
            } else {
                "a remote tip this clone has not fetched"
            };
            BaseChoice {
                reason: format!("{why}: its merge base with {rev}"),
                rev,
            }
        };
        let diff = DiffSettings {
            repo: ".".into(),
            base: None,
            head: u.local_sha.clone(),
            all_refs: args.all_refs,
            worktree: false,
        };
        log::info!("checking {} → {}", u.local_ref, u.remote_ref);
        let report = crate::pipeline::check_against(&settings, &repo, base, &diff)?;
        crate::report::emit(&settings, &report, out)?;
        worst = worse(worst, report.exit_code());
    }
    let _ = out.flush();
    match worst {
        0 => {}
        3 => log::error!(
            "push blocked (exit 3): some references could not be decided (registry unreachable, \
             rate-limited or 401/403), which is not proof they are wrong; retry when the registry can be \
             reached, let such pushes through with `imagegate hook install --undecided warn` (or \
             IMAGEGATE_UNDECIDED=warn), or skip this check once with `git push --no-verify`"
        ),
        _ => log::error!(
            "push blocked (exit {worst}); fix the references above, or skip this check once with `git push --no-verify`"
        ),
    }
    Ok(worst)
}

/// 1 (definitely wrong) beats 3 (undecided) beats 0.
fn worse(a: i32, b: i32) -> i32 {
    match (a, b) {
        (1, _) | (_, 1) => 1,
        (0, x) | (x, 0) => x,
        (x, _) => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_git_lines() {
        let input =
            "refs/heads/main 1111 refs/heads/main 2222\n\nrefs/heads/x 0000 refs/heads/x 3333\n";
        let u = parse(input.as_bytes()).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].local_sha, "1111");
        assert!(parse("only two".as_bytes()).is_err());
    }

    #[test]
    fn exit_codes_combine() {
        assert_eq!(worse(0, 3), 3);
        assert_eq!(worse(3, 1), 1);
        assert_eq!(worse(1, 0), 1);
        assert_eq!(worse(0, 0), 0);
    }
}
