//! Kustomization files as the plain scan sees them: which file names kustomize reads, and
//! what a kustomization holds on its own (`helmCharts:` OCI chart references, mistyped
//! `newTag`s). What a kustomization names (the reverse graph a diff walks) is
//! `crate::kustomize::graph`; the build itself is `crate::kustomize`.

use std::path::{Component, Path, PathBuf};

use super::yaml::{self, Document, NodeId};
use super::{ImageValue, Occurrence};
pub use crate::reader::Reader;

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
