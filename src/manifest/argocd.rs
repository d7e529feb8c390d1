//! Argo CD Applications: images in `spec.source(s).helm` (`valuesObject` or the `values`
//! string, and `parameters` such as `image.tag`), and the image overrides of
//! `spec.source(s).kustomize.images` as written (`project/argo_kustomize.rs` builds a
//! same-repository path with them instead, and the build's images replace these).

use super::merge::{Merged, Place};
use super::values::{self, Values};
use super::yaml::{self, Document, NodeId, Style};
use super::{ImageValue, Occurrence};
use crate::source::SourceFile;

pub fn extract(doc: &Document, source: &SourceFile, file: usize, out: &mut Vec<Occurrence>) {
    let Some(root) = doc.root else { return };
    let is_app = doc.get(root, "kind").and_then(|n| doc.str(n)) == Some("Application")
        && doc
            .get(root, "apiVersion")
            .and_then(|n| doc.str(n))
            .is_some_and(|a| a.starts_with("argoproj.io/"));
    if !is_app {
        return;
    }
    let name = doc
        .get_path(root, &["metadata", "name"])
        .and_then(|n| doc.str(n))
        .unwrap_or("");
    let label = format!("Application/{name}");
    for s in sources(doc, root) {
        if let Some(helm) = doc.get(s, "helm") {
            helm_source(doc, source, helm, file, &label, out);
        }
        if let Some(images) = doc.get_path(s, &["kustomize", "images"]) {
            for &item in doc.items(images) {
                let Some(text) = doc.str(item) else { continue };
                // `name=newName:tag`, `name=newName`, or `name:tag`.
                let reference = text.split_once('=').map_or(text, |(_, new)| new);
                out.push(Occurrence {
                    location: doc.location(item, file),
                    value: ImageValue::Text(reference.to_string()),
                    context: format!("{label} kustomize.images"),
                    previous: None,
                });
            }
        }
    }
}

fn helm_source(
    doc: &Document,
    source: &SourceFile,
    helm: NodeId,
    file: usize,
    label: &str,
    out: &mut Vec<Occurrence>,
) {
    let mut merged = Merged::new();
    apply_helm_layers(&mut merged, doc, source, helm, file);
    let root = merged.root();
    values::extract(
        &Values {
            doc: &merged.doc,
            root,
            file,
            label: format!("{label} helm values"),
            default_tag: None,
            shift: None,
        },
        out,
    );
}

/// Layers an Argo CD Helm source's own values over `merged` in Argo CD's order: the
/// `values` string or, when present and not null, `valuesObject` in its place (Argo CD's
/// `ApplicationSourceHelm.ValuesYAML` hands helm one or the other, never both), then
/// `parameters` (`name: image.tag`), which win as `--set` does.
pub fn apply_helm_layers(
    merged: &mut Merged,
    doc: &Document,
    source: &SourceFile,
    helm: NodeId,
    file: usize,
) {
    let object = doc
        .get(helm, "valuesObject")
        .filter(|&o| doc.scalar_type(o) != Some(yaml::ScalarType::Null));
    if let Some(vnode) = doc.get(helm, "values")
        && object.is_none()
        && let Some(text) = doc.str(vnode)
    {
        let inner = SourceFile::new("values".into(), text);
        let mut parsed = yaml::parse(&inner);
        let node = doc.node(vnode);
        let block = matches!(
            &node.kind,
            super::yaml::NodeKind::Scalar {
                style: Style::Block,
                ..
            }
        );
        let start = source.position(node.start);
        let indent = start.column - 1;
        // Positions inside a literal block map line by line onto the file.
        let shift = |b: usize| -> usize {
            if !block {
                return node.start;
            }
            let p = inner.position(b);
            let line_start = source.line_start(start.line + p.line - 1);
            let mapped = line_start.map(|s| s + indent + (p.column - 1));
            match mapped {
                Some(m) if source.text.get(m..m + 1) == inner.text.get(b..b + 1) => m,
                _ => node.start,
            }
        };
        for d in &mut parsed.documents {
            for n in &mut d.nodes {
                n.start = shift(n.start);
                n.end = n.start.max(shift(n.end));
            }
            if let Some(root) = d.root {
                merged.layer(d, root, Place::Own(file));
            }
        }
    }
    if let Some(obj) = object {
        merged.layer(doc, obj, Place::Own(file));
    }
    if let Some(params) = doc.get(helm, "parameters") {
        for &p in doc.items(params) {
            let (Some(name), Some(value)) = (
                doc.get(p, "name").and_then(|n| doc.scalar(n)),
                doc.get(p, "value"),
            ) else {
                continue;
            };
            let Some(text) = doc.scalar(value) else {
                continue;
            };
            merged.set_path(name, text, doc.location(value, file));
        }
    }
}

/// An Application's sources: `spec.source`, then each of `spec.sources`.
pub fn sources(doc: &Document, root: NodeId) -> Vec<NodeId> {
    let mut sources: Vec<NodeId> = doc
        .get_path(root, &["spec", "source"])
        .into_iter()
        .collect();
    if let Some(list) = doc.get_path(root, &["spec", "sources"]) {
        sources.extend_from_slice(doc.items(list));
    }
    sources
}
