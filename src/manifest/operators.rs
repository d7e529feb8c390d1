//! Images that well-known operators deploy from their custom resources: a table of kinds and
//! image fields, each row citing the CRD field it reads, so a `Prometheus` or a Tekton `Task`
//! is checked like a Deployment. Which reader owns a kind (this table, `flux`, `argocd`, or
//! no one) is decided here, so each node is reported once.

use super::yaml::{Document, NodeId, NodeKind, ScalarType};
use super::{ImageValue, Occurrence};
use crate::image_ref;

/// How a field of the table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// An image reference. Empty or null means the operator's default and is passed over;
    /// a number or a mapping is a finding.
    Image,
    /// An image in a policy's patch, used only when it is a literal reference (no `*`,
    /// `?` or `{{ }}`): the rest are patterns.
    Literal,
    /// A CDI registry source URL: `docker://` followed by the reference. Other schemes
    /// (`oci-archive://`) name no registry.
    DockerUrl,
    /// A Crossplane package: an OCI reference that must name its registry.
    Package,
    /// A whole pod spec (containers, init containers, image volumes), read as Kubernetes
    /// reads one.
    PodSpec,
    /// A whole object embedded in another (a generated resource), read as a document.
    Object,
}

/// Image fields of one or more kinds of an API group (any version), all read one way.
#[derive(Debug)]
pub struct Row {
    pub group: &'static str,
    pub kinds: &'static [&'static str],
    /// Keys from the object's root to where the fields are (the CRD type that holds them);
    /// `[]` after a key means every item of that list.
    pub at: &'static str,
    /// Keys from `at` to each field; [`WHOLE`] is the node at `at` itself.
    pub fields: &'static [&'static str],
    pub read: Read,
}

impl Row {
    /// Each field's keys from the object's root, as one dotted path.
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.fields.iter().map(|f| match *f {
            "" => self.at.to_string(),
            f => format!("{}.{f}", self.at),
        })
    }
}

const fn row(
    group: &'static str,
    kinds: &'static [&'static str],
    at: &'static str,
    fields: &'static [&'static str],
    read: Read,
) -> Row {
    Row {
        group,
        kinds,
        at,
        fields,
        read,
    }
}

use Read::{DockerUrl, Image, Literal, Object, Package, PodSpec};

/// The node at a row's `at`, read whole (a pod spec, an object).
const WHOLE: &[&str] = &[""];

const PROMETHEUS_KINDS: &[&str] = &[
    "Prometheus",
    "Alertmanager",
    "ThanosRuler",
    "PrometheusAgent",
];
const PROM: &str = "monitoring.coreos.com";
const EG: &str = "gateway.envoyproxy.io";
const CNPG: &str = "postgresql.cnpg.io";
const CATALOGS: &[&str] = &["ImageCatalog", "ClusterImageCatalog"];
const STRIMZI: &str = "kafka.strimzi.io";
const TEKTON: &str = "tekton.dev";
const TASKS: &[&str] = &["Task", "ClusterTask"];
const ARGO: &str = "argoproj.io";
const WORKFLOWS: &[&str] = &["Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate"];
const KUBEVIRT: &str = "kubevirt.io";
const CDI: &str = "cdi.kubevirt.io";
const KNATIVE: &str = "serving.knative.dev";
const XP: &str = "pkg.crossplane.io";
const KYVERNO: &str = "kyverno.io";
const POLICIES: &[&str] = &["ClusterPolicy", "Policy"];

/// Containers an operator merges into the pod it builds (`[]v1.Container`).
const CONTAINERS: &[&str] = &["containers[].image", "initContainers[].image"];
/// tekton.dev/v1 TaskSpec: Steps[].Image, Sidecars[].Image, StepTemplate.Image.
const TASK_SPEC: &[&str] = &["steps[].image", "sidecars[].image", "stepTemplate.image"];
/// argoproj.io/v1alpha1 WorkflowSpec: Templates[] (Template.Container, Script, a
/// ScriptTemplate that inlines a Container, InitContainers and Sidecars ([]UserContainer),
/// ContainerSet.Containers ([]ContainerNode)) and TemplateDefaults.
const WORKFLOW_SPEC: &[&str] = &[
    "templates[].container.image",
    "templates[].script.image",
    "templates[].initContainers[].image",
    "templates[].sidecars[].image",
    "templates[].containerSet.containers[].image",
    "templateDefaults.container.image",
    "templateDefaults.script.image",
];
/// kubevirt.io/v1 VirtualMachineInstanceSpec: Volumes[].ContainerDisk.Image
/// (ContainerDiskSource.Image), Domain.Firmware.KernelBoot.Container.Image
/// (KernelBootContainer.Image).
const VMI_SPEC: &[&str] = &[
    "volumes[].containerDisk.image",
    "domain.firmware.kernelBoot.container.image",
];
/// cdi.kubevirt.io/v1beta1 DataVolumeSpec: Source.Registry.URL (DataVolumeSourceRegistry.URL,
/// `docker://…`).
const DATA_VOLUME_SPEC: &[&str] = &["source.registry.url"];

/// The table. Containers lists of operators are strategic-merge patches of the pods they
/// build: an entry without `image` patches a container the operator makes and is passed
/// over, so they are read as `Image` rows, not as pod specs.
#[rustfmt::skip]
pub const ROWS: &[Row] = &[
    // Prometheus operator. monitoring.coreos.com/v1 Prometheus, Alertmanager, ThanosRuler,
    // v1alpha1 PrometheusAgent: `spec.image` (CommonPrometheusFields.Image,
    // AlertmanagerSpec.Image, ThanosRulerSpec.Image), `spec.containers` and
    // `spec.initContainers` ([]v1.Container, merged into the operator's pod).
    row(PROM, PROMETHEUS_KINDS, "spec", &["image"], Image),
    row(PROM, PROMETHEUS_KINDS, "spec", CONTAINERS, Image),
    // monitoring.coreos.com/v1 Prometheus spec.thanos.image (ThanosSpec.Image: the sidecar).
    row(PROM, &["Prometheus"], "spec.thanos", &["image"], Image),
    // Envoy Gateway. gateway.envoyproxy.io/v1alpha1 EnvoyProxy
    // spec.provider.kubernetes.envoyDeployment.container.image (KubernetesContainerSpec.Image),
    // envoyDeployment.initContainers ([]corev1.Container), envoyDaemonSet.container.image.
    // `imageRepository` has no tag (the gateway's own version decides it) and is not read.
    row(EG, &["EnvoyProxy"], "spec.provider.kubernetes", &["envoyDeployment.container.image", "envoyDeployment.initContainers[].image", "envoyDaemonSet.container.image"], Image),
    // CloudNativePG. postgresql.cnpg.io/v1 Cluster spec.imageName (ClusterSpec.ImageName),
    // spec.postgresql.extensions[].image.reference (ExtensionConfiguration.ImageVolumeSource).
    row(CNPG, &["Cluster"], "spec", &["imageName", "postgresql.extensions[].image.reference"], Image),
    // postgresql.cnpg.io/v1 ImageCatalog, ClusterImageCatalog spec.images[].image
    // (CatalogImage.Image), spec.images[].extensions[].image.reference,
    // spec.componentImages[].image (CatalogComponentImage.Image).
    row(CNPG, CATALOGS, "spec", &["images[].image", "images[].extensions[].image.reference", "componentImages[].image"], Image),
    // postgresql.cnpg.io/v1 Pooler spec.template (PodTemplateSpec, merged into PgBouncer's pod).
    row(CNPG, &["Pooler"], "spec.template.spec", CONTAINERS, Image),
    // Strimzi. kafka.strimzi.io/v1 (and v1beta2) Kafka spec.kafka.image (KafkaClusterSpec),
    // spec.entityOperator.topicOperator.image / userOperator.image
    // (EntityTopicOperatorSpec, EntityUserOperatorSpec), spec.cruiseControl.image
    // (CruiseControlSpec), spec.kafkaExporter.image (KafkaExporterSpec); v1beta2 only (removed
    // with ZooKeeper in 2026): spec.zookeeper.image (ZookeeperClusterSpec) and
    // spec.entityOperator.tlsSidecar.image (TlsSidecar).
    row(STRIMZI, &["Kafka"], "spec", &["kafka.image", "zookeeper.image", "entityOperator.topicOperator.image", "entityOperator.userOperator.image", "entityOperator.tlsSidecar.image", "cruiseControl.image", "kafkaExporter.image"], Image),
    // kafka.strimzi.io/v1 KafkaConnect, KafkaMirrorMaker2 spec.image
    // (AbstractKafkaConnectSpec.Image), KafkaBridge spec.image (KafkaBridgeSpec.Image),
    // v1beta2 KafkaMirrorMaker spec.image. KafkaConnect spec.build.output.image is the image
    // the build pushes, not one that exists before it, and is not read.
    row(STRIMZI, &["KafkaConnect", "KafkaMirrorMaker2", "KafkaMirrorMaker", "KafkaBridge"], "spec", &["image"], Image),
    // Tekton. tekton.dev/v1 Task, v1beta1 ClusterTask: a TaskSpec.
    row(TEKTON, TASKS, "spec", TASK_SPEC, Image),
    // tekton.dev/v1beta1 StepAction spec.image (StepActionSpec.Image).
    row(TEKTON, &["StepAction"], "spec", &["image"], Image),
    // tekton.dev/v1 TaskRun spec.taskSpec (TaskRunSpec.TaskSpec).
    row(TEKTON, &["TaskRun"], "spec.taskSpec", TASK_SPEC, Image),
    // tekton.dev/v1 Pipeline spec.tasks[].taskSpec, spec.finally[].taskSpec
    // (PipelineTask.TaskSpec, an EmbeddedTask that inlines TaskSpec).
    row(TEKTON, &["Pipeline"], "spec.tasks[].taskSpec", TASK_SPEC, Image),
    row(TEKTON, &["Pipeline"], "spec.finally[].taskSpec", TASK_SPEC, Image),
    // tekton.dev/v1 PipelineRun spec.pipelineSpec (PipelineRunSpec.PipelineSpec).
    row(TEKTON, &["PipelineRun"], "spec.pipelineSpec.tasks[].taskSpec", TASK_SPEC, Image),
    row(TEKTON, &["PipelineRun"], "spec.pipelineSpec.finally[].taskSpec", TASK_SPEC, Image),
    // triggers.tekton.dev/v1beta1 TriggerTemplate spec.resourcetemplates[] (whole objects,
    // usually PipelineRuns, created on each event).
    row("triggers.tekton.dev", &["TriggerTemplate"], "spec.resourcetemplates[]", WHOLE, Object),
    // Argo Workflows. argoproj.io/v1alpha1 Workflow, WorkflowTemplate,
    // ClusterWorkflowTemplate spec (a WorkflowSpec).
    row(ARGO, WORKFLOWS, "spec", WORKFLOW_SPEC, Image),
    // argoproj.io/v1alpha1 CronWorkflow spec.workflowSpec (CronWorkflowSpec.WorkflowSpec).
    row(ARGO, &["CronWorkflow"], "spec.workflowSpec", WORKFLOW_SPEC, Image),
    // KubeVirt. kubevirt.io/v1 VirtualMachineInstance spec; VirtualMachine and
    // VirtualMachineInstanceReplicaSet hold the same spec under spec.template.spec.
    row(KUBEVIRT, &["VirtualMachineInstance"], "spec", VMI_SPEC, Image),
    row(KUBEVIRT, &["VirtualMachine", "VirtualMachineInstanceReplicaSet"], "spec.template.spec", VMI_SPEC, Image),
    // kubevirt.io/v1 VirtualMachine spec.dataVolumeTemplates[].spec (a CDI DataVolumeSpec).
    row(KUBEVIRT, &["VirtualMachine"], "spec.dataVolumeTemplates[].spec", DATA_VOLUME_SPEC, DockerUrl),
    // pool.kubevirt.io/v1beta1 VirtualMachinePool spec.virtualMachineTemplate.spec (a
    // VirtualMachineSpec).
    row("pool.kubevirt.io", &["VirtualMachinePool"], "spec.virtualMachineTemplate.spec.template.spec", &["volumes[].containerDisk.image"], Image),
    // cdi.kubevirt.io/v1beta1 DataVolume spec (DataVolumeSpec), DataImportCron
    // spec.template.spec.
    row(CDI, &["DataVolume"], "spec", DATA_VOLUME_SPEC, DockerUrl),
    row(CDI, &["DataImportCron"], "spec.template.spec", DATA_VOLUME_SPEC, DockerUrl),
    // Knative Serving. serving.knative.dev/v1 Service and Configuration spec.template.spec,
    // Revision spec (RevisionSpec inlines corev1.PodSpec).
    row(KNATIVE, &["Service", "Configuration"], "spec.template.spec", WHOLE, PodSpec),
    row(KNATIVE, &["Revision"], "spec", WHOLE, PodSpec),
    // Crossplane packages. pkg.crossplane.io/v1 Provider, Configuration, Function (and
    // v1beta1 Function) spec.package (PackageSpec.Package: a fully qualified OCI reference).
    row(XP, &["Provider", "Configuration", "Function"], "spec", &["package"], Package),
    // pkg.crossplane.io/v1beta1 DeploymentRuntimeConfig spec.deploymentTemplate.spec
    // (an appsv1.DeploymentSpec merged into the package runtime's Deployment).
    row(XP, &["DeploymentRuntimeConfig"], "spec.deploymentTemplate.spec.template.spec", CONTAINERS, Image),
    // pkg.crossplane.io/v1alpha1 ControllerConfig spec.image (removed in Crossplane 2).
    row(XP, &["ControllerConfig"], "spec", &["image"], Image),
    // Kyverno. kyverno.io/v1 ClusterPolicy, Policy: what a rule deploys: a generated
    // resource (spec.rules[].generate.data) and containers a mutation adds
    // (spec.rules[].mutate.patchStrategicMerge). validate patterns and verifyImages name
    // images to match, not to deploy, and are not read.
    row(KYVERNO, POLICIES, "spec.rules[].generate.data", WHOLE, Object),
    row(KYVERNO, POLICIES, "spec.rules[].mutate.patchStrategicMerge.spec", CONTAINERS, Literal),
    row(KYVERNO, POLICIES, "spec.rules[].mutate.patchStrategicMerge.spec.template.spec", CONTAINERS, Literal),
];

/// Kinds whose images another module reads (`flux`, `argocd`, `kustomize`): no fallback may
/// read them again.
const ELSEWHERE: &[(&str, &str)] = &[
    ("helm.toolkit.fluxcd.io", "HelmRelease"),
    ("source.toolkit.fluxcd.io", "*"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("kustomize.config.k8s.io", "*"),
    ("argoproj.io", "Application"),
];

/// Groups whose kinds (besides rows of the table) name images only as patterns or as
/// repositories to watch, never as images to deploy: Kyverno's policies and reports, Flux
/// image automation (an `ImageRepository`'s `spec.image` has no tag).
const NOBODY: &[&str] = &[
    "kyverno.io",
    "policies.kyverno.io",
    "reports.kyverno.io",
    "wgpolicyk8s.io",
    "image.toolkit.fluxcd.io",
];

/// Who reads a kind's images.
#[derive(Debug)]
pub enum Owner {
    /// The rows of this table.
    Table(Vec<&'static Row>),
    /// Another module of `manifest`.
    Elsewhere,
    /// No one: the kind deploys nothing.
    Nobody,
    /// No one knows the kind: the fallbacks may look.
    Unknown,
}

pub fn owner(group: &str, kind: &str) -> Owner {
    let rows: Vec<&Row> = ROWS
        .iter()
        .filter(|r| r.group == group && r.kinds.contains(&kind))
        .collect();
    if !rows.is_empty() {
        Owner::Table(rows)
    } else if ELSEWHERE
        .iter()
        .any(|&(g, k)| g == group && (k == "*" || k == kind))
    {
        Owner::Elsewhere
    } else if NOBODY.contains(&group) {
        Owner::Nobody
    } else {
        Owner::Unknown
    }
}

/// Kubernetes' own API groups, whose kinds are all known.
pub fn built_in(group: &str) -> bool {
    matches!(
        group,
        "" | "apps" | "batch" | "autoscaling" | "policy" | "extensions"
    ) || group.ends_with(".k8s.io")
}

/// What the table found besides image occurrences: nodes to read as pod specs or as
/// objects.
#[derive(Debug, Default)]
pub struct Found {
    pub pod_specs: Vec<NodeId>,
    pub objects: Vec<NodeId>,
}

/// Appends the occurrences of one object's rows.
pub fn extract(
    doc: &Document,
    obj: NodeId,
    rows: Vec<&Row>,
    file: usize,
    label: &str,
    out: &mut Vec<Occurrence>,
) -> Found {
    let mut found = Found::default();
    for (r, path) in rows.iter().flat_map(|r| r.paths().map(move |p| (r, p))) {
        let keys: Vec<&str> = path.split('.').collect();
        let mut at = Vec::new();
        nodes(doc, obj, &keys, String::new(), &mut at);
        for (node, path) in at {
            let context = format!("{label} {path}");
            match r.read {
                PodSpec => found.pod_specs.push(node),
                Object if doc.is_map(node) => found.objects.push(node),
                Object => {}
                Image | Literal | DockerUrl | Package if is_default(doc, node) => {}
                Image => out.push(Occurrence::at(doc, node, file, context)),
                Literal => {
                    if doc
                        .str(node)
                        .is_none_or(|s| !s.contains(['*', '?']) && !image_ref::has_variable(s))
                    {
                        out.push(Occurrence::at(doc, node, file, context));
                    }
                }
                DockerUrl => {
                    let mut o = Occurrence::at(doc, node, file, context);
                    if let ImageValue::Text(url) = &o.value {
                        let Some(reference) = url.strip_prefix("docker://") else {
                            continue;
                        };
                        o.value = ImageValue::Text(reference.to_string());
                    }
                    out.push(o);
                }
                Package => {
                    // Crossplane 1 completed a name without a registry from its
                    // `--registry` flag, which the repository does not show; Crossplane 2
                    // refuses such names. Either way there is nothing to check.
                    if doc.str(node).is_none_or(|s| {
                        image_ref::written_domain(s).is_some() || image_ref::has_variable(s)
                    }) {
                        out.push(Occurrence::at(doc, node, file, context));
                    }
                }
            }
        }
    }
    found
}

/// An empty or null optional field: the operator uses its default.
fn is_default(doc: &Document, node: NodeId) -> bool {
    match doc.scalar_type(node) {
        Some(ScalarType::Null) => true,
        Some(ScalarType::String) => doc.scalar(node) == Some(""),
        _ => false,
    }
}

/// The nodes at a path of keys (`list[]` for every item), with the path as written, list
/// items named by their `name` (or their index), as in `spec.steps[build].image`.
fn nodes(
    doc: &Document,
    node: NodeId,
    keys: &[&str],
    here: String,
    out: &mut Vec<(NodeId, String)>,
) {
    let Some((first, rest)) = keys.split_first() else {
        out.push((node, here));
        return;
    };
    let (key, each) = match first.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (*first, false),
    };
    let Some(child) = doc.get(node, key) else {
        return;
    };
    let here = if here.is_empty() {
        key.to_string()
    } else {
        format!("{here}.{key}")
    };
    if !each {
        return nodes(doc, child, rest, here, out);
    }
    let NodeKind::Seq(items) = &doc.node(child).kind else {
        return;
    };
    for (i, &item) in items.iter().enumerate() {
        let name = doc
            .get(item, "name")
            .and_then(|n| doc.scalar(n))
            .map_or_else(|| i.to_string(), str::to_string);
        nodes(doc, item, rest, format!("{here}[{name}]"), out);
    }
}

#[cfg(test)]
#[path = "operators_tests.rs"]
mod tests;
