//! Reading a commit's tree: files by path, the kustomization files of a tree, the YAML
//! paths at head, and a [`Reader`](crate::reader::Reader) over a commit.

use std::path::{Path, PathBuf};
use std::process::Command;

use git2::{Oid, Repository};

use super::changes::read_worktree_file;
use super::{GitError, Range, Repo};

impl Repo {
    /// The id of a commit's tree.
    pub fn tree_id(&self, commit: &str) -> Option<String> {
        let commit = self.repo.find_commit(Oid::from_str(commit).ok()?).ok()?;
        Some(commit.tree_id().to_string())
    }

    /// `f` of every regular file at `commit` whose path `wanted` accepts (path and content),
    /// read on every core; files for which `f` gives `None` are left out. Paths that are not
    /// UTF-8 are passed over.
    pub fn map_files_at<T: Send>(
        &self,
        commit: &str,
        wanted: &dyn Fn(&str) -> bool,
        f: &(dyn Fn(&str, &[u8]) -> Option<T> + Sync),
    ) -> Result<Vec<(String, T)>, GitError> {
        let tree = self.repo.find_commit(Oid::from_str(commit)?)?.tree()?;
        let mut blobs = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            let regular = matches!(entry.filemode(), 0o100644 | 0o100755);
            if let (true, Ok(name)) = (regular, entry.name()) {
                let path = format!("{dir}{name}");
                if wanted(&path) {
                    blobs.push((path, entry.id()));
                }
            }
            git2::TreeWalkResult::Ok
        })?;
        use rayon::prelude::*;
        let git_dir = self.repo.path().to_path_buf();
        Ok(blobs
            .into_par_iter()
            .map_init(
                || Repository::open(&git_dir).ok(),
                |repo, (path, id)| {
                    let blob = repo.as_ref()?.find_blob(id).ok()?;
                    let value = f(&path, blob.content())?;
                    Some((path, value))
                },
            )
            .flatten()
            .collect())
    }

    /// Every file at head whose name is one of `names` (kustomization files, say), with its
    /// text. With head checked out, the index lists them and gives their blob ids, so no
    /// tree is walked and no path looked up.
    pub fn files_named(&self, range: &Range, names: &[&str]) -> Vec<(PathBuf, Vec<u8>)> {
        let wanted = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| names.contains(&n))
        };
        if range.worktree {
            return self
                .paths_at_head(range, &wanted)
                .into_iter()
                .filter_map(|p| read_worktree_file(&self.root, &p).map(|b| (p, b)))
                .collect();
        }
        if self.head_is_checked_out(range)
            && let Some(listed) = self.ls_files_named(names)
        {
            return listed
                .into_iter()
                .filter_map(|(path, oid)| {
                    Some((path, self.repo.find_blob(oid).ok()?.content().to_vec()))
                })
                .collect();
        }
        if self.head_is_checked_out(range)
            && let Ok(index) = self.repo.index()
        {
            return index
                .iter()
                .filter_map(|e| {
                    let path = PathBuf::from(String::from_utf8(e.path).ok()?);
                    if !wanted(&path) {
                        return None;
                    }
                    let blob = self.repo.find_blob(e.id).ok()?;
                    Some((path, blob.content().to_vec()))
                })
                .collect();
        }
        let Some(reader) = self.reader_at(&range.head) else {
            return Vec::new();
        };
        use crate::reader::Reader;
        self.paths_at_head(range, &wanted)
            .into_iter()
            .filter_map(|p| reader.read(&p).map(|b| (p, b)))
            .collect()
    }

    /// Files of these names in the index, with their blob ids, by `git ls-files`: git reads
    /// its index several times faster than libgit2, which SHA-1-checks the whole file with
    /// collision detection (50 ms for 50,000 entries). `None` when git cannot be run.
    pub(super) fn ls_files_named(&self, names: &[&str]) -> Option<Vec<(PathBuf, Oid)>> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.root)
            .args(["ls-files", "-z", "-s", "--"])
            .args(names.iter().map(|n| format!(":(glob)**/{n}")))
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        out.stdout
            .split(|&b| b == 0)
            .filter(|r| !r.is_empty())
            .map(|record| {
                // `<mode> <oid> <stage>\t<path>`
                let text = std::str::from_utf8(record).ok()?;
                let (meta, path) = text.split_once('\t')?;
                let oid = Oid::from_str(meta.split(' ').nth(1)?).ok()?;
                Some((PathBuf::from(path), oid))
            })
            .collect()
    }

    pub(super) fn head_is_checked_out(&self, range: &Range) -> bool {
        self.repo
            .head()
            .ok()
            .and_then(|h| h.target())
            .is_some_and(|oid| oid.to_string() == range.head)
    }

    /// Repository paths at head that satisfy `wanted`: from the index when head is the
    /// checked-out commit (no tree walk), else from head's tree.
    pub fn paths_at_head(&self, range: &Range, wanted: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
        if (range.worktree || self.head_is_checked_out(range))
            && let Ok(index) = self.repo.index()
        {
            return index
                .iter()
                .filter_map(|e| String::from_utf8(e.path).ok())
                .map(PathBuf::from)
                .filter(|p| wanted(p))
                .collect();
        }
        let mut out = Vec::new();
        if let Ok(tree) = Oid::from_str(&range.head)
            .and_then(|o| self.repo.find_commit(o))
            .and_then(|c| c.tree())
        {
            let _ = tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
                if let Ok(name) = entry.name() {
                    let p = PathBuf::from(format!("{dir}{name}"));
                    if wanted(&p) {
                        out.push(p);
                    }
                }
                git2::TreeWalkResult::Ok
            });
        }
        out
    }

    /// A reader of files as they are at `commit`.
    pub fn reader_at(&self, commit: &str) -> Option<TreeReader> {
        let repo = Repository::open(self.repo.path()).ok()?;
        let tree = repo
            .find_commit(Oid::from_str(commit).ok()?)
            .ok()?
            .tree()
            .ok()?
            .id();
        Some(TreeReader {
            repo: std::sync::Mutex::new(repo),
            tree,
        })
    }
}

/// Reads files from a commit's tree, straight from the object database.
pub struct TreeReader {
    /// git2 handles are not shared between threads; reads take turns.
    repo: std::sync::Mutex<Repository>,
    tree: Oid,
}

impl crate::reader::Reader for TreeReader {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let repo = self.repo.lock().ok()?;
        let tree = repo.find_tree(self.tree).ok()?;
        let entry = tree.get_path(path).ok()?;
        if !matches!(entry.filemode(), 0o100644 | 0o100755) {
            return None;
        }
        Some(repo.find_blob(entry.id()).ok()?.content().to_vec())
    }

    /// Writes the tree's regular files under `scratch` (as `read` sees them: symbolic links
    /// and submodules are left out, so nothing written leads outside it).
    fn materialise(&self, scratch: &Path) -> std::io::Result<PathBuf> {
        let repo = self
            .repo
            .lock()
            .map_err(|_| std::io::Error::other("the git handle is poisoned"))?;
        let tree = repo.find_tree(self.tree).map_err(std::io::Error::other)?;
        std::fs::create_dir_all(scratch)?;
        let mut failed = None;
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            // A hostile tree may hold `..` or `.git`; such an entry is not written, nor is
            // anything under it.
            let Some(name) = entry.name().ok().filter(|n| is_plain_name(n)) else {
                return git2::TreeWalkResult::Skip;
            };
            let path = scratch.join(dir).join(name);
            let written = match entry.filemode() {
                0o040000 => std::fs::create_dir_all(&path),
                mode @ (0o100644 | 0o100755) => repo
                    .find_blob(entry.id())
                    .map_err(std::io::Error::other)
                    .and_then(|b| std::fs::write(&path, b.content()))
                    .and_then(|()| executable(&path, mode == 0o100755)),
                _ => Ok(()),
            };
            match written {
                Ok(()) => git2::TreeWalkResult::Ok,
                Err(e) => {
                    failed = Some(e);
                    git2::TreeWalkResult::Abort
                }
            }
        })
        .map_err(|e| failed.take().unwrap_or_else(|| std::io::Error::other(e)))?;
        Ok(scratch.to_path_buf())
    }
}

/// A tree entry's name that is one plain path component and not git's own directory.
fn is_plain_name(name: &str) -> bool {
    !matches!(name, "" | "." | "..")
        && !name.eq_ignore_ascii_case(".git")
        && !name.contains(['/', '\\', '\0'])
}

#[cfg(unix)]
fn executable(path: &Path, yes: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match yes {
        true => std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)),
        false => Ok(()),
    }
}

#[cfg(not(unix))]
fn executable(_path: &Path, _yes: bool) -> std::io::Result<()> {
    Ok(())
}
