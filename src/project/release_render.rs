//! How each tool hands a chart release to Helm, for `--render`: the release name, the
//! namespace, whether test hooks and hooks are deployed, and the release's own values merged
//! in the tool's order (without the chart's defaults, which helm merges itself, so a `null`
//! still deletes a default). The values layers themselves are applied here for both the
//! native merge (`charts::merged_values`) and the values file helm is given.

pub use super::release::Rendering;
use super::release::{Layer, Release};
use crate::manifest::merge::{Merged, Place};
use crate::manifest::{argocd, yaml};
use crate::source::SourceFile;

fn text(doc: &yaml::Document, n: yaml::NodeId, path: &[&str]) -> Option<String> {
    doc.get_path(n, path)
        .and_then(|n| doc.scalar(n))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A Flux HelmRelease (helm-controller's `GetReleaseName` and `release.ShortenName`): the
/// release is `spec.releaseName`, else `<targetNamespace>-<name>` when a target namespace
/// is set, else the object's name, shortened past 53 characters to 40 and a hash; the
/// namespace is `spec.targetNamespace`, else the object's. Tests run only with
/// `spec.test.enable: true` (helm-controller's default is off, so test hooks are never
/// created).
pub fn flux(doc: &yaml::Document, root: yaml::NodeId, name: &str) -> Rendering {
    let target = text(doc, root, &["spec", "targetNamespace"]);
    let release = text(doc, root, &["spec", "releaseName"]).unwrap_or_else(|| match &target {
        Some(t) => format!("{t}-{name}"),
        None => name.to_string(),
    });
    Rendering {
        name: shorten(&release),
        namespace: target
            .or_else(|| text(doc, root, &["metadata", "namespace"]))
            .unwrap_or_else(|| "default".into()),
        tests: text(doc, root, &["spec", "test", "enable"]).as_deref() == Some("true"),
        hooks: true,
    }
}

/// helm-controller's `ShortenName`: a name longer than 53 characters becomes its first 40,
/// `-`, and the first 12 hex digits of its SHA-256.
fn shorten(name: &str) -> String {
    if name.len() <= 53 {
        return name.to_string();
    }
    use sha2::Digest;
    let sum = sha2::Sha256::digest(name.as_bytes());
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    let cut = (0..=40)
        .rev()
        .find(|&i| name.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}-{}", &name[..cut], &hex[..12])
}

/// An Argo CD Helm source: `helm.releaseName`, else the Application's name; the
/// destination's namespace. Argo CD leaves test hooks out of what it syncs (its Helm hook
/// table: "test-success, test-failure: not supported"), so tests are never rendered.
pub fn argo(doc: &yaml::Document, root: yaml::NodeId, src: yaml::NodeId, name: &str) -> Rendering {
    Rendering {
        name: text(doc, src, &["helm", "releaseName"]).unwrap_or_else(|| name.to_string()),
        namespace: text(doc, root, &["spec", "destination", "namespace"])
            .unwrap_or_else(|| "default".into()),
        tests: false,
        hooks: true,
    }
}

/// A kustomize `helmCharts` entry (`HelmChart.AsHelmArgs`): `releaseName` (kustomize asks
/// helm to generate one when it is empty; `release-name`, helm's own placeholder, stands
/// for it), `namespace`, and tests and hooks unless `skipTests` or `skipHooks`.
pub fn kustomize(doc: &yaml::Document, entry: yaml::NodeId) -> Rendering {
    let flag = |k: &str| text(doc, entry, &[k]).as_deref() == Some("true");
    Rendering {
        name: text(doc, entry, &["releaseName"]).unwrap_or_else(|| "release-name".into()),
        namespace: text(doc, entry, &["namespace"]).unwrap_or_else(|| "default".into()),
        tests: !flag("skipTests"),
        hooks: !flag("skipHooks"),
    }
}

/// The release's own values, merged in Helm's order with their `null`s kept: the values
/// file `helm template` is given.
pub fn user_values(release: &Release) -> serde_json::Value {
    let mut m = Merged::user();
    apply_layers(&mut m, release);
    m.to_json()
}

fn parse(text: &str) -> yaml::Parsed {
    yaml::parse(&SourceFile::new("values".into(), text))
}

/// Follows a path of keys and sequence indexes.
fn follow(doc: &yaml::Document, root: yaml::NodeId, path: &[String]) -> Option<yaml::NodeId> {
    path.iter().try_fold(root, |n, k| match k.parse::<usize>() {
        Ok(i) if !doc.is_map(n) => doc.items(n).get(i).copied(),
        _ => doc.get(n, k),
    })
}

/// A text layered with every node at one place.
pub(super) fn text_layer(m: &mut Merged, text: &str, place: Place, under: Option<&str>) {
    for d in &parse(text).documents {
        if let Some(root) = d.root {
            match under {
                Some(key) => m.layer_under(key, d, root, place),
                None => m.layer(d, root, place),
            }
        }
    }
}

/// Merges each of the release's values layers, in order.
pub(super) fn apply_layers(m: &mut Merged, release: &Release) {
    for layer in &release.layers {
        match layer {
            Layer::Node {
                file,
                text,
                doc,
                path,
            } => {
                let parsed = parse(text);
                if let Some(d) = parsed.documents.get(*doc)
                    && let Some(n) = d.root.and_then(|r| follow(d, r, path))
                {
                    m.layer(d, n, Place::Own(*file));
                }
            }
            Layer::Argo {
                file,
                text,
                doc,
                path,
            } => {
                let source = SourceFile::new("values".into(), &**text);
                let parsed = yaml::parse(&source);
                if let Some(d) = parsed.documents.get(*doc)
                    && let Some(n) = d.root.and_then(|r| follow(d, r, path))
                {
                    argocd::apply_helm_layers(m, d, &source, n, *file);
                }
            }
            Layer::Text { text, at } => text_layer(m, text, Place::At(*at), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> (yaml::Parsed, yaml::NodeId) {
        let p = parse(text);
        let root = p.documents[0].root.unwrap();
        (p, root)
    }

    #[test]
    fn flux_names_the_release_as_helm_controller_does() {
        let (p, r) =
            first("metadata: {name: web, namespace: apps}\nspec: {targetNamespace: prod}\n");
        let got = flux(&p.documents[0], r, "web");
        assert_eq!(
            (got.name.as_str(), got.namespace.as_str()),
            ("prod-web", "prod")
        );
        assert!(!got.tests && got.hooks);
        let (p, r) = first("metadata: {name: web}\nspec: {releaseName: w, test: {enable: true}}\n");
        let got = flux(&p.documents[0], r, "web");
        assert_eq!(
            (got.name.as_str(), got.namespace.as_str()),
            ("w", "default")
        );
        assert!(got.tests);
        // helm-controller's own example of a shortened name.
        let long = "some-front-appended-namespace-release-with-a-very-long-name";
        let short = shorten(long);
        assert_eq!(short.len(), 53);
        assert!(
            short.starts_with("some-front-appended-namespace-release-wi-"),
            "{short}"
        );
    }

    #[test]
    fn kustomize_skips_tests_and_hooks_only_when_asked() {
        let (p, r) = first("name: x\nreleaseName: r\nskipTests: true\n");
        let got = kustomize(&p.documents[0], r);
        assert_eq!(got.name, "r");
        assert!(!got.tests && got.hooks);
    }
}
