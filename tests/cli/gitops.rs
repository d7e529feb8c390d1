//! Kustomize, Flux, Helm values and Argo CD (issue 4): the bundled Flux repository under
//! `fixtures/flux` (clusters, apps with base and overlays three levels deep, HelmReleases on
//! an OCI HelmRepository, OCIRepositories, postBuild variables, a Helm chart, an Argo CD
//! Application), with every image and chart pushed to the real registry.

use std::path::Path;

use crate::harness::*;

const PLACEHOLDER: &str = "registry.example.com:5000";

/// Copies `fixtures/flux` into a new git repository, pointing it at `host`.
fn flux_repo(host: &str) -> Workdir {
    let w = Workdir::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/flux");
    copy(&src, w.path(), host);
    git(w.path(), &["init", "-q", "-b", "main"]);
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "flux repository"]);
    git(w.path(), &["checkout", "-q", "-b", "change"]);
    w
}

fn copy(from: &Path, to: &Path, host: &str) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target, host);
        } else {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            std::fs::write(target, text.replace(PLACEHOLDER, host)).unwrap();
        }
    }
}

fn edit(w: &Workdir, file: &str, from: &str, to: &str) {
    let p = w.path().join(file);
    let text = std::fs::read_to_string(&p).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    git(w.path(), &["commit", "-q", "-am", &format!("edit {file}")]);
}

/// `imagegate check` of the committed change against `main`, as JSON.
fn check_change(w: &Workdir, extra: &[&str]) -> Run {
    let mut args = vec![
        "check",
        "--base",
        "main",
        "--no-worktree",
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    w.run(&args)
}

/// The registry holding every image and chart the fixture deploys, and the fixture
/// pointing at it.
fn fixture() -> (Registry, Workdir) {
    let reg = Registry::holding(&DEPLOYED, OCI_MANIFEST);
    let w = flux_repo(&reg.host);
    (reg, w)
}

/// Every image and chart the fixture deploys.
const DEPLOYED: [(&str, &str); 16] = [
    ("acme/web", "1.0.0"),
    ("acme/web", "1.1.0"),
    ("acme/web", "1.2.0"),
    ("base/api", "2.0.0"),
    ("staging/api", "2.0.0"),
    ("production/api", "2.0.0"),
    ("acme/worker", "2.1.0"),
    ("acme/podinfo", "6.5.4"),
    ("library/redis", "7.2"),
    ("acme/shop", "3.1.0"),
    ("acme/storefront", "4.0.0"),
    ("acme/sidecar", "1.0.0"),
    ("manifests/platform", "1.0.0"),
    ("charts/podinfo", "6.5.4"),
    ("charts/cert-manager", "v1.13.0"),
    ("charts/cert-manager", "v1.14.4"),
];

/// The change's check, which fails, and `file:line image` of what it does not find.
fn not_found_in_change(w: &Workdir, extra: &[&str]) -> (Run, Vec<String>) {
    let run = check_change(w, extra);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let missing = listed(&run, "not-found");
    (run, missing)
}

/// `file:line image` of the references a JSON report lists with a status.
fn listed(run: &Run, status: &str) -> Vec<String> {
    run.rows(|r| {
        (r["status"] == status).then(|| {
            format!(
                "{}:{} {}",
                r["file"].as_str().unwrap(),
                r["line"],
                r["canonical"]
                    .as_str()
                    .unwrap_or(r["image"].as_str().unwrap())
            )
        })
    })
}

#[test]
fn the_flux_repository_extracts_every_image_at_its_line() {
    let w = Workdir::new();
    copy(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/flux"),
        w.path(),
        PLACEHOLDER,
    );
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = PLACEHOLDER;
    let mut want = vec![
        format!("apps/api/base/deployment.yaml:10 {r}/base/api:2.0.0"),
        format!("apps/api/production/kustomization.yaml:7 {r}/production/api:2.0.0"),
        format!("apps/api/staging/kustomization.yaml:7 {r}/staging/api:2.0.0"),
        format!("apps/production/podinfo.yaml:11 {r}/charts/podinfo:6.5.4"),
        format!("apps/production/podinfo.yaml:19 {r}/acme/podinfo:6.5.4"),
        format!("apps/production/podinfo.yaml:21 {r}/library/redis:7.2"),
        format!("apps/production/worker.yaml:10 {r}/acme/worker:2.1.0"),
        format!("apps/web/base/deployment.yaml:10 {r}/acme/web:1.0.0"),
        format!("apps/web/production/kustomization.yaml:7 {r}/acme/web:1.2.0"),
        format!("apps/web/staging/kustomization.yaml:7 {r}/acme/web:1.1.0"),
        format!("charts/shop/values.yaml:2 {r}/acme/shop:3.1.0"),
        format!("charts/shop/values.yaml:8 {r}/library/redis:7.2"),
        format!("clusters/production/argo-app.yaml:15 {r}/acme/storefront:4.0.0"),
        format!("clusters/production/argo-app.yaml:18 {r}/acme/sidecar:1.0.0"),
        // issue 16: the Application deploys the repository's chart; its default cache image
        // is reported at the source's revision.
        format!("clusters/production/argo-app.yaml:9 {r}/library/redis:7.2"),
        format!("clusters/production/sources.yaml:21 {r}/manifests/platform:1.0.0"),
        format!("clusters/production/sources.yaml:32 {r}/charts/cert-manager:>=1.14.0 <2.0.0"),
    ];
    want.sort();
    assert_eq!(listed(&run, "skipped"), want);
    let notes = run.file_codes();
    assert!(
        notes.contains(&"skipped".to_string()),
        "the remote resource is a note: {notes:?}"
    );
    assert!(notes.contains(&"helm-template".to_string()));
}

#[test]
fn the_whole_repository_resolves_against_the_registry() {
    let (reg, w) = fixture();
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let json = run.json();
    let semver = json["references"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"].as_str().unwrap().contains(">="))
        .unwrap()
        .clone();
    assert_eq!(
        semver["canonical"].as_str().unwrap(),
        format!("{}/charts/cert-manager:v1.14.4", reg.host),
        "the highest tag that satisfies the range"
    );
    assert_eq!(json["summary"]["undecided"], 0);
}

/// Done means (issue 4): a PR that bumps a `newTag`, a HelmRelease `image.tag` or a chart
/// `version` to something that does not exist fails at that line.
#[test]
fn bumps_to_missing_tags_fail_at_the_line_that_changed() {
    let (reg, w) = fixture();
    let h = &reg.host;
    edit(
        &w,
        "apps/web/production/kustomization.yaml",
        "newTag: \"1.2.0\"",
        "newTag: \"1.3.0\"",
    );
    edit(
        &w,
        "apps/production/podinfo.yaml",
        "tag: \"6.5.4\"",
        "tag: \"6.5.5\"",
    );
    edit(
        &w,
        "apps/production/podinfo.yaml",
        "version: \"6.5.4\"",
        "version: \"6.5.9\"",
    );
    let (run, missing) = not_found_in_change(&w, &[]);
    assert_eq!(
        missing,
        [
            format!("apps/production/podinfo.yaml:11 {h}/charts/podinfo:6.5.9"),
            format!("apps/production/podinfo.yaml:19 {h}/acme/podinfo:6.5.5"),
            format!("apps/web/production/kustomization.yaml:7 {h}/acme/web:1.3.0"),
        ]
    );
    assert!(
        listed(&run, "ok").is_empty(),
        "nothing unchanged is re-checked: {}",
        run.stdout
    );
    let gh = w.run(&[
        "check",
        "--base",
        "main",
        "--no-worktree",
        "--format",
        "github",
    ]);
    assert!(
        gh.stdout
            .contains("::error file=apps/web/production/kustomization.yaml,line=7,col=13,"),
        "{}",
        gh.stdout
    );
}

#[test]
fn a_broken_base_is_reported_for_each_overlay_that_deploys_it() {
    let (reg, w) = fixture();
    let h = &reg.host;
    edit(
        &w,
        "apps/api/base/deployment.yaml",
        "base/api:2.0.0",
        "base/api:2.1.0",
    );
    let (_, missing) = not_found_in_change(&w, &["--no-suggest"]);
    assert_eq!(
        missing,
        [
            format!("apps/api/base/deployment.yaml:10 {h}/base/api:2.1.0"),
            format!("apps/api/production/kustomization.yaml:7 {h}/production/api:2.1.0"),
            format!("apps/api/staging/kustomization.yaml:7 {h}/staging/api:2.1.0"),
        ]
    );
}

#[test]
fn postbuild_variables_resolve_and_strict_makes_leftovers_errors() {
    let (reg, w) = fixture();
    edit(
        &w,
        "clusters/production/apps.yaml",
        "WORKER_TAG: \"2.1.0\"",
        "WORKER_TAG: \"2.1.0\"\n      UNUSED: x",
    );
    w.write(
        "apps/production/extra.yaml",
        &deployment(
            "extra",
            &[
                &format!("{}/acme/worker:${{WORKER_TAG}}", reg.host),
                "ghcr.io/acme/x:${UNKNOWN}",
            ],
        ),
    );
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "extra"]);
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(
        run.code, 0,
        "an unresolved variable is a warning: {}",
        run.stdout
    );
    let worker = format!("{}/acme/worker:2.1.0", reg.host);
    assert!(
        listed(&run, "ok")
            .iter()
            .any(|l| l.starts_with("apps/production/extra.yaml:10") && l.ends_with(&worker))
    );
    assert_eq!(
        listed(&run, "unresolved-variable"),
        ["apps/production/extra.yaml:12 ghcr.io/acme/x:${UNKNOWN}"]
    );
    let strict = w.run(&["check", "--all", "--format", "json", "--strict"]);
    assert_eq!(strict.code, 1);
}

#[test]
fn kustomize_numeric_new_tag_is_a_finding() {
    let w = Workdir::new();
    w.write(
        "k/kustomization.yaml",
        "resources: []\nimages:\n  - name: acme/web\n    newTag: 3.10\n",
    );
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 1);
    let r = &run.json()["references"][0];
    assert_eq!(r["code"], "non-string-image");
    assert_eq!(
        (r["line"].as_u64(), r["column"].as_u64()),
        (Some(4), Some(13))
    );
}

#[test]
fn a_changed_variable_is_reported_at_its_definition() {
    let (reg, w) = fixture();
    edit(
        &w,
        "clusters/production/apps.yaml",
        "WORKER_TAG: \"2.1.0\"",
        "WORKER_TAG: \"2.2.0\"",
    );
    let (_, missing) = not_found_in_change(&w, &["--no-suggest"]);
    assert_eq!(
        missing,
        [format!(
            "clusters/production/apps.yaml:15 {}/acme/worker:2.2.0",
            reg.host
        )]
    );
}

#[test]
fn helm_charts_in_kustomize_and_non_oci_repositories() {
    let reg = Registry::anonymous();
    reg.push_image("charts/redis", "18.1.0", OCI_MANIFEST);
    let h = &reg.host;
    let w = Workdir::new();
    w.write(
        "k/kustomization.yaml",
        &format!("helmCharts:\n  - name: redis\n    repo: oci://{h}/charts\n    version: 18.1.0\n  - name: redis\n    repo: oci://{h}/charts\n    version: \">=18.0.0 <19.0.0\"\n  - name: web\n    repo: https://charts.example.com\n    version: 1.0.0\n"),
    );
    w.write(
        "flux/release.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: http}\nspec:\n  url: https://charts.example.com\n---\napiVersion: helm.toolkit.fluxcd.io/v2beta2\nkind: HelmRelease\nmetadata: {name: web}\nspec:\n  chart:\n    spec:\n      chart: web\n      version: 1.0.0\n      sourceRef: {kind: HelmRepository, name: http}\n",
    );
    let run = w.run(&["check", "--all", "--format", "json"]);
    // issue 16: a classic repository is checked through its index.yaml now; this one
    // cannot be reached, which is undecided, never a pass.
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        listed(&run, "ok"),
        [
            format!("k/kustomization.yaml:4 {h}/charts/redis:18.1.0"),
            format!("k/kustomization.yaml:7 {h}/charts/redis:18.1.0"),
        ]
    );
    let unreachable: Vec<String> = run
        .file_findings("unreachable")
        .iter()
        .map(|f| format!("{}:{}", f["file"].as_str().unwrap(), f["line"]))
        .collect();
    assert_eq!(
        unreachable,
        ["flux/release.yaml:14", "k/kustomization.yaml:10"]
    );
    assert!(
        run.stdout.contains("https://charts.example.com/index.yaml"),
        "{}",
        run.stdout
    );
}

#[test]
fn more_helm_values_files_can_be_named() {
    let w = Workdir::new();
    w.write(
        "env/prod.yaml",
        "image:\n  repository: ghcr.io/acme/web\n  tag: v2.0.0\n",
    );
    let run = w.run(&OFFLINE_JSON);
    assert!(
        run.json()["references"].as_array().unwrap().is_empty(),
        "not values by default"
    );
    let run = w.run(&[
        "check",
        "--all",
        "--offline",
        "--format",
        "json",
        "--helm-values",
        "env/*.yaml",
    ]);
    assert_eq!(
        listed(&run, "skipped"),
        ["env/prod.yaml:3 ghcr.io/acme/web:v2.0.0"]
    );
}

/// A check's JSON without its timing, to compare two runs.
fn verdicts(run: &Run) -> serde_json::Value {
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let mut v = run.json();
    v["summary"].as_object_mut().map(|s| s.remove("duration"));
    v
}

/// Checks the change with the stored facts and by reading every file (`--no-cache`):
/// both must agree. Returns the stored-facts run.
fn agrees_with_reading_every_file(w: &Workdir, extra: &[&str]) -> Run {
    let mut args = vec![
        "check",
        "--offline",
        "--base",
        "main",
        "--format",
        "json",
        "-v",
    ];
    args.extend_from_slice(extra);
    let stored = w.run(&args);
    args.push("--no-cache");
    let fresh = w.run(&args);
    assert!(
        !fresh.stderr.contains("facts of merge-base tree"),
        "--no-cache reads every file: {}",
        fresh.stderr
    );
    assert_eq!(verdicts(&stored), verdicts(&fresh), "{}", stored.stderr);
    stored
}

fn kustomization_files(run: &Run) -> Vec<String> {
    let mut v = run.rows(|r| {
        let f = r["file"].as_str()?;
        f.ends_with("kustomization.yaml").then(|| f.to_string())
    });
    v.dedup();
    v
}

/// Issue 7: a one-file change must not read every kustomization. The merge base's facts
/// are stored once (per tree, so branches share them) and what the change touched is read
/// again; the verdicts must equal a check that reads every file, through added, deleted and
/// uncommitted overlays, a chart whose HelmRepository lives elsewhere, and a corrupt store.
#[test]
fn stored_merge_base_facts_agree_with_reading_every_file() {
    let w = flux_repo("registry.example.invalid");
    edit(
        &w,
        "apps/api/base/deployment.yaml",
        "base/api:2.0.0",
        "base/api:2.1.0",
    );
    let first = agrees_with_reading_every_file(&w, &["--no-worktree"]);
    first.says("built and cached");
    assert_eq!(
        kustomization_files(&first),
        [
            "apps/api/production/kustomization.yaml",
            "apps/api/staging/kustomization.yaml"
        ]
    );
    let again = agrees_with_reading_every_file(&w, &["--no-worktree"]);
    again.says("read from the cache");

    // Another branch from the same merge base: an overlay added, one deleted.
    git(w.path(), &["checkout", "-q", "-b", "other", "main"]);
    w.write(
        "apps/api/canary/kustomization.yaml",
        "resources:\n  - ../base\nimages:\n  - name: registry.example.invalid/base/api\n    newName: registry.example.invalid/canary/api\n",
    );
    git(
        w.path(),
        &["rm", "-q", "apps/api/staging/kustomization.yaml"],
    );
    git(w.path(), &["add", "apps"]);
    git(
        w.path(),
        &["commit", "-q", "-m", "canary instead of staging"],
    );
    edit(
        &w,
        "apps/api/base/deployment.yaml",
        "base/api:2.0.0",
        "base/api:2.2.0",
    );
    // Excluded from the check, the new overlay is found only through the facts read at head.
    let other =
        agrees_with_reading_every_file(&w, &["--no-worktree", "--exclude", "apps/api/canary/**"]);
    other.says("read from the cache");
    assert_eq!(
        kustomization_files(&other),
        [
            "apps/api/canary/kustomization.yaml",
            "apps/api/production/kustomization.yaml"
        ]
    );

    // Uncommitted: production no longer deploys the base.
    let prod = w.path().join("apps/api/production/kustomization.yaml");
    let text = std::fs::read_to_string(&prod).unwrap();
    std::fs::write(&prod, text.replace("  - ../base\n", "  - deploy.yaml\n")).unwrap();
    let worktree = agrees_with_reading_every_file(&w, &[]);
    assert_eq!(
        kustomization_files(&worktree),
        ["apps/api/canary/kustomization.yaml"]
    );
    git(w.path(), &["checkout", "-q", "--", "."]);

    // A chart bump: its HelmRepository is in clusters/, outside the change.
    edit(
        &w,
        "apps/production/podinfo.yaml",
        "version: \"6.5.4\"",
        "version: \"6.5.5\"",
    );
    let chart = agrees_with_reading_every_file(&w, &["--no-worktree"]);
    assert!(
        chart
            .stdout
            .contains("registry.example.invalid/charts/podinfo:6.5.5"),
        "the chart is found through the stored facts: {}",
        chart.stdout
    );

    // A corrupt store is rebuilt, never trusted.
    let store = w.path().join(".cache/imagegate/repo-facts-v1");
    for entry in std::fs::read_dir(&store).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not an fst").unwrap();
    }
    let rebuilt = agrees_with_reading_every_file(&w, &["--no-worktree"]);
    rebuilt.says("built and cached");
}
