//! Issue 15, from real GitOps repositories (kustomize's own examples, argo-cd, kubebuilder,
//! podinfo): what a kustomization names as patches is never a manifest, what kustomize
//! fetches over HTTP is a `skipped` note rather than a failed build, and plugin fields that
//! cannot touch an image say nothing. The real registry answers for the images that remain.

use std::collections::BTreeSet;

use crate::harness::*;

fn codes(run: &Run) -> BTreeSet<String> {
    run.file_codes().into_iter().collect()
}

/// kustomize examples/springboot/overlays/production and argocd-example-apps
/// plugins/kustomized-helm: a root that fails (here a missing resource) still names its
/// patch files, so they are not read as manifests (a patch without `image:` would be an
/// `empty-image` error, a patch's image a deployed reference).
#[test]
fn the_patch_files_of_a_failed_root_are_not_manifests() {
    let w = Workdir::new();
    w.write(
        "prod/kustomization.yaml",
        "resources:\n- ./all.yaml\ncomponents:\n- ../limits\npatches:\n- path: image.yaml\n",
    );
    w.write(
        "prod/image.yaml",
        &deployment("web", &["registry.example.invalid/acme/frontend:v5"]),
    );
    w.write(
        "limits/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- path: limits.yaml\n",
    );
    w.write(
        "limits/limits.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: c0\n        resources:\n          limits: {memory: 1Gi}\n",
    );
    let run = w.run(&["check", "--all", "--offline", "--format", "json", "."]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        codes(&run),
        BTreeSet::from(["kustomize-build".to_string()]),
        "{}",
        run.stdout
    );
    assert!(
        run.rows(|r| r["image"].as_str().map(str::to_string))
            .is_empty(),
        "no reference: {}",
        run.stdout
    );
}

/// argo-cd examples/known-hosts (a patch over `github.com/argoproj/argo-cd//manifests/...`)
/// and kustomize examples/loadHttp (a patch path that is a URL): kustomize fetches both;
/// imagegate does not, says so as `skipped` notes, does not call the patch unmatched or
/// missing, and still checks the images it holds.
#[test]
fn a_remote_base_or_patch_is_skipped_and_the_rest_is_checked() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    reg.push_image("acme/web", "1.0.0", DOCKER_MANIFEST);
    let w = Workdir::new();
    w.write(
        "known-hosts/kustomization.yaml",
        "resources:\n- https://github.com/argoproj/argo-cd//manifests/cluster-install?ref=stable\n- deploy.yaml\npatches:\n- path: mounts.yaml\n- target: {kind: Deployment, name: argocd-repo-server}\n  patch: |-\n    - op: add\n      path: /spec/template/spec/volumes/-\n      value: {name: ssh, emptyDir: {}}\nimages:\n- name: quay.io/argoproj/argocd\n  newTag: v3.1.0\n",
    );
    w.write(
        "known-hosts/mounts.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: argocd-server\nspec:\n  template:\n    spec:\n      containers:\n      - name: argocd-server\n        volumeMounts:\n        - {mountPath: /app/config/ssh, name: ssh-known-hosts}\n",
    );
    w.write(
        "known-hosts/deploy.yaml",
        &deployment("web", &[&format!("{h}/acme/web:1.0.0")]),
    );
    w.write(
        "load-http/kustomization.yaml",
        "resources:\n- deploy.yaml\npatches:\n- path: https://example.invalid/patch.yaml\n",
    );
    w.write(
        "load-http/deploy.yaml",
        &deployment("api", &[&format!("{h}/acme/api:2.0.0")]),
    );
    let run = w.run(&["check", "--all", "--format", "json", "."]);
    assert_eq!(
        run.code, 1,
        "acme/api:2.0.0 is not in the registry: {}",
        run.stdout
    );
    assert_eq!(
        codes(&run),
        BTreeSet::from(["skipped".to_string()]),
        "no kustomize-build, no no-effect: {}",
        run.stdout
    );
    let skipped = run.file_findings("skipped");
    let at = |file: &str, needle: &str| {
        skipped
            .iter()
            .any(|f| f["file"] == file && f["message"].as_str().is_some_and(|m| m.contains(needle)))
    };
    assert!(at("known-hosts/kustomization.yaml", "remote resource"));
    assert!(at("known-hosts/mounts.yaml", "Deployment/argocd-server"));
    assert!(at("known-hosts/kustomization.yaml", "patch target"));
    assert!(at(
        "known-hosts/kustomization.yaml",
        "quay.io/argoproj/argocd"
    ));
    assert!(at("load-http/kustomization.yaml", "remote patch"));
    assert_eq!(
        run.statuses(),
        [
            (format!("{h}/acme/web:1.0.0"), "ok".to_string()),
            (format!("{h}/acme/api:2.0.0"), "not-found".to_string()),
        ]
        .into_iter()
        .collect(),
        "{}",
        run.stdout
    );
}

/// podinfo deploy/overlays/dev (a builtin LabelTransformer under `transformers:`) and
/// kubebuilder config/default (replacements into a Certificate's dnsNames): neither can
/// change an image, so neither is a `skipped` note; an ImageTagTransformer still is.
#[test]
fn plugin_fields_that_cannot_touch_an_image_say_nothing() {
    let w = Workdir::new();
    w.write(
        "dev/kustomization.yaml",
        "resources:\n- deploy.yaml\n- cert.yaml\ntransformers:\n- labels.yaml\nreplacements:\n- source: {kind: Deployment, name: web, fieldPath: .metadata.name}\n  targets:\n  - select: {kind: Certificate}\n    fieldPaths: [.spec.dnsNames.0]\n    options: {delimiter: '.', index: 0, create: true}\n",
    );
    w.write(
        "dev/labels.yaml",
        "apiVersion: builtin\nkind: LabelTransformer\nmetadata:\n  name: labels\nlabels:\n  app.kubernetes.io/environment: dev\nfieldSpecs:\n- path: metadata/labels\n  create: true\n",
    );
    w.write(
        "dev/cert.yaml",
        "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: serving-cert\nspec:\n  dnsNames: [SERVICE.svc]\n",
    );
    w.write(
        "dev/deploy.yaml",
        &deployment("web", &["registry.example.invalid/acme/web:1.0.0"]),
    );
    let run = w.run(&["check", "--all", "--offline", "--format", "json", "dev"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(codes(&run).is_empty(), "{}", run.stdout);

    w.write(
        "dev/tags.yaml",
        "apiVersion: builtin\nkind: ImageTagTransformer\nmetadata:\n  name: tags\nimageTag:\n  name: registry.example.invalid/acme/web\n  newTag: 2.0.0\n",
    );
    let k = std::fs::read_to_string(w.path().join("dev/kustomization.yaml")).unwrap();
    w.write(
        "dev/kustomization.yaml",
        &k.replace("- labels.yaml\n", "- labels.yaml\n- tags.yaml\n"),
    );
    let run = w.run(&["check", "--all", "--offline", "--format", "json", "dev"]);
    let skipped = run.file_findings("skipped");
    assert_eq!(skipped.len(), 1, "{}", run.stdout);
    assert!(
        skipped[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("tags.yaml")),
        "{}",
        skipped[0]
    );
}

/// argo-cd resource_customizations/apps.openshift.io/DeploymentConfig/testdata/healthy.yaml
/// and manifests/dev-tilt: an image in a block scalar (`image: >-`, or a literal inline
/// patch) ends on its own line, so annotations keep their columns.
#[test]
fn an_image_in_a_block_scalar_ends_on_its_own_line() {
    let w = Workdir::new();
    w.write(
        "app/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: >-\n          registry.example.invalid/acme/web:1.0.0\n        ports: []\n",
    );
    let run = w.run(&["check", "--all", "--offline", "--format", "json", "app"]);
    let spans = run.rows(|r| {
        Some(format!(
            "{}:{}-{}:{}",
            r["line"], r["column"], r["end_line"], r["end_column"]
        ))
    });
    let value = "registry.example.invalid/acme/web:1.0.0";
    assert_eq!(spans, [format!("11:11-11:{}", 11 + value.len())]);
}
