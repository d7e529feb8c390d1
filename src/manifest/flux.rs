//! Flux objects: images in HelmRelease `spec.values`, OCI charts (a HelmRelease's chart
//! through an OCI HelmRepository), OCIRepository artifacts, and the `postBuild.substitute`
//! variables of Flux Kustomizations. What needs another object (a HelmRepository, a
//! Kustomization's path) is recorded as a fact and joined in `project`.

use super::values::{self, Values};
use super::yaml::{Document, NodeId};
use super::{ImageValue, Occurrence};
use crate::finding::Location;

/// An object's name and namespace: a HelmRepository's own, or a `sourceRef` naming one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub name: String,
    /// None where the manifest leaves it to the namespace applied at deploy time.
    pub namespace: Option<String>,
}

impl ObjectRef {
    /// Whether this reference names `object`: the same name, and the same namespace where
    /// both are known.
    pub fn names(&self, object: &ObjectRef) -> bool {
        self.name == object.name
            && (self.namespace.is_none()
                || object.namespace.is_none()
                || self.namespace == object.namespace)
    }
}

/// A HelmRepository, for joining HelmRelease charts to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmRepository {
    pub object: ObjectRef,
    pub url: String,
    pub oci: bool,
}

/// A HelmRelease's chart, waiting for its HelmRepository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartRef {
    pub release: String,
    pub chart: String,
    pub version: Option<String>,
    /// The `sourceRef`, its namespace defaulting to the release's.
    pub repository: ObjectRef,
    /// Where to report: the version (or the chart name when there is none).
    pub location: Location,
}

/// A Flux Kustomization's variables, for `${VAR}` in the files under its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitutions {
    pub name: String,
    /// `spec.path`, relative to the repository root, without `./`.
    pub path: String,
    pub vars: Vec<(String, String, Location)>,
}

/// A Flux image automation marker, `# {"$imagepolicy": "ns:policy:tag"}`, on a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub namespace: String,
    pub policy: String,
    /// `tag`, `name`, or empty for the whole image.
    pub field: String,
    pub value: String,
    pub location: Location,
}

/// A Flux object that names another: an ImagePolicy's ImageRepository, or an
/// ImageRepository's image (in `target`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub namespace: Option<String>,
    pub target: String,
    pub target_namespace: Option<String>,
}

/// What Flux objects in one document hold.
#[derive(Debug, Default, Clone)]
pub struct FluxFacts {
    pub helm_repositories: Vec<HelmRepository>,
    pub charts: Vec<ChartRef>,
    pub substitutions: Vec<Substitutions>,
    pub markers: Vec<Marker>,
    pub image_policies: Vec<Named>,
    pub image_repositories: Vec<Named>,
}

/// The `$imagepolicy` markers on the values of a document: the comment is not in the node
/// tree, so it is read from the source line the value is on.
pub fn markers(
    doc: &Document,
    source: &crate::source::SourceFile,
    file: usize,
    facts: &mut FluxFacts,
) {
    if !source.text.contains("$imagepolicy") {
        return;
    }
    for n in &doc.nodes {
        let super::yaml::NodeKind::Map(entries) = &n.kind else {
            continue;
        };
        for &(_, v) in entries {
            let Some(value) = doc.scalar(v) else { continue };
            let node = doc.node(v);
            let line = source.position(node.start).line;
            let (Some(from), to) = (
                source.line_start(line),
                source.line_start(line + 1).unwrap_or(source.text.len()),
            ) else {
                continue;
            };
            let text = &source.text[node.end.max(from).min(to)..to];
            let Some(spec) = marker_in(text) else {
                continue;
            };
            let mut parts = spec.splitn(3, ':');
            let (Some(ns), Some(policy)) = (parts.next(), parts.next()) else {
                continue;
            };
            facts.markers.push(Marker {
                namespace: ns.to_string(),
                policy: policy.to_string(),
                field: parts.next().unwrap_or("").to_string(),
                value: value.to_string(),
                location: doc.location(v, file),
            });
        }
    }
}

/// The policy a comment's `{"$imagepolicy": "..."}` names.
fn marker_in(rest: &str) -> Option<&str> {
    let comment = &rest[rest.find('#')? + 1..];
    let after = &comment[comment.find("\"$imagepolicy\"")? + "\"$imagepolicy\"".len()..];
    let after = after
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(&after[..after.find('"')?])
}

fn str_at<'a>(doc: &'a Document, node: NodeId, path: &[&str]) -> Option<&'a str> {
    doc.get_path(node, path).and_then(|n| doc.str(n))
}

/// The OCI repository an `oci://host/path` URL names, without a trailing slash.
pub fn oci_repository(url: &str) -> Option<String> {
    let rest = url.strip_prefix("oci://")?;
    let cleaned: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    (!cleaned.is_empty()).then(|| cleaned.join("/"))
}

/// Helm's registry client writes SemVer build metadata `+` as `_` in OCI tags.
pub fn oci_tag(version: &str) -> String {
    version.replace('+', "_")
}

/// Whether a chart version names one version (not a range such as `*`, `6.x`, `>=1 <2`).
pub fn exact_version(v: &str) -> bool {
    semver::Version::parse(v.strip_prefix('v').unwrap_or(v)).is_ok()
}

/// Extracts from one document: occurrences now, facts for later.
pub fn extract(doc: &Document, file: usize, out: &mut Vec<Occurrence>, facts: &mut FluxFacts) {
    let Some(root) = doc.root else { return };
    let (Some(api), Some(kind)) = (
        str_at(doc, root, &["apiVersion"]),
        str_at(doc, root, &["kind"]),
    ) else {
        return;
    };
    let group = api.split_once('/').map_or("", |(g, _)| g);
    let name = str_at(doc, root, &["metadata", "name"])
        .unwrap_or("")
        .to_string();
    let namespace = str_at(doc, root, &["metadata", "namespace"]).map(str::to_string);
    match (group, kind) {
        ("helm.toolkit.fluxcd.io", "HelmRelease") => {
            if let Some(v) = doc.get_path(root, &["spec", "values"]) {
                values::extract(
                    &Values {
                        doc,
                        root: v,
                        file,
                        label: format!("HelmRelease/{name} values"),
                        default_tag: None,
                        shift: None,
                    },
                    out,
                );
            }
            if let Some(spec) = doc.get_path(root, &["spec", "chart", "spec"]) {
                let chart = str_at(doc, spec, &["chart"]);
                let source_kind =
                    str_at(doc, spec, &["sourceRef", "kind"]).unwrap_or("HelmRepository");
                let source = str_at(doc, spec, &["sourceRef", "name"]);
                if let (Some(chart), Some(source), "HelmRepository") = (chart, source, source_kind)
                {
                    let version_node = doc.get(spec, "version");
                    let at = version_node
                        .or_else(|| doc.get(spec, "chart"))
                        .unwrap_or(spec);
                    facts.charts.push(ChartRef {
                        release: name.clone(),
                        chart: chart.to_string(),
                        version: version_node.and_then(|n| doc.scalar(n)).map(str::to_string),
                        repository: ObjectRef {
                            name: source.to_string(),
                            namespace: str_at(doc, spec, &["sourceRef", "namespace"])
                                .map(str::to_string)
                                .or_else(|| namespace.clone()),
                        },
                        location: doc.location(at, file),
                    });
                }
            }
        }
        ("source.toolkit.fluxcd.io", "HelmRepository") => {
            if let Some(url) = str_at(doc, root, &["spec", "url"]) {
                facts.helm_repositories.push(HelmRepository {
                    object: ObjectRef { name, namespace },
                    url: url.to_string(),
                    oci: str_at(doc, root, &["spec", "type"]) == Some("oci")
                        || url.starts_with("oci://"),
                });
            }
        }
        ("source.toolkit.fluxcd.io", "OCIRepository") => {
            let Some(url_node) = doc.get_path(root, &["spec", "url"]) else {
                return;
            };
            let Some(repo) = doc.str(url_node).and_then(oci_repository) else {
                return;
            };
            let context = format!("OCIRepository/{name}");
            let reference = doc.get_path(root, &["spec", "ref"]);
            let field = |f: &str| reference.and_then(|r| doc.get(r, f));
            // Precedence is digest > semver > tag > latest.
            let (value, at) = if let Some(d) = field("digest").filter(|n| doc.str(*n).is_some()) {
                (
                    ImageValue::Text(format!("{repo}@{}", doc.str(d).unwrap_or(""))),
                    d,
                )
            } else if let Some(s) = field("semver").filter(|n| doc.str(*n).is_some()) {
                (
                    ImageValue::Range {
                        repository: repo.clone(),
                        constraint: doc.str(s).unwrap_or("").to_string(),
                    },
                    s,
                )
            } else if let Some(t) = field("tag").filter(|n| doc.scalar(*n).is_some()) {
                (
                    ImageValue::Text(format!("{repo}:{}", oci_tag(doc.scalar(t).unwrap_or("")))),
                    t,
                )
            } else {
                (ImageValue::Text(format!("{repo}:latest")), url_node)
            };
            out.push(Occurrence {
                location: doc.location(at, file),
                value,
                context,
                previous: None,
            });
        }
        ("image.toolkit.fluxcd.io", "ImagePolicy") => {
            if let Some(target) = str_at(doc, root, &["spec", "imageRepositoryRef", "name"]) {
                facts.image_policies.push(Named {
                    name,
                    namespace: namespace.clone(),
                    target: target.to_string(),
                    target_namespace: str_at(
                        doc,
                        root,
                        &["spec", "imageRepositoryRef", "namespace"],
                    )
                    .map(str::to_string)
                    .or(namespace),
                });
            }
        }
        ("image.toolkit.fluxcd.io", "ImageRepository") => {
            if let Some(image) = str_at(doc, root, &["spec", "image"]) {
                facts.image_repositories.push(Named {
                    name,
                    namespace,
                    target: image.to_string(),
                    target_namespace: None,
                });
            }
        }
        ("kustomize.toolkit.fluxcd.io", "Kustomization") => {
            let path = str_at(doc, root, &["spec", "path"]).unwrap_or("./");
            let path = path.trim_start_matches("./").trim_matches('/').to_string();
            let mut vars = Vec::new();
            if let Some(subs) = doc.get_path(root, &["spec", "postBuild", "substitute"]) {
                for &(k, v) in doc.entries(subs) {
                    if let (Some(key), Some(value)) = (doc.scalar(k), doc.scalar(v)) {
                        vars.push((key.to_string(), value.to_string(), doc.location(v, file)));
                    }
                }
            }
            if !vars.is_empty() {
                facts.substitutions.push(Substitutions { name, path, vars });
            }
        }
        _ => {}
    }
}

/// Substitutes `${VAR}`, `${VAR:=default}` and `${VAR:-default}` as Flux's postBuild does.
/// Returns the result and the names used, or `None` when a variable has no value.
pub fn substitute(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, Vec<String>)> {
    let mut out = String::new();
    let mut used = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after.find('}')?;
        let inner = &after[..end];
        let (name, default) = match inner.find(":=").or_else(|| inner.find(":-")) {
            Some(j) => (&inner[..j], Some(&inner[j + 2..])),
            None => (inner, None),
        };
        let value = lookup(name).or_else(|| default.map(str::to_string))?;
        used.push(name.to_string());
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_urls_tags_and_versions() {
        assert_eq!(
            oci_repository("oci://ghcr.io/stefanprodan/charts/").as_deref(),
            Some("ghcr.io/stefanprodan/charts")
        );
        assert_eq!(oci_repository("https://charts.example.com"), None);
        assert_eq!(oci_tag("1.2.3+build.4"), "1.2.3_build.4");
        assert!(exact_version("6.5.4"));
        assert!(!exact_version("6.x"));
        assert!(!exact_version(">=1.0.0 <2.0.0"));
        assert!(!exact_version("*"));
    }

    #[test]
    fn imagepolicy_markers_are_read_from_the_comment() {
        assert_eq!(
            marker_in(r#" # {"$imagepolicy": "flux-system:podinfo:tag"}"#),
            Some("flux-system:podinfo:tag")
        );
        assert_eq!(marker_in(r#" # {"$imagepolicy":"a:b"}"#), Some("a:b"));
        assert_eq!(marker_in(" # nothing"), None);
        assert_eq!(
            marker_in(r#" "$imagepolicy": "x:y""#),
            None,
            "not in a comment"
        );
    }

    #[test]
    fn postbuild_substitution() {
        let vars = |k: &str| (k == "TAG").then(|| "1.2.3".to_string());
        assert_eq!(
            substitute("ghcr.io/a:${TAG}", &vars),
            Some(("ghcr.io/a:1.2.3".into(), vec!["TAG".into()]))
        );
        assert_eq!(
            substitute("r/${REG:=docker.io}/a:${TAG}", &vars).unwrap().0,
            "r/docker.io/a:1.2.3"
        );
        assert_eq!(substitute("a:${MISSING:-x}", &vars).unwrap().0, "a:x");
        assert_eq!(substitute("a:${MISSING}", &vars), None);
    }

    #[test]
    fn a_source_ref_names_its_repository_where_the_namespaces_do_not_differ() {
        let at = |name: &str, namespace: Option<&str>| ObjectRef {
            name: name.into(),
            namespace: namespace.map(Into::into),
        };
        let repo = at("podinfo", Some("flux-system"));
        assert!(at("podinfo", Some("flux-system")).names(&repo));
        assert!(at("podinfo", None).names(&repo));
        assert!(at("podinfo", Some("apps")).names(&at("podinfo", None)));
        assert!(!at("podinfo", Some("apps")).names(&repo));
        assert!(!at("other", Some("flux-system")).names(&repo));
    }
}
