//! Step 1, collect: which files a check reads, and how joins across files reach the others.
//! `--all` walks the paths given; a diff check asks git for the changed files at head and
//! their text at the merge base, and reads the repository config of that merge base.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::Error;
use crate::reader::{DiskReader, Reader};
use crate::settings::{DiffSettings, Settings};
use crate::{config, files, git, manifest, paths, repo_facts, trust};

/// A file to check: on disk (read in parallel), or a changed file read from git. Both know
/// their path in the repository (or under the walk root), for joins across files.
pub enum Input {
    OnDisk {
        path: PathBuf,
        repo_path: PathBuf,
    },
    Changed {
        display: PathBuf,
        repo_path: PathBuf,
        new: Vec<u8>,
        old: Option<Vec<u8>>,
    },
}

/// How the joins across files read files that are not being checked.
pub struct Sides {
    pub head: Box<dyn Reader>,
    /// In a diff: the merge base, to tell new derived references from old ones.
    pub base: Option<Box<dyn Reader>>,
    /// In a diff: the kustomizations whose builds read a changed file.
    pub kustomizations: Vec<PathBuf>,
    pub changed: HashSet<PathBuf>,
    /// Where repository paths start, for showing extra files.
    pub root: PathBuf,
    /// In a diff: the repository's other YAML files, listed only when a join needs them.
    pub elsewhere: Box<dyn Fn() -> Vec<PathBuf>>,
    /// The URLs of the repository's git remotes (none outside git).
    pub remotes: Vec<String>,
}

/// What a check reads, before anything is parsed.
pub struct Collected {
    pub inputs: Vec<Input>,
    /// Paths the walk could not read.
    pub problems: Vec<files::WalkProblem>,
    /// Whether every reference of a changed file is checked, not only new ones.
    pub all_refs: bool,
    pub sides: Sides,
    pub started: Instant,
    pub git: Option<git::Range>,
    pub repo_root: Option<PathBuf>,
}

/// The files under `paths` (`--all`), read from the working tree.
pub fn walk(settings: &Settings, paths: &[PathBuf]) -> Result<Collected, Error> {
    let started = Instant::now();
    let (paths, problems) = files::collect(paths, settings)?;
    let root = paths::find_repo_root(&settings.cwd).unwrap_or_else(|| settings.cwd.clone());
    // Repository paths without a system call per file: the working directory's
    // place in the repository, joined to each relative path.
    let prefix = settings
        .cwd
        .strip_prefix(&root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let inputs = paths
        .into_iter()
        .map(|path| {
            let repo_path = if path.is_absolute() {
                let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
                abs.strip_prefix(&root)
                    .map(Path::to_path_buf)
                    .unwrap_or(abs)
            } else {
                manifest::kustomize::join(&prefix, &path.to_string_lossy())
            };
            Input::OnDisk { path, repo_path }
        })
        .collect();
    let sides = Sides {
        head: Box::new(DiskReader { root: root.clone() }),
        base: None,
        kustomizations: Vec::new(),
        changed: HashSet::new(),
        remotes: git::remote_urls(&root),
        root,
        elsewhere: Box::new(Vec::new),
    };
    Ok(Collected {
        inputs,
        problems,
        all_refs: false,
        sides,
        started,
        git: None,
        repo_root: None,
    })
}

/// The changed files of `diff.head` against the merge base with a chosen base, and the
/// settings of that merge base (its repository config).
pub fn changes(
    settings: &Settings,
    repo: &git::Repo,
    base: git::BaseChoice,
    diff: &DiffSettings,
) -> Result<(Settings, Collected), Error> {
    let started = Instant::now();
    let range = repo.range(base, &diff.head, diff.worktree)?;
    // Canonical once, so that showing each path costs no system call.
    let root = repo
        .root()
        .canonicalize()
        .unwrap_or_else(|_| repo.root().to_path_buf());
    // Both sides' readers, made once: the merge base's config and the joins read through them.
    let head: Box<dyn Reader> = if range.worktree {
        Box::new(DiskReader { root: root.clone() })
    } else {
        Box::new(tree_reader(repo, &range.head)?)
    };
    let base: Box<dyn Reader> = Box::new(tree_reader(repo, &range.merge_base)?);
    let merged = settings_at_merge_base(settings, &root, head.as_ref(), base.as_ref())?;
    let settings = &merged;
    if let Some(fetched) = &range.fetched {
        log::info!("{fetched} to find the merge base");
    }
    log::debug!(
        "checking {} ({}){} against merge base {} of `{}`, chosen from {}",
        range.head_rev,
        short(&range.head),
        if range.worktree {
            " with uncommitted changes"
        } else {
            ""
        },
        short(&range.merge_base),
        range.base.rev,
        range.base.reason
    );
    let git::Changes {
        files: changed,
        touched,
    } = repo.changed_files(&range, &|p| settings.wanted(p))?;
    let changed_paths: HashSet<PathBuf> = changed
        .iter()
        .flat_map(|c| std::iter::once(c.path.clone()).chain(c.old_path.clone()))
        .collect();
    let inputs = changed
        .into_iter()
        .map(|c| Input::Changed {
            display: display_path(&root, &c.path, &settings.cwd),
            repo_path: c.path,
            new: c.new,
            old: c.old,
        })
        .collect();
    // The overlays of a changed base: every kustomization whose resources lead to a
    // changed file (each kustomization read once, no resource read), and the files a join
    // may read. With the cache on, they come from the merge base's stored facts with the
    // touched paths read again.
    let yaml_changed = changed_paths
        .iter()
        .any(|p| files::is_yaml(p) || manifest::kustomize::is_kustomization_file(p));
    let facts = if yaml_changed && settings.cache.is_some() {
        repo_facts::facts(
            repo,
            &range.merge_base,
            &touched,
            head.as_ref(),
            &changed_paths,
        )
    } else {
        None
    };
    let (kustomizations, elsewhere): (_, Box<dyn Fn() -> Vec<PathBuf>>) = match facts {
        Some(facts) => {
            log::debug!("{}", facts.how);
            let elsewhere = facts.elsewhere;
            (facts.kustomizations, Box::new(move || elsewhere.clone()))
        }
        None => {
            let kustomizations = if yaml_changed {
                let graph = crate::kustomize::graph::NamedBy::new(
                    &repo.files_named(&range, &manifest::kustomize::FILE_NAMES),
                );
                crate::kustomize::graph::including(&graph, &changed_paths)
            } else {
                Vec::new()
            };
            let repo = git::Repo::open(&root)?;
            let range = range.clone();
            (
                kustomizations,
                Box::new(move || repo.paths_at_head(&range, &files::is_yaml)),
            )
        }
    };
    let sides = Sides {
        head,
        base: Some(base),
        kustomizations,
        changed: changed_paths,
        root: root.clone(),
        elsewhere,
        remotes: repo.remote_urls(),
    };
    let collected = Collected {
        inputs,
        problems: Vec::new(),
        all_refs: diff.all_refs,
        sides,
        started,
        git: Some(range),
        repo_root: Some(root),
    };
    Ok((merged, collected))
}

/// A reader of a commit's tree.
fn tree_reader(repo: &git::Repo, commit: &str) -> Result<git::TreeReader, Error> {
    repo.reader_at(commit).ok_or_else(|| {
        git::GitError::TreeUnreadable {
            commit: commit.to_string(),
        }
        .into()
    })
}

/// The settings of a diff check: the repository's config is read at the merge base, so a
/// change cannot loosen the check that judges it. A change to the config is a note.
fn settings_at_merge_base(
    settings: &Settings,
    root: &Path,
    head: &dyn Reader,
    base: &dyn Reader,
) -> Result<Settings, Error> {
    let base = trust::repo_config_text(&|p| base.read(p), root, &settings.cwd);
    let head = trust::repo_config_text(&|p| head.read(p), root, &settings.cwd);
    let trusted_path = settings.trusted_path().and_then(|p| p.canonicalize().ok());
    let is_trusted = |p: &Path| {
        trusted_path
            .as_deref()
            .is_some_and(|t| p.canonicalize().is_ok_and(|q| q == t))
    };
    let (base, head) = (
        base.filter(|(p, _)| !is_trusted(p)),
        head.filter(|(p, _)| !is_trusted(p)),
    );
    let path = base
        .as_ref()
        .or(head.as_ref())
        .map(|(p, _)| p.clone())
        .unwrap_or_default();
    let notes = trust::config_change_note(
        &display_path(
            root,
            path.strip_prefix(root).unwrap_or(&path),
            &settings.cwd,
        ),
        base.as_ref().map(|(_, t)| t.as_str()),
        head.as_ref().map(|(_, t)| t.as_str()),
    );
    if let Some(note) = &notes {
        log::debug!("{}", note.message);
    }
    let config = base
        .map(|(path, text)| config::parse(&path, &text))
        .transpose()?;
    settings.with_repo_config(config, notes.into_iter().collect())
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// A repository path as the user sees it from the working directory.
/// `root` and `cwd` are canonical (the working directory always is).
pub fn display_path(root: &Path, rel: &Path, cwd: &Path) -> PathBuf {
    let abs = root.join(rel);
    abs.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or(abs)
}
