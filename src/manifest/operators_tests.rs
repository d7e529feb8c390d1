//! Unit tests of `operators.rs` and of the heuristic, through `kubernetes::extract_with`,
//! which dispatches every object (issue 16).

use super::*;
use crate::manifest::{kubernetes, yaml};
use crate::source::SourceFile;

/// `line:col value context` of every occurrence.
fn found_with(text: &str, heuristic: bool) -> Vec<String> {
    let f = SourceFile::new("t.yaml".into(), text);
    let parsed = yaml::parse(&f);
    assert!(parsed.error.is_none(), "{:?}", parsed.error);
    let mut out = Vec::new();
    for d in &parsed.documents {
        kubernetes::extract_with(d, 0, heuristic, &mut out);
    }
    out.iter()
        .map(|o| {
            let p = f.position(o.location.start);
            let v = crate::manifest::shown(&o.value);
            format!("{}:{} {v} {}", p.line, p.column, o.context)
        })
        .collect()
}

fn found(text: &str) -> Vec<String> {
    found_with(text, true)
}

#[test]
fn prometheus_operator_images_and_sidecars() {
    let y = "apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata: {name: k8s}\nspec:\n  image: quay.io/prometheus/prometheus:v3.5.0\n  thanos:\n    image: quay.io/thanos/thanos:v0.39.2\n  containers:\n  - name: config-reloader\n    resources: {}\n  - name: oauth\n    image: quay.io/oauth2-proxy/oauth2-proxy:v7.6.0\n  initContainers:\n  - name: init\n    image: busybox:1.36\n";
    assert_eq!(
        found(y),
        [
            "5:10 quay.io/prometheus/prometheus:v3.5.0 Prometheus/k8s spec.image",
            "12:12 quay.io/oauth2-proxy/oauth2-proxy:v7.6.0 Prometheus/k8s spec.containers[oauth].image",
            "15:12 busybox:1.36 Prometheus/k8s spec.initContainers[init].image",
            "7:12 quay.io/thanos/thanos:v0.39.2 Prometheus/k8s spec.thanos.image",
        ],
        "a container patch without an image is the operator's own container"
    );
    for kind in ["Alertmanager", "ThanosRuler"] {
        let y = format!(
            "apiVersion: monitoring.coreos.com/v1\nkind: {kind}\nmetadata: {{name: main}}\nspec:\n  image: \"quay.io/x/y:1\"\n  thanos: {{image: not-read:1}}\n"
        );
        assert_eq!(
            found(&y),
            [format!("5:10 quay.io/x/y:1 {kind}/main spec.image")]
        );
    }
    let agent =
        "apiVersion: monitoring.coreos.com/v1alpha1\nkind: PrometheusAgent\nspec:\n  image: ''\n";
    assert!(
        found(agent).is_empty(),
        "empty means the operator's default"
    );
}

#[test]
fn envoy_gateway_cloudnative_pg_and_strimzi() {
    let eg = "apiVersion: gateway.envoyproxy.io/v1alpha1\nkind: EnvoyProxy\nmetadata: {name: p}\nspec:\n  provider:\n    type: Kubernetes\n    kubernetes:\n      envoyDeployment:\n        container:\n          image: envoyproxy/envoy:distroless-v1.35.0\n        initContainers:\n        - {name: i, image: busybox:1}\n      envoyDaemonSet:\n        container: {image: envoyproxy/envoy:v1.35.0}\n";
    assert_eq!(
        found(eg),
        [
            "10:18 envoyproxy/envoy:distroless-v1.35.0 EnvoyProxy/p spec.provider.kubernetes.envoyDeployment.container.image",
            "12:28 busybox:1 EnvoyProxy/p spec.provider.kubernetes.envoyDeployment.initContainers[i].image",
            "14:28 envoyproxy/envoy:v1.35.0 EnvoyProxy/p spec.provider.kubernetes.envoyDaemonSet.container.image",
        ]
    );
    let cnpg = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: db}\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:17.5\n  postgresql:\n    extensions:\n    - name: pgvector\n      image: {reference: ghcr.io/cloudnative-pg/pgvector:0.8.0}\n---\napiVersion: postgresql.cnpg.io/v1\nkind: ClusterImageCatalog\nmetadata: {name: pg}\nspec:\n  images:\n  - major: 17\n    image: ghcr.io/cloudnative-pg/postgresql:17.5\n  componentImages:\n  - {key: pgbouncer, image: ghcr.io/cloudnative-pg/pgbouncer:1.24}\n";
    assert_eq!(
        found(cnpg),
        [
            "5:14 ghcr.io/cloudnative-pg/postgresql:17.5 Cluster/db spec.imageName",
            "9:26 ghcr.io/cloudnative-pg/pgvector:0.8.0 Cluster/db spec.postgresql.extensions[pgvector].image.reference",
            "17:12 ghcr.io/cloudnative-pg/postgresql:17.5 ClusterImageCatalog/pg spec.images[0].image",
            "19:29 ghcr.io/cloudnative-pg/pgbouncer:1.24 ClusterImageCatalog/pg spec.componentImages[0].image",
        ]
    );
    let kafka = "apiVersion: kafka.strimzi.io/v1\nkind: Kafka\nmetadata: {name: k}\nspec:\n  kafka: {image: quay.io/strimzi/kafka:0.47.0-kafka-4.0.0}\n  entityOperator:\n    topicOperator: {image: quay.io/strimzi/operator:0.47.0}\n    userOperator: {}\n---\napiVersion: kafka.strimzi.io/v1\nkind: KafkaConnect\nmetadata: {name: c}\nspec:\n  image: registry.acme.com/connect:1\n  build:\n    output: {type: docker, image: registry.acme.com/built:latest}\n";
    assert_eq!(
        found(kafka),
        [
            "5:18 quay.io/strimzi/kafka:0.47.0-kafka-4.0.0 Kafka/k spec.kafka.image",
            "7:28 quay.io/strimzi/operator:0.47.0 Kafka/k spec.entityOperator.topicOperator.image",
            "14:10 registry.acme.com/connect:1 KafkaConnect/c spec.image",
        ],
        "the image a build pushes is not read"
    );
}

#[test]
fn tekton_steps_sidecars_templates_and_embedded_specs() {
    let task = "apiVersion: tekton.dev/v1\nkind: Task\nmetadata: {name: build}\nspec:\n  stepTemplate:\n    image: alpine:3.20\n  steps:\n  - name: compile\n    image: golang:1.23\n  - name: uses-template\n    script: echo\n  - name: param\n    image: $(params.builder)\n  sidecars:\n  - {name: docker, image: docker:27-dind}\n";
    assert_eq!(
        found(task),
        [
            "9:12 golang:1.23 Task/build spec.steps[compile].image",
            "13:12 $(params.builder) Task/build spec.steps[param].image",
            "15:27 docker:27-dind Task/build spec.sidecars[docker].image",
            "6:12 alpine:3.20 Task/build spec.stepTemplate.image",
        ]
    );
    let run = "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata: {generateName: r-}\nspec:\n  pipelineSpec:\n    tasks:\n    - name: a\n      taskSpec:\n        steps: [{name: s, image: alpine:3}]\n    finally:\n    - name: f\n      taskSpec:\n        steps: [{image: busybox:1}]\n";
    assert_eq!(
        found(run),
        [
            "9:34 alpine:3 PipelineRun spec.pipelineSpec.tasks[a].taskSpec.steps[s].image",
            "13:25 busybox:1 PipelineRun spec.pipelineSpec.finally[f].taskSpec.steps[0].image",
        ]
    );
    let trigger = "apiVersion: triggers.tekton.dev/v1beta1\nkind: TriggerTemplate\nmetadata: {name: t}\nspec:\n  resourcetemplates:\n  - apiVersion: tekton.dev/v1\n    kind: TaskRun\n    metadata: {generateName: run-}\n    spec:\n      taskSpec:\n        steps: [{image: alpine:3}]\n";
    assert_eq!(
        found(trigger),
        ["11:25 alpine:3 TaskRun spec.taskSpec.steps[0].image"]
    );
}

#[test]
fn argo_workflows_templates() {
    let wf = "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nmetadata: {name: nightly}\nspec:\n  workflowSpec:\n    templates:\n    - name: main\n      container: {image: alpine:3.20}\n      sidecars: [{name: s, image: nginx:1.27}]\n    - name: py\n      script:\n        image: python:3.12\n    - name: set\n      containerSet:\n        containers:\n        - {name: a, image: busybox:1.36}\n";
    assert_eq!(
        found(wf),
        [
            "8:26 alpine:3.20 CronWorkflow/nightly spec.workflowSpec.templates[main].container.image",
            "12:16 python:3.12 CronWorkflow/nightly spec.workflowSpec.templates[py].script.image",
            "9:35 nginx:1.27 CronWorkflow/nightly spec.workflowSpec.templates[main].sidecars[s].image",
            "16:28 busybox:1.36 CronWorkflow/nightly spec.workflowSpec.templates[set].containerSet.containers[a].image",
        ],
        "the container set is read once, by the table, not again by the pod-spec fallback"
    );
}

#[test]
fn kubevirt_knative_crossplane_and_kyverno() {
    let vm = "apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: vm}\nspec:\n  dataVolumeTemplates:\n  - metadata: {name: root}\n    spec:\n      source:\n        registry: {url: \"docker://quay.io/containerdisks/fedora:41\"}\n  template:\n    spec:\n      volumes:\n      - name: disk\n        containerDisk: {image: quay.io/kubevirt/cirros-container-disk-demo:v1.5.0}\n---\napiVersion: cdi.kubevirt.io/v1beta1\nkind: DataVolume\nmetadata: {name: dv}\nspec:\n  source:\n    registry: {url: oci-archive:///disk.tar}\n";
    assert_eq!(
        found(vm),
        [
            "14:32 quay.io/kubevirt/cirros-container-disk-demo:v1.5.0 VirtualMachine/vm spec.template.spec.volumes[disk].containerDisk.image",
            "9:25 quay.io/containerdisks/fedora:41 VirtualMachine/vm spec.dataVolumeTemplates[0].spec.source.registry.url",
        ]
    );
    let ksvc = "apiVersion: serving.knative.dev/v1\nkind: Revision\nmetadata: {name: r}\nspec:\n  containers: [{image: ghcr.io/a/b:1}]\n";
    assert_eq!(found(ksvc), ["5:24 ghcr.io/a/b:1 Revision/r containers[0]"]);
    let xp = "apiVersion: pkg.crossplane.io/v1\nkind: Provider\nmetadata: {name: aws}\nspec:\n  package: xpkg.crossplane.io/crossplane-contrib/provider-aws-s3:v1.23.0\n---\napiVersion: pkg.crossplane.io/v1\nkind: Configuration\nmetadata: {name: old}\nspec:\n  package: crossplane-contrib/configuration:v1\n";
    assert_eq!(
        found(xp),
        [
            "5:12 xpkg.crossplane.io/crossplane-contrib/provider-aws-s3:v1.23.0 Provider/aws spec.package"
        ],
        "a package without a registry depends on Crossplane's flags"
    );
    let policy = "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: v\n    validate:\n      pattern:\n        spec:\n          containers: [{image: \"!*:latest\"}]\n    verifyImages: [{imageReferences: [\"ghcr.io/*\"], image: ghcr.io/x:1}]\n  - name: m\n    mutate:\n      patchStrategicMerge:\n        spec:\n          containers:\n          - {(name): \"*\", image: \"{{ request.object.x }}\"}\n          - {name: proxy, image: envoyproxy/envoy:v1.35.0}\n  - name: g\n    generate:\n      data:\n        apiVersion: v1\n        kind: Pod\n        spec: {containers: [{image: busybox:1.36}]}\n";
    assert_eq!(
        found(policy),
        [
            "18:34 envoyproxy/envoy:v1.35.0 ClusterPolicy/p spec.rules[m].mutate.patchStrategicMerge.spec.containers[proxy].image",
            "24:37 busybox:1.36 Pod containers[0]",
        ],
        "patterns and verifyImages are not deployed"
    );
}

// issue 16: a HelmRelease's values are read by the values conventions only; the pod-spec
// fallback used to report the same nodes again.
#[test]
fn kinds_read_elsewhere_get_no_fallback() {
    let hr = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: arc}\nspec:\n  values:\n    template:\n      spec:\n        containers:\n        - {name: runner, image: ghcr.io/actions/runner:2.320.0}\n";
    assert!(found(hr).is_empty());
    let repo = "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageRepository\nmetadata: {name: p}\nspec: {image: ghcr.io/stefanprodan/podinfo}\n";
    assert!(found(repo).is_empty(), "a repository to scan, not an image");
}

#[test]
fn the_heuristic_reads_unknown_kinds_once() {
    let y = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: x, labels: {image: ghcr.io/not/this:1}}\nspec:\n  foo:\n    image: registry.acme.com/widget:1.0\n    imageName: acme/bare\n  bar: {imageName: acme/tagged:2}\n  runner:\n    containers:\n    - name: main\n      image: ghcr.io/acme/runner:3\n  templated: {image: \"ghcr.io/acme/x:{{ .tag }}\"}\nstatus: {image: ghcr.io/acme/observed:1}\n";
    assert_eq!(
        found(y),
        [
            "12:14 ghcr.io/acme/runner:3 Widget/x containers[main]",
            "6:12 registry.acme.com/widget:1.0 Widget/x spec.foo.image (heuristic)",
            "8:20 acme/tagged:2 Widget/x spec.bar.imageName (heuristic)",
        ]
    );
    assert_eq!(
        found_with(y, false),
        ["12:14 ghcr.io/acme/runner:3 Widget/x containers[main]"]
    );
    let core = "apiVersion: v1\nkind: ConfigMap\ndata: {image: ghcr.io/a/b:1}\n";
    assert!(found(core).is_empty(), "Kubernetes' own kinds are known");
}

/// Every row of the table is listed in the README's table of kinds (kind and field path).
#[test]
fn the_readme_lists_every_row() {
    let readme = include_str!("../../README.md");
    for r in ROWS {
        for (kind, path) in r.kinds.iter().flat_map(|k| r.paths().map(move |p| (k, p))) {
            let line = readme.lines().find(|l| {
                l.starts_with('|') && l.contains(&format!("`{path}`")) && l.contains(kind)
            });
            assert!(line.is_some(), "README lists no `{path}` for {kind}");
        }
    }
}
