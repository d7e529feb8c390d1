//! The joins, tried on the Flux fixture tree and on a changed base with its overlay.

use super::*;
use crate::reader::DiskReader;

/// The files of a tree (`only` these, when given), scanned, with repository paths.
fn scan_tree(root: &Path, only: Option<&[&str]>) -> (Vec<FileScan>, Vec<PathBuf>) {
    let mut paths: Vec<PathBuf> = ignore::WalkBuilder::new(root)
        .build()
        .flatten()
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| e.path().strip_prefix(root).unwrap().to_path_buf())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter(|p| only.is_none_or(|o| o.iter().any(|f| p == Path::new(f))))
        .collect();
    paths.sort();
    let scans = paths
        .iter()
        .enumerate()
        .map(|(i, p)| crate::manifest::scan(i, p, std::fs::read(root.join(p)).unwrap()))
        .collect();
    (scans, paths)
}

/// The joins of a tree, as `file: value (context)` lines.
fn joined(
    root: &Path,
    only: Option<&[&str]>,
    changed: &HashSet<PathBuf>,
    kustomizations: &[PathBuf],
) -> Vec<String> {
    let (scans, paths) = scan_tree(root, only);
    let reader = DiskReader {
        root: root.canonicalize().unwrap(),
    };
    let globs = globset::GlobSetBuilder::new().build().unwrap();
    let variables = Variables::default();
    let elsewhere = || Vec::new();
    let j = join(
        &Scanned {
            scans: scans.iter().map(Some).collect(),
            repo_paths: &paths,
        },
        &Side {
            reader: &reader,
            kustomizations,
            changed,
            first_extra_id: paths.len(),
            elsewhere: &elsewhere,
            helm_values: &globs,
            variables: &variables,
            remotes: &[],
        },
    );
    let file = |id: usize| {
        paths
            .get(id)
            .cloned()
            .unwrap_or_else(|| j.extra_sources[id - paths.len()].0.clone())
    };
    let mut out: Vec<String> = j
        .occurrences
        .iter()
        .map(|o| match &o.value {
            ImageValue::Text(t) => format!("{}: {t}", file(o.location.file).display()),
            other => format!("{}: {other:?}", file(o.location.file).display()),
        })
        .collect();
    out.sort();
    out
}

#[test]
fn charts_variables_and_kustomize_rewrites_are_joined_across_files() {
    let found = joined(Path::new("fixtures/flux"), None, &HashSet::new(), &[]);
    let has = |line: &str| found.iter().any(|f| f == line);
    // The HelmRelease's chart, through the HelmRepository in another file.
    assert!(
        has("apps/production/podinfo.yaml: registry.example.com:5000/charts/podinfo:6.5.4"),
        "{found:#?}"
    );
    // `${WORKER_TAG}` from the Flux Kustomization that deploys ./apps/production.
    assert!(
        has("apps/production/worker.yaml: registry.example.com:5000/acme/worker:2.1.0"),
        "{found:#?}"
    );
    // The overlay's images: entry rewrites the base's Deployment.
    assert!(
        has("apps/web/production/kustomization.yaml: registry.example.com:5000/acme/web:1.2.0"),
        "{found:#?}"
    );
}

#[test]
fn a_changed_base_is_reported_in_the_overlays_that_deploy_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |p: &str, t: &str| {
        std::fs::create_dir_all(root.join(p).parent().unwrap()).unwrap();
        std::fs::write(root.join(p), t).unwrap();
    };
    write("base/kustomization.yaml", "resources: [deploy.yaml]\n");
    write(
        "base/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        image: ghcr.io/acme/app:1\n",
    );
    write(
        "prod/kustomization.yaml",
        "resources: [../base]\nimages:\n- name: ghcr.io/acme/app\n  newTag: '2'\n",
    );
    // Only the base changed; the overlay is found by the kustomize graph, not scanned.
    let changed: HashSet<PathBuf> = [PathBuf::from("base/deploy.yaml")].into();
    let overlays = [PathBuf::from("prod/kustomization.yaml")];
    let only: &[&str] = &["base/deploy.yaml"];
    let found = joined(root, Some(only), &changed, &overlays);
    assert!(
        found.contains(&"prod/kustomization.yaml: ghcr.io/acme/app:2".to_string()),
        "{found:#?}"
    );
    // With no overlay named, nothing is derived from it.
    let none = joined(root, Some(only), &changed, &[]);
    assert!(!none.iter().any(|f| f.contains("app:2")), "{none:#?}");
}
