//! Chart releases and the images their charts decide. Finds every release a change deploys
//! (a Flux HelmRelease, an Argo CD Application with a Helm source, a kustomize `helmCharts`
//! entry) with its chart source and its values layers; once the chart is fetched (by the
//! pipeline, which alone talks to registries), merges chart defaults and the release's
//! values in Helm's order and applies the image conventions of `manifest::values`.

use std::path::Path;
use std::sync::Arc;

use super::chart_files::ChartFiles;
pub use super::release::{ChartSource, Layer, Release};
use super::release_render::{self, apply_layers, text_layer};
use crate::finding::Location;
use crate::manifest::kustomize::{self, Reader};
use crate::manifest::merge::{Merged, Place};
use crate::manifest::values::{self, Values};
use crate::manifest::{ImageValue, Occurrence, flux, yaml};
use crate::source::SourceFile;

/// The file id chart defaults are placed at before they are reported at the release.
const CHART_FILE: usize = usize::MAX;

fn parse(text: &str) -> yaml::Parsed {
    yaml::parse(&SourceFile::new("values".into(), text))
}

/// A ConfigMap's or Secret's key: (kind, name, key) → its text and place.
pub type ConfigMaps<'a> = &'a dyn Fn(&str, &str, &str) -> Option<(String, Location)>;
/// An OCIRepository by name → its repository and version.
pub type OciRepositories<'a> = &'a dyn Fn(&str) -> Option<(String, Option<String>)>;

/// What a release's references are looked up in.
pub struct Lookups<'a> {
    pub repos: &'a [flux::HelmRepository],
    pub reader: &'a dyn Reader,
    pub config_maps: ConfigMaps<'a>,
    pub oci_repositories: OciRepositories<'a>,
}

/// Releases in one scanned file.
pub fn releases(file: usize, path: &Path, text: &Arc<str>, lookups: &Lookups<'_>) -> Vec<Release> {
    let Lookups {
        repos,
        reader,
        config_maps,
        oci_repositories,
    } = *lookups;
    if !(text.contains("HelmRelease")
        || text.contains("Application")
        || text.contains("helmCharts"))
    {
        return Vec::new();
    }
    let parsed = parse(text);
    let mut out = Vec::new();
    let is_kustomization = kustomize::is_kustomization_file(path);
    for (i, doc) in parsed.documents.iter().enumerate() {
        let Some(root) = doc.root else { continue };
        let s = |n: yaml::NodeId, p: &[&str]| {
            doc.get_path(n, p)
                .and_then(|n| doc.scalar(n))
                .map(str::to_string)
        };
        let node_layer = |keys: &[&str]| Layer::Node {
            file,
            text: text.clone(),
            doc: i,
            path: keys.iter().map(|k| k.to_string()).collect(),
        };
        let kind = s(root, &["kind"]).unwrap_or_default();
        let api = s(root, &["apiVersion"]).unwrap_or_default();
        let name = s(root, &["metadata", "name"]).unwrap_or_default();
        let namespace = s(root, &["metadata", "namespace"]);
        if kind == "HelmRelease" && api.starts_with("helm.toolkit.fluxcd.io/") {
            let chart_ref = doc.get_path(root, &["spec", "chartRef"]);
            let Some(spec) = doc.get_path(root, &["spec", "chart", "spec"]).or(chart_ref) else {
                continue;
            };
            let chart = s(spec, &["chart"]).unwrap_or_default();
            let version = s(spec, &["version"]);
            // The version, else the chart's name (`chart`, or a `chartRef`'s `name`); never
            // the whole spec, whose span runs to the next key.
            let named = doc
                .get(spec, "version")
                .or_else(|| doc.get(spec, if chart_ref.is_some() { "name" } else { "chart" }));
            let at = doc.location(named.unwrap_or(spec), file);
            let source_kind = match chart_ref {
                Some(_) => s(spec, &["kind"]).unwrap_or_default(),
                None => s(spec, &["sourceRef", "kind"]).unwrap_or("HelmRepository".into()),
            };
            let source = match source_kind.as_str() {
                // `chartRef` to an OCIRepository: its URL and ref decide the chart.
                "OCIRepository" => {
                    let Some((repository, version)) =
                        s(spec, &["name"]).and_then(|n| oci_repositories(&n))
                    else {
                        continue;
                    };
                    ChartSource::Oci {
                        repository,
                        version,
                    }
                }
                // A HelmChart object or a chart name that is empty: not followed.
                _ if chart.is_empty() => continue,
                "HelmRepository" => {
                    let Some(repo_name) = s(spec, &["sourceRef", "name"]) else {
                        continue;
                    };
                    let ns = s(spec, &["sourceRef", "namespace"]).or(namespace.clone());
                    let wanted = flux::ObjectRef {
                        name: repo_name,
                        namespace: ns,
                    };
                    let Some(repo) = repos.iter().find(|r| wanted.names(&r.object)) else {
                        continue;
                    };
                    match (repo.oci, flux::oci_repository(&repo.url)) {
                        (true, Some(base)) => ChartSource::Oci {
                            repository: format!("{base}/{chart}"),
                            version,
                        },
                        (true, None) => continue,
                        (false, _) => ChartSource::Classic {
                            url: repo.url.clone(),
                            chart,
                            version,
                        },
                    }
                }
                // A chart path in a Git repository or bucket: this repository's directory
                // when it is one.
                _ => ChartSource::Local {
                    dir: kustomize::join(Path::new(""), &chart),
                },
            };
            let mut layers = Vec::new();
            if let Some(list) = doc.get_path(root, &["spec", "valuesFrom"]) {
                for &v in doc.items(list) {
                    let kind = s(v, &["kind"]).unwrap_or_default();
                    let (Some(ref_name), key) = (
                        s(v, &["name"]),
                        s(v, &["valuesKey"]).unwrap_or("values.yaml".into()),
                    ) else {
                        continue;
                    };
                    if let Some((text, at)) = config_maps(&kind, &ref_name, &key) {
                        layers.push(Layer::Text { text, at });
                    }
                }
            }
            if doc.get_path(root, &["spec", "values"]).is_some() {
                layers.push(node_layer(&["spec", "values"]));
            }
            out.push(Release {
                label: format!("HelmRelease/{name}"),
                source,
                at,
                layers,
                rendering: release_render::flux(doc, root, &name),
            });
        } else if kind == "Application" && api.starts_with("argoproj.io/") {
            let mut sources: Vec<(yaml::NodeId, Vec<String>)> = Vec::new();
            if let Some(src) = doc.get_path(root, &["spec", "source"]) {
                sources.push((src, vec!["spec".into(), "source".into()]));
            }
            if let Some(list) = doc.get_path(root, &["spec", "sources"]) {
                for (j, &src) in doc.items(list).iter().enumerate() {
                    sources.push((src, vec!["spec".into(), "sources".into(), j.to_string()]));
                }
            }
            for (src, keys) in sources {
                let repo_url = s(src, &["repoURL"]).unwrap_or_default();
                let version = s(src, &["targetRevision"]);
                let at = doc.location(
                    doc.get(src, "targetRevision")
                        .or_else(|| doc.get(src, "chart"))
                        .unwrap_or(src),
                    file,
                );
                let source = match (s(src, &["chart"]), s(src, &["path"])) {
                    (Some(chart), _) if repo_url.starts_with("http") => ChartSource::Classic {
                        url: repo_url.clone(),
                        chart,
                        version,
                    },
                    (Some(chart), _) => {
                        let base = repo_url.trim_start_matches("oci://").trim_end_matches('/');
                        ChartSource::Oci {
                            repository: format!("{base}/{chart}"),
                            version,
                        }
                    }
                    // A path with a Chart.yaml in this repository.
                    (None, Some(p))
                        if reader
                            .read(&kustomize::join(Path::new(""), &p).join("Chart.yaml"))
                            .is_some() =>
                    {
                        ChartSource::Local {
                            dir: kustomize::join(Path::new(""), &p),
                        }
                    }
                    _ => continue,
                };
                let mut layers = Vec::new();
                let helm = doc.get(src, "helm");
                if let ChartSource::Local { dir } = &source
                    && let Some(files) = helm.and_then(|h| doc.get(h, "valueFiles"))
                {
                    for &f in doc.items(files) {
                        let Some(rel) = doc.scalar(f) else { continue };
                        let p = kustomize::join(dir, rel);
                        if let Some(bytes) = reader.read(&p) {
                            layers.push(Layer::Text {
                                text: String::from_utf8_lossy(&bytes).into_owned(),
                                at: doc.location(f, file),
                            });
                        }
                    }
                }
                if helm.is_some() {
                    let mut k = keys.clone();
                    k.push("helm".into());
                    layers.push(Layer::Argo {
                        file,
                        text: text.clone(),
                        doc: i,
                        path: k,
                    });
                }
                out.push(Release {
                    label: format!("Application/{name}"),
                    source,
                    at,
                    layers,
                    rendering: release_render::argo(doc, root, src, &name),
                });
            }
        } else if is_kustomization && let Some(list) = doc.get(root, "helmCharts") {
            let dir = path.parent().unwrap_or(Path::new(""));
            for (j, &c) in doc.items(list).iter().enumerate() {
                let (Some(chart), Some(repo)) = (s(c, &["name"]), s(c, &["repo"])) else {
                    continue;
                };
                let version = s(c, &["version"]);
                let named = doc.get(c, "version").or_else(|| doc.get(c, "name"));
                let at = doc.location(named.unwrap_or(c), file);
                let source = match flux::oci_repository(&repo) {
                    Some(base) => ChartSource::Oci {
                        repository: format!("{base}/{chart}"),
                        version,
                    },
                    None if repo.starts_with("http") => ChartSource::Classic {
                        url: repo,
                        chart: chart.clone(),
                        version,
                    },
                    None => continue,
                };
                let mut layers = Vec::new();
                if let Some(f) = doc.get(c, "valuesFile")
                    && let Some(rel) = doc.scalar(f)
                    && let Some(bytes) = reader.read(&kustomize::join(dir, rel))
                {
                    layers.push(Layer::Text {
                        text: String::from_utf8_lossy(&bytes).into_owned(),
                        at: doc.location(f, file),
                    });
                }
                if doc.get(c, "valuesInline").is_some() {
                    layers.push(Layer::Node {
                        file,
                        text: text.clone(),
                        doc: i,
                        path: vec!["helmCharts".into(), j.to_string(), "valuesInline".into()],
                    });
                }
                out.push(Release {
                    label: format!("helmCharts[{chart}]"),
                    source,
                    at,
                    layers,
                    rendering: release_render::kustomize(doc, c),
                });
            }
        }
    }
    out
}

/// The release's values merged over the chart's defaults, in Helm's order: subcharts'
/// defaults, the chart's, then each layer.
pub fn merged_values(release: &Release, chart: &ChartFiles) -> Merged {
    let mut m = Merged::new();
    let defaults = Place::At(Location {
        file: CHART_FILE,
        start: 0,
        end: 0,
    });
    for (key, sub) in &chart.subcharts {
        if let Some(v) = &sub.values {
            text_layer(&mut m, v, defaults, Some(key));
        }
    }
    if let Some(v) = &chart.values {
        text_layer(&mut m, v, defaults, None);
    }
    apply_layers(&mut m, release);
    m
}

/// Every image the chart's values name once the release's values are merged, each at the
/// place in the change that decides it (the override, else the chart version).
pub fn effective_images(release: &Release, chart: &ChartFiles) -> Vec<Occurrence> {
    let mut m = merged_values(release, chart);
    let root = m.root();
    let keys: Vec<&str> = chart.subcharts.iter().map(|(k, _)| k.as_str()).collect();
    let mut views = vec![(
        m.view(root, &keys, &[]),
        chart.app_version.clone(),
        format!("{} chart {} values", release.label, chart.name),
    )];
    let global = m
        .doc
        .entries(root)
        .iter()
        .find(|(k, _)| m.doc.scalar(*k) == Some("global"))
        .copied();
    for (key, sub) in &chart.subcharts {
        if let Some(node) = m.doc.get(root, key).filter(|n| m.doc.is_map(*n)) {
            let view = m.view(node, &["global"], &global.into_iter().collect::<Vec<_>>());
            views.push((
                view,
                sub.app_version.clone(),
                format!("{} chart {}/{key} values", release.label, chart.name),
            ));
        }
    }
    let mut out = Vec::new();
    for (view, app_version, label) in views {
        values::extract(
            &Values {
                doc: &m.doc,
                root: view,
                file: CHART_FILE,
                label,
                default_tag: app_version.map(|v| (v, "the chart's appVersion".to_string())),
                shift: None,
            },
            &mut out,
        );
    }
    for o in &mut out {
        if o.location.file == CHART_FILE {
            o.location = release.at;
        }
    }
    out
}

/// The occurrence of a classic chart's version, decided from its repository's index: a
/// range over a name that stands for the chart (`host/path/chart`).
pub fn classic_version(release: &Release) -> Option<(Occurrence, (String, String))> {
    let ChartSource::Classic {
        url,
        chart,
        version,
    } = &release.source
    else {
        return None;
    };
    let (domain, path) = index_key(url, chart)?;
    let constraint = match version.as_deref() {
        Some(v) if flux::exact_version(v) => format!("={v}"),
        Some(v) => v.to_string(),
        None => "*".into(),
    };
    Some((
        Occurrence {
            location: release.at,
            value: ImageValue::Range {
                repository: format!("{domain}/{path}"),
                constraint,
            },
            context: format!("{} chart {chart}", release.label),
            previous: None,
        },
        (domain, path),
    ))
}

/// The repository-shaped name a classic chart is judged under: its index host, and the
/// index path with the chart name, in the characters a repository name allows.
fn index_key(url: &str, chart: &str) -> Option<(String, String)> {
    let u = reqwest::Url::parse(url).ok()?;
    let host = u.host_str()?;
    let domain = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let clean = |s: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .collect::<String>()
            .trim_matches(['-', '.'])
            .to_string()
    };
    let mut parts: Vec<String> = u
        .path_segments()
        .into_iter()
        .flatten()
        .map(clean)
        .filter(|p| !p.is_empty())
        .collect();
    parts.push(clean(chart));
    Some((domain, parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFiles;
    impl Reader for NoFiles {
        fn read(&self, _: &Path) -> Option<Vec<u8>> {
            None
        }
    }

    fn chart() -> ChartFiles {
        ChartFiles {
            name: "podinfo".into(),
            version: Some("6.5.4".into()),
            app_version: Some("6.5.4".into()),
            values: Some("image:\n  repository: ghcr.io/stefanprodan/podinfo\n  tag: \"\"\nredis:\n  enabled: true\n".into()),
            subcharts: vec![(
                "redis".into(),
                ChartFiles {
                    name: "redis".into(),
                    app_version: Some("7.2".into()),
                    values: Some("image:\n  repository: redis\n".into()),
                    ..Default::default()
                },
            )],
        }
    }

    #[test]
    fn a_tag_only_override_takes_the_repository_from_the_chart() {
        let text: Arc<str> = "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: podinfo}\nspec: {url: https://charts.example.com/podinfo}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: podinfo}\nspec:\n  chart:\n    spec:\n      chart: podinfo\n      version: 6.5.4\n      sourceRef: {kind: HelmRepository, name: podinfo}\n  values:\n    image:\n      tag: 6.5.99\n".into();
        let repos = vec![flux::HelmRepository {
            object: flux::ObjectRef {
                name: "podinfo".into(),
                namespace: None,
            },
            url: "https://charts.example.com/podinfo".into(),
            oci: false,
        }];
        let rels = releases(
            3,
            Path::new("r.yaml"),
            &text,
            &Lookups {
                repos: &repos,
                reader: &NoFiles,
                config_maps: &|_, _, _| None,
                oci_repositories: &|_| None,
            },
        );
        assert_eq!(rels.len(), 1);
        let found = effective_images(&rels[0], &chart());
        let src = SourceFile::new("r.yaml".into(), &*text);
        let got: Vec<(usize, String)> = found
            .iter()
            .map(|o| {
                let ImageValue::Text(t) = &o.value else {
                    panic!()
                };
                (src.position(o.location.start).line, t.clone())
            })
            .collect();
        assert_eq!(
            got,
            [
                (17, "ghcr.io/stefanprodan/podinfo:6.5.99".to_string()),
                (13, "redis:7.2".to_string())
            ]
        );
        let (version, key) = classic_version(&rels[0]).unwrap();
        assert_eq!(key, ("charts.example.com".into(), "podinfo/podinfo".into()));
        assert!(
            matches!(version.value, ImageValue::Range { ref constraint, .. } if constraint == "=6.5.4")
        );
    }
}
