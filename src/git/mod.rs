//! Git, through git2: opens the repository, chooses the base, computes the merge base and
//! the changed paths, and reads blobs straight from the object database at both sides. It
//! knows nothing about YAML. It never passes silently: a shallow clone, a missing base or
//! unrelated histories are errors that name the fix.
//!
//! One step uses the git CLI instead of git2: fetching a missing base into a shallow clone.
//! CI checkouts keep their credentials where only the CLI reads them (actions/checkout puts
//! the token in `http.<url>.extraheader`, which libgit2 ignores), and it avoids linking
//! OpenSSL for a step most runs never take.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

/// The hint every history problem ends with.
const FIX_HINT: &str = "in GitHub Actions set `fetch-depth: 0` on actions/checkout; in GitLab CI set \
`GIT_DEPTH: 0`; locally run `git fetch origin <base branch>` (or `git fetch --unshallow`)";

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error(
        "not inside a git repository ({dir}): run imagegate in a checkout, pass --repo DIR, or use --all"
    )]
    NotARepo { dir: PathBuf },
    #[error(
        "no base to compare against: none of {tried} exists{shallow}. Pass --base REV; {FIX_HINT}"
    )]
    NoBase {
        tried: String,
        shallow: &'static str,
    },
    #[error("the base `{rev}` ({reason}) does not exist in this clone{shallow}. {FIX_HINT}")]
    BaseNotFound {
        rev: String,
        reason: String,
        shallow: &'static str,
    },
    #[error("the head `{rev}` does not exist: {message}")]
    HeadNotFound { rev: String, message: String },
    #[error(
        "no merge base between `{base}` and `{head}`: the clone is shallow and its history stops before the point where they diverged. {FIX_HINT}"
    )]
    ShallowHistory { base: String, head: String },
    #[error(
        "`{base}` and `{head}` have unrelated histories (no merge base); pass the right --base"
    )]
    Unrelated { base: String, head: String },
    #[error(
        "cannot find {remote}'s default branch to compare {local_ref} with; run `git fetch {remote}` and push again"
    )]
    NoRemoteDefault { remote: String, local_ref: String },
    #[error("cannot read the tree of {commit}")]
    TreeUnreadable { commit: String },
    #[error("git: {0}")]
    Git(#[from] git2::Error),
}

/// The chosen base and why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BaseChoice {
    pub rev: String,
    pub reason: String,
}

/// What a diff check compares.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Range {
    pub base: BaseChoice,
    pub merge_base: String,
    pub head: String,
    pub head_rev: String,
    pub worktree: bool,
    /// What was fetched to make the comparison possible, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetched: Option<String>,
}

pub struct Repo {
    repo: Repository,
    root: PathBuf,
}

mod changes;
mod fetch;
mod tree;

/// [`Repo::remote_urls`] of the repository at `root`, if it is one (none otherwise).
pub fn remote_urls(root: &Path) -> Vec<String> {
    Repository::open(root)
        .map(|r| remote_urls_of(&r))
        .unwrap_or_default()
}

fn remote_urls_of(repo: &Repository) -> Vec<String> {
    let Ok(names) = repo.remotes() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in names.iter() {
        let Ok(Some(name)) = name else { continue };
        if let Ok(remote) = repo.find_remote(name) {
            let urls = [remote.url().ok(), remote.pushurl().ok().flatten()];
            out.extend(urls.into_iter().flatten().map(|u| u.to_string()));
        }
    }
    out
}

pub use changes::{ChangedFile, Changes};
pub use tree::TreeReader;

impl Repo {
    /// Discovers the repository from `dir` (or the working directory).
    pub fn open(dir: &Path) -> Result<Repo, GitError> {
        // Objects come from the local object database; re-hashing each one on read costs a
        // third of a diff on a large repository and protects against nothing here.
        git2::opts::strict_hash_verification(false);
        let repo = Repository::discover(dir).map_err(|_| GitError::NotARepo {
            dir: dir.to_path_buf(),
        })?;
        let root = repo
            .workdir()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| repo.path().to_path_buf());
        Ok(Repo { repo, root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The fetch and push URLs of the repository's remotes, to tell whether a URL written
    /// in the repository (an Argo CD Application's `repoURL`) names the repository itself.
    pub fn remote_urls(&self) -> Vec<String> {
        remote_urls_of(&self.repo)
    }

    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    fn exists(&self, rev: &str) -> bool {
        self.repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .is_ok()
    }

    fn commit(&self, rev: &str) -> Result<Oid, git2::Error> {
        Ok(self.repo.revparse_single(rev)?.peel_to_commit()?.id())
    }

    /// Chooses the base: `--base`, then the CI's own variables, then the upstream default
    /// branch. `env` reads an environment variable (non-empty values only).
    pub fn choose_base(
        &self,
        explicit: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<BaseChoice, GitError> {
        let choice = |rev: String, reason: &str| BaseChoice {
            rev,
            reason: reason.to_string(),
        };
        if let Some(b) = explicit {
            return Ok(choice(b.to_string(), "--base"));
        }
        if let Some(r) = env("PRE_COMMIT_FROM_REF") {
            return Ok(choice(
                r,
                "PRE_COMMIT_FROM_REF (pre-commit, pre-push stage)",
            ));
        }
        if let Some(r) = env("GITHUB_BASE_REF") {
            return Ok(choice(
                format!("origin/{r}"),
                "GITHUB_BASE_REF (GitHub pull request)",
            ));
        }
        if let Some(before) = env("GITHUB_EVENT_BEFORE").or_else(|| github_push_before(env))
            && !is_zero(&before)
        {
            return Ok(choice(
                before,
                "the push's `before` commit (GitHub push event)",
            ));
        }
        if let Some(sha) = env("CI_MERGE_REQUEST_DIFF_BASE_SHA") {
            return Ok(choice(
                sha,
                "CI_MERGE_REQUEST_DIFF_BASE_SHA (GitLab merge request)",
            ));
        }
        if let Some(b) = env("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") {
            return Ok(choice(
                format!("origin/{b}"),
                "CI_MERGE_REQUEST_TARGET_BRANCH_NAME (GitLab merge request)",
            ));
        }
        if let Some(sha) = env("CI_COMMIT_BEFORE_SHA").filter(|s| !is_zero(s)) {
            return Ok(choice(sha, "CI_COMMIT_BEFORE_SHA (GitLab push pipeline)"));
        }
        let candidates = [
            "origin/HEAD",
            "origin/main",
            "origin/master",
            "main",
            "master",
        ];
        for c in candidates {
            if self.exists(c) {
                return Ok(choice(c.to_string(), "the upstream default branch"));
            }
        }
        // A shallow or single-branch clone may simply not have fetched it.
        if let Some((branch, note)) = self.fetch_default_branch() {
            let rev = format!("origin/{branch}");
            if self.exists(&rev) {
                return Ok(BaseChoice {
                    rev,
                    reason: format!("the upstream default branch ({note})"),
                });
            }
        }
        Err(GitError::NoBase {
            tried: candidates.join(", "),
            shallow: self.shallow_note(),
        })
    }

    fn shallow_note(&self) -> &'static str {
        if self.is_shallow() {
            " and the clone is shallow"
        } else {
            ""
        }
    }

    /// Resolves base and head and computes their merge base, fetching what a shallow clone
    /// lacks where that can be done safely.
    pub fn range(
        &self,
        base: BaseChoice,
        head_rev: &str,
        worktree: bool,
    ) -> Result<Range, GitError> {
        let head = self.commit(head_rev).map_err(|e| GitError::HeadNotFound {
            rev: head_rev.to_string(),
            message: e.message().to_string(),
        })?;
        let mut fetched = None;
        let base_oid = match self.commit(&base.rev) {
            Ok(oid) => oid,
            Err(_) => {
                let note = self
                    .fetch_missing(&base.rev)
                    .ok_or_else(|| GitError::BaseNotFound {
                        rev: base.rev.clone(),
                        reason: base.reason.clone(),
                        shallow: self.shallow_note(),
                    })?;
                fetched = Some(note);
                self.commit(&base.rev).map_err(|_| GitError::BaseNotFound {
                    rev: base.rev.clone(),
                    reason: base.reason.clone(),
                    shallow: self.shallow_note(),
                })?
            }
        };
        let merge_base = match self.repo.merge_base(base_oid, head) {
            Ok(m) => m,
            Err(_) if self.is_shallow() => {
                let (m, note) = self
                    .deepen_until_merge_base(base_oid, head)
                    .ok_or_else(|| GitError::ShallowHistory {
                        base: base.rev.clone(),
                        head: head_rev.to_string(),
                    })?;
                fetched = Some(match fetched {
                    Some(f) => format!("{f}; {note}"),
                    None => note,
                });
                m
            }
            Err(_) => {
                return Err(GitError::Unrelated {
                    base: base.rev.clone(),
                    head: head_rev.to_string(),
                });
            }
        };
        Ok(Range {
            base,
            merge_base: merge_base.to_string(),
            head: head.to_string(),
            head_rev: head_rev.to_string(),
            worktree,
            fetched,
        })
    }

    /// The merge base of a commit with the remote's default branch (for new branches).
    pub fn remote_default_base(&self, remote: &str) -> Option<String> {
        [
            format!("{remote}/HEAD"),
            format!("{remote}/main"),
            format!("{remote}/master"),
        ]
        .into_iter()
        .find(|r| self.exists(r))
    }

    pub fn has_commit(&self, sha: &str) -> bool {
        Oid::from_str(sha)
            .ok()
            .and_then(|o| self.repo.find_commit(o).ok())
            .is_some()
    }

    /// Where hooks live: `core.hooksPath` when set, else `.git/hooks`.
    pub fn hooks_dir(&self) -> PathBuf {
        let configured = self
            .repo
            .config()
            .ok()
            .and_then(|c| c.get_path("core.hooksPath").ok());
        match configured {
            Some(p) if p.is_absolute() => p,
            Some(p) => self.root.join(p),
            None => self.repo.path().join("hooks"),
        }
    }
}

fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// The `before` commit of a GitHub push event, from the event payload.
fn github_push_before(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if env("GITHUB_EVENT_NAME").as_deref() != Some("push") {
        return None;
    }
    let payload = std::fs::read(env("GITHUB_EVENT_PATH")?).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    v["before"].as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs git in `dir` with a fixed identity and no user config.
    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn commit(dir: &Path, file: &str, text: &str) -> String {
        std::fs::write(dir.join(file), text).unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", file]);
        git(dir, &["rev-parse", "HEAD"])
    }

    /// `--render` (issue 15): a commit's tree written out holds the commit's regular files
    /// (not the working tree's), executable bits kept, and never its symbolic links.
    #[cfg(unix)]
    #[test]
    fn a_commit_tree_is_written_without_its_links() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q", "-b", "main"]);
        std::fs::create_dir_all(d.join("k")).unwrap();
        std::fs::write(d.join("k/kustomization.yaml"), "resources: []\n").unwrap();
        std::fs::write(d.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(d.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/etc", d.join("k/out")).unwrap();
        let head = commit(d, "a.yaml", "a: 1\n");
        std::fs::write(d.join("a.yaml"), "a: on disk\n").unwrap();
        let repo = Repo::open(d).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let reader = repo.reader_at(&head).unwrap();
        let at = crate::reader::Reader::materialise(&reader, &scratch.path().join("t")).unwrap();
        assert_eq!(
            std::fs::read_to_string(at.join("a.yaml")).unwrap(),
            "a: 1\n"
        );
        assert!(at.join("k/kustomization.yaml").is_file());
        assert!(at.join("k/out").symlink_metadata().is_err());
        let mode = std::fs::metadata(at.join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
        assert!(!at.join(".git").exists());
    }

    /// main: A - B - D; feature (from B): C.
    fn repo() -> (tempfile::TempDir, [String; 4]) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q", "-b", "main"]);
        let a = commit(d, "a.yaml", "a: 1\n");
        let b = commit(d, "b.yaml", "b: 1\n");
        git(d, &["checkout", "-q", "-b", "feature"]);
        let c = commit(d, "c.yaml", "c: 1\n");
        git(d, &["checkout", "-q", "main"]);
        let dd = commit(d, "d.yaml", "d: 1\n");
        git(d, &["checkout", "-q", "feature"]);
        (dir, [a, b, c, dd])
    }

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_base_comes_from_the_flag_then_ci_then_the_default_branch() {
        let (dir, _) = repo();
        let r = Repo::open(dir.path()).unwrap();
        let none = env_of(&[]);
        let pick = |explicit: Option<&str>, env: &dyn Fn(&str) -> Option<String>| {
            r.choose_base(explicit, env).unwrap().rev
        };
        assert_eq!(pick(Some("v1"), &env_of(&[("GITHUB_BASE_REF", "x")])), "v1");
        assert_eq!(
            pick(None, &env_of(&[("GITHUB_BASE_REF", "release")])),
            "origin/release"
        );
        assert_eq!(
            pick(None, &env_of(&[("CI_MERGE_REQUEST_DIFF_BASE_SHA", "abc")])),
            "abc"
        );
        assert_eq!(
            pick(
                None,
                &env_of(&[("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "dev")])
            ),
            "origin/dev"
        );
        // A zero `before` (a new branch) is not a base; the default branch is.
        let zero: &'static [(&str, &str)] = &[(
            "CI_COMMIT_BEFORE_SHA",
            "0000000000000000000000000000000000000000",
        )];
        assert_eq!(pick(None, &env_of(zero)), "main");
        assert_eq!(pick(None, &none), "main");
        assert_eq!(
            pick(
                None,
                &env_of(&[("PRE_COMMIT_FROM_REF", "p"), ("GITHUB_BASE_REF", "g")])
            ),
            "p",
            "pre-commit's ref wins over CI's"
        );
    }

    #[test]
    fn the_merge_base_is_where_the_branch_left_its_base() {
        let (dir, [_, b, c, d]) = repo();
        let r = Repo::open(dir.path()).unwrap();
        let base = r.choose_base(Some("main"), &env_of(&[])).unwrap();
        let range = r.range(base, "HEAD", false).unwrap();
        assert_eq!(range.merge_base, b, "not main's tip {d}");
        assert_eq!(range.head, c);
        let changes = r.changed_files(&range, &|_| true).unwrap();
        let paths: Vec<_> = changes.files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            paths,
            [PathBuf::from("c.yaml")],
            "main's own change is not the branch's"
        );
    }

    #[test]
    fn unrelated_histories_and_missing_bases_are_errors_that_name_the_fix() {
        let (dir, _) = repo();
        let d = dir.path();
        git(d, &["checkout", "-q", "--orphan", "other"]);
        commit(d, "o.yaml", "o: 1\n");
        let r = Repo::open(d).unwrap();
        let base = r.choose_base(Some("main"), &env_of(&[])).unwrap();
        let e = r.range(base, "HEAD", false).unwrap_err();
        assert!(matches!(e, GitError::Unrelated { .. }), "{e}");
        let base = r.choose_base(Some("no-such-branch"), &env_of(&[])).unwrap();
        let e = r.range(base, "HEAD", false).unwrap_err().to_string();
        assert!(
            e.contains("no-such-branch") && e.contains("fetch-depth: 0"),
            "{e}"
        );
        let nowhere = tempfile::tempdir().unwrap();
        assert!(matches!(
            Repo::open(nowhere.path()),
            Err(GitError::NotARepo { .. })
        ));
    }
}
