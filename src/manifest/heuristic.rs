//! A guess for kinds no table knows: a string under an `image` or `imageName` key that
//! parses as a reference naming its registry, a tag or a digest is probably deployed. Each
//! is reported with its own `(heuristic)` context; `image-heuristic: false` turns it off.

use std::collections::HashSet;

use super::Occurrence;
use super::yaml::{Document, NodeId, NodeKind};
use crate::image_ref::{self, ImageRef};

/// How deep the search goes.
const MAX_DEPTH: usize = 24;
/// Top-level keys that hold no desired image: identity, and what a controller observed.
const PASSED_OVER: [&str; 4] = ["apiVersion", "kind", "metadata", "status"];

/// Appends the guessed images of an object of an unknown kind. A node in `claimed` (by its
/// start) was reported by another reader and is not reported again.
pub fn extract(
    doc: &Document,
    obj: NodeId,
    file: usize,
    label: &str,
    claimed: &HashSet<usize>,
    budget: &mut usize,
    out: &mut Vec<Occurrence>,
) {
    for &(k, v) in doc.entries(obj) {
        let Some(key) = doc.scalar(k) else { continue };
        if PASSED_OVER.contains(&key) {
            continue;
        }
        let mut w = Walk {
            doc,
            file,
            label,
            claimed,
            budget,
            out,
        };
        w.entry(key, v, key.to_string(), 0);
    }
}

struct Walk<'a, 'b> {
    doc: &'a Document,
    file: usize,
    label: &'a str,
    claimed: &'a HashSet<usize>,
    budget: &'b mut usize,
    out: &'b mut Vec<Occurrence>,
}

impl Walk<'_, '_> {
    fn entry(&mut self, key: &str, node: NodeId, path: String, depth: usize) {
        if (key == "image" || key == "imageName")
            && let Some(text) = self.doc.str(node)
        {
            if looks_deployed(text) && !self.claimed.contains(&self.doc.node(node).start) {
                let context = format!("{} {path} (heuristic)", self.label);
                self.out
                    .push(Occurrence::at(self.doc, node, self.file, context));
            }
            return;
        }
        self.node(node, path, depth + 1);
    }

    fn node(&mut self, node: NodeId, path: String, depth: usize) {
        if depth > MAX_DEPTH || *self.budget == 0 {
            return;
        }
        *self.budget -= 1;
        let doc = self.doc;
        match &doc.node(node).kind {
            NodeKind::Map(entries) => {
                for &(k, v) in entries {
                    if let Some(key) = doc.scalar(k) {
                        self.entry(key, v, format!("{path}.{key}"), depth);
                    }
                }
            }
            NodeKind::Seq(items) => {
                for (i, &item) in items.iter().enumerate() {
                    let name = doc
                        .get(item, "name")
                        .and_then(|n| doc.scalar(n))
                        .map_or_else(|| i.to_string(), str::to_string);
                    self.node(item, format!("{path}[{name}]"), depth + 1);
                }
            }
            NodeKind::Scalar { .. } => {}
        }
    }
}

/// A reference that names its registry, a tag or a digest; with no variable in it (a
/// template's placeholder is not an image yet).
fn looks_deployed(text: &str) -> bool {
    if image_ref::has_variable(text) {
        return false;
    }
    match ImageRef::parse(text) {
        Ok(r) => image_ref::written_domain(text).is_some() || r.tag.is_some() || r.digest.is_some(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_references_that_say_where_or_which() {
        assert!(looks_deployed("ghcr.io/acme/web"));
        assert!(looks_deployed("nginx:1.27"));
        assert!(looks_deployed(
            "acme/web@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        ));
        assert!(!looks_deployed("nginx"), "a bare name may be anything");
        assert!(!looks_deployed("acme/web"));
        assert!(!looks_deployed("ghcr.io/acme/web:{{ .tag }}"));
        assert!(!looks_deployed("Not An Image"));
    }
}
