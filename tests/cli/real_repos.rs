//! Regressions from running imagegate on real public GitOps repositories (issue 16): each test
//! rebuilds, in a temporary directory, the shape of a file that imagegate misjudged there (the
//! repository and path are named in the test), with real kubectl kustomize or real helm (from
//! `$IMAGEGATE_ENGINES`) as the oracle of what deploys.

use std::path::Path;

use crate::harness::*;

/// Runs a real engine in `dir` with a private home; its stdout, or its stderr as the error.
fn run_engine(name: &str, dir: &Path, args: &[&str]) -> Result<String, String> {
    let home = tempfile::tempdir().unwrap();
    let out = engine_at_home(name, dir, home.path())
        .args(args)
        .output()
        .expect("the engine runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `file:line:column` of every reference of a JSON run, then what `tail` says of it.
fn located(run: &Run, tail: impl Fn(&serde_json::Value) -> Option<String>) -> Vec<String> {
    run.rows(|r| {
        let at = format!("{}:{}:{}", r["file"].as_str()?, r["line"], r["column"]);
        Some(format!("{at} {}", tail(r)?))
    })
}

/// `file:line:column image code` of every reference of a JSON run.
fn references(run: &Run) -> Vec<String> {
    located(run, |r| {
        let image = r["image"].as_str().filter(|s| !s.is_empty()).unwrap_or("-");
        Some(format!("{image} {}", r["code"].as_str().unwrap_or("-")))
    })
}

// argoproj/argo-cd resource_customizations/db.atlasgo.io/AtlasSchema/testdata/healthy.yaml:30
// (and work.karmada.io's progressing.yaml): a quoted scalar continued at its key's
// indentation. go-yaml reads it, so kustomize builds the root; imagegate said `invalid-yaml`
// and `kustomize-build`, and left the root's images unchecked.
#[test]
fn quoted_scalar_continued_at_the_keys_indentation_is_yaml() {
    let w = Workdir::new();
    w.write(
        "app/kustomization.yaml",
        "resources:\n- status.yaml\n- deploy.yaml\n",
    );
    w.write(
        "app/status.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dump\ndata:\n  message: 'The schema has been applied. Apply response: {\"Driver\":\"mysql\",\"Changes\":{\"Applied\":[\"CREATE\n  TABLE `users` (\\n  `id` int\\n) CHARSET utf8mb4\"]}}'\n  next: \"two\n  lines\"\n",
    );
    w.write("app/deploy.yaml", &deployment("web", &["nginx:1.25"]));
    let built = run_engine("kubectl", w.path(), &["kustomize", "app"])
        .expect("real kustomize builds the root");
    assert!(built.contains("TABLE `users`"), "{built}");
    assert!(built.contains("next: two lines"), "{built}");

    let run = w.run(&["check", "--all", "--offline", "--format", "json", "app"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.file_codes(), Vec::<String>::new());
    assert_eq!(references(&run), ["app/deploy.yaml:10:16 nginx:1.25 -"]);
}

// kubernetes-sigs/kustomize functions/examples/fn-framework-application/pkg/exampleapp/
// v1alpha1/templates/web_worker.template.yaml:26 and kyaml/fn/framework/testdata/
// template-processor/templates/basic/deploy.template.yaml:14: an unquoted `{{ .AppImage }}` is
// a YAML mapping, but it is a template like its quoted form, not a non-string image.
#[test]
fn an_unquoted_template_action_is_an_unresolved_variable() {
    let w = Workdir::new();
    let template = |name: &str, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        image: {image}\n"
        )
    };
    w.write(
        "templates/deploy.template.yaml",
        &template("{{ .Name }}", "{{ .AppImage }}"),
    );
    w.write(
        "templates/quoted.template.yaml",
        &template("quoted", "\"{{ .AppImage }}\""),
    );
    w.write(
        "templates/mapping.yaml",
        &template("mapping", "{name: web}"),
    );
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        references(&run),
        [
            "templates/deploy.template.yaml:10:16 {{ .AppImage }} unresolved-variable",
            "templates/mapping.yaml:10:16 - non-string-image",
            "templates/quoted.template.yaml:10:16 {{ .AppImage }} unresolved-variable",
        ]
    );
}

/// `file:line:column code message` of every reference with a finding.
fn messages(run: &Run) -> Vec<String> {
    located(run, |r| {
        Some(format!(
            "{} {}",
            r["code"].as_str()?,
            r["message"].as_str()?
        ))
    })
}

// prometheus-operator/kube-prometheus tests/e2e/kind/patches/kube-controller-manager.yaml:8: a
// container with no `image` key was "image is empty"; it has no image at all, and says so.
#[test]
fn a_container_without_an_image_key_has_no_image() {
    let w = Workdir::new();
    w.write(
        "deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        resources: {}\n      - name: blank\n        image: \"\"\n",
    );
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        messages(&run),
        [
            "deploy.yaml:12:16 empty-image Deployment/web containers[blank]: image is empty",
            "deploy.yaml:9:9 empty-image Deployment/web containers[app]: has no image",
        ]
    );
}

// prometheus-operator/kube-prometheus tests/e2e/kind/patches/kube-controller-manager.yaml:8,
// which kind's kubeadm applies from `patches.directory`: named as kubeadm names its patches, a
// Pod whose container has no `image` leaves the component's image alone. An empty image in
// such a patch, or a Pod of another name without one, is still an error.
#[test]
fn a_kubeadm_patch_without_an_image_is_a_patch() {
    let w = Workdir::new();
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: kube-system\nspec:\n  containers:\n    - name: {name}\n      resources:\n        requests:\n          cpu: 1m\n{extra}"
        )
    };
    w.write(
        "kind/patches/kube-controller-manager.yaml",
        &pod("kube-controller-manager", ""),
    );
    w.write(
        "kind/patches/kube-scheduler0+strategic.yaml",
        &pod("kube-scheduler", "    - name: sidecar\n      image: \"\"\n"),
    );
    w.write("kind/patches/kube-controller-manager.yml", &pod("yml", ""));
    w.write("manifests/pod.yaml", &pod("plain", ""));
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        messages(&run),
        [
            "kind/patches/kube-controller-manager.yml:8:7 empty-image Pod/yml containers[yml]: has no image",
            "kind/patches/kube-scheduler0+strategic.yaml:13:14 empty-image Pod/kube-scheduler containers[sidecar]: image is empty",
            "manifests/pod.yaml:8:7 empty-image Pod/plain containers[plain]: has no image",
        ]
    );
}

// argoproj/argo-cd applicationset/examples/git-generator-directory/excludes/cluster-addons/
// exclude-helm-guestbook/values.yaml:9: `tag: 0.1` was a non-string-image error though helm
// renders `:0.1`, as written. A numeric values tag is an error only where what real helm
// renders differs from what is written (`1.10` renders `1.1`), and the message says what it
// renders.
#[test]
fn a_numeric_values_tag_is_an_error_only_where_helm_renders_it_otherwise() {
    let tags = [
        "0.1", "1.10", "2.0", "7", "2.5", "1234567", "010", "08", "1_000", "0x1F", "1e3", ".5",
        "0.00001", "1e400", "yes", "true",
    ];
    let w = Workdir::new();
    w.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: guestbook\nversion: 0.1.0\nappVersion: \"1.0\"\n",
    );
    let mut values = String::from("images:\n");
    for (i, tag) in tags.iter().enumerate() {
        values.push_str(&format!(
            "  t{i}:\n    image:\n      repository: quay.io/argoprojlabs/argocd-e2e-container\n      tag: {tag}\n"
        ));
    }
    w.write("chart/values.yaml", &values);
    w.write(
        "chart/templates/pods.yaml",
        "{{- range $k, $v := .Values.images }}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ $k }}\nspec:\n  containers:\n  - name: c\n    image: \"{{ $v.image.repository }}:{{ $v.image.tag }}\"\n{{- end }}\n",
    );
    let rendered = run_engine("helm", w.path(), &["template", "rr", "chart"])
        .expect("real helm renders the chart");
    // `name: t3` … `image: "repo:tag"`, in the order helm prints them.
    let mut printed = std::collections::HashMap::new();
    let mut name = String::new();
    for line in rendered.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("name: t") {
            name = n.to_string();
        } else if let Some(image) = line.strip_prefix("image: ") {
            let tag = image
                .trim_matches('"')
                .rsplit_once(':')
                .unwrap()
                .1
                .to_string();
            printed.insert(name.parse::<usize>().unwrap(), tag);
        }
    }
    assert_eq!(printed.len(), tags.len(), "{rendered}");
    assert_eq!(printed[&1], "1.1", "helm renders 1.10 as 1.1");
    assert_eq!(printed[&0], "0.1", "helm renders 0.1 as written");

    let run = w.run(&["check", "--all", "--offline", "--format", "json", "chart"]);
    let json = run.json();
    let entries = json["references"].as_array().unwrap();
    for (i, tag) in tags.iter().enumerate() {
        let line = 5 + 4 * i as u64;
        let e = entries
            .iter()
            .find(|e| e["file"] == "chart/values.yaml" && e["line"] == line)
            .unwrap_or_else(|| panic!("no entry for tag {tag} at line {line}: {}", run.stdout));
        let written = format!("quay.io/argoprojlabs/argocd-e2e-container:{tag}");
        assert_eq!(e["image"], written.as_str(), "{e}");
        let helm = &printed[&i];
        if helm == tag {
            assert!(e["code"].is_null(), "helm renders {tag} as written: {e}");
        } else {
            assert_eq!(e["code"], "non-string-image", "{e}");
            let message = e["message"].as_str().unwrap();
            assert!(
                message.ends_with(&format!("helm renders it as `{helm}`")),
                "{tag}: {message}"
            );
        }
    }
    assert_eq!(run.code, 1, "1.10 and others render otherwise");
}

// GoogleCloudPlatform/microservices-demo helm-chart/templates/loadgenerator.yaml:95 (busybox)
// and cartservice.yaml:255 (redis), stefanprodan/podinfo charts/podinfo/templates/tests/*.yaml
// (curlimages/curl): images written literally in a chart's templates were never checked, and
// the helm-template note said they were checked through the values. Real `helm template` is
// the oracle: every literal image imagegate reports is one helm renders, at its line; the one
// helm composes from non-conventional values is not reported, and the note says so.
#[test]
fn images_written_literally_in_chart_templates_are_checked() {
    let w = Workdir::new();
    w.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: demo\nversion: 0.1.0\nappVersion: v0.10.6\n",
    );
    w.write(
        "chart/values.yaml",
        "images:\n  repository: us-central1-docker.pkg.dev/acme/demo\n  tag: \"\"\nweb:\n  name: web\n",
    );
    w.write(
        "chart/templates/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Values.web.name }}\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      initContainers:\n      - name: wait\n        image: busybox:1.38.0\n      containers:\n      - name: server\n        image: {{ .Values.images.repository }}/{{ .Values.web.name }}:{{ .Values.images.tag | default .Chart.AppVersion }}\n      - image: \"redis:alpine\" # cache\n        name: cache\n      {{- /*\n      - name: old\n        image: busybox:1.20\n      */}}\n      # image: busybox:1.21\n",
    );
    w.write(
        "chart/templates/tests/curl.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-curl\n  annotations:\n    \"helm.sh/hook\": test\nspec:\n  containers:\n    - name: curl\n      image: curlimages/curl:7.69.0\n      command: ['curl', '{{ .Values.web.name }}']\n  restartPolicy: Never\n",
    );
    let rendered = run_engine("helm", w.path(), &["template", "rr", "chart"])
        .expect("real helm renders the chart");
    let helm: std::collections::BTreeSet<String> = rendered
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .trim_start_matches("- ")
                .strip_prefix("image: ")
        })
        .map(|v| v.split(" #").next().unwrap().trim_matches('"').to_string())
        .collect();
    assert_eq!(
        helm.iter().map(String::as_str).collect::<Vec<_>>(),
        [
            "busybox:1.38.0",
            "curlimages/curl:7.69.0",
            "redis:alpine",
            "us-central1-docker.pkg.dev/acme/demo/web:v0.10.6",
        ]
    );

    let run = w.run(&["check", "--all", "--offline", "--format", "json", "chart"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let got = located(&run, |r| {
        Some(format!(
            "{} | {}",
            r["image"].as_str()?,
            r["context"].as_str()?
        ))
    });
    assert_eq!(
        got,
        [
            "chart/templates/tests/curl.yaml:10:14 curlimages/curl:7.69.0 | Helm template templates/tests/curl.yaml containers[curl] (written literally)",
            "chart/templates/web.yaml:16:16 busybox:1.38.0 | Helm template templates/web.yaml containers[wait] (written literally)",
            "chart/templates/web.yaml:20:16 redis:alpine | Helm template templates/web.yaml containers[cache] (written literally)",
        ]
    );
    for r in &got {
        let image = r.split(' ').nth(1).unwrap();
        assert!(helm.contains(image), "{image} is not what helm renders");
    }
    let notes = run.file_findings("helm-template");
    assert_eq!(notes.len(), 2, "{notes:?}");
    for n in &notes {
        let text = format!("{} {}", n["message"], n["hint"]);
        assert!(
            text.contains("images written in it literally are checked"),
            "{text}"
        );
        assert!(text.contains("composes otherwise is not checked"), "{text}");
        assert!(!text.contains("its images are checked through"), "{text}");
    }
}

// fluxcd/flux2-kustomize-helm-example infrastructure/controllers/cert-manager.yaml:21 and
// envoy-gateway.yaml:21: two OCIRepository version ranges listed as valid, while the summary
// said "checked 2 references (0 unique) in 0 registries: 0 valid". The counts agree with the
// table: a range counts once per repository and range.
#[test]
fn version_ranges_count_in_the_summary() {
    let w = Workdir::new();
    let oci = |name: &str, url: &str, semver: &str| {
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\nmetadata:\n  name: {name}\n  namespace: {name}\nspec:\n  interval: 24h\n  url: {url}\n  ref:\n    semver: \"{semver}\"\n"
        )
    };
    w.write(
        "infrastructure/cert-manager.yaml",
        &oci(
            "cert-manager",
            "oci://quay.io/jetstack/charts/cert-manager",
            "1.x",
        ),
    );
    w.write(
        "infrastructure/envoy-gateway.yaml",
        &oci(
            "envoy-gateway",
            "oci://docker.io/envoyproxy/gateway-helm",
            ">= 1.8.0-rc.0",
        ),
    );
    w.write(
        "infrastructure/again.yaml",
        &oci("again", "oci://quay.io/jetstack/charts/cert-manager", "1.x"),
    );
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let s = &run.json()["summary"];
    assert_eq!(
        (
            &s["references"],
            &s["unique"],
            &s["registries"],
            &s["skipped"]
        ),
        (&3.into(), &2.into(), &2.into(), &2.into()),
        "{s}"
    );
    let human = w.run(&["check", "--all", "--offline"]);
    assert!(
        human
            .stdout
            .contains("checked 3 references (2 unique) in 2 registries from 3 files: 2 valid,"),
        "{}",
        human.stdout
    );
}

// fluxcd/flux2-kustomize-helm-example apps/base/podinfo/release.yaml:11: a HelmRelease with no
// chart version had its chart-not-read note spanning `chart.spec` through the next key's line
// (11 to 15); it is the chart's name now, as a chartRef's note is its `name`.
#[test]
fn chart_not_read_is_at_the_charts_name() {
    let w = Workdir::new();
    w.write(
        "apps/release.yaml",
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n  interval: 50m\n  releaseName: podinfo\n  chart:\n    spec:\n      chart: podinfo\n      sourceRef:\n        kind: HelmRepository\n        name: podinfo\n  install:\n    strategy:\n      name: RetryOnFailure\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n  url: https://stefanprodan.github.io/podinfo\n",
    );
    let run = w.run(&["check", "--all", "--offline", "--format", "github"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let notes: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("chart-not-read"))
        .collect();
    assert_eq!(notes.len(), 1, "{}", run.stdout);
    assert!(
        notes[0].starts_with("::notice file=apps/release.yaml,line=11,col=14,endColumn=21,"),
        "{}",
        notes[0]
    );
}
