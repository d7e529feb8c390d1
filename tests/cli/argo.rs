//! Issue 16, Argo CD precedence: an Application's `spec.source.kustomize.images` apply to its
//! path when the path is in this repository, as Argo CD applies them (`kustomize edit set
//! image`, then `kustomize build`). The oracle is real `kubectl kustomize` (kustomize v5.8.1)
//! on a copy of the path whose kustomization holds the `images:` that `edit set image` writes
//! (kustomize/commands/edit/set/setimage.go: an entry of the same name is replaced, others
//! kept, the list sorted by name), with the real registry answering.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::*;
use crate::overlays::{built_images, check_built, contexts, entries, line_of, row_at, sorted};

const APP: &str = "argocd/web.yaml";
const KUST: &str = "apps/web/kustomization.yaml";

/// The path's kustomization as written: a stale entry for `acme/web` (mirror, missing tag)
/// that the Application replaces, and one for `acme/log` that it keeps.
fn kustomization(h: &str, images: &str) -> String {
    format!("resources:\n  - deployment.yaml\nimages:\n{images}").replace("{h}", h)
}

fn written_images(h: &str) -> String {
    "  - name: {h}/acme/web\n    newName: {h}/mirror/web\n    newTag: 0.0.1-stale\n  - name: {h}/acme/log\n    newName: {h}/mirror/log\n"
        .replace("{h}", h)
}

fn application(h: &str, repo_url: &str, path: &str, images: &[&str]) -> String {
    let mut s = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  project: default\n  destination:\n    namespace: web\n  source:\n    repoURL: {repo_url}\n    path: {path}\n    targetRevision: main\n    kustomize:\n      images:\n"
    );
    for i in images {
        s.push_str(&format!("        - {}\n", i.replace("{h}", h)));
    }
    s
}

/// The Application's entries after the change: a tag for `acme/web` (replacing the
/// kustomization's entry of that name), `name=newName:tag` with a tag the registry lacks,
/// and an entry that matches no image.
const ENTRIES: [&str; 3] = [
    "{h}/acme/web:2.0.0",
    "{h}/acme/api={h}/mirror/api:9.9.9",
    "{h}/acme/none:1.0.0",
];

fn fleet(h: &str) -> Workdir {
    let w = Workdir::new();
    w.write(KUST, &kustomization(h, &written_images(h)));
    w.write(
        "apps/web/deployment.yaml",
        &deployment(
            "web",
            &[
                &format!("{h}/acme/web:1.0.0"),
                &format!("{h}/acme/api:3.0.0"),
                &format!("{h}/acme/log:1.0.0"),
            ],
        ),
    );
    w
}

/// Makes the workdir a git repository whose `origin` is `url`, as a clone of it is.
fn clone_of(w: &Workdir, url: &str) {
    git(w.path(), &["init", "-q", "-b", "main"]);
    git(w.path(), &["remote", "add", "origin", url]);
}

/// Copies the tree at `from` (no `.git`) into `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".git" {
            continue;
        }
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// What real kustomize builds from a copy of the repository whose `apps/web` kustomization
/// is `text`, as Argo CD's edits leave it.
fn oracle_of(w: &Workdir, text: &str) -> BTreeSet<String> {
    let copy = tempfile::tempdir().unwrap();
    copy_tree(w.path(), copy.path());
    std::fs::write(copy.path().join(KUST), text).unwrap();
    built_images(&copy.path().join("apps/web")).unwrap()
}

/// [`oracle_of`] a kustomization with these `images`.
fn oracle(w: &Workdir, h: &str, images: &str) -> BTreeSet<String> {
    oracle_of(w, &kustomization(h, images))
}

/// Issue 16: the Application's entries are applied to its same-repository path the way
/// Argo CD applies them; each image they decide is checked at the entry's line, an entry of
/// the same name replaces the kustomization's, and an entry that matches nothing is a note.
#[test]
fn kustomize_images_apply_to_a_same_repository_path_as_argo_cd_builds_it() {
    let images = [
        ("acme/web", "1.0.0"),
        ("acme/web", "2.0.0"),
        ("acme/api", "3.0.0"),
        ("mirror/log", "1.0.0"),
    ];
    let reg = Registry::holding(&images, DOCKER_MANIFEST);
    let h = &reg.host;
    let w = fleet(h);
    w.write(
        APP,
        &application(
            h,
            "https://Git.Example.invalid/acme/fleet.git",
            "apps/web",
            &ENTRIES,
        ),
    );
    // The clone's remote, written another way than the Application's repoURL.
    clone_of(&w, "git@git.example.invalid:acme/fleet");

    // `edit set image` on the kustomization, by setimage.go's rules, sorted by name.
    let edited = "  - name: {h}/acme/api\n    newName: {h}/mirror/api\n    newTag: 9.9.9\n  - name: {h}/acme/log\n    newName: {h}/mirror/log\n  - name: {h}/acme/none\n    newTag: 1.0.0\n  - name: {h}/acme/web\n    newTag: 2.0.0\n";
    let want = oracle(&w, h, edited);
    assert_eq!(
        want,
        BTreeSet::from([
            format!("{h}/acme/web:2.0.0"),
            format!("{h}/mirror/api:9.9.9"),
            format!("{h}/mirror/log:1.0.0"),
        ]),
        "the real build"
    );
    // Had the entry been appended instead of replacing the kustomization's, the stale mirror
    // entry would have run first and the Application's would have matched nothing.
    let appended = format!("{}{}", written_images(h), edited);
    assert!(
        oracle(&w, h, &appended).contains(&format!("{h}/mirror/web:0.0.1-stale")),
        "replacing and appending differ"
    );

    // The Application alone: its build is checked, nothing as written.
    let run = check_built(&w, APP, &want);
    let expected = sorted(vec![
        row_at(&w, APP, "acme/web:2.0.0", &format!("{h}/acme/web:2.0.0 ok")),
        row_at(
            &w,
            APP,
            "mirror/api:9.9.9",
            &format!("{h}/mirror/api:9.9.9 not-found"),
        ),
        row_at(
            &w,
            KUST,
            &format!("newName: {h}/mirror/log"),
            &format!("{h}/mirror/log:1.0.0 ok"),
        ),
    ]);
    assert_eq!(entries(&run), expected, "one entry per occurrence");
    let notes = run.file_findings("no-effect");
    assert_eq!(notes.len(), 1, "{}", run.stdout);
    assert_eq!(notes[0]["file"], APP);
    assert_eq!(
        notes[0]["line"].as_u64(),
        Some(line_of(&w, APP, "acme/none") as u64)
    );
    let context = run.rows(|r| {
        (r["image"] == format!("{h}/acme/web:2.0.0"))
            .then(|| r["context"].as_str().unwrap().to_string())
    });
    let context = &context[0];
    assert!(
        context.contains("Application/web") && context.contains("kustomize: apps/web"),
        "the context names the Application and the chain: {context}"
    );

    // In a diff that changes only the Application, what its new entries deploy is checked.
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "fleet"]);
    git(w.path(), &["checkout", "-q", "-b", "before"]);
    w.write(
        APP,
        &application(
            h,
            "https://git.example.invalid/acme/fleet.git",
            "apps/web",
            &["{h}/acme/web:1.0.0"],
        ),
    );
    git(w.path(), &["commit", "-q", "-am", "older entries"]);
    git(w.path(), &["checkout", "-q", "-b", "bump"]);
    git(w.path(), &["checkout", "-q", "main", "--", APP]);
    git(w.path(), &["commit", "-q", "-am", "bump"]);
    let diff = w.run(&[
        "check",
        "--base",
        "before",
        "--no-worktree",
        "--no-cache",
        "--format",
        "json",
    ]);
    assert_eq!(diff.code, 1, "{}\n{}", diff.stdout, diff.stderr);
    let anew: Vec<String> = expected
        .iter()
        .filter(|e| e.starts_with(APP))
        .cloned()
        .collect();
    assert_eq!(entries(&diff), anew, "only what the change deploys anew");
}

/// Issue 16: a path in another repository (or one that leaves this one) is not built: the
/// entries are checked as written, with a note saying why.
#[test]
fn kustomize_images_of_another_repository_are_checked_as_written() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    reg.push_image("acme/web", "2.0.0", DOCKER_MANIFEST);
    let w = fleet(h);
    w.write(
        APP,
        &application(
            h,
            "https://git.example.invalid/acme/elsewhere.git",
            "apps/web",
            &ENTRIES,
        ),
    );
    w.write(
        "argocd/escape.yaml",
        &application(h, "", "../outside", &["{h}/acme/web:2.0.0"])
            .replace("name: web", "name: escape"),
    );
    clone_of(&w, "https://git.example.invalid/acme/fleet.git");
    let run = w.run(&["check", "--all", "--format", "json", "argocd"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let line = |needle: &str| line_of(&w, APP, &needle.replace("{h}", h));
    let mut expected = vec![
        format!("{APP}:{} {h}/acme/web:2.0.0 ok", line("acme/web:2.0.0")),
        format!(
            "{APP}:{} {h}/mirror/api:9.9.9 not-found",
            line("mirror/api")
        ),
        format!("{APP}:{} {h}/acme/none:1.0.0 not-found", line("acme/none")),
        format!(
            "argocd/escape.yaml:{} {h}/acme/web:2.0.0 ok",
            line_of(&w, "argocd/escape.yaml", "acme/web:2.0.0")
        ),
    ];
    expected.sort();
    assert_eq!(entries(&run), expected);
    let skipped = run.file_findings("skipped");
    assert_eq!(skipped.len(), 1, "{}", run.stdout);
    assert_eq!(skipped[0]["file"], APP);
    assert_eq!(skipped[0]["line"].as_u64(), Some(line("repoURL") as u64));
    let escaped = run.file_findings("path-escape");
    assert_eq!(escaped.len(), 1, "{}", run.stdout);
    assert_eq!(escaped[0]["file"], "argocd/escape.yaml");
    assert_eq!(
        escaped[0]["line"].as_u64(),
        Some(line_of(&w, "argocd/escape.yaml", "path:") as u64)
    );
    assert!(!Path::new(&w.path().join("outside")).exists());
}

/// Issue 16: the Application's `kustomize.patches` are appended to the path's `patches:`, its
/// `kustomize.components` added to `components:` and its `namePrefix` set, as Argo CD does;
/// what they decide is reported at their lines in the Application.
#[test]
fn kustomize_patches_and_components_of_an_application_are_applied() {
    let reg = Registry::anonymous();
    let h = &reg.host;
    reg.push_image("acme/log", "1.0.0", DOCKER_MANIFEST);
    let w = fleet(h);
    w.write(KUST, "resources:\n  - deployment.yaml\n");
    w.write(
        "components/pin/kustomization.yaml",
        &format!(
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n  - name: {h}/acme/api\n    newTag: 3.0.1-missing\n"
        ),
    );
    let patch = format!(
        "      namePrefix: x-\n      patches:\n        - target:\n            kind: Deployment\n            name: web\n          patch: |-\n            - op: replace\n              path: /spec/template/spec/containers/0/image\n              value: {h}/acme/web:7.7.7-missing\n      components:\n        - ../../components/pin\n"
    );
    let app = application(h, "", "apps/web", &[]).replace("      images:\n", &patch);
    w.write(APP, &app);
    // The edits: the patch after the kustomization's own (none), the component added.
    let edited = format!(
        "resources:\n  - deployment.yaml\nnamePrefix: x-\ncomponents:\n  - ../../components/pin\npatches:\n  - target:\n      kind: Deployment\n      name: web\n    patch: |-\n      - op: replace\n        path: /spec/template/spec/containers/0/image\n        value: {h}/acme/web:7.7.7-missing\n"
    );
    let want = oracle_of(&w, &edited);
    assert_eq!(
        want,
        BTreeSet::from([
            format!("{h}/acme/web:7.7.7-missing"),
            format!("{h}/acme/api:3.0.1-missing"),
            format!("{h}/acme/log:1.0.0"),
        ]),
        "the real build"
    );
    let run = check_built(&w, APP, &want);
    let c = "components/pin/kustomization.yaml";
    let expected = sorted(vec![
        row_at(
            &w,
            APP,
            "value: ",
            &format!("{h}/acme/web:7.7.7-missing not-found"),
        ),
        row_at(
            &w,
            c,
            "newTag:",
            &format!("{h}/acme/api:3.0.1-missing not-found"),
        ),
        row_at(
            &w,
            "apps/web/deployment.yaml",
            "acme/log",
            &format!("{h}/acme/log:1.0.0 ok"),
        ),
    ]);
    assert_eq!(entries(&run), expected);
    // `edit set nameprefix`: the Deployment is named as the Application deploys it.
    let contexts = contexts(&run);
    assert!(
        contexts.iter().all(|c| c.starts_with("Deployment/x-web ")),
        "{contexts:?}"
    );
}
