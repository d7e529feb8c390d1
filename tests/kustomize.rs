//! Differential tests of imagegate's kustomize model against the real engine (issue 15):
//! for every tree of the corpus (`tests/kustomize/*.txtar`) and for seeded random overlays,
//! the images imagegate's native build finds must equal the images in `kubectl kustomize`
//! output (kustomize v5.8.1), both read by imagegate's own image finder. Where the real
//! build fails, imagegate must report a `Fails` note at an input position.
//!
//! A tree with files under `served/` is served over loopback HTTP, and `$SERVED` in it is
//! that server's address: kustomize fetches such remote resources and patches, imagegate
//! does not, so there imagegate must only not fail a build kustomize makes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use imagegate::kustomize::{self, Problem};
use imagegate::manifest::{ImageValue, kubernetes, yaml};
use imagegate::reader::DiskReader;
use imagegate::source::SourceFile;

/// The real kubectl (with kustomize v5.8.1); fails loudly when it is not installed.
fn kubectl() -> PathBuf {
    let dir = std::env::var_os("IMAGEGATE_ENGINES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/engines"));
    let k = dir.join("kubectl");
    let version = Command::new(&k).args(["version", "--client"]).output();
    match version {
        Ok(o) if String::from_utf8_lossy(&o.stdout).contains("Kustomize Version: v5.8.1") => k,
        _ => panic!(
            "the differential tests need kubectl with kustomize v5.8.1 at {}; run scripts/engines \
             (scripts/test does) or set IMAGEGATE_ENGINES",
            k.display()
        ),
    }
}

/// Writes a txtar archive (`-- path --` lines, then the file) under `dir`.
pub fn unpack(archive: &str, dir: &Path) {
    let mut current: Option<(String, String)> = None;
    let flush = |c: Option<(String, String)>| {
        if let Some((path, text)) = c {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    };
    for line in archive.lines() {
        if let Some(name) = line.strip_prefix("-- ").and_then(|l| l.strip_suffix(" --")) {
            flush(current.take());
            current = Some((name.trim().to_string(), String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    flush(current);
}

/// Serves the files under `dir` over HTTP on loopback, as long as the test runs; returns
/// `http://127.0.0.1:PORT`.
fn serve(dir: PathBuf) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut header = String::new();
            while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                header.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let file = dir.join(path.trim_start_matches('/'));
            let (status, body) = match std::fs::read(&file) {
                Ok(b) if !path.contains("..") => ("200 OK", b),
                _ => ("404 Not Found", Vec::new()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

type Images = BTreeMap<String, usize>;

fn images_of_yaml(text: &str) -> Images {
    let source = SourceFile::new("out.yaml".into(), text);
    let parsed = yaml::parse(&source);
    assert!(parsed.error.is_none(), "kustomize output parses: {text}");
    let mut found = Vec::new();
    for d in &parsed.documents {
        kubernetes::extract(d, 0, &mut found);
    }
    count(found.into_iter().map(|o| o.value))
}

fn count(values: impl Iterator<Item = ImageValue>) -> Images {
    let mut m = Images::new();
    for v in values {
        let key = match v {
            ImageValue::Text(t) => t,
            other => format!("{other:?}"),
        };
        *m.entry(key).or_default() += 1;
    }
    m
}

/// Real kustomize's images for `dir`, or its error.
fn real(kubectl: &Path, dir: &Path) -> Result<Images, String> {
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .env("HOME", dir)
        .output()
        .expect("kubectl runs");
    if out.status.success() {
        Ok(images_of_yaml(&String::from_utf8_lossy(&out.stdout)))
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Compares one tree; returns a description of the difference.
fn compare(kubectl: &Path, tree: &Path, root: &str) -> Result<(), String> {
    let reader = DiskReader {
        root: tree.canonicalize().unwrap(),
    };
    let native = kustomize::effective(Path::new(root), &reader);
    let mine = count(native.occurrences.iter().map(|o| o.value.clone()));
    let remote = native
        .record
        .notes
        .iter()
        .any(|n| n.problem == Problem::Remote);
    match real(kubectl, &tree.join(root)) {
        Ok(theirs) => {
            if native.record.failed {
                return Err(format!(
                    "kustomize builds it ({theirs:?}) but imagegate says it fails: {:?}",
                    native.record.notes
                ));
            }
            // What kustomize fetched imagegate does not hold.
            if mine != theirs && !remote {
                return Err(format!("imagegate {mine:?}\n  kustomize {theirs:?}"));
            }
        }
        Err(e) => {
            let at = native
                .record
                .notes
                .iter()
                .find(|n| n.problem == Problem::Fails || n.problem == Problem::Escapes);
            match at {
                Some(n) if n.at.is_some() => {}
                _ => {
                    return Err(format!(
                        "kustomize fails ({}) but imagegate reports no failure at an input: {:?}",
                        e.trim(),
                        native.record.notes
                    ));
                }
            }
        }
    }
    Ok(())
}

#[test]
fn the_corpus_builds_the_images_real_kustomize_builds() {
    let kubectl = kubectl();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kustomize");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txtar"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 60, "the corpus has {} trees", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let mut archive = std::fs::read_to_string(case).unwrap();
        if archive.contains("\n-- served/") {
            archive = archive.replace("$SERVED", &serve(tmp.path().join("served")));
        }
        unpack(&archive, tmp.path());
        let root = if tmp.path().join("overlay").is_dir() {
            "overlay"
        } else {
            ""
        };
        if let Err(e) = compare(&kubectl, tmp.path(), root) {
            failures.push(format!(
                "{}: {e}",
                case.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} trees differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Issue 15: kustomize's default `LoadRestrictionsRootOnly` (api/internal/loader/
/// loadrestrictions.go) judges a file by where it resolves, symbolic links followed: a
/// resource or patch file linked from outside the kustomization's directory tree is refused,
/// a link within it is read, and a linked directory (a base) may be anywhere. Real kubectl
/// decides each tree; imagegate must agree.
#[test]
fn symbolic_links_out_of_the_kustomization_root_fail_as_in_kustomize() {
    use std::os::unix::fs::symlink;
    let kubectl = kubectl();
    let deploy = |name: &str, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\n"
        )
    };
    let patch = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.26\n";
    // (what the overlay names, the links to make (link, target), whether kustomize fails)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);
    let cases: [Case; 5] = [
        (
            "resources: [deploy.yaml]\n",
            &[("overlay/deploy.yaml", "../shared/deploy.yaml")],
            true,
        ),
        (
            "resources: [deploy.yaml]\n",
            &[("overlay/deploy.yaml", "sub/real.yaml")],
            false,
        ),
        (
            "resources: [../base]\npatches:\n- path: patch.yaml\n",
            &[("overlay/patch.yaml", "../shared/patch.yaml")],
            true,
        ),
        ("resources: [base]\n", &[("overlay/base", "../base")], false),
        (
            "resources: [linked/deploy.yaml]\n",
            &[("overlay/linked", "../shared")],
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (i, (k, links, fails)) in cases.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        for (path, text) in [
            ("overlay/kustomization.yaml", k.to_string()),
            ("overlay/sub/real.yaml", deploy("web", "nginx:1.25")),
            ("shared/deploy.yaml", deploy("web", "nginx:1.25")),
            ("shared/patch.yaml", patch.to_string()),
            (
                "base/kustomization.yaml",
                "resources: [deploy.yaml]\n".to_string(),
            ),
            ("base/deploy.yaml", deploy("web", "nginx:1.25")),
        ] {
            std::fs::create_dir_all(t.join(path).parent().unwrap()).unwrap();
            std::fs::write(t.join(path), text).unwrap();
        }
        for (link, target) in *links {
            symlink(target, t.join(link)).unwrap();
        }
        let real_fails = real(&kubectl, &t.join("overlay")).is_err();
        assert_eq!(real_fails, *fails, "case {i}: what kubectl does");
        if let Err(e) = compare(&kubectl, t, "overlay") {
            failures.push(format!("case {i}: {e}"));
        }
        let reader = DiskReader {
            root: t.canonicalize().unwrap(),
        };
        let native = kustomize::effective(Path::new("overlay"), &reader);
        if native.record.failed != *fails {
            failures.push(format!(
                "case {i}: imagegate failed={} {:?}",
                native.record.failed, native.record.notes
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A small deterministic generator (xorshift), so a failing seed can be rerun.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const IMAGES: [&str; 8] = [
    "nginx",
    "nginx:1.25",
    "ghcr.io/acme/web:1.0",
    "ghcr.io/acme/web@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    "registry:5000/team/api:2",
    "busybox",
    "my-app:3",
    "alpine:latest",
];
const NAMES: [&str; 12] = [
    "nginx",
    "ghcr.io/acme/web",
    "registry:5000/team/api",
    "busybox",
    "my.app",
    "alpine:latest",
    "none-such",
    "ghcr.io/.*",
    ".*box",
    // kustomize does not group the name: `^nginx|busybox(:tag)?(@digest)?$`.
    "nginx|busybox",
    "(nginx|alpine)",
    "dbg",
];

/// A generated workload: its kind, name and where its containers list is (a JSON pointer).
struct Workload {
    kind: &'static str,
    name: String,
    containers: &'static str,
}

fn container_list(rng: &mut Rng, indent: &str, key: &str, max: u64) -> String {
    let mut s = format!("{indent}{key}:\n");
    for i in 0..1 + rng.next() % max {
        s.push_str(&format!(
            "{indent}- name: {key}{i}\n{indent}  image: {}\n",
            rng.pick(&IMAGES)
        ));
    }
    s
}

/// A pod spec at `indent`: containers, maybe initContainers and ephemeralContainers.
fn pod_spec(rng: &mut Rng, indent: &str) -> String {
    let mut s = container_list(rng, indent, "containers", 3);
    if rng.chance(30) {
        s.push_str(&container_list(rng, indent, "initContainers", 2));
    }
    if rng.chance(20) {
        s.push_str(&container_list(rng, indent, "ephemeralContainers", 1));
    }
    s
}

fn workload(rng: &mut Rng, name: &str) -> (Workload, String) {
    let tier = rng.pick(&["a", "b"]);
    let meta = |api: &str, kind: &str| {
        format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  labels: {{app: {name}, tier: {tier}}}\n"
        )
    };
    let (kind, containers, text) = match rng.next() % 7 {
        0 => (
            "Pod",
            "/spec/containers",
            format!("{}spec:\n{}", meta("v1", "Pod"), pod_spec(rng, "  ")),
        ),
        1 => (
            "CronJob",
            "/spec/jobTemplate/spec/template/spec/containers",
            format!(
                "{}spec:\n  schedule: \"@daily\"\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
                meta("batch/v1", "CronJob"),
                pod_spec(rng, "          ")
            ),
        ),
        2 => (
            "Pipeline",
            "/spec/stages/0/pod/spec/containers",
            format!(
                "{}spec:\n  stages:\n  - name: build\n    pod:\n      spec:\n{}",
                meta("ci.example.com/v1", "Pipeline"),
                pod_spec(rng, "        ")
            ),
        ),
        _ => {
            let kind = rng.pick(&["Deployment", "StatefulSet", "DaemonSet", "Deployment"]);
            (
                kind,
                "/spec/template/spec/containers",
                format!(
                    "{}spec:\n  template:\n    spec:\n{}",
                    meta("apps/v1", kind),
                    pod_spec(rng, "      ")
                ),
            )
        }
    };
    let w = Workload {
        kind,
        name: name.to_string(),
        containers,
    };
    (w, text)
}

fn images_block(rng: &mut Rng) -> String {
    let mut s = String::from("images:\n");
    for _ in 0..1 + rng.next() % 3 {
        s.push_str(&format!("- name: \"{}\"\n", rng.pick(&NAMES)));
        if rng.chance(40) {
            s.push_str(&format!(
                "  newName: {}\n",
                rng.pick(&["mirror.io/x", "ghcr.io/acme/other", "localhost:5000/y"])
            ));
        }
        if rng.chance(50) {
            s.push_str(&format!(
                "  newTag: \"{}\"\n",
                rng.pick(&["2.0", "v3", "latest"])
            ));
        }
        if rng.chance(20) {
            s.push_str(&format!("  digest: sha256:{}\n", "1".repeat(64)));
        }
        if rng.chance(20) {
            s.push_str("  tagSuffix: -debug\n");
        }
    }
    s
}

/// One patch entry (for a `patches:` list) on one of the workloads.
fn patch_entry(rng: &mut Rng, ws: &[Workload]) -> String {
    let w = &ws[(rng.next() % ws.len() as u64) as usize];
    let image = rng.pick(&IMAGES);
    match rng.next() % 5 {
        0 => format!(
            "- target: {{kind: {}, name: {}}}\n  patch: |\n    - op: replace\n      path: {}/0/image\n      value: {image}\n",
            rng.pick(&[w.kind, ".*"]),
            w.name,
            w.containers
        ),
        1 => format!(
            "- target: {{name: {}}}\n  patch: |\n    - op: add\n      path: {}/{}\n      value: {{name: added, image: \"{image}\"}}\n",
            w.name,
            w.containers,
            rng.pick(&["-", "0"])
        ),
        2 => format!(
            "- target: {{labelSelector: \"tier={}\", kind: \"Deployment|StatefulSet|DaemonSet\"}}\n  patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata: {{name: any}}\n    spec:\n      template:\n        spec:\n          containers:\n          - name: containers0\n            image: {image}\n",
            rng.pick(&["a", "b"])
        ),
        3 => format!(
            "- target: {{labelSelector: \"app in ({}, none)\"}}\n  patch: |\n    - op: add\n      path: {}/-\n      value: {{name: by-label, image: \"{image}\"}}\n",
            w.name, w.containers
        ),
        _ => {
            let spec = match w.kind {
                "Pod" => "spec:\n  containers:\n".to_string(),
                "CronJob" => "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n".to_string(),
                "Pipeline" => "spec:\n  stages:\n  - name: build\n    pod:\n      spec:\n        containers:\n".to_string(),
                _ => "spec:\n  template:\n    spec:\n      containers:\n".to_string(),
            };
            let indent = " ".repeat(spec.lines().last().unwrap().len() - "containers:".len());
            let api = match w.kind {
                "Pod" => "v1",
                "CronJob" => "batch/v1",
                "Pipeline" => "ci.example.com/v1",
                _ => "apps/v1",
            };
            let body = format!(
                "apiVersion: {api}\nkind: {}\nmetadata:\n  name: {}\n{spec}{indent}- name: containers{}\n{indent}  image: {image}\n",
                w.kind,
                w.name,
                rng.next() % 3
            );
            let inline: String = body.lines().map(|l| format!("    {l}\n")).collect();
            format!("- patch: |\n{inline}")
        }
    }
}

/// One random tree: a base of workloads, optional components (with images and patches), an
/// overlay with images and patches.
fn random_tree(seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = String::new();
    let n = 1 + rng.next() % 3;
    let mut resources = Vec::new();
    let mut ws = Vec::new();
    for i in 0..n {
        let (w, text) = workload(&mut rng, &format!("w{i}"));
        out.push_str(&format!("-- base/w{i}.yaml --\n{text}"));
        resources.push(format!("w{i}.yaml"));
        ws.push(w);
    }
    out.push_str(&format!(
        "-- base/kustomization.yaml --\nresources: [{}]\n",
        resources.join(", ")
    ));
    if rng.chance(40) {
        out.push_str(&images_block(&mut rng));
    }
    let mut overlay = String::from("resources: [../base]\n");
    let mut components = Vec::new();
    for c in 0..rng.next() % 3 {
        let mut body = String::new();
        if rng.chance(60) {
            body.push_str(&images_block(&mut rng));
        }
        if rng.chance(50) {
            body.push_str("patches:\n");
            body.push_str(&patch_entry(&mut rng, &ws));
        }
        out.push_str(&format!(
            "-- comp{c}/kustomization.yaml --\napiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n{body}"
        ));
        components.push(format!("../comp{c}"));
    }
    if !components.is_empty() {
        overlay.push_str(&format!("components: [{}]\n", components.join(", ")));
    }
    if rng.chance(50) {
        overlay.push_str(&images_block(&mut rng));
    }
    let mut patches = String::new();
    for _ in 0..rng.next() % 3 {
        patches.push_str(&patch_entry(&mut rng, &ws));
    }
    if !patches.is_empty() {
        overlay.push_str("patches:\n");
        overlay.push_str(&patches);
    }
    if rng.chance(20) {
        overlay.push_str("namePrefix: dev-\n");
    }
    if rng.chance(20) {
        overlay.push_str("namespace: team\n");
    }
    out.push_str(&format!("-- overlay/kustomization.yaml --\n{overlay}"));
    out
}

#[test]
fn random_overlays_build_the_images_real_kustomize_builds() {
    let kubectl = kubectl();
    let count: u64 = std::env::var("IMAGEGATE_RANDOM_OVERLAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut failures = Vec::new();
    for seed in 1..=count {
        let tree = random_tree(seed);
        let tmp = tempfile::tempdir().unwrap();
        unpack(&tree, tmp.path());
        if let Err(e) = compare(&kubectl, tmp.path(), "overlay") {
            failures.push(format!("seed {seed}: {e}\n{tree}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} random overlays differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
