//! Finds image references in Kubernetes objects: the containers of every pod spec, image
//! volumes, the items of a `List`, the custom resources of `operators`' table, and in kinds
//! no one knows, pod-spec-shaped `containers` lists and then the `heuristic`. Each node is
//! reported once: one reader owns each kind. Documents without `apiVersion` and `kind` are
//! not manifests and yield nothing.

use super::operators::{self, Owner};
use super::yaml::{Document, NodeId, NodeKind, VISIT_BUDGET};
use super::{ImageValue, Occurrence, heuristic};
use crate::finding::Location;

/// Container lists of a pod spec, in the order Kubernetes documents them.
const CONTAINER_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];
/// How deep the fallback search for pod specs in unknown kinds goes.
const FALLBACK_DEPTH: usize = 24;

/// The kind a kubeadm patch file patches, when the file is named as kubeadm's `--patches`
/// directory (`patches.directory` in its config) wants: `target[suffix][+patchtype].extension`,
/// target `etcd`, `kube-apiserver`, `kube-controller-manager` or `kube-scheduler` (static
/// Pods) or `corednsdeployment` (a Deployment), patchtype `strategic`, `merge` or `json`,
/// extension `yaml` or `json` (kubeadm's `patches.go` `parseFilename`).
pub fn kubeadm_patch_kind(file_name: &str) -> Option<&'static str> {
    let stem = file_name
        .strip_suffix(".yaml")
        .or_else(|| file_name.strip_suffix(".json"))?;
    let stem = match stem.rsplit_once('+') {
        Some((head, "strategic" | "merge" | "json")) => head,
        Some(_) => return None,
        None => stem,
    };
    let (target, kind) = [
        ("kube-apiserver", "Pod"),
        ("kube-controller-manager", "Pod"),
        ("kube-scheduler", "Pod"),
        ("etcd", "Pod"),
        ("corednsdeployment", "Deployment"),
    ]
    .into_iter()
    .find(|(t, _)| stem.starts_with(t))?;
    let suffix = &stem[target.len()..];
    (!suffix.contains(['.', '+'])).then_some(kind)
}

/// Appends the image occurrences of one YAML document, the heuristic included.
pub fn extract(doc: &Document, file: usize, out: &mut Vec<Occurrence>) {
    extract_with(doc, file, true, out);
}

/// Appends the image occurrences of one YAML document; `heuristic` guesses images in kinds
/// no one knows.
pub fn extract_with(doc: &Document, file: usize, heuristic: bool, out: &mut Vec<Occurrence>) {
    let Some(root) = doc.root else { return };
    let mut walk = Walk {
        doc,
        file,
        heuristic,
        budget: VISIT_BUDGET,
    };
    walk.object(root, out, 0);
}

/// One document's walk: what every object of it shares.
struct Walk<'a> {
    doc: &'a Document,
    file: usize,
    heuristic: bool,
    budget: usize,
}

impl Walk<'_> {
    fn object(&mut self, obj: NodeId, out: &mut Vec<Occurrence>, depth: usize) {
        let (doc, file) = (self.doc, self.file);
        let (Some(api_version), Some(kind)) = (
            doc.get(obj, "apiVersion").and_then(|n| doc.str(n)),
            doc.get(obj, "kind").and_then(|n| doc.str(n)),
        ) else {
            return;
        };
        let name = doc
            .get_path(obj, &["metadata", "name"])
            .and_then(|n| doc.str(n))
            .unwrap_or("");
        let label = if name.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}/{name}")
        };
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        let mut specs: Vec<NodeId> = Vec::new();
        let mut push = |path: &[&str]| {
            if let Some(n) = doc.get_path(obj, path) {
                specs.push(n);
            }
        };
        match kind {
            "List" if depth < 4 => {
                if let Some(items) = doc.get(obj, "items") {
                    for &item in doc.items(items) {
                        self.object(item, out, depth + 1);
                    }
                }
                return;
            }
            "CustomResourceDefinition" => return,
            "Pod" => push(&["spec"]),
            "PodTemplate" => push(&["template", "spec"]),
            "CronJob" => push(&["spec", "jobTemplate", "spec", "template", "spec"]),
            "Deployment"
            | "ReplicaSet"
            | "StatefulSet"
            | "DaemonSet"
            | "Job"
            | "ReplicationController"
            | "Rollout"
            | "DeploymentConfig" => push(&["spec", "template", "spec"]),
            _ => {}
        }
        if specs.is_empty() {
            match operators::owner(group, kind) {
                Owner::Table(rows) => {
                    let found = operators::extract(doc, obj, rows, file, &label, out);
                    specs.extend(found.pod_specs);
                    if depth < 4 {
                        for embedded in found.objects {
                            self.object(embedded, out, depth + 1);
                        }
                    }
                }
                // Read by `flux`, `argocd`, or holding no deployed image (policies' patterns).
                Owner::Elsewhere | Owner::Nobody => {}
                Owner::Unknown if !is_core_kind(group, kind) => {
                    // An unknown kind: any mapping that holds a pod-spec-shaped `containers`
                    // list, then the heuristic for what those do not hold.
                    let mut found = Vec::new();
                    find_pod_specs(doc, obj, 0, &mut found, &mut self.budget);
                    let before = out.len();
                    for spec in found {
                        pod_spec(doc, spec, file, &label, out);
                    }
                    if self.heuristic && !operators::built_in(group) {
                        let claimed = out[before..].iter().map(|o| o.location.start).collect();
                        heuristic::extract(doc, obj, file, &label, &claimed, &mut self.budget, out);
                    }
                }
                Owner::Unknown => {}
            }
        }
        for spec in specs {
            pod_spec(doc, spec, file, &label, out);
        }
    }
}

/// Core kinds that never hold images; searching them would only find false positives.
fn is_core_kind(group: &str, kind: &str) -> bool {
    group.is_empty()
        && matches!(
            kind,
            "Service" | "ConfigMap" | "Secret" | "Namespace" | "ServiceAccount" | "Endpoints"
        )
}

fn find_pod_specs(
    doc: &Document,
    node: NodeId,
    depth: usize,
    specs: &mut Vec<NodeId>,
    budget: &mut usize,
) {
    if depth > FALLBACK_DEPTH || *budget == 0 {
        return;
    }
    *budget -= 1;
    match &doc.node(node).kind {
        NodeKind::Map(entries) => {
            if doc
                .get(node, "containers")
                .is_some_and(|c| is_container_list(doc, c))
            {
                specs.push(node);
                return;
            }
            for &(_, v) in entries {
                find_pod_specs(doc, v, depth + 1, specs, budget);
            }
        }
        NodeKind::Seq(items) => {
            for &v in items {
                find_pod_specs(doc, v, depth + 1, specs, budget);
            }
        }
        NodeKind::Scalar { .. } => {}
    }
}

fn is_container_list(doc: &Document, list: NodeId) -> bool {
    let items = doc.items(list);
    !items.is_empty()
        && items
            .iter()
            .all(|&c| doc.is_map(c) && doc.get(c, "image").is_some())
}

/// The containers and image volumes of a pod spec. A container without an image is an
/// empty image: kubelet refuses it.
pub(super) fn pod_spec(
    doc: &Document,
    spec: NodeId,
    file: usize,
    label: &str,
    out: &mut Vec<Occurrence>,
) {
    for list in CONTAINER_LISTS {
        let Some(containers) = doc.get(spec, list) else {
            continue;
        };
        for (i, &c) in doc.items(containers).iter().enumerate() {
            if !doc.is_map(c) {
                continue;
            }
            let cname = doc
                .get(c, "name")
                .and_then(|n| doc.scalar(n))
                .map_or_else(|| i.to_string(), str::to_string);
            let context = format!("{label} {list}[{cname}]");
            match doc.get(c, "image") {
                Some(image) => out.push(Occurrence::at(doc, image, file, context)),
                None => {
                    let n = doc.node(c);
                    out.push(Occurrence {
                        location: Location {
                            file,
                            start: n.start,
                            end: n.start,
                        },
                        value: ImageValue::Missing,
                        context,
                        previous: None,
                    });
                }
            }
        }
    }
    if let Some(volumes) = doc.get(spec, "volumes") {
        for &v in doc.items(volumes) {
            if let Some(reference) = doc.get_path(v, &["image", "reference"]) {
                let vname = doc.get(v, "name").and_then(|n| doc.scalar(n)).unwrap_or("");
                let context = format!("{label} volumes[{vname}]");
                out.push(Occurrence::at(doc, reference, file, context));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::yaml;
    use crate::source::SourceFile;

    /// (line, column, value) for every occurrence in the text.
    fn found(text: &str) -> Vec<(usize, usize, String)> {
        let f = SourceFile::new("t.yaml".into(), text);
        let parsed = yaml::parse(&f);
        assert!(parsed.error.is_none(), "{:?}", parsed.error);
        let mut out = Vec::new();
        for d in &parsed.documents {
            extract(d, 0, &mut out);
        }
        out.iter()
            .map(|o| {
                let p = f.position(o.location.start);
                let v = crate::manifest::shown(&o.value);
                (p.line, p.column, v)
            })
            .collect()
    }

    fn t(line: usize, col: usize, v: &str) -> (usize, usize, String) {
        (line, col, v.to_string())
    }

    #[test]
    fn deployment_containers_and_init_containers() {
        let y = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      initContainers:\n      - name: init\n        image: busybox:1.36\n      containers:\n      - name: app\n        image: \"ghcr.io/acme/web:v1\"\n      volumes:\n      - name: data\n        image:\n          reference: ghcr.io/acme/data:v2\n";
        assert_eq!(
            found(y),
            [
                t(12, 16, "ghcr.io/acme/web:v1"),
                t(9, 16, "busybox:1.36"),
                t(16, 22, "ghcr.io/acme/data:v2")
            ]
        );
    }

    #[test]
    fn every_workload_kind_is_found() {
        let tpl = "spec:\n  template:\n    spec:\n      containers:\n      - image: img\n";
        for (api, kind) in [
            ("apps/v1", "Deployment"),
            ("apps/v1", "ReplicaSet"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "DaemonSet"),
            ("batch/v1", "Job"),
            ("v1", "ReplicationController"),
            ("argoproj.io/v1alpha1", "Rollout"),
            ("apps.openshift.io/v1", "DeploymentConfig"),
            ("serving.knative.dev/v1", "Service"),
        ] {
            let y = format!("apiVersion: {api}\nkind: {kind}\n{tpl}");
            assert_eq!(found(&y), [t(7, 16, "img")], "{kind}");
        }
        let cron = "apiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n          - image: c\n";
        assert_eq!(found(cron), [t(9, 20, "c")]);
        let pod = "apiVersion: v1\nkind: Pod\nspec:\n  ephemeralContainers:\n  - image: dbg\n";
        assert_eq!(found(pod), [t(5, 12, "dbg")]);
        let pt = "apiVersion: v1\nkind: PodTemplate\ntemplate:\n  spec:\n    containers:\n    - image: p\n";
        assert_eq!(found(pt), [t(6, 14, "p")]);
    }

    #[test]
    fn list_items_and_unknown_kinds() {
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec:\n    containers: [{image: a}]\n";
        assert_eq!(found(list), [t(7, 26, "a")]);
        let crd = "apiVersion: example.com/v1\nkind: Widget\nspec:\n  runner:\n    containers:\n    - image: w\n";
        assert_eq!(found(crd), [t(6, 14, "w")]);
        let svc = "apiVersion: v1\nkind: Service\nspec:\n  x:\n    containers:\n    - image: no\n";
        assert!(found(svc).is_empty());
    }

    #[test]
    fn files_without_kind_are_not_manifests() {
        assert!(found("containers:\n- image: x\n").is_empty());
        assert!(found("- a\n- b\n").is_empty());
        assert!(found("just text\n").is_empty());
    }

    #[test]
    fn positions_hold_through_documents_comments_flow_and_quotes() {
        let y = "# c\n---\napiVersion: v1\nkind: Pod\nspec:\n  containers:\n  # x\n  - {name: a, image: 'nginx:1'}\n---\napiVersion: v1\nkind: Pod\nspec: {containers: [{image: \"b\"}]}\n";
        assert_eq!(found(y), [t(8, 22, "nginx:1"), t(12, 29, "b")]);
    }

    #[test]
    fn crlf_bom_block_scalars_and_aliases() {
        let y = "\u{feff}apiVersion: v1\r\nkind: Pod\r\nspec:\r\n  containers:\r\n  - image: &i redis:7\r\n  - image: *i\r\n  - image: >-\r\n      alpine:3\r\n";
        let got = found(y);
        assert_eq!(got[0], t(5, 15, "redis:7"));
        assert_eq!(
            got[1],
            t(5, 15, "redis:7"),
            "an alias points at its anchored scalar"
        );
        // A block scalar is reported where its text starts, after the indicator line.
        assert_eq!(got[2], t(8, 7, "alpine:3"));
    }

    #[test]
    fn non_strings_and_empties_are_classified() {
        let y = "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - image: 1.10\n  - image:\n  - image: ''\n  - name: noimage\n  - image: {a: b}\n  - image: true\n";
        let got = found(y);
        assert_eq!(
            got.iter().map(|g| g.2.as_str()).collect::<Vec<_>>(),
            [
                "<a number>",
                "<empty>",
                "<empty>",
                "<missing>",
                "<a mapping>",
                "<a boolean>"
            ]
        );
    }

    #[test]
    fn kubeadm_patch_files_by_their_names() {
        for (name, kind) in [
            ("kube-controller-manager.yaml", Some("Pod")),
            ("kube-apiserver0+merge.yaml", Some("Pod")),
            ("etcd.json", Some("Pod")),
            ("kube-scheduler-extra+strategic.yaml", Some("Pod")),
            ("corednsdeployment+json.json", Some("Deployment")),
            ("kube-apiserver.yml", None),
            ("kube-apiserver+other.yaml", None),
            ("deployment.yaml", None),
            ("kube-proxy.yaml", None),
        ] {
            assert_eq!(kubeadm_patch_kind(name), kind, "{name}");
        }
    }

    #[test]
    fn alias_bomb_is_bounded() {
        let mut y = String::from(
            "apiVersion: example.com/v1\nkind: Bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n",
        );
        for i in 1..10 {
            let prev = i - 1;
            y.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        let start = std::time::Instant::now();
        assert!(found(&y).is_empty());
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
