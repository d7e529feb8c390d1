//! The kustomize build model: what `kustomize build DIR` deploys, built natively so every
//! image keeps the file and line that decided it (the resource, the patch or the `images:`
//! entry). Checked against real kustomize v5.8.1 by `tests/kustomize.rs`.

pub mod build;
pub mod edit;
pub mod effects;
pub mod file;
pub mod graph;
pub mod images;
pub mod patch;
pub mod select;
#[cfg(test)]
mod tests;
pub mod tree;

use std::collections::HashSet;
use std::path::Path;

use crate::finding::Location;
use crate::manifest::{Occurrence, kubernetes};
use crate::reader::Reader;
pub use build::{Note, Problem, Record};
pub use edit::Edits;

/// The images one kustomization root deploys.
#[derive(Debug, Default)]
pub struct Effective {
    /// What the build read and said (`Location::file` indexes `record.files`; a failure is a
    /// note with `Problem::Fails`).
    pub record: Record,
    /// Every image field of the built output, at the line that decided it.
    pub occurrences: Vec<Occurrence>,
    /// The image fields of the resources as read, before any transformer: a plain scan of
    /// those files reports these, and the build replaces them.
    pub tracked: HashSet<Location>,
}

/// Builds the kustomization in `dir` and lists the images of its output.
pub fn effective(dir: &Path, reader: &dyn Reader) -> Effective {
    effective_edited(dir, reader, None)
}

/// Builds the kustomization in `dir` after `edits` (see [`Edits`]) and lists the images of
/// its output; what the edits decide is at their lines in `edits.file` (file 0).
pub fn effective_edited(dir: &Path, reader: &dyn Reader, edits: Option<&Edits>) -> Effective {
    let built = build::build_edited(dir, reader, edits);
    let by = edits
        .map(|e| format!(", as {} edits it", e.by))
        .unwrap_or_default();
    let mut out = Effective {
        record: built.record,
        ..Effective::default()
    };
    // A failing build deploys nothing: its note is the finding, and the files it read are
    // left to the plain scan.
    if out.record.failed {
        return out;
    }
    for r in &built.resources {
        let mut found = Vec::new();
        kubernetes::extract(&r.val.to_document(), usize::MAX, &mut found);
        let chain = r.chain.join(" → ");
        for mut o in found {
            o.context = format!("{} (kustomize: {chain}{by})", o.context);
            out.occurrences.push(o);
        }
    }
    out.tracked = built
        .originals
        .iter()
        .flat_map(|v| {
            let mut found = Vec::new();
            kubernetes::extract(&v.to_document(), usize::MAX, &mut found);
            found.into_iter().map(|o| o.location)
        })
        .collect();
    out
}
