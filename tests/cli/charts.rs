//! Charts decide images (issue 16): real charts built and packaged by real helm (v4.1.4,
//! from `$IMAGEGATE_ENGINES`), a classic Helm repository indexed by `helm repo index` and
//! served from loopback, and OCI charts pushed by `helm push` to the real registry. helm is
//! the oracle: the images imagegate derives natively must be the images `helm template`
//! renders with the same values.
//!
//! The classic repository is served by a small static file server in the test, not a real
//! registry: a classic Helm repository *is* static files (`index.yaml` and `.tgz`), which is
//! how GitHub Pages and S3 serve them.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::harness::*;

/// helm with its own config, cache and data under a temporary home.
pub(crate) struct Helm {
    home: tempfile::TempDir,
}

impl Helm {
    pub(crate) fn new() -> Helm {
        Helm {
            home: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn run(&self, dir: &Path, args: &[&str]) -> String {
        let out = engine_at_home("helm", dir, self.home.path())
            .args(args)
            .output()
            .expect("helm runs");
        assert!(
            out.status.success(),
            "helm {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Writes a chart whose Deployment takes its image from `image.registry`,
    /// `image.repository` and `image.tag` (defaulting to `appVersion`), as `helm create`
    /// charts do, and packages it into `out`.
    pub(crate) fn package(
        &self,
        out: &Path,
        name: &str,
        version: &str,
        app: &str,
        repository: &str,
    ) -> PathBuf {
        let src = out.join("src").join(format!("{name}-{version}"));
        let dir = src.join(name);
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::write(
            dir.join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"{app}\"\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("values.yaml"),
            format!("image:\n  repository: {repository}\n  tag: \"\"\nreplicaCount: 1\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join("templates/deployment.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: {{ .Values.replicaCount }}\n  template:\n    spec:\n      containers:\n        - name: app\n          image: \"{{ with .Values.image.registry }}{{ . }}/{{ end }}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}\"\n",
        )
        .unwrap();
        self.run(&src, &["package", name, "-d", out.to_str().unwrap()]);
        out.join(format!("{name}-{version}.tgz"))
    }

    /// What `helm template` renders for a package with `--set` of each of `sets`.
    pub(crate) fn template_set(&self, package: &Path, sets: &[&str]) -> String {
        let mut args = vec!["template", "rel", package.to_str().unwrap()];
        for s in sets {
            args.extend(["--set", s]);
        }
        self.run(package.parent().unwrap(), &args)
    }

    /// The images `helm template` renders for a package with a values file.
    pub(crate) fn template_images(&self, package: &Path, values: &str) -> BTreeSet<String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("values.yaml"), values).unwrap();
        let out = self.run(
            dir.path(),
            &[
                "template",
                "rel",
                package.to_str().unwrap(),
                "-f",
                "values.yaml",
            ],
        );
        out.lines()
            .filter_map(|l| l.trim().strip_prefix("image: "))
            .map(|i| i.trim_matches('"').to_string())
            .collect()
    }
}

/// A static file server on loopback for a classic Helm repository directory.
pub(crate) fn serve(dir: &Path) -> String {
    let root = dir.to_path_buf();
    let port = crate::loopback_http::serve("127.0.0.1:0", move |req| {
        let rel = req.target.trim_start_matches('/').to_string();
        match (rel.contains(".."), std::fs::read(root.join(&rel))) {
            (false, Ok(bytes)) => crate::loopback_http::Reply::new(200, bytes),
            _ => crate::loopback_http::Reply::new(404, Vec::new()),
        }
    })
    .detach();
    format!("http://127.0.0.1:{port}")
}

/// A classic repository with podinfo 6.5.4 and 6.5.5 (images on `reg`), indexed by real
/// helm with relative package URLs; its URL and the packages.
fn classic_repository(helm: &Helm, reg: &Registry) -> (tempfile::TempDir, String, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("{}/podinfo", reg.host);
    let packages = ["6.5.4", "6.5.5"]
        .map(|v| helm.package(dir.path(), "podinfo", v, v, &repo))
        .to_vec();
    std::fs::remove_dir_all(dir.path().join("src")).unwrap();
    helm.run(dir.path(), &["repo", "index", "."]);
    let url = serve(dir.path());
    (dir, url, packages)
}

/// podinfo 6.5.4 and 6.5.5: images on the real registry, and charts in a classic
/// repository served on loopback from `dir`.
struct Podinfo {
    reg: Registry,
    helm: Helm,
    _dir: tempfile::TempDir,
    url: String,
    packages: Vec<PathBuf>,
}

impl Podinfo {
    fn new() -> Podinfo {
        let reg = registry_with_podinfo();
        let helm = Helm::new();
        let (dir, url, packages) = classic_repository(&helm, &reg);
        Podinfo {
            reg,
            helm,
            _dir: dir,
            url,
            packages,
        }
    }
}

fn registry_with_podinfo() -> Registry {
    let reg = Registry::anonymous();
    for tag in ["6.5.4", "6.5.5"] {
        reg.push_image("podinfo", tag, OCI_MANIFEST);
    }
    reg
}

pub(crate) fn helm_release(url: &str, oci: bool, version: &str, values: &str) -> String {
    let kind = if oci { "\n  type: oci" } else { "" };
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  url: {url}{kind}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  chart:\n    spec:\n      chart: podinfo\n      version: {version}\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n  values:\n{values}"
    )
}

/// The chart-derived images of a run (context names the chart), as `line image status`.
fn chart_rows(run: &Run) -> Vec<String> {
    run.rows(|r| {
        r["context"].as_str().unwrap().contains(" chart").then(|| {
            format!(
                "{} {} {}",
                r["line"],
                r["image"].as_str().unwrap(),
                r["status"].as_str().unwrap()
            )
        })
    })
}

/// The images imagegate derived from chart values (not chart versions).
fn derived_images(run: &Run) -> BTreeSet<String> {
    run.rows(|r| {
        let c = r["context"].as_str().unwrap();
        (c.contains(" chart ") && c.contains(" values"))
            .then(|| r["image"].as_str().unwrap().to_string())
    })
    .into_iter()
    .collect()
}

#[test]
fn a_tag_only_override_is_checked_against_the_charts_repository() {
    // issue 16: `values: {image: {tag: …}}` takes the repository from the chart's values.yaml.
    let p = Podinfo::new();
    let w = Workdir::new();
    for (tag, code, status) in [("6.5.99", 1, "not-found"), ("6.5.5", 0, "ok")] {
        let values = format!("    image:\n      tag: {tag}\n");
        w.write(
            "release.yaml",
            &helm_release(&p.url, false, "6.5.4", &values),
        );
        let run = w.run(&["check", "--all", "--format", "json"]);
        assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
        let image = format!("{}/podinfo:{tag}", p.reg.host);
        assert!(
            chart_rows(&run).contains(&format!("24 {image} {status}")),
            "{:?}\n{}",
            chart_rows(&run),
            run.stdout
        );
        // helm is the oracle for what the values make of the chart.
        let rendered = p
            .helm
            .template_images(&p.packages[0], &format!("image:\n  tag: {tag}\n"));
        assert_eq!(derived_images(&run), rendered);
    }
}

#[test]
fn a_repository_without_a_tag_gets_the_charts_app_version() {
    // issue 16: a map with a repository and no tag: the chart's appVersion decides it.
    let p = Podinfo::new();
    let w = Workdir::new();
    let values = format!(
        "    image:\n      registry: {}\n      repository: podinfo\n",
        p.reg.host
    );
    w.write(
        "release.yaml",
        &helm_release(&p.url, false, "6.5.5", &values),
    );
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rendered = p.helm.template_images(
        &p.packages[1],
        &format!(
            "image:\n  registry: {}\n  repository: podinfo\n",
            p.reg.host
        ),
    );
    assert_eq!(derived_images(&run), rendered);
    assert_eq!(rendered.len(), 1);
}

#[test]
fn a_classic_chart_version_bump_to_a_missing_version_fails_with_nearest_versions() {
    // issue 16: chart versions in classic HTTP repositories are checked against index.yaml.
    let p = Podinfo::new();
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write(
        "release.yaml",
        &helm_release(&p.url, false, "6.5.4", "    replicaCount: 2\n"),
    );
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    git(w.path(), &["checkout", "-q", "-b", "bump"]);
    // The change: the release moved to `version`, committed, and checked.
    let bump_to = |version: &str| {
        let release = helm_release(&p.url, false, version, "    replicaCount: 2\n");
        w.write("release.yaml", &release);
        git(w.path(), &["commit", "-qam", &format!("chart {version}")]);
        w.run(&["check", "--format", "json"])
    };
    let run = bump_to("6.5.9");
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let refs = run.json()["references"].clone();
    let version = refs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["context"] == "HelmRelease/podinfo chart podinfo")
        .unwrap_or_else(|| panic!("no chart version entry: {refs}"));
    assert_eq!(version["status"], "not-found", "{version}");
    assert_eq!(version["line"], 18);
    assert!(
        version["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "6.5.5"),
        "{version}"
    );
    // The bump to an existing version passes, and its defaults are checked at the version.
    let run = bump_to("6.5.5");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        chart_rows(&run).contains(&format!("18 {}/podinfo:6.5.5 ok", p.reg.host)),
        "{:?}",
        chart_rows(&run)
    );
}

#[test]
fn an_oci_chart_version_bump_to_a_missing_version_fails_and_its_defaults_are_read() {
    // issue 16: an OCI chart pushed by real helm: a missing version fails with nearest
    // versions; an existing one is fetched and its defaults checked.
    let reg = registry_with_podinfo();
    let helm = Helm::new();
    let dir = tempfile::tempdir().unwrap();
    let repo = format!("{}/podinfo", reg.host);
    for v in ["6.5.4", "6.5.5"] {
        let pkg = helm.package(dir.path(), "podinfo", v, v, &repo);
        let target = format!("oci://{}/charts", reg.host);
        helm.run(
            dir.path(),
            &["push", pkg.to_str().unwrap(), &target, "--plain-http"],
        );
    }
    let url = format!("oci://{}/charts", reg.host);
    let w = Workdir::new();
    w.write(
        "release.yaml",
        &helm_release(&url, true, "6.5.9", "    replicaCount: 2\n"),
    );
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let rows = chart_rows(&run);
    assert!(
        rows.contains(&format!("19 {}/charts/podinfo:6.5.9 not-found", reg.host)),
        "{rows:?}"
    );
    let missing = format!("{}/charts/podinfo:6.5.9", reg.host);
    assert_eq!(
        run.by_image("status").get(&missing).map(String::as_str),
        Some("not-found")
    );
    let entry = run.json()["references"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["image"] == missing.as_str())
        .cloned()
        .unwrap();
    assert_eq!(entry["suggestions"][0], "6.5.5", "nearest version: {entry}");
    let values = "    image:\n      tag: 6.5.99\n";
    w.write("release.yaml", &helm_release(&url, true, "6.5.5", values));
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let rows = chart_rows(&run);
    assert!(
        rows.contains(&format!("25 {repo}:6.5.99 not-found")),
        "{rows:?}"
    );
    let rendered = helm.template_images(
        &dir.path().join("podinfo-6.5.5.tgz"),
        "image:\n  tag: 6.5.99\n",
    );
    assert_eq!(derived_images(&run), rendered);
}

#[test]
fn an_imagepolicy_marker_checks_the_tag_against_the_policys_image() {
    // issue 16: Flux image automation's `# {"$imagepolicy": "ns:name:tag"}`.
    let reg = registry_with_podinfo();
    let w = Workdir::new();
    w.write(
        "policy.yaml",
        &format!("apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  image: {}/podinfo\n---\napiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImagePolicy\nmetadata:\n  name: podinfo\n  namespace: flux-system\nspec:\n  imageRepositoryRef:\n    name: podinfo\n", reg.host),
    );
    for (tag, code, status) in [("6.5.99", 1, "not-found"), ("6.5.4", 0, "ok")] {
        w.write(
            "values.yaml",
            &format!("app:\n  settings:\n    tag: {tag} # {{\"$imagepolicy\": \"flux-system:podinfo:tag\"}}\n"),
        );
        w.write(
            "release.yaml",
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: x}\nspec:\n  values:\n    podinfo:\n      tag: 1.0.0 # {\"$imagepolicy\": \"flux-system:missing:tag\"}\n",
        );
        let run = w.run(&["check", "--all", "--format", "json"]);
        assert_eq!(run.code, code, "{}\n{}", run.stdout, run.stderr);
        let rows = run.rows(|r| {
            (r["file"] == "values.yaml").then(|| {
                format!(
                    "{} {} {}",
                    r["line"],
                    r["image"].as_str().unwrap(),
                    r["status"].as_str().unwrap()
                )
            })
        });
        assert_eq!(rows, [format!("3 {}/podinfo:{tag} {status}", reg.host)]);
        let skipped = run.file_findings("skipped");
        assert!(
            skipped.iter().any(|f| f["message"]
                .as_str()
                .unwrap()
                .contains("flux-system:missing")),
            "an unknown policy is said, not passed: {skipped:?}"
        );
    }
}

#[test]
fn argo_cd_parameters_beat_values_object() {
    // issue 16: `helm.parameters` override `valuesObject`, as in Argo CD.
    let p = Podinfo::new();
    let w = Workdir::new();
    w.write(
        "app.yaml",
        &format!("apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: podinfo\nspec:\n  source:\n    repoURL: {}\n    chart: podinfo\n    targetRevision: 6.5.4\n    helm:\n      valuesObject:\n        image:\n          tag: 6.5.5\n      parameters:\n        - name: image.tag\n          value: 6.5.4-typo\n", p.url),
    );
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let image = format!("{}/podinfo:6.5.4-typo", p.reg.host);
    assert!(
        chart_rows(&run).contains(&format!("16 {image} not-found")),
        "{:?}",
        chart_rows(&run)
    );
    assert!(
        !run.stdout.contains("podinfo:6.5.5\""),
        "valuesObject lost: {}",
        run.stdout
    );
    let out = p
        .helm
        .template_set(&p.packages[0], &["image.tag=6.5.5", "image.tag=6.5.4-typo"]);
    assert!(out.contains(&image), "{out}");
    assert_eq!(derived_images(&run), BTreeSet::from([image]));
}

#[test]
fn argo_cd_values_object_replaces_the_values_string() {
    // issue 16: Argo CD hands helm `valuesObject` in place of the `values` string, never
    // both (`ApplicationSourceHelm.ValuesYAML`), so a tag in the string is not deployed.
    let p = Podinfo::new();
    let w = Workdir::new();
    let app = |object: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: podinfo\nspec:\n  source:\n    repoURL: {}\n    chart: podinfo\n    targetRevision: 6.5.4\n    helm:\n      values: |\n        image:\n          tag: 6.5.99\n{object}",
            p.url
        )
    };
    w.write(
        "app.yaml",
        &app("      valuesObject:\n        replicaCount: 2\n"),
    );
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // The oracle: helm given only what Argo CD gives it, the valuesObject.
    let out = p.helm.template_set(&p.packages[0], &["replicaCount=2"]);
    let image = format!("{}/podinfo:6.5.4", p.reg.host);
    assert!(out.contains(&image), "{out}");
    assert_eq!(derived_images(&run), BTreeSet::from([image]));
    // A null valuesObject is no valuesObject: the string is used, and its tag is missing.
    w.write("app.yaml", &app("      valuesObject: null\n"));
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        derived_images(&run),
        BTreeSet::from([format!("{}/podinfo:6.5.99", p.reg.host)])
    );
}

#[test]
fn offline_the_chart_step_is_a_note() {
    // issue 16: with --offline, charts are not fetched, and the run says so.
    let w = Workdir::new();
    w.write(
        "release.yaml",
        &helm_release(
            "https://charts.example.com",
            false,
            "6.5.4",
            "    image:\n      tag: 6.5.99\n",
        ),
    );
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let notes = run.file_findings("chart-not-read");
    assert_eq!(notes.len(), 1, "{}", run.stdout);
    assert!(notes[0]["message"].as_str().unwrap().contains("--offline"));
}

#[test]
fn a_gzip_bomb_in_a_chart_repository_is_a_finding() {
    // issue 16: a package that unpacks past the limit is a finding, not an outage.
    let dir = tempfile::tempdir().unwrap();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let mut add = |path: &str, size: u64, data: &mut dyn std::io::Read| {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, data).unwrap();
    };
    let chart = b"apiVersion: v2\nname: bomb\nversion: 1.0.0\n";
    add("bomb/Chart.yaml", chart.len() as u64, &mut &chart[..]);
    let size = 200u64 << 20;
    add(
        "bomb/values.yaml",
        size,
        &mut std::io::repeat(b' ').take(size),
    );
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    std::fs::write(dir.path().join("bomb-1.0.0.tgz"), &bytes).unwrap();
    std::fs::write(
        dir.path().join("index.yaml"),
        "apiVersion: v1\nentries:\n  bomb:\n  - name: bomb\n    version: 1.0.0\n    urls: [bomb-1.0.0.tgz]\n",
    )
    .unwrap();
    let url = serve(dir.path());
    let w = Workdir::new();
    w.write(
        "release.yaml",
        &helm_release(&url, false, "1.0.0", "    replicaCount: 2\n").replace("podinfo", "bomb"),
    );
    let run = w.run(&["check", "--all", "--format", "json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let found = run.file_findings("chart-unreadable");
    assert_eq!(found.len(), 1, "{}", run.stdout);
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .contains("unpacks to more than"),
        "{found:?}"
    );
}
