//! Unit tests of whole builds from files in memory: the kustomize rules the differential
//! corpus found (issue 15), each against the kustomize v5.8.1 source it follows.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{Effective, Problem, effective};
use crate::manifest::ImageValue;
use crate::reader::Reader;

struct Mem(HashMap<PathBuf, String>);

impl Reader for Mem {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        self.0.get(path).map(|s| s.clone().into_bytes())
    }
}

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'nginx:1'}]\n";

/// The build of `dir` among `files`.
fn built(dir: &str, files: &[(&str, &str)]) -> Effective {
    let mem = Mem(files
        .iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect());
    effective(Path::new(dir), &mem)
}

/// A base (`base/deploy.yaml`, DEPLOY, under the kustomization `base`) and `others`.
fn with_base<'a>(base: &'a str, others: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut files = vec![
        ("base/deploy.yaml", DEPLOY),
        ("base/kustomization.yaml", base),
    ];
    files.extend_from_slice(others);
    files
}

/// The sorted images `dir` builds to, or `None` when the build fails.
fn images(dir: &str, files: &[(&str, &str)]) -> Option<Vec<String>> {
    let e = built(dir, files);
    if e.record.failed {
        assert!(
            e.record
                .notes
                .iter()
                .any(|n| n.problem == Problem::Fails && n.at.is_some()),
            "a failure is noted at an input: {:?}",
            e.record.notes
        );
        return None;
    }
    let mut out: Vec<String> = e
        .occurrences
        .iter()
        .map(|o| match &o.value {
            ImageValue::Text(t) => t.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    out.sort();
    Some(out)
}

#[test]
fn a_strategic_merge_patch_keeps_the_resources_name() {
    // issue 15: api/resource/resource.go `ApplySmPatch` restores kind, name and namespace
    // after the merge, so a later patch targets the name the resource had, not the patch's.
    let k = "resources: [deploy.yaml]\nnamePrefix: dev-\npatches:\n- target: {kind: Deployment}\n  patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: other}\n- target: {name: dev-web}\n  patch: |\n    - {op: replace, path: /spec/template/spec/containers/0/image, value: 'nginx:2'}\n";
    let overlay = k
        .replace("deploy.yaml", "../base")
        .replace("namePrefix: dev-\n", "");
    let files = with_base(
        "resources: [deploy.yaml]\nnamePrefix: dev-\n",
        &[("overlay/kustomization.yaml", &overlay)],
    );
    assert_eq!(images("overlay", &files), Some(vec!["nginx:2".to_string()]));
}

#[test]
fn a_patch_without_target_finds_a_previous_name() {
    // issue 15: api/resmap/reswrangler.go `GetById` matches any of `PrevIds()` and the
    // current id; the prefix and namespace transformers store the id before changing it.
    let patch = "patches:\n- patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: a-web}\n    spec:\n      template:\n        spec:\n          containers: [{name: web, image: 'nginx:prev'}]\n";
    let overlay = format!("resources: [../mid]\n{patch}");
    let files = with_base(
        "resources: [deploy.yaml]\nnamePrefix: a-\n",
        &[
            (
                "mid/kustomization.yaml",
                "resources: [../base]\nnamePrefix: b-\nnamespace: ns\n",
            ),
            ("overlay/kustomization.yaml", &overlay),
        ],
    );
    assert_eq!(
        images("overlay", &files),
        Some(vec!["nginx:prev".to_string()])
    );
}

#[test]
fn an_id_includes_the_version() {
    // issue 15: kyaml/resid/resid.go `Equals` compares group, version, kind, name and the
    // effective namespace, so a patch for apps/v1beta1 does not reach apps/v1 (and fails).
    let k = "resources: [deploy.yaml]\npatches:\n- patch: |\n    apiVersion: apps/v1beta1\n    kind: Deployment\n    metadata: {name: web}\n";
    assert_eq!(
        images("", &[("deploy.yaml", DEPLOY), ("kustomization.yaml", k)]),
        None
    );
    let old = DEPLOY.replace("apps/v1", "apps/v1beta1");
    let k = "resources: [deploy.yaml, old.yaml]\n";
    let built = images(
        "",
        &[
            ("deploy.yaml", DEPLOY),
            ("old.yaml", &old),
            ("kustomization.yaml", k),
        ],
    );
    assert_eq!(built.map(|v| v.len()), Some(2), "not a duplicate id");
}

#[test]
fn common_annotations_reach_an_annotation_selector() {
    // issue 15: the AnnotationsTransformer runs before PatchJson6902Transformer and in the
    // base, so an overlay's annotationSelector sees commonAnnotations.
    let files = with_base(
        "resources: [deploy.yaml]\ncommonAnnotations: {owner: base}\n",
        &[(
            "overlay/kustomization.yaml",
            "resources: [../base]\npatches:\n- target: {annotationSelector: owner=base}\n  patch: |\n    - {op: replace, path: /spec/template/spec/containers/0/image, value: 'nginx:a'}\n",
        )],
    );
    assert_eq!(images("overlay", &files), Some(vec!["nginx:a".to_string()]));
}

#[test]
fn allow_name_change_renames_and_keeps_the_old_id() {
    // issue 15: plugin/builtin/patchtransformer `options.allowNameChange` lets the merge
    // rename; `ApplySmPatch` stores the previous id first, so the old name still matches.
    let k = "resources: [deploy.yaml]\npatches:\n- target: {kind: Deployment}\n  options: {allowNameChange: true}\n  patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: renamed}\n- target: {name: renamed}\n  patch: |\n    - {op: add, path: /spec/template/spec/containers/-, value: {name: b, image: 'nginx:new'}}\n- patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: web}\n    spec:\n      template:\n        spec:\n          containers: [{name: web, image: 'nginx:old'}]\n";
    assert_eq!(
        images("", &[("deploy.yaml", DEPLOY), ("kustomization.yaml", k)]),
        Some(vec!["nginx:new".to_string(), "nginx:old".to_string()])
    );
}

#[test]
fn kustomize_loads_a_kustomization_strictly() {
    // issue 15: api/types/kustomization.go `Unmarshal` (unknown fields refused, names matched
    // without regard to case), `CheckEmpty`, `EnforceFields`; api/internal/target/kusttarget.go
    // `LoadKustFile` (one kustomization file per directory).
    let build = |k: &str| images("", &[("deploy.yaml", DEPLOY), ("kustomization.yaml", k)]);
    assert_eq!(
        build("resources: [deploy.yaml]\nimage: []\n"),
        None,
        "unknown field"
    );
    assert_eq!(
        build("resources: [deploy.yaml]\nimages: [{name: nginx, tag: '2'}]\n"),
        None,
        "unknown images field"
    );
    assert_eq!(
        build("apiVersion: kustomize.config.k8s.io/v1beta1\n"),
        None,
        "empty"
    );
    assert_eq!(
        build("apiVersion: v1\nkind: Kustomization\nresources: [deploy.yaml]\n"),
        None,
        "apiVersion"
    );
    assert_eq!(
        build("Resources: [deploy.yaml]\nIMAGES: [{Name: nginx, newtag: '2'}]\n"),
        Some(vec!["nginx:2".to_string()]),
        "field names ignore case"
    );
    let two = [
        ("b/deploy.yaml", DEPLOY),
        ("b/kustomization.yaml", "resources: [deploy.yaml]\n"),
        ("b/kustomization.yml", "resources: [deploy.yaml]\n"),
        ("o/kustomization.yaml", "resources: [../b]\n"),
    ];
    assert_eq!(images("o", &two), None, "two kustomization files");
}

#[test]
fn chart_fields_in_either_spelling_are_reported_as_unmodelled() {
    // issue 15: api/types/kustomization.go `FixKustomization` turns the deprecated
    // `helmChartInflationGenerator` into `helmCharts`; both inflate charts the model does not.
    for key in ["helmCharts", "helmChartInflationGenerator"] {
        let k = format!("resources: [deploy.yaml]\n{key}:\n- name: x\n");
        let mem = Mem(HashMap::from([
            (PathBuf::from("deploy.yaml"), DEPLOY.to_string()),
            (PathBuf::from("kustomization.yaml"), k),
        ]));
        let e = effective(Path::new(""), &mem);
        assert!(
            e.record
                .notes
                .iter()
                .any(|n| n.problem == Problem::Unmodelled && n.message.contains(key)),
            "{key}: {:?}",
            e.record.notes
        );
    }
}

/// The notes of building `dir`, and whether it failed.
fn build_notes(dir: &str, files: &[(&str, &str)]) -> (bool, Vec<(Problem, String)>) {
    let e = built(dir, files);
    let notes = e
        .record
        .notes
        .into_iter()
        .map(|n| (n.problem, n.message))
        .collect();
    (e.record.failed, notes)
}

#[test]
fn a_build_with_a_remote_part_does_not_decide_what_matches_nothing() {
    // issue 15 (argo-cd examples/known-hosts): kustomize fetches a remote base, imagegate
    // does not, so a patch, an images entry or a merging generator that finds nothing in
    // what imagegate built may find it there: a Remote note, not a failure nor no-effect.
    let k = "resources:\n- https://github.com/argoproj/argo-cd//manifests?ref=stable\n- deploy.yaml\npatches:\n- patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {name: argocd-server}\n- target: {name: argocd-repo-server}\n  patch: |\n    - {op: remove, path: /spec/replicas}\nimages:\n- {name: quay.io/argoproj/argocd, newTag: v3}\nconfigMapGenerator:\n- {name: argocd-cm, behavior: merge, literals: [a=b]}\n";
    let files = [
        ("deploy.yaml", DEPLOY),
        ("o/kustomization.yaml", "resources: [..]\n"),
    ];
    let mut with_k = files.to_vec();
    with_k.push(("kustomization.yaml", k));
    let (failed, notes) = build_notes("o", &with_k);
    assert!(!failed, "{notes:?}");
    let remote = notes.iter().filter(|(p, _)| *p == Problem::Remote).count();
    assert_eq!(
        remote, 5,
        "the resource, the patch, the target, the entry, the generator: {notes:?}"
    );
    assert!(
        notes.iter().all(|(p, _)| *p == Problem::Remote),
        "{notes:?}"
    );
    // Without the remote resource each of them is decided.
    let local = k.replace(
        "- https://github.com/argoproj/argo-cd//manifests?ref=stable\n",
        "",
    );
    let (failed, _) = build_notes(
        "",
        &[("deploy.yaml", DEPLOY), ("kustomization.yaml", &local)],
    );
    assert!(failed);
}

#[test]
fn a_remote_patch_path_is_a_note_and_the_rest_is_built() {
    // issue 15: api/internal/loader/fileloader.go `Load` fetches an http(s) path
    // (kustomize examples/loadHttp); imagegate does not, and builds the rest.
    let k = "resources: [deploy.yaml]\npatches:\n- path: https://example.com/patch.yaml\n";
    let files = [("deploy.yaml", DEPLOY), ("kustomization.yaml", k)];
    assert_eq!(images("", &files), Some(vec!["nginx:1".to_string()]));
    let (_, notes) = build_notes("", &files);
    assert!(
        matches!(&notes[..], [(Problem::Remote, m)] if m.contains("remote patch")),
        "{notes:?}"
    );
}

#[test]
fn kustomize_refuses_a_string_patches_entry_and_an_empty_file() {
    // issue 15: types.Patch is a struct ("cannot unmarshal string into Go struct field
    // Kustomization.patches"); kustomization.go `CheckEmpty` ("kustomization.yaml is empty").
    let (failed, notes) = build_notes(
        "",
        &[
            ("deploy.yaml", DEPLOY),
            (
                "kustomization.yaml",
                "resources: [deploy.yaml]\npatches:\n- patch.yaml\n",
            ),
        ],
    );
    assert!(failed);
    assert!(notes[0].1.contains("that is a string"), "{notes:?}");
    for empty in ["", "# nothing yet\n", "---\n"] {
        let (failed, notes) = build_notes(
            "",
            &[("deploy.yaml", DEPLOY), ("kustomization.yaml", empty)],
        );
        assert!(failed, "{empty:?}");
        assert!(notes[0].1.contains("empty kustomization"), "{notes:?}");
    }
}

#[test]
fn builtin_plugins_are_judged_by_what_they_can_reach() {
    // issue 15 (kustomize examples/valueAdd.md, podinfo deploy/overlays): builtins that
    // cannot touch an image are no note; one that changes ids leaves a collision undecided
    // (a note where it shows) rather than a failure; others stay unmodelled.
    let ns = |n: &str| {
        format!(
            "apiVersion: builtin\nkind: NamespaceTransformer\nmetadata: {{name: ns, namespace: {n}}}\n"
        )
    };
    let (a, b) = (ns("a"), ns("b"));
    let files = with_base(
        "resources: [deploy.yaml]\n",
        &[
            (
                "a/kustomization.yaml",
                "resources: [../base]\ntransformers: [ns.yaml]\n",
            ),
            ("a/ns.yaml", &a),
            (
                "b/kustomization.yaml",
                "resources: [../base]\ntransformers: [ns.yaml]\n",
            ),
            ("b/ns.yaml", &b),
            ("o/kustomization.yaml", "resources: [../a, ../b]\n"),
        ],
    );
    let (failed, notes) = build_notes("o", &files);
    assert!(!failed, "{notes:?}");
    assert!(
        matches!(&notes[..], [(Problem::Unmodelled, m)] if m.contains("twice") && m.contains("NamespaceTransformer")),
        "{notes:?}"
    );
    // Without a transformer the same collision fails.
    let plain: Vec<(&str, &str)> = files
        .iter()
        .map(|&(p, t)| {
            (
                p,
                if p.ends_with("kustomization.yaml") {
                    t.split("transformers").next().unwrap()
                } else {
                    t
                },
            )
        })
        .collect();
    assert!(build_notes("o", &plain).0);
    // An ImageTagTransformer, a directory of transformers and an exec plugin stay notes.
    let tag = "apiVersion: builtin\nkind: ImageTagTransformer\nmetadata: {name: t}\nimageTag: {name: nginx, newTag: '2'}\n";
    let exec = "apiVersion: example.com/v1\nkind: Mine\nmetadata: {name: m}\n";
    let k = "resources: [deploy.yaml]\ntransformers: [tag.yaml, dir, exec.yaml]\n";
    let (_, notes) = build_notes(
        "",
        &[
            ("deploy.yaml", DEPLOY),
            ("kustomization.yaml", k),
            ("tag.yaml", tag),
            ("exec.yaml", exec),
            ("dir/kustomization.yaml", "resources: [../tag.yaml]\n"),
        ],
    );
    let unmodelled: Vec<&String> = notes
        .iter()
        .filter(|(p, _)| *p == Problem::Unmodelled)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(unmodelled.len(), 3, "{notes:?}");
    // A LabelTransformer whose field spec reaches containers could write an image.
    let labels = "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\nlabels: {image: x}\nfieldSpecs:\n- {path: spec/template/spec/containers, create: true}\n";
    let (_, notes) = build_notes(
        "",
        &[
            ("deploy.yaml", DEPLOY),
            (
                "kustomization.yaml",
                "resources: [deploy.yaml]\ntransformers: [l.yaml]\n",
            ),
            ("l.yaml", labels),
        ],
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
}
