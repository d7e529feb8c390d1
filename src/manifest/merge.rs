//! Helm values merged in Helm's order, as one YAML document whose every node keeps the
//! file and span it came from: a later layer's map merges key by key into an earlier one,
//! anything else replaces it, and a `null` deletes the key (as `helm install -f` does). The
//! merged tree is read by the image conventions of `values`, and can be written out as
//! JSON (a values file for `helm template`).

use super::yaml::{Document, Node, NodeId, NodeKind, Style, VISIT_BUDGET};
use crate::finding::Location;

/// Where the nodes of a layer are reported.
#[derive(Debug, Clone, Copy)]
pub enum Place {
    /// Each node at its own span in this file.
    Own(usize),
    /// Every node at one location (values from a string, a file outside the report).
    At(Location),
}

/// A merged values tree under construction.
#[derive(Debug, Default)]
pub struct Merged {
    pub doc: Document,
    budget: usize,
    /// A `null` is kept as a value rather than deleting the key: the release's own values
    /// before they meet the chart's defaults, where Helm lets a `null` delete a default.
    keep_nulls: bool,
}

impl Merged {
    pub fn new() -> Merged {
        let mut m = Merged {
            doc: Document::default(),
            budget: VISIT_BUDGET,
            keep_nulls: false,
        };
        let root = m.push(
            NodeKind::Map(Vec::new()),
            Place::At(Location::default()),
            0,
            0,
        );
        m.doc.root = Some(root);
        m
    }

    /// An empty tree for a release's own values, which keeps a `null` (as Flux's and Helm's
    /// merge of values files do) so that it still deletes the chart's default when helm
    /// merges the two.
    pub fn user() -> Merged {
        Merged {
            keep_nulls: true,
            ..Merged::new()
        }
    }

    pub fn root(&self) -> NodeId {
        self.doc.root.unwrap_or(0)
    }

    fn push(&mut self, kind: NodeKind, place: Place, start: usize, end: usize) -> NodeId {
        let (file, start, end) = match place {
            Place::Own(f) => (f, start, end),
            Place::At(l) => (l.file, l.start, l.end),
        };
        self.doc.nodes.push(Node {
            kind,
            start,
            end,
            file: Some(file),
        });
        self.doc.nodes.len() - 1
    }

    /// Copies a subtree of another document into this one.
    fn copy(&mut self, src: &Document, id: NodeId, place: Place, depth: usize) -> NodeId {
        let n = src.node(id);
        if self.budget == 0 || depth > 64 {
            return self.push(
                NodeKind::Scalar {
                    value: String::new(),
                    style: Style::Plain,
                },
                place,
                n.start,
                n.end,
            );
        }
        self.budget -= 1;
        let own = match place {
            Place::Own(f) => Place::Own(n.file.unwrap_or(f)),
            at => at,
        };
        match &n.kind {
            NodeKind::Scalar { .. } => self.push(n.kind.clone(), own, n.start, n.end),
            NodeKind::Seq(items) => {
                let copied = items
                    .iter()
                    .map(|&i| self.copy(src, i, place, depth + 1))
                    .collect();
                self.push(NodeKind::Seq(copied), own, n.start, n.end)
            }
            NodeKind::Map(entries) => {
                let mut out: Vec<(NodeId, NodeId)> = Vec::new();
                for &(k, v) in entries {
                    let Some(key) = src.scalar(k) else { continue };
                    let key = key.to_string();
                    let kid = self.copy(src, k, place, depth + 1);
                    let vid = self.copy(src, v, place, depth + 1);
                    match out
                        .iter()
                        .position(|(ok, _)| self.doc.scalar(*ok) == Some(&key))
                    {
                        Some(i) => out[i] = (kid, vid),
                        None => out.push((kid, vid)),
                    }
                }
                self.push(NodeKind::Map(out), own, n.start, n.end)
            }
        }
    }

    /// Merges a layer (`src` at `id`) over the tree at `into` (both maps), in place.
    pub fn layer(&mut self, src: &Document, id: NodeId, place: Place) {
        let root = self.root();
        self.merge_at(root, src, id, place, 0);
    }

    /// Merges a layer under a top-level key (a subchart's defaults under its name).
    pub fn layer_under(&mut self, key: &str, src: &Document, id: NodeId, place: Place) {
        let root = self.root();
        let into = match self.doc.get(root, key) {
            Some(n) if self.doc.is_map(n) => n,
            _ => {
                let at = match place {
                    Place::At(l) => l,
                    Place::Own(f) => Location {
                        file: f,
                        ..Location::default()
                    },
                };
                let kid = self.scalar(key, at);
                let map = self.push(NodeKind::Map(Vec::new()), Place::At(at), 0, 0);
                self.set(root, key, kid, map);
                map
            }
        };
        self.merge_at(into, src, id, place, 0);
    }

    fn merge_at(&mut self, into: NodeId, src: &Document, id: NodeId, place: Place, depth: usize) {
        if depth > 64 || self.budget == 0 {
            return;
        }
        let NodeKind::Map(entries) = &src.node(id).kind else {
            return;
        };
        for &(k, v) in entries {
            let Some(key) = src.scalar(k).map(str::to_string) else {
                continue;
            };
            let existing = self.doc.get(into, &key);
            let is_null = src.scalar(v).is_some()
                && src.scalar_type(v) == Some(super::yaml::ScalarType::Null);
            match existing {
                _ if is_null && self.keep_nulls => {
                    let kid = self.copy(src, k, place, depth + 1);
                    let vid = self.copy(src, v, place, depth + 1);
                    self.set(into, &key, kid, vid);
                }
                // A null deletes the key, as Helm does for user values.
                Some(_) if is_null => self.remove(into, &key),
                Some(e) if self.doc.is_map(e) && src.is_map(v) => {
                    self.merge_at(e, src, v, place, depth + 1)
                }
                _ if is_null => {}
                _ => {
                    let kid = self.copy(src, k, place, depth + 1);
                    let vid = self.copy(src, v, place, depth + 1);
                    self.set(into, &key, kid, vid);
                }
            }
        }
    }

    fn remove(&mut self, map: NodeId, key: &str) {
        let keys: Vec<bool> = self
            .doc
            .entries(map)
            .iter()
            .map(|(k, _)| self.doc.scalar(*k) == Some(key))
            .collect();
        if let NodeKind::Map(entries) = &mut self.doc.nodes[map].kind {
            let mut i = 0;
            entries.retain(|_| {
                i += 1;
                !keys[i - 1]
            });
        }
    }

    fn set(&mut self, map: NodeId, key: &str, kid: NodeId, vid: NodeId) {
        let at = self
            .doc
            .entries(map)
            .iter()
            .position(|(k, _)| self.doc.scalar(*k) == Some(key));
        if let NodeKind::Map(entries) = &mut self.doc.nodes[map].kind {
            match at {
                Some(i) => entries[i] = (kid, vid),
                None => entries.push((kid, vid)),
            }
        }
    }

    /// Sets a dotted path (`image.tag`, as Helm's `--set` and Argo CD `parameters` name it)
    /// to a string at a location, making maps on the way.
    pub fn set_path(&mut self, path: &str, value: &str, at: Location) {
        let parts = split_path(path);
        let Some((last, parents)) = parts.split_last() else {
            return;
        };
        let mut node = self.root();
        for p in parents {
            node = match self.doc.get(node, p) {
                Some(n) if self.doc.is_map(n) => n,
                _ => {
                    let kid = self.scalar(p, at);
                    let map = self.push(NodeKind::Map(Vec::new()), Place::At(at), 0, 0);
                    self.set(node, p, kid, map);
                    map
                }
            };
        }
        let kid = self.scalar(last, at);
        let vid = self.scalar(value, at);
        self.set(node, last, kid, vid);
    }

    fn scalar(&mut self, value: &str, at: Location) -> NodeId {
        self.push(
            NodeKind::Scalar {
                value: value.to_string(),
                style: Style::Quoted,
            },
            Place::At(at),
            0,
            0,
        )
    }

    /// A map node holding `node`'s entries without the keys in `without`, plus `extra`
    /// entries: a view of the tree for one chart of a parent and its subcharts.
    pub fn view(&mut self, node: NodeId, without: &[&str], extra: &[(NodeId, NodeId)]) -> NodeId {
        let mut entries: Vec<(NodeId, NodeId)> = self
            .doc
            .entries(node)
            .iter()
            .filter(|(k, _)| !self.doc.scalar(*k).is_some_and(|k| without.contains(&k)))
            .copied()
            .collect();
        entries.extend_from_slice(extra);
        let n = self.doc.node(node);
        let (start, end, file) = (n.start, n.end, n.file.unwrap_or(0));
        self.push(NodeKind::Map(entries), Place::Own(file), start, end)
    }

    /// The merged values as JSON, typed as YAML types plain scalars (a values file for
    /// `helm template -f`).
    pub fn to_json(&self) -> serde_json::Value {
        self.doc.to_json(self.root())
    }
}

/// Splits `a.b\.c.d` at unescaped dots.
fn split_path(path: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                if let Some(s) = out.last_mut() {
                    s.push('.');
                }
            }
            '.' => out.push(String::new()),
            c => {
                if let Some(s) = out.last_mut() {
                    s.push(c)
                }
            }
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;
    use crate::source::SourceFile;

    fn layer(m: &mut Merged, text: &str, file: usize) {
        let f = SourceFile::new("v.yaml".into(), text);
        let p = yaml::parse(&f);
        let d = &p.documents[0];
        m.layer(d, d.root.unwrap(), Place::Own(file));
    }

    #[test]
    fn maps_merge_scalars_replace_and_null_deletes() {
        let mut m = Merged::new();
        layer(
            &mut m,
            "image:\n  repository: a/web\n  tag: \"\"\nside:\n  image: b:1\nlist: [1, 2]\n",
            7,
        );
        layer(&mut m, "image:\n  tag: 2.0.1x\nside: null\nlist: [3]\n", 8);
        m.set_path("image.registry", "r.example", Location::default());
        assert_eq!(
            m.to_json(),
            serde_json::json!({"image": {"repository": "a/web", "tag": "2.0.1x", "registry": "r.example"}, "list": [3]})
        );
        let tag = m.doc.get_path(m.root(), &["image", "tag"]).unwrap();
        assert_eq!(m.doc.node(tag).file, Some(8), "the override's file");
        let repo = m.doc.get_path(m.root(), &["image", "repository"]).unwrap();
        assert_eq!(m.doc.node(repo).file, Some(7));
    }

    #[test]
    fn a_release_s_own_values_keep_their_nulls() {
        let mut m = Merged::user();
        layer(&mut m, "image:\n  tag: \"1\"\nside: {a: 1}\n", 1);
        layer(&mut m, "image:\n  tag: null\nside: ~\nnew: null\n", 2);
        assert_eq!(
            m.to_json(),
            serde_json::json!({"image": {"tag": null}, "side": null, "new": null})
        );
    }

    #[test]
    fn dotted_paths_split_at_unescaped_dots() {
        assert_eq!(split_path("a.b\\.c.d"), ["a", "b.c", "d"]);
    }
}
