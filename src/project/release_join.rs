//! The chart releases of the checked files, with the `valuesFrom` ConfigMaps and Secrets
//! found among them (a Secret's `data` is base64).

use super::{Scanned, charts};
use crate::manifest::kustomize::Reader;
use crate::manifest::{flux, yaml};

/// The chart releases of the scanned files, with `valuesFrom` ConfigMaps and Secrets
/// found among them.
pub(super) fn releases(
    scanned: &Scanned<'_>,
    reader: &dyn Reader,
    repos: &[flux::HelmRepository],
) -> Vec<charts::Release> {
    let config_maps = |kind: &str, name: &str, key: &str| {
        scanned.files().find_map(|(id, s, _)| {
            let text = &s.source.text;
            if !text.contains(name) {
                return None;
            }
            yaml::parse(&s.source).documents.iter().find_map(|d| {
                let root = d.root?;
                let field = |p: &[&str]| d.get_path(root, p).and_then(|n| d.scalar(n));
                if field(&["kind"]) != Some(kind) || field(&["metadata", "name"]) != Some(name) {
                    return None;
                }
                if let Some(n) = d.get_path(root, &["stringData", key]).or_else(|| {
                    (kind == "ConfigMap")
                        .then(|| d.get_path(root, &["data", key]))
                        .flatten()
                }) {
                    return Some((d.scalar(n)?.to_string(), d.location(n, id)));
                }
                let n = d.get_path(root, &["data", key])?;
                use base64::Engine;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(d.scalar(n)?.trim())
                    .ok()?;
                Some((String::from_utf8(raw).ok()?, d.location(n, id)))
            })
        })
    };
    // An OCIRepository's chart: its URL's repository and `ref` (tag, else semver).
    let oci_repositories = |name: &str| {
        scanned.files().find_map(|(_, s, _)| {
            if !s.source.text.contains("OCIRepository") {
                return None;
            }
            yaml::parse(&s.source).documents.iter().find_map(|d| {
                let root = d.root?;
                let field = |p: &[&str]| d.get_path(root, p).and_then(|n| d.scalar(n));
                if field(&["kind"]) != Some("OCIRepository")
                    || field(&["metadata", "name"]) != Some(name)
                {
                    return None;
                }
                let repository = flux::oci_repository(field(&["spec", "url"])?)?;
                let version = field(&["spec", "ref", "tag"])
                    .or_else(|| field(&["spec", "ref", "semver"]))
                    .map(str::to_string);
                Some((repository, version))
            })
        })
    };
    let lookups = charts::Lookups {
        repos,
        reader,
        config_maps: &config_maps,
        oci_repositories: &oci_repositories,
    };
    let mut out = Vec::new();
    for (id, s, path) in scanned.files() {
        let text: std::sync::Arc<str> = std::sync::Arc::from(&*s.source.text);
        out.extend(charts::releases(id, path, &text, &lookups));
    }
    out
}
