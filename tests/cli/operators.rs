//! Operator custom resources, the heuristic for unknown kinds, one entry per occurrence and
//! the `{{` rule (issue 16), against the real registry: every kind of the operator table has
//! an image that exists and one that does not, each reported at its own file:line:col.

use crate::harness::*;

/// One file per operator kind. `{a}` is an image the registry serves and `{b}` one it does
/// not; `^a` and `^b` mark where each must be reported (the marks are removed).
const CASES: &[(&str, &str)] = &[
    (
        "prometheus",
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s}\nspec:\n  image: ^a{a}\n  thanos:\n    image: ^b{b}\n",
    ),
    (
        "alertmanager",
        "apiVersion: monitoring.coreos.com/v1\nkind: Alertmanager\nmetadata: {name: main}\nspec:\n  image: ^a{a}\n  containers:\n  - name: config-reloader\n    resources: {}\n  - name: proxy\n    image: ^b{b}\n",
    ),
    (
        "thanosruler",
        "apiVersion: monitoring.coreos.com/v1\nkind: ThanosRuler\nmetadata: {name: r}\nspec:\n  image: ^a\"{a}\"\n  initContainers:\n  - {name: init, image: ^b{b}}\n",
    ),
    (
        "prometheusagent",
        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: PrometheusAgent\nmetadata: {name: a}\nspec:\n  containers:\n  - name: s\n    image: ^a{a}\n  image: ^b{b}\n",
    ),
    (
        "envoyproxy",
        "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyProxy\nmetadata: {name: p}\nspec:\n  provider:\n    type: Kubernetes\n    kubernetes:\n      envoyDeployment:\n        container:\n          image: ^a{a}\n      envoyDaemonSet:\n        container: {image: ^b{b}}\n",
    ),
    (
        "cluster",
        "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: db}\nspec:\n  instances: 3\n  imageName: ^a{a}\n  postgresql:\n    extensions:\n    - name: vector\n      image:\n        reference: ^b{b}\n",
    ),
    (
        "imagecatalog",
        "apiVersion: postgresql.cnpg.io/v1\nkind: ImageCatalog\nmetadata: {name: pg}\nspec:\n  images:\n  - major: 16\n    image: ^a{a}\n  - major: 17\n    image: ^b{b}\n",
    ),
    (
        "clusterimagecatalog",
        "apiVersion: postgresql.cnpg.io/v1\nkind: ClusterImageCatalog\nmetadata: {name: pg}\nspec:\n  images:\n  - {major: 17, image: ^a{a}}\n  componentImages:\n  - key: pgbouncer\n    image: ^b{b}\n",
    ),
    (
        "pooler",
        "apiVersion: postgresql.cnpg.io/v1\nkind: Pooler\nmetadata: {name: pool}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: pgbouncer, image: ^a{a}}\n      initContainers:\n      - {name: init, image: ^b{b}}\n",
    ),
    (
        "kafka",
        "apiVersion: kafka.strimzi.io/v1\nkind: Kafka\nmetadata: {name: k}\nspec:\n  kafka:\n    image: ^a{a}\n  entityOperator:\n    topicOperator: {}\n    userOperator:\n      image: ^b{b}\n",
    ),
    (
        "kafkaconnect",
        "apiVersion: kafka.strimzi.io/v1\nkind: KafkaConnect\nmetadata: {name: ok}\nspec:\n  image: ^a{a}\n---\napiVersion: kafka.strimzi.io/v1\nkind: KafkaConnect\nmetadata: {name: missing}\nspec:\n  image: ^b{b}\n",
    ),
    (
        "kafkamirrormaker2",
        "apiVersion: kafka.strimzi.io/v1\nkind: KafkaMirrorMaker2\nmetadata: {name: ok}\nspec: {image: ^a{a}}\n---\napiVersion: kafka.strimzi.io/v1\nkind: KafkaMirrorMaker2\nmetadata: {name: missing}\nspec: {image: ^b{b}}\n",
    ),
    (
        "kafkamirrormaker",
        "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaMirrorMaker\nmetadata: {name: ok}\nspec: {image: ^a{a}}\n---\napiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaMirrorMaker\nmetadata: {name: missing}\nspec: {image: ^b{b}}\n",
    ),
    (
        "kafkabridge",
        "apiVersion: kafka.strimzi.io/v1\nkind: KafkaBridge\nmetadata: {name: ok}\nspec:\n  image: ^a{a}\n---\napiVersion: kafka.strimzi.io/v1\nkind: KafkaBridge\nmetadata: {name: missing}\nspec:\n  image: ^b{b}\n",
    ),
    (
        "task",
        "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: build}\nspec:\n  steps:\n  - name: compile\n    image: ^a{a}\n  sidecars:\n  - name: docker\n    image: ^b{b}\n",
    ),
    (
        "clustertask",
        "apiVersion: tekton.dev/v1beta1\nkind: ClusterTask\nmetadata: {name: build}\nspec:\n  stepTemplate:\n    image: ^a{a}\n  steps:\n  - {name: s, image: ^b{b}}\n",
    ),
    (
        "stepaction",
        "apiVersion: tekton.dev/v1beta1\nkind: StepAction\nmetadata: {name: ok}\nspec:\n  image: ^a{a}\n---\napiVersion: tekton.dev/v1beta1\nkind: StepAction\nmetadata: {name: missing}\nspec:\n  image: ^b{b}\n",
    ),
    (
        "taskrun",
        "apiVersion: tekton.dev/v1\nkind: TaskRun\nmetadata: {name: run}\nspec:\n  taskSpec:\n    steps:\n    - image: ^a{a}\n    sidecars:\n    - image: ^b{b}\n",
    ),
    (
        "pipeline",
        "apiVersion: tekton.dev/v1\nkind: Pipeline\nmetadata: {name: p}\nspec:\n  tasks:\n  - name: build\n    taskSpec:\n      steps:\n      - {name: s, image: ^a{a}}\n  finally:\n  - name: notify\n    taskSpec:\n      steps:\n      - {name: s, image: ^b{b}}\n",
    ),
    (
        "pipelinerun",
        "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {generateName: run-}\nspec:\n  pipelineSpec:\n    tasks:\n    - name: build\n      taskSpec:\n        stepTemplate: {image: ^a{a}}\n        steps:\n        - name: s\n          image: ^b{b}\n",
    ),
    (
        "triggertemplate",
        "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerTemplate\nmetadata: {name: t}\nspec:\n  resourcetemplates:\n  - apiVersion: tekton.dev/v1\n    kind: TaskRun\n    metadata: {generateName: run-}\n    spec:\n      taskSpec:\n        steps:\n        - image: ^a{a}\n        - image: ^b{b}\n",
    ),
    (
        "workflow",
        "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nmetadata: {generateName: hello-}\nspec:\n  entrypoint: main\n  templates:\n  - name: main\n    container:\n      image: ^a{a}\n  - name: py\n    script:\n      image: ^b{b}\n      source: print(1)\n",
    ),
    (
        "workflowtemplate",
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nmetadata: {name: t}\nspec:\n  templates:\n  - name: main\n    initContainers:\n    - {name: i, image: ^a{a}}\n    sidecars:\n    - {name: s, image: ^b{b}}\n    container: {image: ^a{a}}\n",
    ),
    (
        "clusterworkflowtemplate",
        "apiVersion: argoproj.io/v1alpha1\nkind: ClusterWorkflowTemplate\nmetadata: {name: t}\nspec:\n  templateDefaults:\n    container: {image: ^b{b}}\n  templates:\n  - name: set\n    containerSet:\n      containers:\n      - name: a\n        image: ^a{a}\n",
    ),
    (
        "cronworkflow",
        "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {name: nightly}\nspec:\n  schedule: \"0 1 * * *\"\n  workflowSpec:\n    templates:\n    - name: main\n      container: {image: ^a{a}}\n    - name: py\n      script: {image: ^b{b}, source: x}\n",
    ),
    (
        "vmi",
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: vmi}\nspec:\n  domain:\n    firmware:\n      kernelBoot:\n        container:\n          image: ^b{b}\n  volumes:\n  - name: disk\n    containerDisk:\n      image: ^a{a}\n",
    ),
    (
        "vm",
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: vm}\nspec:\n  dataVolumeTemplates:\n  - metadata: {name: root}\n    spec:\n      source:\n        registry:\n          url: ^bdocker://{b}\n  template:\n    spec:\n      volumes:\n      - name: disk\n        containerDisk: {image: ^a{a}}\n",
    ),
    (
        "vmirs",
        "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceReplicaSet\nmetadata: {name: rs}\nspec:\n  template:\n    spec:\n      volumes:\n      - {name: d, containerDisk: {image: ^a{a}}}\n      domain:\n        firmware:\n          kernelBoot:\n            container: {image: ^b{b}}\n",
    ),
    (
        "vmpool",
        "apiVersion: pool.kubevirt.io/v1beta1\nkind: VirtualMachinePool\nmetadata: {name: pool}\nspec:\n  virtualMachineTemplate:\n    spec:\n      template:\n        spec:\n          volumes:\n          - {name: ok, containerDisk: {image: ^a{a}}}\n          - {name: missing, containerDisk: {image: ^b{b}}}\n",
    ),
    (
        "datavolume",
        "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: dv}\nspec:\n  source:\n    registry:\n      url: ^a\"docker://{a}\"\n---\napiVersion: cdi.kubevirt.io/v1beta1\nkind: DataImportCron\nmetadata: {name: cron}\nspec:\n  template:\n    spec:\n      source:\n        registry: {url: ^bdocker://{b}}\n",
    ),
    (
        "dataimportcron",
        "apiVersion: cdi.kubevirt.io/v1beta1\nkind: DataImportCron\nmetadata: {name: cron}\nspec:\n  template:\n    spec:\n      source:\n        registry: {url: ^adocker://{a}}\n---\napiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: dv}\nspec:\n  source:\n    registry:\n      url: ^bdocker://{b}\n",
    ),
    (
        "ksvc",
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: hello}\nspec:\n  template:\n    spec:\n      containers:\n      - image: ^a{a}\n      - image: ^b{b}\n",
    ),
    (
        "kconfiguration",
        "apiVersion: serving.knative.dev/v1\nkind: Configuration\nmetadata: {name: hello}\nspec:\n  template:\n    spec:\n      initContainers: [{name: i, image: ^b{b}}]\n      containers: [{name: c, image: ^a{a}}]\n",
    ),
    (
        "krevision",
        "apiVersion: serving.knative.dev/v1\nkind: Revision\nmetadata: {name: hello-1}\nspec:\n  containers:\n  - name: c\n    image: ^a{a}\n  - name: d\n    image: ^b{b}\n",
    ),
    (
        "provider",
        "apiVersion: pkg.crossplane.io/v1\nkind: Provider\nmetadata: {name: ok}\nspec:\n  package: ^a{a}\n---\napiVersion: pkg.crossplane.io/v1\nkind: Provider\nmetadata: {name: missing}\nspec:\n  package: ^b{b}\n",
    ),
    (
        "xpconfiguration",
        "apiVersion: pkg.crossplane.io/v1\nkind: Configuration\nmetadata: {name: ok}\nspec: {package: ^a{a}}\n---\napiVersion: pkg.crossplane.io/v1\nkind: Configuration\nmetadata: {name: missing}\nspec: {package: ^b{b}}\n",
    ),
    (
        "function",
        "apiVersion: pkg.crossplane.io/v1beta1\nkind: Function\nmetadata: {name: ok}\nspec:\n  package: ^a{a}\n---\napiVersion: pkg.crossplane.io/v1\nkind: Function\nmetadata: {name: missing}\nspec:\n  package: ^b{b}\n",
    ),
    (
        "runtimeconfig",
        "apiVersion: pkg.crossplane.io/v1beta1\nkind: DeploymentRuntimeConfig\nmetadata: {name: rc}\nspec:\n  deploymentTemplate:\n    spec:\n      selector: {}\n      template:\n        spec:\n          containers:\n          - name: package-runtime\n            image: ^a{a}\n          initContainers:\n          - {name: i, image: ^b{b}}\n",
    ),
    (
        "controllerconfig",
        "apiVersion: pkg.crossplane.io/v1alpha1\nkind: ControllerConfig\nmetadata: {name: ok}\nspec: {image: ^a{a}}\n---\napiVersion: pkg.crossplane.io/v1alpha1\nkind: ControllerConfig\nmetadata: {name: missing}\nspec: {image: ^b{b}}\n",
    ),
    (
        "clusterpolicy",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: check\n    validate:\n      pattern:\n        spec:\n          containers:\n          - image: \"!*:latest\"\n    verifyImages:\n    - imageReferences: [\"*\"]\n  - name: sidecar\n    mutate:\n      patchStrategicMerge:\n        spec:\n          containers:\n          - name: proxy\n            image: ^a{a}\n  - name: gen\n    generate:\n      data:\n        apiVersion: v1\n        kind: Pod\n        spec:\n          containers:\n          - name: c\n            image: ^b{b}\n",
    ),
    (
        "policy",
        "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: sidecar\n    mutate:\n      patchStrategicMerge:\n        spec:\n          template:\n            spec:\n              initContainers:\n              - {name: i, image: ^b{b}}\n              containers:\n              - {name: c, image: ^a{a}}\n",
    ),
];

/// `check --all` against the registry, without suggestions (they would list tags).
const ONLINE: [&str; 6] = [
    "check",
    "--all",
    "--no-cache",
    "--no-suggest",
    "--format",
    "json",
];

/// The text with images filled in and marks removed, and `(line, column, mark)` of each mark.
fn fill(template: &str, a: &str, b: &str) -> (String, Vec<(usize, usize, char)>) {
    let mut text = template.replace("{a}", a).replace("{b}", b);
    let mut marks = Vec::new();
    while let Some(i) = ["^a", "^b"].iter().filter_map(|m| text.find(m)).min() {
        let mark = text[i + 1..].chars().next().unwrap();
        let before = &text[..i];
        let line = before.matches('\n').count() + 1;
        let column = before[before.rfind('\n').map_or(0, |n| n + 1)..]
            .chars()
            .count()
            + 1;
        marks.push((line, column, mark));
        text.replace_range(i..i + 2, "");
    }
    (text, marks)
}

/// `file:line:col status` of every reference in a JSON report.
fn positions(run: &Run) -> Vec<String> {
    run.rows(|r| {
        Some(format!(
            "{}:{}:{} {}",
            r["file"].as_str().unwrap(),
            r["line"],
            r["column"],
            r["status"].as_str().unwrap()
        ))
    })
}

#[test]
fn every_operator_kind_passes_what_exists_and_fails_what_does_not() {
    let reg = Registry::anonymous();
    let w = Workdir::new();
    let mut want = Vec::new();
    for (name, template) in CASES {
        reg.push_image(&format!("ops/{name}"), "1.0", OCI_MANIFEST);
        let a = format!("{}/ops/{name}:1.0", reg.host);
        let b = format!("{}/ops/{name}:1.1", reg.host);
        let (text, marks) = fill(template, &a, &b);
        w.write(&format!("{name}.yaml"), &text);
        for (line, col, mark) in marks {
            let status = if mark == 'a' { "ok" } else { "not-found" };
            want.push(format!("{name}.yaml:{line}:{col} {status}"));
        }
    }
    want.sort();
    let run = w.run(&ONLINE);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(positions(&run), want, "{}", run.stdout);
    // Contexts name the kind and the field path.
    let contexts = run.rows(|r| r["context"].as_str().map(str::to_string));
    for c in [
        "Prometheus/k8s spec.image",
        "Alertmanager/main spec.containers[proxy].image",
        "EnvoyProxy/p spec.provider.kubernetes.envoyDaemonSet.container.image",
        "Cluster/db spec.postgresql.extensions[vector].image.reference",
        "Task/build spec.sidecars[docker].image",
        "CronWorkflow/nightly spec.workflowSpec.templates[py].script.image",
        "VirtualMachine/vm spec.dataVolumeTemplates[0].spec.source.registry.url",
        "Provider/missing spec.package",
    ] {
        assert!(contexts.iter().any(|x| x == c), "no {c:?} in {contexts:#?}");
    }
}

/// A spot check that does not rely on `fill`: kube-prometheus's
/// `manifests/prometheus-prometheus.yaml` has its image at 21:10 (issue 16).
#[test]
fn the_kube_prometheus_image_is_found_at_its_line() {
    let w = Workdir::new();
    let mut text = String::from(
        "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata:\n  labels:\n",
    );
    for l in ["a", "b", "c", "d", "e"] {
        text.push_str(&format!("    {l}: x\n"));
    }
    text.push_str("  name: k8s\n  namespace: monitoring\nspec:\n  alerting:\n    alertmanagers:\n    - apiVersion: v2\n      name: alertmanager-main\n      namespace: monitoring\n      port: web\n  enableFeatures: []\n  externalLabels: {}\n  image: quay.io/prometheus/prometheus:v3.13.2\n");
    w.write("manifests/prometheus-prometheus.yaml", &text);
    let run = w.run(&OFFLINE_JSON);
    let r = &run.json()["references"][0];
    assert_eq!(
        (
            r["line"].as_u64(),
            r["column"].as_u64(),
            r["context"].as_str()
        ),
        (Some(21), Some(10), Some("Prometheus/k8s spec.image")),
        "{}",
        run.stdout
    );
}

const WIDGET: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x}\nspec:\n  foo:\n    image: IMAGE\n";

#[test]
fn the_heuristic_checks_unknown_kinds_and_the_config_turns_it_off() {
    let reg = Registry::anonymous();
    let w = Workdir::new();
    w.write(
        "w.yaml",
        &WIDGET.replace("IMAGE", &format!("{}/widget:2.0", reg.host)),
    );
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let r = &run.json()["references"][0];
    assert_eq!(r["status"], "not-found");
    assert_eq!(r["context"], "Widget/x spec.foo.image (heuristic)");
    assert_eq!(
        (r["line"].as_u64(), r["column"].as_u64()),
        (Some(6), Some(12))
    );
    w.write(".imagegate.yaml", "image-heuristic: false\n");
    let run = w.run(&CHECK_JSON);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.json()["references"].as_array().unwrap().is_empty());
    // A trusted config's value wins over the repository's.
    let trusted = tempfile::tempdir().unwrap();
    let config = trusted.path().join("config.yaml");
    std::fs::write(&config, "image-heuristic: true\n").unwrap();
    let mut args = CHECK_JSON.to_vec();
    args.extend(["--config", config.to_str().unwrap()]);
    assert_eq!(w.run(&args).code, 1);
}

// issue 16: a change cannot turn the heuristic off to hide the image it adds: a diff check
// reads the merge base's config.
#[test]
fn a_change_cannot_switch_the_heuristic_off_for_itself() {
    let reg = Registry::anonymous();
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write("a.yaml", &deployment("a", &["nginx:1.27"]));
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "base"]);
    git(w.path(), &["checkout", "-q", "-b", "feature"]);
    w.write(".imagegate.yaml", "image-heuristic: false\n");
    w.write(
        "w.yaml",
        &WIDGET.replace("IMAGE", &format!("{}/widget:2.0", reg.host)),
    );
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "hide"]);
    let run = w.run(&["check", "--base", "main", "--format", "json", "--no-cache"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(positions(&run), ["w.yaml:6:12 not-found"], "{}", run.stdout);
    let note = run.file_findings("config-changed");
    assert!(
        note[0]["message"]
            .as_str()
            .unwrap()
            .contains("image-heuristic"),
        "{note:?}"
    );
}

// issue 16: a HelmRelease whose values hold a pod-spec `containers` list (actions-runner-
// controller runners) reported each image twice: by the values conventions and by the
// pod-spec fallback.
#[test]
fn a_helm_release_with_a_containers_list_reports_each_image_once() {
    let reg = Registry::anonymous();
    reg.push_image("actions/runner", "2.320.0", OCI_MANIFEST);
    let h = &reg.host;
    let w = Workdir::new();
    w.write(
        "runners.yaml",
        &format!("apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {{name: arc-runners}}\nspec:\n  values:\n    template:\n      spec:\n        containers:\n        - name: runner\n          image: {h}/actions/runner:2.320.0\n        - name: dind\n          image: {h}/actions/dind:27\n"),
    );
    let run = w.run(&ONLINE);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        positions(&run),
        ["runners.yaml:10:18 ok", "runners.yaml:12:18 not-found"]
    );
}

const BROKEN: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    note: \"{{ .Values.note }}\"\n   name: web\nspec: {}\n";

// issue 16: invalid YAML that contains `{{` is only a Helm template inside a chart.
#[test]
fn braces_outside_a_chart_do_not_hide_invalid_yaml() {
    let w = Workdir::new();
    w.write("deploy/web.yaml", BROKEN);
    w.write("templates/web.yaml", BROKEN);
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let mut found: Vec<String> = run
        .file_findings("invalid-yaml")
        .iter()
        .map(|f| {
            format!(
                "{}:{}:{}",
                f["file"].as_str().unwrap(),
                f["line"],
                f["column"]
            )
        })
        .collect();
    found.sort();
    assert_eq!(found, ["deploy/web.yaml:6:4", "templates/web.yaml:6:4"]);
    assert!(run.file_findings("helm-template").is_empty());
    let human = w.run(&["check", "--all", "--offline"]);
    assert!(
        human.stdout.contains("deploy/web.yaml:6:4"),
        "{}",
        human.stdout
    );
}

#[test]
fn chart_templates_are_skipped_on_disk_and_in_a_diff() {
    let w = Workdir::new();
    git(w.path(), &["init", "-q", "-b", "main"]);
    w.write(
        "charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 1.0.0\n",
    );
    w.write("charts/web/templates/deploy.yaml", BROKEN);
    git(w.path(), &["add", "-A"]);
    git(w.path(), &["commit", "-q", "-m", "chart"]);
    let run = w.run(&OFFLINE_JSON);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.file_codes(), ["helm-template"]);
    // A diff that changes only the template: the Chart.yaml is found at head.
    git(w.path(), &["checkout", "-q", "-b", "feature"]);
    w.write(
        "charts/web/templates/deploy.yaml",
        &BROKEN.replace("note", "changed"),
    );
    git(w.path(), &["commit", "-q", "-am", "edit"]);
    let run = w.run(&["check", "--base", "main", "--offline", "--format", "json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.file_codes(), ["helm-template"]);
}
