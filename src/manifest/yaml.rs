//! YAML with positions. serde's YAML layers drop the position of values, and imagegate must
//! point at the exact character of every image, so documents are built here from the marked
//! events of `saphyr-parser` into a small arena of nodes that keep their byte spans.
//!
//! Aliases share the anchored node instead of copying it, so an alias bomb costs no memory;
//! walkers bound their own work (see [`Document::budget`]).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

use crate::source::SourceFile;

mod quoted_indent;

/// Index of a node in its document's arena.
pub type NodeId = usize;

/// How many node visits a walker may spend on one document (alias expansion included).
pub const VISIT_BUDGET: usize = 200_000;

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar { value: String, style: Style },
    Seq(Vec<NodeId>),
    Map(Vec<(NodeId, NodeId)>),
}

/// How a scalar was written. Only plain scalars are typed (numbers, booleans, null).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    /// Byte span in the file: from the first character of the node to its end.
    pub start: usize,
    pub end: usize,
    /// The file the span is in, when a document is assembled from several files (a
    /// kustomize build); `None` for the file the document was parsed from.
    pub file: Option<usize>,
}

/// One YAML document of a file.
#[derive(Debug, Default)]
pub struct Document {
    pub nodes: Vec<Node>,
    pub root: Option<NodeId>,
    /// Flow mappings whose text starts with `{{`, with that text: a Go template action
    /// (`image: {{ .AppImage }}`) that YAML reads as a mapping of a mapping.
    pub templates: Vec<(NodeId, String)>,
}

/// A YAML syntax error at a byte offset.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

/// The documents of a file, and the syntax error that ended parsing, if any. Documents
/// completed before the error are kept.
#[derive(Debug, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    pub error: Option<SyntaxError>,
}

/// The YAML 1.2 core schema type of a plain scalar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScalarType {
    String,
    Null,
    Bool,
    Int,
    Float,
}

/// The documents of a file as go-yaml reads them: saphyr-parser's reading, where a quoted
/// scalar's continuation lines may sit at its key's indentation (see `quoted_indent`).
pub fn parse(source: &SourceFile) -> Parsed {
    let parsed = parse_strict(source);
    match &parsed.error {
        Some(e) if e.message == quoted_indent::MESSAGE => {
            quoted_indent::reparse(source, parsed, parse_strict)
        }
        _ => parsed,
    }
}

/// saphyr-parser's reading, which holds to YAML 1.2's indentation of quoted scalars.
fn parse_strict(source: &SourceFile) -> Parsed {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(&source.text);
    let mut out = Parsed::default();
    loop {
        match parser.next_event() {
            None => break,
            Some(Ok((event, span))) => {
                if let Some(doc) = builder.event(event, span, source) {
                    out.documents.push(doc);
                }
            }
            Some(Err(e)) => {
                out.error = Some(SyntaxError {
                    offset: source.byte_of_char(e.marker().index()),
                    message: e.info().to_string(),
                });
                break;
            }
        }
    }
    out
}

enum Open {
    Seq(NodeId),
    /// A mapping and the key waiting for its value.
    Map(NodeId, Option<NodeId>),
}

#[derive(Default)]
struct Builder {
    doc: Document,
    stack: Vec<Open>,
    anchors: HashMap<usize, NodeId>,
}

impl Builder {
    /// Feeds one event; returns a document when it ends.
    fn event(&mut self, event: Event<'_>, span: Span, source: &SourceFile) -> Option<Document> {
        let start = source.byte_of_char(span.start.index());
        let end = source.byte_of_char(span.end.index()).max(start);
        match event {
            Event::DocumentStart(_) => {
                self.doc = Document::default();
                self.stack.clear();
                self.anchors.clear();
            }
            Event::DocumentEnd => return Some(std::mem::take(&mut self.doc)),
            Event::Scalar(value, style, anchor, _) => {
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                };
                let id = self.push(NodeKind::Scalar {
                    value: value.into_owned(),
                    style,
                });
                self.doc.nodes[id].start = skip_properties(&source.text, start, end);
                // A block scalar's span runs on to the next line's indentation; it ends
                // where its text does (issue 15: a `>-` image spilled onto the next line).
                self.doc.nodes[id].end = if style == Style::Block {
                    let text = source.text.get(start..end).unwrap_or("");
                    (start + text.trim_end().len()).max(self.doc.nodes[id].start)
                } else {
                    end
                };
                self.anchor(anchor, id);
                self.attach(id);
            }
            Event::Alias(anchor) => {
                // An unknown anchor is a syntax error the parser reports; be safe anyway.
                let id = match self.anchors.get(&anchor) {
                    Some(&id) => id,
                    None => self.push(NodeKind::Scalar {
                        value: String::new(),
                        style: Style::Plain,
                    }),
                };
                self.attach(id);
            }
            Event::SequenceStart(anchor, _) => {
                let id = self.push(NodeKind::Seq(Vec::new()));
                self.doc.nodes[id].start = start;
                self.anchor(anchor, id);
                self.attach(id);
                self.stack.push(Open::Seq(id));
            }
            Event::MappingStart(anchor, _) => {
                let id = self.push(NodeKind::Map(Vec::new()));
                self.doc.nodes[id].start = start;
                if source
                    .text
                    .get(start..)
                    .is_some_and(|t| t.starts_with("{{"))
                {
                    self.doc.templates.push((id, String::new()));
                }
                self.anchor(anchor, id);
                self.attach(id);
                self.stack.push(Open::Map(id, None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(Open::Seq(id) | Open::Map(id, _)) = self.stack.pop() {
                    let node = &mut self.doc.nodes[id];
                    node.end = end.max(node.start);
                    let (start, end) = (node.start, node.end);
                    if let Some(t) = self.doc.templates.iter_mut().rev().find(|t| t.0 == id) {
                        t.1 = source.text.get(start..end).unwrap_or_default().to_string();
                    }
                }
            }
            Event::StreamStart | Event::StreamEnd | Event::Nothing => {}
        }
        None
    }

    fn push(&mut self, kind: NodeKind) -> NodeId {
        self.doc.nodes.push(Node {
            kind,
            start: 0,
            end: 0,
            file: None,
        });
        self.doc.nodes.len() - 1
    }

    fn anchor(&mut self, anchor: usize, id: NodeId) {
        if anchor > 0 {
            self.anchors.insert(anchor, id);
        }
    }

    /// Puts a finished or opened node into its parent.
    fn attach(&mut self, id: NodeId) {
        match self.stack.last_mut() {
            None => {
                if self.doc.root.is_none() {
                    self.doc.root = Some(id);
                }
            }
            Some(Open::Seq(seq)) => {
                let seq = *seq;
                if let NodeKind::Seq(items) = &mut self.doc.nodes[seq].kind {
                    items.push(id);
                }
            }
            Some(Open::Map(map, pending)) => match pending.take() {
                None => *pending = Some(id),
                Some(key) => {
                    let map = *map;
                    if let NodeKind::Map(entries) = &mut self.doc.nodes[map].kind {
                        entries.push((key, id));
                    }
                }
            },
        }
    }
}

/// The span of a scalar event may start at its `&anchor` or `!tag`; the scalar itself starts
/// after them.
fn skip_properties(text: &str, mut start: usize, end: usize) -> usize {
    let bytes = text.as_bytes();
    while start < end && matches!(bytes.get(start), Some(b'&' | b'!')) {
        while start < end && !matches!(bytes[start], b' ' | b'\t' | b'\r' | b'\n') {
            start += 1;
        }
        while start < end && matches!(bytes[start], b' ' | b'\t' | b'\r' | b'\n') {
            start += 1;
        }
    }
    start
}

impl Document {
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// A node's span as a location in a file of the report.
    pub fn location(&self, id: NodeId, file: usize) -> crate::finding::Location {
        let n = &self.nodes[id];
        crate::finding::Location {
            file: n.file.unwrap_or(file),
            start: n.start,
            end: n.end,
        }
    }

    /// The text of a flow mapping written as a Go template action (`{{ .AppImage }}`).
    pub fn template_text(&self, id: NodeId) -> Option<&str> {
        self.templates
            .iter()
            .find(|t| t.0 == id)
            .map(|t| t.1.as_str())
            .filter(|t| t.ends_with("}}"))
    }

    /// The string value of a scalar node, whatever its type.
    pub fn scalar(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[id].kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The value of a scalar that YAML types as a string.
    pub fn str(&self, id: NodeId) -> Option<&str> {
        match self.scalar_type(id)? {
            ScalarType::String => self.scalar(id),
            _ => None,
        }
    }

    /// The core-schema type of a scalar node; `None` for collections.
    pub fn scalar_type(&self, id: NodeId) -> Option<ScalarType> {
        match &self.nodes[id].kind {
            NodeKind::Scalar {
                value,
                style: Style::Plain,
            } => Some(plain_type(value)),
            NodeKind::Scalar { .. } => Some(ScalarType::String),
            _ => None,
        }
    }

    /// A node as JSON, plain scalars typed as YAML 1.1 tools type them (`yes` is true, `3`
    /// a number, `"3"` a string); nesting past 64 levels is null. Non-scalar keys are dropped.
    pub fn to_json(&self, id: NodeId) -> serde_json::Value {
        self.to_json_depth(id, 0)
    }

    fn to_json_depth(&self, id: NodeId, depth: usize) -> serde_json::Value {
        use serde_json::Value;
        if depth > 64 {
            return Value::Null;
        }
        match &self.nodes[id].kind {
            NodeKind::Scalar { value, .. } => {
                let text = || Value::String(value.clone());
                match self.scalar_type(id) {
                    Some(ScalarType::Null) => Value::Null,
                    Some(ScalarType::Bool) => Value::Bool(matches!(
                        value.as_str(),
                        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON"
                    )),
                    Some(ScalarType::Int) => {
                        value.parse::<i64>().map_or_else(|_| text(), Value::from)
                    }
                    Some(ScalarType::Float) => value
                        .parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or_else(text, Value::Number),
                    _ => text(),
                }
            }
            NodeKind::Seq(items) => items
                .iter()
                .map(|&i| self.to_json_depth(i, depth + 1))
                .collect(),
            NodeKind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .filter_map(|&(k, v)| {
                        Some((
                            self.scalar(k)?.to_string(),
                            self.to_json_depth(v, depth + 1),
                        ))
                    })
                    .collect(),
            ),
        }
    }

    /// Looks up a key in a mapping, following `<<` merge keys as YAML 1.1 tools do.
    pub fn get(&self, map: NodeId, key: &str) -> Option<NodeId> {
        self.get_depth(map, key, 0)
    }

    fn get_depth(&self, map: NodeId, key: &str, depth: usize) -> Option<NodeId> {
        let NodeKind::Map(entries) = &self.nodes[map].kind else {
            return None;
        };
        if let Some(&(_, v)) = entries.iter().find(|(k, _)| self.scalar(*k) == Some(key)) {
            return Some(v);
        }
        if depth > 8 {
            return None;
        }
        let merge = entries
            .iter()
            .find(|(k, _)| self.scalar(*k) == Some("<<"))?
            .1;
        match &self.nodes[merge].kind {
            NodeKind::Map(_) => self.get_depth(merge, key, depth + 1),
            NodeKind::Seq(items) => items
                .iter()
                .find_map(|&m| self.get_depth(m, key, depth + 1)),
            NodeKind::Scalar { .. } => None,
        }
    }

    /// A mapping's string value at a path of keys.
    pub fn get_path(&self, map: NodeId, path: &[&str]) -> Option<NodeId> {
        path.iter().try_fold(map, |node, key| self.get(node, key))
    }

    pub fn items(&self, id: NodeId) -> &[NodeId] {
        match &self.nodes[id].kind {
            NodeKind::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn entries(&self, id: NodeId) -> &[(NodeId, NodeId)] {
        match &self.nodes[id].kind {
            NodeKind::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn is_map(&self, id: NodeId) -> bool {
        matches!(self.nodes[id].kind, NodeKind::Map(_))
    }
}

/// YAML 1.2 core schema resolution of a plain scalar (as Kubernetes' YAML decoder types it,
/// plus the YAML 1.1 booleans that sigs.k8s.io/yaml still honours).
pub fn plain_type(v: &str) -> ScalarType {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarType::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "yes" | "Yes" | "YES" | "no"
        | "No" | "NO" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => return ScalarType::Bool,
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => return ScalarType::Float,
        _ => {}
    }
    let body = v.strip_prefix(['+', '-']).unwrap_or(v);
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return ScalarType::Int;
    }
    let radix = |prefix: &str, digit: fn(&u8) -> bool| {
        body.strip_prefix(prefix)
            .is_some_and(|d| !d.is_empty() && d.as_bytes().iter().all(digit))
    };
    if radix("0x", u8::is_ascii_hexdigit) || radix("0o", |b| (b'0'..=b'7').contains(b)) {
        return ScalarType::Int;
    }
    if is_float(body) {
        return ScalarType::Float;
    }
    ScalarType::String
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => digits(a) && digits(b) && !(a.is_empty() && b.is_empty()),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> (SourceFile, Parsed) {
        let f = SourceFile::new("t.yaml".into(), text);
        let p = parse(&f);
        (f, p)
    }

    /// The file, its first document and that document's root.
    fn first(text: &str) -> (SourceFile, Document, NodeId) {
        let (f, p) = doc(text);
        let d = p.documents.into_iter().next().unwrap();
        let root = d.root.unwrap();
        (f, d, root)
    }

    #[test]
    fn scalars_keep_their_positions() {
        let (f, d, root) = first("a: 1\nb:\n  c: 'quoted'\n  d: \"dq\"\n");
        let c = d.get_path(root, &["b", "c"]).unwrap();
        assert_eq!(f.position(d.node(c).start).line, 3);
        assert_eq!(
            f.position(d.node(c).start).column,
            6,
            "at the opening quote"
        );
        assert_eq!(d.scalar(c), Some("quoted"));
        let dd = d.get_path(root, &["b", "d"]).unwrap();
        assert_eq!(f.position(d.node(dd).start).column, 6);
    }

    #[test]
    fn a_block_scalar_ends_where_its_text_does() {
        // issue 15 (argo-cd resource_customizations/.../DeploymentConfig/testdata/healthy.yaml):
        // the parser's span of `>-` and `|` runs on to the next line's indentation.
        let (f, d, root) = first("a: >-\n  nginx:1.25\nb: |\n  x\n  y\n\nc: 1\n");
        for (key, line, column) in [("a", 2, 13), ("b", 5, 4)] {
            let n = d.get(root, key).unwrap();
            let end = f.position(d.node(n).end);
            assert_eq!((end.line, end.column), (line, column), "{key}");
        }
    }

    #[test]
    fn plain_types_follow_the_core_schema() {
        for (v, t) in [
            ("1.10", ScalarType::Float),
            ("3", ScalarType::Int),
            ("-3", ScalarType::Int),
            ("1e3", ScalarType::Float),
            (".5", ScalarType::Float),
            ("true", ScalarType::Bool),
            ("~", ScalarType::Null),
            ("nginx", ScalarType::String),
            ("1.2.3", ScalarType::String),
            ("v1", ScalarType::String),
            ("0x1F", ScalarType::Int),
            ("1e", ScalarType::String),
        ] {
            assert_eq!(plain_type(v), t, "{v}");
        }
    }

    #[test]
    fn merge_keys_and_aliases_resolve() {
        let (_, d, root) = first("base: &b\n  image: x\nuse:\n  <<: *b\n  other: y\n");
        let node = d.get_path(root, &["use", "image"]).unwrap();
        assert_eq!(d.scalar(node), Some("x"));
    }

    #[test]
    fn documents_before_an_error_are_kept() {
        let (f, p) = doc("a: 1\n---\nb: [\n");
        assert_eq!(p.documents.len(), 1);
        let e = p.error.unwrap();
        assert!(f.position(e.offset).line >= 3, "{e:?}");
    }

    // Issue 16: kubernetes-sigs/kustomize functions/examples/fn-framework-application/.../
    // web_worker.template.yaml:26, `image: {{ .AppImage }}` unquoted.
    #[test]
    fn a_template_action_keeps_its_text() {
        let (_, d, root) = first("a:\n  image: {{ .AppImage }}\n  other: {b: c}\n");
        let image = d.get_path(root, &["a", "image"]).unwrap();
        assert!(d.is_map(image));
        assert_eq!(d.template_text(image), Some("{{ .AppImage }}"));
        let other = d.get_path(root, &["a", "other"]).unwrap();
        assert_eq!(d.template_text(other), None);
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        let (_, p) = doc(&text);
        assert!(p.error.is_some() || p.documents.len() == 1);
    }
}
