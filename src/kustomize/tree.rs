//! The owned YAML tree a build edits: every node remembers the file and span it came from, so
//! an image that a patch or an `images:` entry decided is reported at that line.

use crate::manifest::yaml::{self, Document, Node, NodeId, NodeKind, ScalarType, Style};

/// Where a node came from: a file of the build's file table and a byte span in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct At {
    pub file: usize,
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Scalar(String, Style),
    Seq(Vec<Val>),
    Map(Vec<(String, Val)>),
}

/// A YAML value with its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Val {
    pub kind: Kind,
    pub at: At,
}

/// How many nodes one conversion may produce (aliases are expanded).
const NODE_BUDGET: usize = 200_000;

impl Val {
    /// Converts a parsed document's node, expanding aliases; `map` turns a span of the parsed
    /// text into a span of the file the build reports (identity for a file, a shift for a
    /// patch written inline in a kustomization). `None` when the budget runs out.
    pub fn from_doc(
        doc: &Document,
        node: NodeId,
        file: usize,
        map: &dyn Fn(usize) -> usize,
    ) -> Option<Val> {
        let mut budget = NODE_BUDGET;
        convert(doc, node, file, map, &mut budget, 0)
    }

    pub fn str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(v, Style::Plain) if yaml::plain_type(v) != ScalarType::String => None,
            Kind::Scalar(v, _) => Some(v),
            _ => None,
        }
    }

    /// The scalar's text, whatever YAML types it as.
    pub fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(v, _) => Some(v),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(v, Style::Plain) if yaml::plain_type(v) == ScalarType::Null)
    }

    pub fn get(&self, key: &str) -> Option<&Val> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Val> {
        match &mut self.kind {
            Kind::Map(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn path(&self, keys: &[&str]) -> Option<&Val> {
        keys.iter().try_fold(self, |v, k| v.get(k))
    }

    pub fn path_str(&self, keys: &[&str]) -> Option<&str> {
        self.path(keys).and_then(Val::text)
    }

    /// Sets a key of a mapping, keeping its place when it exists.
    pub fn set(&mut self, key: &str, value: Val) {
        if let Kind::Map(entries) = &mut self.kind {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => entries.push((key.to_string(), value)),
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Val> {
        if let Kind::Map(entries) = &mut self.kind {
            let i = entries.iter().position(|(k, _)| k == key)?;
            return Some(entries.remove(i).1);
        }
        None
    }

    pub fn items(&self) -> &[Val] {
        match &self.kind {
            Kind::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn scalar(text: &str, at: At) -> Val {
        Val {
            kind: Kind::Scalar(text.to_string(), Style::Quoted),
            at,
        }
    }

    pub fn map(at: At) -> Val {
        Val {
            kind: Kind::Map(Vec::new()),
            at,
        }
    }

    /// The document a kind's image finder reads, each node keeping its own file.
    pub fn to_document(&self) -> Document {
        let mut doc = Document::default();
        let root = push(&mut doc, self);
        doc.root = Some(root);
        doc
    }
}

fn push(doc: &mut Document, v: &Val) -> NodeId {
    let kind = match &v.kind {
        Kind::Scalar(s, style) => NodeKind::Scalar {
            value: s.clone(),
            style: *style,
        },
        Kind::Seq(items) => NodeKind::Seq(items.iter().map(|i| push(doc, i)).collect()),
        Kind::Map(entries) => NodeKind::Map(
            entries
                .iter()
                .map(|(k, val)| {
                    let key = push(doc, &Val::scalar(k, v.at));
                    (key, push(doc, val))
                })
                .collect(),
        ),
    };
    doc.nodes.push(Node {
        kind,
        start: v.at.start,
        end: v.at.end,
        file: Some(v.at.file),
    });
    doc.nodes.len() - 1
}

fn convert(
    doc: &Document,
    node: NodeId,
    file: usize,
    map: &dyn Fn(usize) -> usize,
    budget: &mut usize,
    depth: usize,
) -> Option<Val> {
    *budget = budget.checked_sub(1)?;
    if depth > 200 {
        return None;
    }
    let n = doc.node(node);
    let at = At {
        file,
        start: map(n.start),
        end: map(n.end),
    };
    let kind = match &n.kind {
        NodeKind::Scalar { value, style } => Kind::Scalar(value.clone(), *style),
        NodeKind::Seq(items) => Kind::Seq(
            items
                .iter()
                .map(|&i| convert(doc, i, file, map, budget, depth + 1))
                .collect::<Option<_>>()?,
        ),
        NodeKind::Map(_) => {
            let mut entries: Vec<(String, Val)> = Vec::new();
            for &(k, v) in doc.entries(node) {
                let key = doc.scalar(k).unwrap_or_default().to_string();
                if key == "<<" {
                    // A merge key: the merged mapping's entries, where not written here.
                    let merged = convert(doc, v, file, map, budget, depth + 1)?;
                    let sources: Vec<Val> = match merged.kind {
                        Kind::Seq(items) => items,
                        other => vec![Val {
                            kind: other,
                            at: merged.at,
                        }],
                    };
                    for s in sources {
                        if let Kind::Map(es) = s.kind {
                            for (mk, mv) in es {
                                if doc.get(node, &mk).is_none()
                                    && !entries.iter().any(|(e, _)| *e == mk)
                                {
                                    entries.push((mk, mv));
                                }
                            }
                        }
                    }
                    continue;
                }
                let value = convert(doc, v, file, map, budget, depth + 1)?;
                match entries.iter_mut().find(|(e, _)| *e == key) {
                    Some((_, old)) => *old = value,
                    None => entries.push((key, value)),
                }
            }
            Kind::Map(entries)
        }
    };
    Some(Val { kind, at })
}

/// The first document of `text` as a value, in file 0 (for tests).
#[cfg(test)]
pub(super) fn val(text: &str) -> Val {
    let source = crate::source::SourceFile::new("t.yaml".into(), text);
    let parsed = yaml::parse(&source);
    let d = &parsed.documents[0];
    Val::from_doc(d, d.root.unwrap(), 0, &|o| o).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::SourceFile;

    #[test]
    fn round_trip_keeps_each_nodes_file_and_span() {
        let text = "a: &x {image: 'nginx:1'}\nb: *x\n";
        let source = SourceFile::new("f.yaml".into(), text);
        let parsed = yaml::parse(&source);
        let d = &parsed.documents[0];
        let v = Val::from_doc(d, d.root.unwrap(), 4, &|o| o).unwrap();
        let image = v.path(&["b", "image"]).unwrap();
        assert_eq!(image.str(), Some("nginx:1"));
        assert_eq!(
            (image.at.file, image.at.start),
            (4, 14),
            "the anchored node's span"
        );
        let doc = v.to_document();
        let root = doc.root.unwrap();
        let node = doc.get_path(root, &["a", "image"]).unwrap();
        assert_eq!(doc.location(node, 0).file, 4);
        assert_eq!(doc.str(node), Some("nginx:1"));
    }
}
