//! Fetching what a shallow clone lacks, with the git CLI (CI checkouts keep their
//! credentials where only the CLI reads them): a missing base, the default branch, and
//! enough history to reach the merge base.

use std::process::Command;

use git2::{Oid, Repository};

use super::Repo;

impl Repo {
    /// Runs `git fetch` in the repository; true when it succeeded.
    pub(super) fn git_fetch(&self, args: &[&str]) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["fetch", "--quiet", "--no-tags"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub(super) fn has_origin(&self) -> bool {
        self.repo.find_remote("origin").is_ok()
    }

    /// Fetches a missing `origin/<branch>` base with a bounded depth.
    pub(super) fn fetch_missing(&self, rev: &str) -> Option<String> {
        let branch = rev.strip_prefix("origin/")?;
        if !self.has_origin() {
            return None;
        }
        let refspec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
        let depth = if self.is_shallow() {
            "--depth=50"
        } else {
            "--no-write-fetch-head"
        };
        self.git_fetch(&[depth, "origin", &refspec]).then(|| {
            format!(
                "fetched `{rev}` from origin{}",
                if self.is_shallow() { " (depth 50)" } else { "" }
            )
        })
    }

    /// Learns origin's default branch (`git ls-remote --symref`) and fetches it.
    pub(super) fn fetch_default_branch(&self) -> Option<(String, String)> {
        if !self.has_origin() {
            return None;
        }
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["ls-remote", "--symref", "origin", "HEAD"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let branch = text
            .lines()
            .find_map(|l| l.strip_prefix("ref: refs/heads/"))
            .and_then(|l| l.split_whitespace().next())?
            .to_string();
        let note = self.fetch_missing(&format!("origin/{branch}"))?;
        Some((branch, note))
    }

    /// Deepens a shallow clone step by step until the merge base appears.
    pub(super) fn deepen_until_merge_base(&self, base: Oid, head: Oid) -> Option<(Oid, String)> {
        if !self.has_origin() {
            return None;
        }
        for (args, what) in [
            (
                &["--deepen=50", "origin"][..],
                "deepened the shallow clone by 50 commits",
            ),
            (
                &["--deepen=500", "origin"][..],
                "deepened the shallow clone by 550 commits",
            ),
            (
                &["--unshallow", "origin"][..],
                "fetched the full history (--unshallow)",
            ),
        ] {
            if !self.git_fetch(args) {
                return None;
            }
            // The object database changed on disk; a fresh handle sees the new commits.
            let fresh = Repository::open(self.repo.path()).ok()?;
            if let Ok(m) = fresh.merge_base(base, head) {
                return Some((m, what.to_string()));
            }
        }
        None
    }
}
