//! What a diff check must know about the files it does not check (which kustomizations
//! name which paths, and which files may hold a HelmRepository or a `${VAR}`), kept per
//! merge-base tree in the cache directory, so that a one-file change reads the files it
//! changed and not every kustomization in the repository.
//!
//! A snapshot describes one tree and is named by its id, so branches that share a merge
//! base share it. A run overlays what differs between the merge base and head (read at
//! head) on the snapshot; the answer is the same as reading every file at head.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use fst::{IntoStreamer, Streamer};

use crate::files::is_yaml;
use crate::git;
use crate::kustomize::graph::{self, Namers};
use crate::manifest::kustomize::{self, Reader};
use crate::project;

const DIR: &str = "repo-facts-v1";
/// Snapshots kept; the least recently used go first.
const KEEP: usize = 8;
/// Key of an edge: `E`, the named path, NUL, and the kustomization file that names it,
/// relative to the named path's directory (so the common `kustomization.yaml` ends most
/// keys, which the fst stores once).
const EDGE: u8 = b'E';
/// Key of a YAML file a join may read (a HelmRepository, or a `${`): `J` and its path.
const JOINABLE: u8 = b'J';

/// One tree's facts: a sorted set of keys (an fst), looked up in place, so a run reads
/// the few keys it needs and decodes nothing else.
struct Snapshot(fst::Set<Vec<u8>>);

impl Snapshot {
    /// The keys that start with `prefix`, without it.
    fn with_prefix(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let mut end = prefix.to_vec();
        end.push(0xff);
        let mut stream = self.0.range().ge(prefix).lt(&end).into_stream();
        let mut out = Vec::new();
        while let Some(key) = stream.next() {
            out.push(key[prefix.len()..].to_vec());
        }
        out
    }
}

/// What the joins need to know at head.
#[derive(Debug)]
pub struct Facts {
    /// The kustomizations whose builds read a changed file.
    pub kustomizations: Vec<PathBuf>,
    /// The YAML files at head that a join may read besides the changed ones.
    pub elsewhere: Vec<PathBuf>,
    /// How the facts were had, for `-v`.
    pub how: String,
}

fn wanted(path: &str) -> bool {
    let path = Path::new(path);
    is_yaml(path) || kustomize::is_kustomization_file(path)
}

/// What one file contributes: the paths it names (a kustomization), and whether a join
/// may read it.
fn file_facts(path: &str, bytes: &[u8]) -> (Vec<PathBuf>, bool) {
    let p = Path::new(path);
    let named = if kustomize::is_kustomization_file(p) {
        graph::named_paths(p, bytes)
    } else {
        Vec::new()
    };
    (named, is_yaml(p) && project::may_be_joined(bytes))
}

/// The facts at head: from the merge base's snapshot (built and stored when missing) with
/// the `touched` paths read again at head. `None` when there is no cache directory or the
/// merge base cannot be read, and the caller reads every file instead.
pub fn facts(
    repo: &git::Repo,
    merge_base: &str,
    touched: &[PathBuf],
    head: &dyn Reader,
    changed: &HashSet<PathBuf>,
) -> Option<Facts> {
    let tree = repo.tree_id(merge_base)?;
    let dir = crate::cache::dir()?.join(DIR);
    // How facts are derived may change between versions: each version has its own.
    let file = dir.join(format!("{tree}.{}.fst", env!("CARGO_PKG_VERSION")));
    let started = Instant::now();
    let stored = std::fs::read(&file)
        .ok()
        .and_then(|b| fst::Set::new(b).ok());
    let (snapshot, how) = match stored {
        Some(set) => {
            mark_used(&file);
            (Snapshot(set), "read from the cache")
        }
        None => {
            let set = build(repo, merge_base)?;
            store(&dir, &file, set.as_fst().as_bytes());
            (Snapshot(set), "built and cached")
        }
    };
    let view = View::new(&snapshot, touched, head);
    let facts = Facts {
        kustomizations: graph::including(&view, changed),
        elsewhere: view.elsewhere(),
        how: format!(
            "facts of merge-base tree {} {how} ({} keys), {} changed paths read at head, in {} ms",
            &tree[..12],
            snapshot.0.len(),
            touched.len(),
            started.elapsed().as_millis()
        ),
    };
    Some(facts)
}

/// Reads every YAML file of the tree once (on every core) and keeps its facts.
fn build(repo: &git::Repo, commit: &str) -> Option<fst::Set<Vec<u8>>> {
    let files = repo
        .map_files_at(commit, &wanted, &|path, bytes| {
            let (named, joinable) = file_facts(path, bytes);
            let mut keys: Vec<Vec<u8>> = named
                .iter()
                .filter_map(|n| {
                    let from = relative(n.parent().unwrap_or(Path::new("")), Path::new(path));
                    Some(
                        [
                            &[EDGE],
                            n.to_str()?.as_bytes(),
                            &[0],
                            from.to_str()?.as_bytes(),
                        ]
                        .concat(),
                    )
                })
                .collect();
            if joinable {
                keys.push([&[JOINABLE], path.as_bytes()].concat());
            }
            (!keys.is_empty()).then_some(keys)
        })
        .ok()?;
    let mut keys: Vec<Vec<u8>> = files.into_iter().flat_map(|(_, k)| k).collect();
    keys.sort_unstable();
    keys.dedup();
    fst::Set::from_iter(keys).ok()
}

/// `to` as a path relative to the directory `from` (both repository paths).
fn relative(from: &Path, to: &Path) -> PathBuf {
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in from.components().skip(common) {
        out.push("..");
    }
    out.extend(to.components().skip(common));
    out
}

/// Writes a snapshot atomically and drops the least recently used beyond `KEEP`. Failing
/// to write only costs the next run a rebuild, so it is not an error.
fn store(dir: &Path, file: &Path, bytes: &[u8]) {
    let _ = std::fs::create_dir_all(dir);
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_err() || std::fs::rename(&tmp, file).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut kept: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "fst"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    kept.sort_by_key(|k| std::cmp::Reverse(k.0));
    for (_, old) in kept.into_iter().skip(KEEP) {
        let _ = std::fs::remove_file(old);
    }
}

/// A snapshot in use is the last to be dropped.
fn mark_used(file: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(file) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// The snapshot with the touched paths as they are at head.
struct View<'s> {
    snapshot: &'s Snapshot,
    touched: HashSet<&'s Path>,
    /// Named path → the touched kustomizations at head that name it.
    named_by: HashMap<PathBuf, Vec<PathBuf>>,
    /// Touched YAML files that exist at head and a join may read there.
    joinable: Vec<PathBuf>,
    /// Touched YAML files that exist at head.
    exist: HashSet<&'s Path>,
}

impl<'s> View<'s> {
    fn new(snapshot: &'s Snapshot, touched: &'s [PathBuf], head: &dyn Reader) -> Self {
        let mut view = View {
            snapshot,
            touched: touched.iter().map(PathBuf::as_path).collect(),
            named_by: HashMap::new(),
            joinable: Vec::new(),
            exist: HashSet::new(),
        };
        for path in touched {
            let Some(name) = path.to_str().filter(|p| wanted(p)) else {
                continue;
            };
            let Some(bytes) = head.read(path) else {
                continue;
            };
            view.exist.insert(path);
            let (named, joinable) = file_facts(name, &bytes);
            for n in named {
                view.named_by.entry(n).or_default().push(path.clone());
            }
            if joinable {
                view.joinable.push(path.clone());
            }
        }
        view
    }

    /// The YAML files at head a join may read: the snapshot's that are unchanged, the
    /// touched ones that may be joined at head, and the touched ones that could be at the
    /// merge base and still exist (the merge-base side of a check reads them too).
    fn elsewhere(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .snapshot
            .with_prefix(&[JOINABLE])
            .into_iter()
            .filter_map(|p| String::from_utf8(p).ok().map(PathBuf::from))
            .filter(|p| !self.touched.contains(p.as_path()) || self.exist.contains(p.as_path()))
            .chain(self.joinable.iter().cloned())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Namers for View<'_> {
    fn naming(&self, path: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        if let Some(name) = path.to_str() {
            let prefix = [&[EDGE], name.as_bytes(), &[0]].concat();
            let dir = path.parent().unwrap_or(Path::new(""));
            out.extend(
                self.snapshot
                    .with_prefix(&prefix)
                    .into_iter()
                    .filter_map(|k| String::from_utf8(k).ok())
                    .map(|k| kustomize::join(dir, &k))
                    .filter(|k| !self.touched.contains(k.as_path())),
            );
        }
        out.extend(self.named_by.get(path).into_iter().flatten().cloned());
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_path_joins_back_to_the_same_path() {
        for (from, to) in [
            ("apps/base/web", "apps/base/web/kustomization.yaml"),
            ("apps/base", "apps/overlays/prod/kustomization.yaml"),
            ("", "kustomization.yaml"),
            ("a/b/c", "kustomization.yaml"),
            ("a", "b/c/Kustomization"),
        ] {
            let rel = relative(Path::new(from), Path::new(to));
            assert_eq!(
                kustomize::join(Path::new(from), rel.to_str().unwrap()),
                Path::new(to),
                "{from} → {to} via {rel:?}"
            );
        }
        assert_eq!(
            relative(
                Path::new("apps/base"),
                Path::new("apps/base/kustomization.yaml")
            ),
            Path::new("kustomization.yaml")
        );
    }
}
