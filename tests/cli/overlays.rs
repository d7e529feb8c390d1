//! Issue 15 end to end: what a kustomize overlay really deploys is what imagegate checks,
//! at the line that decided each image, with the real registry answering and real
//! `kubectl kustomize` (kustomize v5.8.1) as the oracle for the set of images.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::harness::*;

/// The images of `kubectl kustomize dir` (every `image:` line of its normalised output).
pub fn built_images(dir: &Path) -> Result<BTreeSet<String>, String> {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim_start().trim_start_matches("- ");
            l.strip_prefix("image: ")
                .map(|v| v.trim_matches('"').to_string())
        })
        .collect())
}

/// 1-based line of the first line of `file` containing `needle`.
pub fn line_of(w: &Workdir, file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(w.path().join(file)).unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{file} has no {needle:?}"))
        + 1
}

/// `file:line image status` for every reference entry.
pub fn entries(run: &Run) -> Vec<String> {
    run.rows(|r| {
        Some(format!(
            "{}:{} {} {}",
            r["file"].as_str()?,
            r["line"],
            r["image"].as_str()?,
            r["status"].as_str()?
        ))
    })
}

pub fn images_reported(run: &Run) -> BTreeSet<String> {
    run.rows(|r| Some(r["image"].as_str()?.to_string()))
        .into_iter()
        .collect()
}

/// `file:line rest`, at the first line of `file` containing `needle`.
pub fn row_at(w: &Workdir, file: &str, needle: &str, rest: &str) -> String {
    format!("{file}:{} {rest}", line_of(w, file, needle))
}

/// The contexts of a run's references.
pub fn contexts(run: &Run) -> Vec<String> {
    run.rows(|r| Some(r["context"].as_str()?.to_string()))
}

/// `check --all` of `target`, which fails (exit 1) and reports exactly the images real
/// kustomize builds (`built`).
pub fn check_built(w: &Workdir, target: &str, built: &BTreeSet<String>) -> Run {
    let run = w.run(&["check", "--all", "--format", "json", target]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(&images_reported(&run), built, "exactly the built images");
    run
}

/// `rows` in the order of [`entries`].
pub fn sorted(mut rows: Vec<String>) -> Vec<String> {
    rows.sort();
    rows
}

/// A base with two containers, a component that moves one image to a mirror, and an
/// overlay with a strategic-merge patch file, a patch file without images, an inline JSON
/// patch and an `images:` entry.
fn overlay_repo(h: &str) -> Workdir {
    let w = Workdir::new();
    w.write(
        "base/kustomization.yaml",
        "resources:\n  - deployment.yaml\n",
    );
    w.write(
        "base/deployment.yaml",
        &deployment(
            "web",
            &[
                &format!("{h}/acme/web:1.0.0"),
                &format!("{h}/acme/log:1.0.0"),
            ],
        ),
    );
    w.write(
        "components/mirror/kustomization.yaml",
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n  - name: {h}/acme/log\n    newName: {h}/mirror/log\n"
        ),
    );
    w.write(
        "overlay/kustomization.yaml",
        &format!(
            "resources:\n  - ../base\ncomponents:\n  - ../components/mirror\npatches:\n  - path: sidecar.yaml\n  - path: probe.yaml\n  - target:\n      kind: Deployment\n      name: web\n    patch: |-\n      - op: replace\n        path: /spec/template/spec/containers/0/image\n        value: {h}/acme/web:1.0.0-typo\nimages:\n  - name: {h}/mirror/log\n    newTag: 1.1.0\n"
        ),
    );
    w.write(
        "overlay/sidecar.yaml",
        &format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: metrics\n          image: {h}/acme/metrics:2.0.0\n"
        ),
    );
    // A patch without an image: read as a manifest it would be an `empty-image` error.
    w.write(
        "overlay/probe.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: c0\n          readinessProbe:\n            httpGet: {path: /healthz, port: 8080}\n",
    );
    w
}

/// Issue 15: patches (files and inline), components and `images:` decide what is checked,
/// each at its own line; the base's rewritten images and the patch files' own fields are
/// not checked as written.
#[test]
fn an_overlay_is_checked_as_kustomize_builds_it_at_the_lines_that_decide() {
    let images = [
        ("acme/web", "1.0.0"),
        ("acme/log", "1.0.0"),
        ("mirror/log", "1.1.0"),
    ];
    let reg = Registry::holding(&images, DOCKER_MANIFEST);
    let h = &reg.host;
    let w = overlay_repo(h);
    // Which container the harness's deployment() names first decides the JSON patch's
    // target; the oracle below says what kustomize made of it.
    let want = built_images(&w.path().join("overlay")).unwrap();
    assert_eq!(
        want,
        BTreeSet::from([
            format!("{h}/acme/web:1.0.0-typo"),
            format!("{h}/mirror/log:1.1.0"),
            format!("{h}/acme/metrics:2.0.0"),
        ]),
        "the real build"
    );

    let run = check_built(&w, "overlay", &want);
    let k = "overlay/kustomization.yaml";
    let expected = sorted(vec![
        row_at(
            &w,
            k,
            "value: ",
            &format!("{h}/acme/web:1.0.0-typo not-found"),
        ),
        row_at(&w, k, "newTag: 1.1.0", &format!("{h}/mirror/log:1.1.0 ok")),
        row_at(
            &w,
            "overlay/sidecar.yaml",
            "image:",
            &format!("{h}/acme/metrics:2.0.0 not-found"),
        ),
    ]);
    assert_eq!(entries(&run), expected);
    assert!(run.file_codes().is_empty(), "{:?}", run.file_codes());
    let contexts = contexts(&run);
    assert!(
        contexts
            .iter()
            .any(|c| c.ends_with("(kustomize: base → components/mirror → overlay)")),
        "the chain names base, component and overlay: {contexts:?}"
    );

    // The whole repository: the base alone deploys its images as written, so they are
    // checked there too; the patch files are never manifests of their own.
    let all = w.run(&["check", "--all", "--format", "json"]);
    let base = built_images(&w.path().join("base")).unwrap();
    let mut union = want.clone();
    union.extend(base);
    assert_eq!(images_reported(&all), union);
    assert!(all.file_codes().is_empty(), "{:?}", all.file_codes());
}

/// Issue 15: an entry or a patch that changes nothing is a note and is never checked; an
/// input that makes `kustomize build` fail is an error at that input.
#[test]
fn no_effect_is_a_note_and_a_failing_build_an_error_at_its_input() {
    let w = Workdir::new();
    w.write(
        "base/kustomization.yaml",
        "resources:\n  - deployment.yaml\n",
    );
    w.write(
        "base/deployment.yaml",
        &deployment("web", &["registry.example.invalid/acme/web:1.0.0"]),
    );
    w.write(
        "quiet/kustomization.yaml",
        "resources:\n  - ../base\npatches:\n  - target:\n      kind: Deployment\n      name: nothing-here\n    patch: |-\n      - op: replace\n        path: /spec/template/spec/containers/0/image\n        value: registry.example.invalid/acme/patched:9\nimages:\n  - name: registry.example.invalid/acme/other\n    newTag: 9.9.9\n",
    );
    assert_eq!(
        built_images(&w.path().join("quiet")).unwrap(),
        BTreeSet::from(["registry.example.invalid/acme/web:1.0.0".to_string()])
    );
    let run = w.run(&["check", "--all", "--offline", "--format", "json", "quiet"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        images_reported(&run),
        BTreeSet::from(["registry.example.invalid/acme/web:1.0.0".to_string()])
    );
    let lines: BTreeSet<u64> = run
        .file_findings("no-effect")
        .iter()
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    let k = "quiet/kustomization.yaml";
    assert!(
        lines.contains(&(line_of(&w, k, "name: registry.example.invalid/acme/other") as u64)),
        "the unmatched images entry: {lines:?}\n{}",
        run.stdout
    );
    assert!(
        lines.contains(&(line_of(&w, k, "- target:") as u64)),
        "the patch whose target matches nothing: {lines:?}"
    );
    assert_eq!(lines.len(), 2, "{lines:?}");

    // A strategic-merge patch whose Deployment the build does not hold: kustomize fails.
    w.write(
        "broken/kustomization.yaml",
        "resources:\n  - ../base\npatches:\n  - path: missing-target.yaml\n",
    );
    w.write(
        "broken/missing-target.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: not-in-the-build\nspec:\n  replicas: 2\n",
    );
    let real = built_images(&w.path().join("broken"));
    assert!(real.is_err(), "real kustomize fails: {real:?}");
    let run = w.run(&["check", "--all", "--offline", "--format", "json", "broken"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let failed = run.file_findings("kustomize-build");
    assert_eq!(failed.len(), 1, "{}", run.stdout);
    // At the patch that names what the build does not hold.
    assert_eq!(failed[0]["file"], "broken/missing-target.yaml");
    assert_eq!(failed[0]["line"].as_u64(), Some(1));
    assert!(
        failed[0]["message"]
            .as_str()
            .unwrap()
            .contains("Deployment/not-in-the-build"),
        "{}",
        failed[0]
    );
}

/// Issue 15, diff mode: a change to a base is checked in every overlay that deploys it, as
/// that overlay builds it; an overlay the change cannot reach is not built.
#[test]
fn a_base_change_is_checked_in_each_overlay_and_untouched_roots_are_not_built() {
    let images = [("acme/web", "1.1.0"), ("acme/other", "1.0.0")];
    let reg = Registry::holding(&images, DOCKER_MANIFEST);
    let h = &reg.host;
    let w = Workdir::new();
    w.write(
        "web/base/kustomization.yaml",
        "resources:\n  - deployment.yaml\n",
    );
    w.write(
        "web/base/deployment.yaml",
        &deployment("web", &[&format!("{h}/acme/web:1.0.0")]),
    );
    w.write(
        "web/mirrored/kustomization.yaml",
        &format!("resources:\n  - ../base\nimages:\n  - name: {h}/acme/web\n    newName: {h}/mirror/web\n"),
    );
    w.write("web/plain/kustomization.yaml", "resources:\n  - ../base\n");
    w.write(
        "other/overlay/kustomization.yaml",
        "resources:\n  - deployment.yaml\n",
    );
    w.write(
        "other/overlay/deployment.yaml",
        &deployment("other", &[&format!("{h}/acme/other:1.0.0")]),
    );
    git(w.path(), &["init", "-q", "-b", "main"]);
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "apps"]);
    git(w.path(), &["checkout", "-q", "-b", "bump"]);
    let text = std::fs::read_to_string(w.path().join("web/base/deployment.yaml")).unwrap();
    w.write(
        "web/base/deployment.yaml",
        &text.replace("acme/web:1.0.0", "acme/web:1.1.0"),
    );
    git(w.path(), &["commit", "-q", "-am", "bump web"]);

    let run = w.run(&[
        "check",
        "--base",
        "main",
        "--no-worktree",
        "--no-cache",
        "--format",
        "json",
        "-v",
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let m = "web/mirrored/kustomization.yaml";
    let expected = sorted(vec![
        row_at(
            &w,
            "web/base/deployment.yaml",
            "image:",
            &format!("{h}/acme/web:1.1.0 ok"),
        ),
        row_at(
            &w,
            m,
            "newName:",
            &format!("{h}/mirror/web:1.1.0 not-found"),
        ),
    ]);
    assert_eq!(entries(&run), expected, "{}", run.stderr);
    let built = run
        .stderr
        .lines()
        .find(|l| l.contains("kustomize: building"))
        .unwrap_or_else(|| panic!("-v names the roots built: {}", run.stderr));
    assert!(built.contains("web/mirrored/kustomization.yaml"), "{built}");
    assert!(built.contains("web/plain/kustomization.yaml"), "{built}");
    assert!(
        !built.contains("other/overlay"),
        "an untouched root is not built: {built}"
    );
}
