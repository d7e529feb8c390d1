//! What kustomization files name, read from their text alone: the local resources,
//! components, patch files and configurations, and the reverse graph a diff walks to find
//! the overlays of a changed base without building anything.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::file::{self, PatchText};
use crate::manifest::kustomize::{is_kustomization_file, is_remote, join};
use crate::manifest::yaml;
use crate::source::SourceFile;

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
    let k = file::read(doc, &source, 0);
    let patches = k.patches.iter().filter_map(|p| match &p.text {
        PatchText::Path(p) => Some(p.as_str()),
        PatchText::Inline { .. } => None,
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
