//! `--render` for charts (issue 16): the real `helm template` (helm v4.1.4 from
//! $IMAGEGATE_ENGINES) renders each chart release with the chart as fetched (a classic
//! repository indexed by real helm on loopback, an OCI chart pushed by real helm to the real
//! registry, a chart directory of the repository) and the release's values, and an image
//! the native chart model did not predict is checked anyway, at the release's chart line.
//! helm is a trusted setting, runs in a private directory with a clean environment, and a
//! failing render is exit 2 with helm's own message.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::charts::{Helm, helm_release, serve};
use crate::harness::*;
use crate::render::{
    assert_rendered, each_trusted_way_renders, none_reached, one_model_gap_says, planted_programs,
    recording_wrapper, rendered_by, the_repository_cannot_choose, trusted_configs,
};

/// A chart `podinfo` whose main image follows the values conventions, whose sidecar's
/// image is composed with `printf` from keys no convention names (so the native model
/// cannot predict it), and whose test hook deploys a third image.
fn composed_chart(dir: &Path, version: &str, host: &str) {
    let w = |rel: &str, text: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w(
        "Chart.yaml",
        &format!("apiVersion: v2\nname: podinfo\nversion: {version}\nappVersion: \"6.5.4\"\n"),
    );
    w(
        "values.yaml",
        &format!(
            "image:\n  repository: {host}/podinfo\n  tag: \"6.5.4\"\napp:\n  server: {host}\n  name: podinfo\n  version: 6.5.4\n"
        ),
    );
    w(
        "templates/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"\n        - name: sidecar\n          image: {{ printf \"%s/%s:%s\" (required \"app.server is required\" .Values.app.server) .Values.app.name (toString .Values.app.version) | quote }}\n",
    );
    w(
        "templates/tests/probe.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\nspec:\n  restartPolicy: Never\n  containers:\n    - name: probe\n      image: \"{{ .Values.app.server }}/podinfo:test-only\"\n",
    );
}

/// The composed chart packaged by real helm into `out` (`podinfo-<version>.tgz`).
fn package(helm: &Helm, out: &Path, version: &str, host: &str) -> PathBuf {
    let src = out.join("src").join(version);
    composed_chart(&src.join("podinfo"), version, host);
    helm.run(&src, &["package", "podinfo", "-d", out.to_str().unwrap()]);
    std::fs::remove_dir_all(out.join("src")).unwrap();
    out.join(format!("podinfo-{version}.tgz"))
}

/// A classic repository holding the composed chart 1.0.0, served on loopback.
fn classic(helm: &Helm, host: &str) -> (tempfile::TempDir, String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(helm, dir.path(), "1.0.0", host);
    helm.run(dir.path(), &["repo", "index", "."]);
    let url = serve(dir.path());
    (dir, url, pkg)
}

/// Rows `file:line image status context` of the references helm rendered.
fn rendered(run: &Run) -> Vec<String> {
    rendered_by(run, "helm")
}

/// The JSON check with `--render` and real helm.
fn render_args(extra: &[&'static str]) -> Vec<String> {
    let mut args: Vec<String> = CHECK_JSON.iter().map(|s| s.to_string()).collect();
    args.extend(["--render".into(), "--helm".into()]);
    args.push(helm_bin().to_string_lossy().into_owned());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_args(w: &Workdir, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    w.run(&args)
}

/// Issue 16: an image a template composes with `printf` is out of the native model's reach,
/// so without --render a typo in it passes; with --render helm's output is checked and the
/// typo fails at the release's chart version line. Test hooks follow Flux: left out unless
/// `spec.test.enable`. helm is the oracle for what the chart deploys.
#[test]
fn a_composed_image_fails_only_with_render() {
    let reg = Registry::anonymous();
    reg.push_image("podinfo", "6.5.4", OCI_MANIFEST);
    let h = reg.host.clone();
    let helm = Helm::new();
    let (_repo, url, pkg) = classic(&helm, &h);
    let w = Workdir::new();
    let values = "    app:\n      version: 6.5.99\n";
    w.write("release.yaml", &helm_release(&url, false, "1.0.0", values));

    let plain = w.run(&CHECK_JSON);
    assert_eq!(plain.code, 0, "{}\n{}", plain.stdout, plain.stderr);
    assert!(rendered(&plain).is_empty());
    assert_eq!(
        plain
            .statuses()
            .get(&format!("{h}/podinfo:6.5.4"))
            .map(String::as_str),
        Some("ok"),
        "{}",
        plain.stdout
    );

    let run = run_args(&w, &render_args(&[]));
    assert_rendered(
        &run,
        "helm",
        1,
        &[format!(
            "release.yaml:18 {h}/podinfo:6.5.99 not-found HelmRelease/podinfo Deployment/podinfo containers[sidecar] (rendered by helm, chart podinfo 1.0.0)"
        )],
    );
    one_model_gap_says(&run, &format!("helm renders `{h}/podinfo:6.5.99`"));
    // The oracle: real helm with the same values deploys the main image, the sidecar and,
    // only as a test hook, the probe; imagegate checked the first two.
    let oracle = helm.template_images(&pkg, "app:\n  version: 6.5.99\n");
    let probe = format!("{h}/podinfo:test-only");
    assert_eq!(
        oracle,
        BTreeSet::from([
            format!("{h}/podinfo:6.5.4"),
            format!("{h}/podinfo:6.5.99"),
            probe.clone()
        ])
    );
    let checked: BTreeSet<String> = run
        .statuses()
        .into_keys()
        .filter(|i| i.starts_with(&format!("{h}/")))
        .collect();
    let mut deployed = oracle.clone();
    deployed.remove(&probe);
    assert_eq!(checked, deployed, "{}", run.stdout);

    // -v lists the model gap; without it only the failure shows.
    let human: Vec<String> = render_args(&[])
        .into_iter()
        .filter(|a| a != "--format" && a != "json")
        .collect();
    let quiet = run_args(&w, &human);
    assert_eq!(quiet.code, 1);
    assert!(!quiet.stderr.contains("model gap"), "{}", quiet.stderr);
    let mut verbose = human.clone();
    verbose.push("-v".into());
    let verbose = run_args(&w, &verbose);
    assert_eq!(verbose.code, 1);
    assert!(
        verbose.stderr.contains(&format!(
            "model gap: helm renders `{h}/podinfo:6.5.99` (Deployment/podinfo containers[sidecar]) for HelmRelease/podinfo"
        )),
        "{}",
        verbose.stderr
    );

    // With `spec.test.enable`, Flux runs the test hook: its image is checked too.
    let tested = format!("{values}  test:\n    enable: true\n");
    w.write("release.yaml", &helm_release(&url, false, "1.0.0", &tested));
    let run = run_args(&w, &render_args(&[]));
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        rendered(&run).contains(&format!(
            "release.yaml:18 {probe} not-found HelmRelease/podinfo Pod/podinfo-test containers[probe] (rendered by helm, chart podinfo 1.0.0)"
        )),
        "{:?}",
        rendered(&run)
    );

    // Pushed, both pass.
    reg.push_image("podinfo", "6.5.99", OCI_MANIFEST);
    reg.push_image("podinfo", "test-only", OCI_MANIFEST);
    let run = run_args(&w, &render_args(&[]));
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(rendered(&run).len(), 2, "{}", run.stdout);
}

/// Issue 16: a render that fails is exit 2 with helm's own message, never a pass. The
/// release's `null` over a `valuesFrom` ConfigMap's value deletes the chart's default too,
/// as Flux's merge and helm do (the oracle), so the template's `required` fails.
#[test]
fn a_failing_helm_render_is_exit_2_with_helms_message() {
    let helm = Helm::new();
    let (_repo, url, pkg) = classic(&helm, "example.invalid");
    let w = Workdir::new();
    let from = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: flux-system\ndata:\n  values.yaml: |\n    app:\n      server: other.example\n";
    w.write("extra.yaml", from);
    let values =
        "    app:\n      server: null\n  valuesFrom:\n    - kind: ConfigMap\n      name: extra\n";
    w.write("release.yaml", &helm_release(&url, false, "1.0.0", values));
    let plain = w.run(&["check", "--all", "--offline"]);
    assert_eq!(plain.code, 0, "{}\n{}", plain.stdout, plain.stderr);

    let run = run_args(&w, &render_args(&[]));
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "`helm template podinfo podinfo-1.0.0.tgz --namespace flux-system --skip-tests` failed (--render), so what HelmRelease/podinfo deploys cannot be checked"
        ) && run.stderr.contains("app.server is required"),
        "{}",
        run.stderr
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), "app:\n  server: other.example\n").unwrap();
    std::fs::write(dir.path().join("b.yaml"), "app:\n  server: null\n").unwrap();
    let oracle = Command::new(helm_bin())
        .args([
            "template",
            "podinfo",
            pkg.to_str().unwrap(),
            "-f",
            "a.yaml",
            "-f",
            "b.yaml",
        ])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!oracle.status.success());
    assert!(String::from_utf8_lossy(&oracle.stderr).contains("app.server is required"));
}

/// An Argo CD Application deploying a chart directory of the repository, one of whose
/// templates writes an image literally (checked at its own line, so not a model gap).
fn local_chart_app(w: &Workdir) -> usize {
    composed_chart(&w.path().join("charts/podinfo"), "1.0.0", "example.invalid");
    w.write(
        "charts/podinfo/templates/job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-migrate\nspec:\n  template:\n    spec:\n      containers:\n        - name: migrate\n          image: example.invalid/migrate:1.0\n",
    );
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  destination:\n    namespace: apps\n  source:\n    repoURL: https://git.example.com/apps.git\n    path: charts/podinfo\n    targetRevision: HEAD\n    helm:\n      valuesObject:\n        app:\n          version: 6.5.99\n";
    w.write("app.yaml", app);
    11
}

/// Issue 16 and the trust model (issue 13): the repository's `.imagegate.yaml` may turn
/// render on, never name helm; a helm in the repository is never found through a relative
/// PATH entry; without helm, --render is exit 2 saying so; trusted settings name it.
#[test]
fn only_trusted_settings_choose_the_helm_program() {
    let w = Workdir::new();
    let line = local_chart_app(&w);
    let marker = planted_programs(&w, "helm");
    let engines = helm_bin().parent().unwrap().to_str().unwrap().to_string();
    let row = format!(
        "app.yaml:{line} example.invalid/podinfo:6.5.99 skipped Application/web Deployment/web containers[sidecar] (rendered by helm, chart podinfo 1.0.0)"
    );
    the_repository_cannot_choose(&w, "helm", &engines, &marker);

    // `render: true` from the repository turns it on; helm is found on PATH. The image
    // the template writes literally is checked at its line, not again as a model gap.
    w.write(".imagegate.yaml", "render: true\n");
    let run = w.run_env(&OFFLINE_JSON, &[("PATH", &engines)]);
    assert_rendered(&run, "helm", 0, std::slice::from_ref(&row));
    let literal = run.rows(|r| {
        (r["image"] == "example.invalid/migrate:1.0")
            .then(|| format!("{}:{}", r["file"].as_str().unwrap(), r["line"]))
    });
    assert_eq!(literal, ["charts/podinfo/templates/job.yaml:10"]);

    // Relative PATH entries are dropped, so `./helm` and `bin/helm` are not found, and
    // --render without helm is exit 2, never a quiet pass.
    for path in [".:bin:", "/nowhere"] {
        let run = w.run_env(&OFFLINE_JSON, &[("PATH", path)]);
        assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("--render needs helm")
                && run.stderr.contains("`helm` is not on PATH"),
            "{}",
            run.stderr
        );
    }
    assert!(!marker.exists(), "a program in the repository ran");
    std::fs::remove_file(w.path().join(".imagegate.yaml")).unwrap();

    // Trusted: the flag, the variable, a config outside the repository, a bare name there.
    let bin = helm_bin();
    let (_trusted, config, bare) = trusted_configs("helm", &bin, "helm");
    let cases = [
        (
            vec!["--render", "--helm", bin.to_str().unwrap()],
            vec![("PATH", "/nowhere")],
        ),
        (
            vec!["--render"],
            vec![
                ("IMAGEGATE_HELM", bin.to_str().unwrap()),
                ("PATH", "/nowhere"),
            ],
        ),
        (
            vec!["--config", config.to_str().unwrap()],
            vec![("PATH", "/nowhere")],
        ),
        (
            vec!["--config", bare.to_str().unwrap()],
            vec![("PATH", engines.as_str())],
        ),
    ];
    each_trusted_way_renders(&w, &cases, |run, case| {
        assert_eq!(rendered(run), std::slice::from_ref(&row), "{case}");
    });
    assert!(!marker.exists());
}

/// Issue 16: helm (a recording wrapper around the real one, so its arguments, directory and
/// environment can be read) runs in a private directory that is gone afterwards, on a copy
/// of the chart and a values file, with its homes and `HOME` inside that directory: the
/// user's plugins, helm config, kube config and secrets never reach it, and nothing asks it
/// to download, resolve names or post-render.
#[test]
fn helm_gets_a_private_directory_and_a_clean_environment() {
    let w = Workdir::new();
    local_chart_app(&w);
    let record = w.path().join("record");
    let user = Workdir::new();
    user.write("plugins/post/plugin.yaml", "name: post\n");
    user.write(".config/helm/repositories.yaml", "repositories: []\n");
    let (_tools, path) = recording_wrapper(
        "helm",
        "echo \"args: $*\"; echo \"pwd: $(pwd)\"; /usr/bin/env | sort; echo \"files: $(ls -A | tr '\\n' ' ')\"; echo \"plugins: $(ls -A \"$HELM_PLUGINS\")\";",
        &record,
        &format!("exec {} \"$@\"", helm_bin().display()),
        "/usr/bin:/bin",
    );
    let u = user.path().display().to_string();
    let run = w.run_env(
        &RENDER_OFFLINE_JSON,
        &[
            ("PATH", &path),
            ("SENTINEL_SECRET", "s3cret-sentinel"),
            ("HELM_PLUGINS", &format!("{u}/plugins")),
            ("HELM_CONFIG_HOME", &format!("{u}/.config/helm")),
            (
                "HELM_REPOSITORY_CONFIG",
                &format!("{u}/.config/helm/repositories.yaml"),
            ),
            ("KUBECONFIG", &format!("{u}/kubeconfig")),
            ("XDG_CONFIG_HOME", &format!("{u}/.config")),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(rendered(&run).len(), 1, "{}", run.stdout);
    let record = std::fs::read_to_string(&record).unwrap();
    assert!(
        record.contains(
            "args: template --namespace=apps --values=values.json --skip-tests -- web ./chart\n"
        ),
        "{record}"
    );
    let pwd = record
        .lines()
        .find_map(|l| l.strip_prefix("pwd: "))
        .unwrap()
        .to_string();
    assert!(
        !Path::new(&pwd).exists(),
        "the scratch directory was left: {pwd}"
    );
    assert!(!pwd.starts_with(&w.path().display().to_string()), "{pwd}");
    for (var, under) in [
        ("HOME", "home"),
        ("HELM_CACHE_HOME", "helm/cache"),
        ("HELM_CONFIG_HOME", "helm/config"),
        ("HELM_DATA_HOME", "helm/data"),
        ("HELM_PLUGINS", "helm/plugins"),
    ] {
        assert!(
            record.contains(&format!("\n{var}={pwd}/{under}\n")),
            "{var}: {record}"
        );
    }
    assert!(
        record.contains("files: chart helm home values.json"),
        "{record}"
    );
    assert!(record.contains("plugins: \n"), "{record}");
    none_reached(
        &record,
        "helm",
        &[
            "s3cret-sentinel",
            u.as_str(),
            "KUBECONFIG",
            "XDG_CONFIG_HOME",
            "HELM_REPOSITORY_CONFIG",
            "DOCKER_CONFIG",
            "post-renderer",
            "--repo",
            "dependency-update",
            "enable-dns",
        ],
    );
}

/// Issue 16: in a diff, as for kustomize roots, a rendered image the same release rendered
/// at the merge base is not the change's: an unrelated values edit does not fail on a
/// missing image it already deployed, `--all-refs` checks it, and a change to it fails.
/// The chart is OCI, pushed by real helm to the real registry.
#[test]
fn a_diff_checks_only_what_helm_renders_new() {
    let reg = Registry::anonymous();
    reg.push_image("podinfo", "6.5.4", OCI_MANIFEST);
    let h = reg.host.clone();
    let helm = Helm::new();
    let dir = tempfile::tempdir().unwrap();
    let pkg = package(&helm, dir.path(), "1.0.0", &h);
    let target = format!("oci://{h}/charts");
    helm.run(
        dir.path(),
        &["push", pkg.to_str().unwrap(), &target, "--plain-http"],
    );
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write(".git/info/exclude", ".docker-config\n.cache\n");
    let release = |values: &str| helm_release(&target, true, "1.0.0", values);
    w.write("release.yaml", &release("    app:\n      version: gone\n"));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    git(w.path(), &["checkout", "-q", "-b", "change"]);
    let check = |extra: &[&'static str]| {
        let mut args = render_args(&["--base", "main", "--no-worktree"]);
        args.retain(|a| a != "--all");
        args.extend(extra.iter().map(|s| s.to_string()));
        run_args(&w, &args)
    };

    w.write(
        "release.yaml",
        &release("    app:\n      version: gone\n    replicaCount: 2\n"),
    );
    git(w.path(), &["commit", "-q", "-am", "replicas"]);
    let run = check(&[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(rendered(&run).is_empty(), "{}", run.stdout);
    let run = check(&["--all-refs"]);
    assert_rendered(
        &run,
        "helm",
        1,
        &[format!(
            "release.yaml:19 {h}/podinfo:gone not-found HelmRelease/podinfo Deployment/podinfo containers[sidecar] (rendered by helm, chart podinfo 1.0.0)"
        )],
    );

    w.write(
        "release.yaml",
        &release("    app:\n      version: 6.5.98\n    replicaCount: 2\n"),
    );
    git(w.path(), &["commit", "-q", "-am", "bump"]);
    let run = check(&[]);
    assert_rendered(
        &run,
        "helm",
        1,
        &[format!(
            "release.yaml:19 {h}/podinfo:6.5.98 not-found HelmRelease/podinfo Deployment/podinfo containers[sidecar] (rendered by helm, chart podinfo 1.0.0)"
        )],
    );
}
