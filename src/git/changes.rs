//! What differs between the merge base and head (or the working tree): the changed files
//! with their text at both sides, found by descending only into subtrees whose ids differ.

use std::path::{Path, PathBuf};

use git2::{Delta, DiffFindOptions, DiffOptions, FileMode, Oid, Repository};

use super::{GitError, Range, Repo};

/// A file that changed, with its text at both sides.
#[derive(Debug)]
pub struct ChangedFile {
    /// Path at head, relative to the repository root.
    pub path: PathBuf,
    /// Path at the merge base when the file was renamed or copied.
    pub old_path: Option<PathBuf>,
    pub new: Vec<u8>,
    /// Content at the merge base; `None` for an added file.
    pub old: Option<Vec<u8>>,
}

/// What differs between the merge base and head (or the working tree).
#[derive(Debug, Default)]
pub struct Changes {
    /// The changed files that are checked.
    pub files: Vec<ChangedFile>,
    /// Every path that differs, whatever its kind or status and before any filter (both
    /// sides of a rename, deleted files too): what facts about the merge base no longer hold.
    pub touched: Vec<PathBuf>,
}

impl Repo {
    /// The files that changed between the merge base and head (or the working tree), with
    /// their contents. `wanted` filters by path at head. Deleted files, submodules and
    /// symbolic links are passed over.
    pub fn changed_files(
        &self,
        range: &Range,
        wanted: &dyn Fn(&Path) -> bool,
    ) -> Result<Changes, GitError> {
        // Reopen after a fetch: it may have added objects (and shallow roots) since this
        // handle was made.
        let reopened;
        let repo = if range.fetched.is_some() || self.is_shallow() {
            reopened = Repository::open(self.repo.path())?;
            &reopened
        } else {
            &self.repo
        };
        let base_tree = repo
            .find_commit(Oid::from_str(&range.merge_base)?)?
            .tree()?;
        let mut opts = DiffOptions::new();
        opts.ignore_submodules(true).include_typechange(true);
        let mut diff = if range.worktree {
            opts.include_untracked(true).recurse_untracked_dirs(true);
            repo.diff_tree_to_workdir_with_index(Some(&base_tree), Some(&mut opts))?
        } else {
            let head_tree = repo.find_commit(Oid::from_str(&range.head)?)?.tree()?;
            // libgit2's tree diff reads every tree of both sides. Find the changed paths by
            // descending only into subtrees whose ids differ (as git does), then let
            // libgit2 diff just those paths, with rename detection.
            let mut paths = Vec::new();
            changed_paths(repo, Some(&base_tree), Some(&head_tree), "", &mut paths)?;
            if paths.is_empty() {
                return Ok(Changes::default());
            }
            for p in &paths {
                opts.pathspec(p);
            }
            opts.disable_pathspec_match(true);
            repo.diff_tree_to_tree(Some(&base_tree), Some(&head_tree), Some(&mut opts))?
        };
        let mut find = DiffFindOptions::new();
        find.renames(true).copies(true).for_untracked(true);
        diff.find_similar(Some(&mut find))?;
        let mut out = Vec::new();
        let mut touched = Vec::new();
        for delta in diff.deltas() {
            for side in [delta.old_file(), delta.new_file()] {
                if let Some(p) = side.path()
                    && touched.last().is_none_or(|t: &PathBuf| t != p)
                {
                    touched.push(p.to_path_buf());
                }
            }
            if !matches!(
                delta.status(),
                Delta::Added
                    | Delta::Modified
                    | Delta::Renamed
                    | Delta::Copied
                    | Delta::Untracked
                    | Delta::Typechange
            ) {
                continue;
            }
            let new_file = delta.new_file();
            if !matches!(new_file.mode(), FileMode::Blob | FileMode::BlobExecutable) {
                continue; // submodule, symbolic link, tree
            }
            let Some(path) = new_file.path().map(Path::to_path_buf) else {
                continue;
            };
            if !wanted(&path) {
                continue;
            }
            let new = if range.worktree {
                match read_worktree_file(&self.root, &path) {
                    Some(bytes) => bytes,
                    None => continue,
                }
            } else {
                repo.find_blob(new_file.id())?.content().to_vec()
            };
            let old_file = delta.old_file();
            let old = if old_file.id().is_zero() || delta.status() == Delta::Added {
                None
            } else {
                repo.find_blob(old_file.id())
                    .ok()
                    .map(|b| b.content().to_vec())
            };
            let old_path = old_file
                .path()
                .filter(|p| *p != path.as_path())
                .map(Path::to_path_buf);
            out.push(ChangedFile {
                path,
                old_path,
                new,
                old,
            });
        }
        Ok(Changes {
            files: out,
            touched,
        })
    }
}

/// The paths of blobs that differ between two trees, descending only into subtrees whose
/// ids differ. Deleted paths are included (they may be rename sources).
fn changed_paths(
    repo: &Repository,
    old: Option<&git2::Tree<'_>>,
    new: Option<&git2::Tree<'_>>,
    prefix: &str,
    out: &mut Vec<String>,
) -> Result<(), git2::Error> {
    type Side = Option<(Oid, i32)>;
    let mut entries: std::collections::BTreeMap<Vec<u8>, (Side, Side)> = Default::default();
    for e in old.into_iter().flat_map(|t| t.iter()) {
        entries.entry(e.name_bytes().to_vec()).or_default().0 = Some((e.id(), e.filemode()));
    }
    for e in new.into_iter().flat_map(|t| t.iter()) {
        entries.entry(e.name_bytes().to_vec()).or_default().1 = Some((e.id(), e.filemode()));
    }
    let is_tree = |side: Side| side.is_some_and(|(_, mode)| mode == i32::from(FileMode::Tree));
    for (name, (o, n)) in entries {
        if o == n {
            continue;
        }
        let path = format!("{prefix}{}", String::from_utf8_lossy(&name));
        if is_tree(o) || is_tree(n) {
            let subtree = |side: Side| -> Result<Option<git2::Tree<'_>>, git2::Error> {
                match side {
                    Some((id, _)) if is_tree(side) => repo.find_tree(id).map(Some),
                    _ => Ok(None),
                }
            };
            changed_paths(
                repo,
                subtree(o)?.as_ref(),
                subtree(n)?.as_ref(),
                &format!("{path}/"),
                out,
            )?;
        }
        if (o.is_some() && !is_tree(o)) || (n.is_some() && !is_tree(n)) {
            out.push(path);
        }
    }
    Ok(())
}

/// A working-tree file, read only when it is a regular file inside the repository.
pub(super) fn read_worktree_file(root: &Path, rel: &Path) -> Option<Vec<u8>> {
    let full = root.join(rel);
    let meta = std::fs::symlink_metadata(&full).ok()?;
    meta.is_file().then(|| std::fs::read(&full).ok()).flatten()
}
