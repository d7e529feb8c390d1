//! Differential tests of imagegate's kustomize model against the real engine (issue 15):
//! for every tree of the corpus (`tests/kustomize/*.txtar`) and for seeded random overlays,
//! the images imagegate's native build finds must equal the images in `kubectl kustomize`
//! output (kustomize v5.8.1), both read by imagegate's own image finder. Where the real
//! build fails, imagegate must report a `Fails` note at an input position.

use std::collections::BTreeMap;
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
    match real(kubectl, &tree.join(root)) {
        Ok(theirs) => {
            if native.failed {
                return Err(format!(
                    "kustomize builds it ({theirs:?}) but imagegate says it fails: {:?}",
                    native.notes
                ));
            }
            if mine != theirs {
                return Err(format!("imagegate {mine:?}\n  kustomize {theirs:?}"));
            }
        }
        Err(e) => {
            let at = native
                .notes
                .iter()
                .find(|n| n.problem == Problem::Fails || n.problem == Problem::Escapes);
            match at {
                Some(n) if n.at.is_some() => {}
                _ => {
                    return Err(format!(
                        "kustomize fails ({}) but imagegate reports no failure at an input: {:?}",
                        e.trim(),
                        native.notes
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
        unpack(&std::fs::read_to_string(case).unwrap(), tmp.path());
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
const NAMES: [&str; 8] = [
    "nginx",
    "ghcr.io/acme/web",
    "registry:5000/team/api",
    "busybox",
    "my.app",
    "alpine:latest",
    "none-such",
    "ghcr.io/.*",
];

fn deployment(rng: &mut Rng, name: &str) -> String {
    let mut containers = String::new();
    for i in 0..1 + rng.next() % 3 {
        containers.push_str(&format!(
            "      - name: c{i}\n        image: {}\n",
            rng.pick(&IMAGES)
        ));
    }
    let init = if rng.chance(30) {
        format!(
            "      initContainers:\n      - name: init\n        image: {}\n",
            rng.pick(&IMAGES)
        )
    } else {
        String::new()
    };
    let kind = rng.pick(&["Deployment", "StatefulSet", "DaemonSet"]);
    format!(
        "apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  template:\n    spec:\n      containers:\n{containers}{init}"
    )
}

fn images_block(rng: &mut Rng) -> String {
    let mut s = String::from("images:\n");
    for _ in 0..1 + rng.next() % 3 {
        s.push_str(&format!("- name: {}\n", rng.pick(&NAMES)));
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

/// One random tree: a base, an optional component, an overlay with images and patches.
fn random_tree(seed: u64) -> String {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = String::new();
    let n = 1 + rng.next() % 3;
    let mut resources = Vec::new();
    for i in 0..n {
        out.push_str(&format!(
            "-- base/w{i}.yaml --\n{}",
            deployment(&mut rng, &format!("w{i}"))
        ));
        resources.push(format!("w{i}.yaml"));
    }
    out.push_str(&format!(
        "-- base/kustomization.yaml --\nresources: [{}]\n",
        resources.join(", ")
    ));
    if rng.chance(40) {
        out.push_str(&images_block(&mut rng));
    }
    let mut overlay = String::from("resources: [../base]\n");
    if rng.chance(40) {
        out.push_str(&format!(
            "-- comp/kustomization.yaml --\napiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n{}",
            images_block(&mut rng)
        ));
        overlay.push_str("components: [../comp]\n");
    }
    if rng.chance(50) {
        overlay.push_str(&images_block(&mut rng));
    }
    let mut patches = String::new();
    if rng.chance(40) {
        let target = format!("w{}", rng.next() % n);
        patches.push_str(&format!(
            "- target: {{kind: {}, name: {target}}}\n  patch: |\n    - op: replace\n      path: /spec/template/spec/containers/0/image\n      value: {}\n",
            rng.pick(&["Deployment", "StatefulSet", "DaemonSet", "Deployment|StatefulSet|DaemonSet"]),
            rng.pick(&IMAGES)
        ));
    }
    if rng.chance(40) {
        let target = format!("w{}", rng.next() % n);
        out.push_str(&format!(
            "-- overlay/smp.yaml --\napiVersion: apps/v1\nkind: {}\nmetadata:\n  name: {target}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c{}\n        image: {}\n",
            rng.pick(&["Deployment", "StatefulSet", "DaemonSet"]),
            rng.next() % 3,
            rng.pick(&IMAGES)
        ));
        patches.push_str("- path: smp.yaml\n");
    }
    if !patches.is_empty() {
        overlay.push_str("patches:\n");
        overlay.push_str(&patches);
    }
    if rng.chance(20) {
        overlay.push_str("namePrefix: dev-\n");
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
