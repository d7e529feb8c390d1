//! Images in Helm values, by the conventions charts use: `image: "repo:tag"` strings,
//! `image: {registry, repository, tag, digest}` maps at any depth (with
//! `global.imageRegistry`), and any key ending in `image` or `Image`. Shared by Flux
//! HelmRelease `spec.values`, `values*.yaml` files next to a `Chart.yaml`, and Argo CD
//! Applications.

use super::helm_scalar::{self, HelmScalar};
use super::yaml::{Document, NodeId, NodeKind, ScalarType, Style};
use super::{ImageValue, Occurrence};
use crate::finding::Location;

/// How deep a values tree is searched.
const MAX_DEPTH: usize = 32;

/// Where a values tree sits and how to read it.
pub struct Values<'a> {
    pub doc: &'a Document,
    pub root: NodeId,
    pub file: usize,
    /// What the images are part of, e.g. `HelmRelease/web values`.
    pub label: String,
    /// The tag a chart uses when none is given (its `appVersion`), and where that came from.
    pub default_tag: Option<(String, String)>,
    /// Byte offset added to every position (values parsed from a string inside a file).
    pub shift: Option<&'a dyn Fn(usize) -> usize>,
}

/// Appends the image occurrences of a values tree.
pub fn extract(v: &Values<'_>, out: &mut Vec<Occurrence>) {
    let global_registry = v
        .doc
        .get_path(v.root, &["global", "imageRegistry"])
        .and_then(|n| v.doc.str(n))
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    walk(v, v.root, "", 0, global_registry.as_deref(), out);
}

fn is_image_key(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with("image")
}

fn walk(
    v: &Values<'_>,
    node: NodeId,
    path: &str,
    depth: usize,
    global_registry: Option<&str>,
    out: &mut Vec<Occurrence>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let doc = v.doc;
    match &doc.node(node).kind {
        NodeKind::Map(entries) => {
            for &(k, val) in entries {
                let Some(key) = doc.scalar(k) else { continue };
                let here = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                if is_image_key(key) {
                    match &doc.node(val).kind {
                        NodeKind::Scalar { .. } => {
                            if let Some(o) = string_image(v, val, &here) {
                                out.push(o);
                            }
                            continue;
                        }
                        NodeKind::Map(_) if doc.get(val, "repository").is_some() => {
                            if let Some(o) = map_image(v, val, &here, global_registry) {
                                out.push(o);
                            }
                            continue;
                        }
                        _ => {}
                    }
                }
                walk(v, val, &here, depth + 1, global_registry, out);
            }
        }
        NodeKind::Seq(items) => {
            for (i, &item) in items.iter().enumerate() {
                walk(
                    v,
                    item,
                    &format!("{path}[{i}]"),
                    depth + 1,
                    global_registry,
                    out,
                );
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

fn location(v: &Values<'_>, node: NodeId) -> Location {
    let n = v.doc.node(node);
    // A merged tree's nodes name their own file (see `merge`); shifts apply to the rest.
    if let Some(file) = n.file {
        return Location {
            file,
            start: n.start,
            end: n.end,
        };
    }
    let shift = |b: usize| v.shift.map_or(b, |f| f(b));
    Location {
        file: v.file,
        start: shift(n.start),
        end: shift(n.end),
    }
}

/// `image: "repo:tag"`. Empty strings and non-strings are left alone: charts use them as
/// "no image" switches far more often than as mistakes.
fn string_image(v: &Values<'_>, node: NodeId, path: &str) -> Option<Occurrence> {
    let s = v.doc.str(node).filter(|s| !s.is_empty())?;
    // A bare word without `/`, `:` or `@` is usually a name or a switch, not a reference.
    if !s.contains(['/', ':', '@']) {
        return None;
    }
    Some(Occurrence {
        location: location(v, node),
        value: ImageValue::Text(s.to_string()),
        context: format!("{} {path}", v.label),
        previous: None,
    })
}

/// The text of a plain scalar, which Helm types as YAML 1.1 does.
fn plain(doc: &Document, node: NodeId) -> Option<&str> {
    match &doc.node(node).kind {
        NodeKind::Scalar {
            value,
            style: Style::Plain,
        } => Some(value),
        _ => None,
    }
}

/// `image: {registry, repository, tag, digest}`, reported at the tag (or digest).
fn map_image(
    v: &Values<'_>,
    map: NodeId,
    path: &str,
    global_registry: Option<&str>,
) -> Option<Occurrence> {
    let doc = v.doc;
    let repository_node = doc.get(map, "repository")?;
    let repository = doc.str(repository_node).filter(|s| !s.is_empty())?;
    let registry = global_registry.map(str::to_string).or_else(|| {
        doc.get(map, "registry")
            .and_then(|n| doc.str(n))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    });
    let tag_node = doc.get(map, "tag").or_else(|| doc.get(map, "version"));
    let digest_node = doc.get(map, "digest");
    let context = format!("{} {path}", v.label);
    let digest = digest_node
        .and_then(|n| doc.str(n))
        .filter(|s| !s.is_empty());
    let mut name = match &registry {
        Some(r) => format!("{}/{repository}", r.trim_end_matches('/')),
        None => repository.to_string(),
    };
    let mut tag = tag_node.and_then(|n| doc.str(n)).filter(|s| !s.is_empty());
    // A plain tag is typed as Helm types it (`tag: 2.10` is a number, printed `2.1`): a
    // hazard only where what Helm prints differs from what is written.
    if let Some(t) = tag_node
        && let Some(written) = plain(doc, t)
        && doc.scalar_type(t) != Some(ScalarType::Null)
    {
        let rendered = match helm_scalar::read(written) {
            HelmScalar::Text => None,
            HelmScalar::Typed(r) if r == written => {
                tag = Some(written);
                None
            }
            HelmScalar::Typed(r) => Some(Some(r)),
            HelmScalar::Unrenderable => Some(None),
        };
        if let Some(rendered) = rendered {
            let boolean = matches!(rendered.as_deref(), Some("true" | "false"));
            return Some(Occurrence {
                location: location(v, t),
                value: ImageValue::NonString {
                    written: format!("{name}:{written}"),
                    typed_as: if boolean { "a boolean" } else { "a number" },
                    rendered,
                },
                context: format!("{context}.tag"),
                previous: None,
            });
        }
        if tag.is_none() && !written.is_empty() {
            tag = Some(written);
        }
    }
    let (at, note) = match (digest, tag, &v.default_tag) {
        // Bitnami's convention: a digest replaces the tag.
        (Some(d), _, _) => {
            name.push('@');
            name.push_str(d);
            (digest_node, "")
        }
        (None, Some(t), _) => {
            name.push(':');
            name.push_str(t);
            (tag_node, "")
        }
        (None, None, Some((app, from))) => {
            name.push(':');
            name.push_str(app);
            (Some(repository_node), from.as_str())
        }
        // No tag and no chart to take it from: what is pulled depends on the chart.
        (None, None, None) => return None,
    };
    let node = at.unwrap_or(repository_node);
    Some(Occurrence {
        location: location(v, node),
        value: ImageValue::Text(name),
        context: if note.is_empty() {
            context
        } else {
            format!("{context} (tag from {note})")
        },
        previous: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;
    use crate::source::SourceFile;

    fn found(text: &str, default_tag: Option<&str>) -> Vec<(usize, String)> {
        let f = SourceFile::new("v.yaml".into(), text);
        let p = yaml::parse(&f);
        let doc = &p.documents[0];
        let mut out = Vec::new();
        extract(
            &Values {
                doc,
                root: doc.root.unwrap(),
                file: 0,
                label: "values".into(),
                default_tag: default_tag.map(|t| (t.to_string(), "Chart.yaml appVersion".into())),
                shift: None,
            },
            &mut out,
        );
        out.iter()
            .map(|o| {
                let v = match &o.value {
                    ImageValue::Text(t) => t.clone(),
                    other => format!("{other:?}"),
                };
                (f.position(o.location.start).line, v)
            })
            .collect()
    }

    #[test]
    fn the_conventions_charts_use() {
        let v = "image:\n  registry: ghcr.io\n  repository: acme/web\n  tag: v1.5.0\nsidecar:\n  image: busybox:1.36\nmetrics:\n  exporterImage:\n    repository: prom/exporter\n    tag: \"0.15\"\nworker:\n  image:\n    repository: acme/worker\n    digest: sha256:abc\n    tag: ignored\nname: web\nenabled: true\n";
        assert_eq!(
            found(v, None),
            [
                (4, "ghcr.io/acme/web:v1.5.0".to_string()),
                (6, "busybox:1.36".into()),
                (10, "prom/exporter:0.15".into()),
                (14, "acme/worker@sha256:abc".into())
            ]
        );
    }

    #[test]
    fn global_registry_overrides_and_app_version_defaults() {
        let v = "global:\n  imageRegistry: mirror.example.com\nimage:\n  registry: docker.io\n  repository: bitnami/redis\n";
        assert_eq!(
            found(v, Some("7.2.4")),
            [(5, "mirror.example.com/bitnami/redis:7.2.4".to_string())]
        );
        assert!(found(v, None).is_empty(), "no tag and no chart: unknowable");
    }

    #[test]
    fn a_numeric_tag_is_a_finding_where_helm_prints_it_otherwise() {
        let v = "a:\n  image:\n    repository: acme/web\n    tag: 2.10\nb:\n  image:\n    repository: acme/web\n    tag: 0.1\nc:\n  image:\n    repository: acme/web\n    tag: \"2.10\"\n";
        let got = found(v, None);
        assert_eq!(got.len(), 3);
        assert!(
            got[0].1.contains("NonString") && got[0].1.contains("Some(\"2.1\")"),
            "{got:?}"
        );
        assert_eq!(got[1], (8, "acme/web:0.1".into()));
        assert_eq!(got[2], (12, "acme/web:2.10".into()));
    }
}
