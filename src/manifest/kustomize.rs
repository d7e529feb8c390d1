//! Kustomization files by themselves: which file names kustomize reads, what one file names
//! (for the reverse graph a diff walks to find the overlays of a changed base), and what a
//! kustomization holds on its own (`helmCharts:` OCI chart references, mistyped `newTag`s).
//! The build itself is `crate::kustomize`.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::yaml::{self, Document, NodeId};
use super::{ImageValue, Occurrence};
pub use crate::reader::Reader;
use crate::source::SourceFile;

/// The file names kustomize reads in a directory, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
fn scalar(doc: &Document, node: NodeId, key: &str) -> Option<String> {
    doc.get(node, key)
        .and_then(|n| doc.scalar(n))
        .map(str::to_string)
}

pub fn is_kustomization_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| FILE_NAMES.contains(&n))
}

/// Occurrences a kustomization file holds by itself: OCI `helmCharts`, and `newTag`s that
/// YAML typed as numbers (`newTag: 3.6`), which kustomize turns into mangled tags.
pub fn extract_local(doc: &Document, file: usize, out: &mut Vec<Occurrence>) {
    let Some(root) = doc.root else { return };
    if let Some(list) = doc.get(root, "images") {
        for &e in doc.items(list) {
            if let Some(t) = doc.get(e, "newTag")
                && let Some(kind) = doc.scalar_type(t)
                && matches!(
                    kind,
                    yaml::ScalarType::Int | yaml::ScalarType::Float | yaml::ScalarType::Bool
                )
            {
                out.push(Occurrence {
                    location: doc.location(t, file),
                    value: ImageValue::NonString {
                        written: doc.scalar(t).unwrap_or_default().to_string(),
                        typed_as: if kind == yaml::ScalarType::Bool {
                            "a boolean"
                        } else {
                            "a number"
                        },
                        rendered: None,
                    },
                    context: format!(
                        "images[{}] newTag",
                        doc.get(e, "name").and_then(|n| doc.scalar(n)).unwrap_or("")
                    ),
                    previous: None,
                });
            }
        }
    }
    let Some(charts) = doc.get(root, "helmCharts") else {
        return;
    };
    for &c in doc.items(charts) {
        let (Some(repo), Some(name)) = (scalar(doc, c, "repo"), scalar(doc, c, "name")) else {
            continue;
        };
        let Some(base) = super::flux::oci_repository(&repo) else {
            continue;
        };
        let version = doc.get(c, "version");
        let at = version.unwrap_or(c);
        let value = match version.and_then(|v| doc.scalar(v)) {
            Some(v) if super::flux::exact_version(v) => {
                ImageValue::Text(format!("{base}/{name}:{}", super::flux::oci_tag(v)))
            }
            v => ImageValue::Range {
                repository: format!("{base}/{name}"),
                constraint: v.unwrap_or("*").to_string(),
            },
        };
        out.push(Occurrence {
            location: doc.location(at, file),
            value,
            context: format!("helmCharts[{name}]"),
            previous: None,
        });
    }
}

/// Whether a resource entry is remote (a git or http URL), which is not fetched.
pub fn is_remote(resource: &str) -> bool {
    resource.contains("://")
        || resource.starts_with("git@")
        || resource.starts_with("github.com/")
        || resource.contains("?ref=")
}

/// Joins and normalises a relative path without touching the file system.
pub fn join(dir: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dir.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The local paths a kustomization file names (its `resources`, `components`, `bases`,
/// patch files and `configurations`), resolved against its directory. Remote resources name
/// nothing here.
pub fn named_paths(path: &Path, bytes: &[u8]) -> Vec<PathBuf> {
    let (named, support) = named(path, bytes);
    named.into_iter().chain(support).collect()
}

/// The local files a kustomization file reads as patches or configurations, not as
/// manifests: known from its text, so they stay out of the plain scan even when the build
/// fails before it reads them (issue 15).
pub fn support_paths(path: &Path, bytes: &[u8]) -> Vec<PathBuf> {
    named(path, bytes).1
}

/// Resources and components; configurations and patch files.
fn named(path: &Path, bytes: &[u8]) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let text = String::from_utf8_lossy(bytes);
    let source = SourceFile::new(path.to_path_buf(), &*text);
    let parsed = yaml::parse(&source);
    let Some(doc) = parsed.documents.first() else {
        return (Vec::new(), Vec::new());
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    let k = crate::kustomize::file::read(doc, &source, 0);
    let patches = k.patches.iter().filter_map(|p| match &p.text {
        crate::kustomize::file::PatchText::Path(p) => Some(p.as_str()),
        crate::kustomize::file::PatchText::Inline { .. } => None,
    });
    let local = |res: &&str| !is_remote(res);
    let named = k
        .resources
        .iter()
        .chain(&k.components)
        .map(|(r, _)| r.as_str())
        .filter(local)
        .map(|res| join(dir, res))
        .collect();
    let support = k
        .configurations
        .iter()
        .map(|(r, _)| r.as_str())
        .chain(patches)
        .filter(local)
        .map(|res| join(dir, res))
        .collect();
    (named, support)
}

/// Which kustomizations name a path (a file, or a directory holding a kustomization).
pub trait Namers {
    /// The kustomization files that name `path`, in path order.
    fn naming(&self, path: &Path) -> Vec<PathBuf>;
}

/// The reverse resource graph of a set of kustomizations, parsed in one go.
pub struct NamedBy(HashMap<PathBuf, Vec<PathBuf>>);

impl NamedBy {
    /// From every kustomization file (path and text), in path order.
    pub fn new(all: &[(PathBuf, Vec<u8>)]) -> NamedBy {
        let mut named_by: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
        for (k, bytes) in all {
            for name in named_paths(k, bytes) {
                named_by.entry(name).or_default().push(k.clone());
            }
        }
        NamedBy(named_by)
    }
}

impl Namers for NamedBy {
    fn naming(&self, path: &Path) -> Vec<PathBuf> {
        self.0.get(path).cloned().unwrap_or_default()
    }
}

/// The kustomizations whose builds can read one of the `changed` files: a reverse walk over
/// the resource graph that reads no resource, so a one-file change in a repository of many
/// kustomizations stays cheap.
pub fn including(graph: &dyn Namers, changed: &HashSet<PathBuf>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut queue: Vec<PathBuf> = changed.iter().cloned().collect();
    queue.sort();
    while let Some(path) = queue.pop() {
        // A kustomization file is named through its directory too.
        let mut names = vec![path.clone()];
        if is_kustomization_file(&path)
            && let Some(dir) = path.parent()
        {
            names.push(dir.to_path_buf());
        }
        for name in names {
            for k in graph.naming(&name) {
                if seen.insert(k.clone()) {
                    found.push(k.clone());
                    queue.push(k);
                }
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kustomization_names_its_patch_files_and_configurations_too() {
        // issue 15: a changed patch file must rebuild the kustomizations that apply it.
        let k = "resources: [../base, d.yaml, https://github.com/x/y?ref=v1]\ncomponents: [../c]\npatches:\n- path: p.yaml\n- patch: |\n    - op: remove\n      path: /x\n  target: {kind: Deployment}\npatchesStrategicMerge: [smp.yaml]\npatchesJson6902:\n- path: j.yaml\n  target: {kind: Deployment, name: web}\nconfigurations: [conf.yaml]\n";
        let named = named_paths(Path::new("o/kustomization.yaml"), k.as_bytes());
        let named: Vec<String> = named.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            named,
            [
                "base",
                "o/d.yaml",
                "c",
                "o/conf.yaml",
                "o/smp.yaml",
                "o/p.yaml",
                "o/j.yaml"
            ]
        );
    }
}
