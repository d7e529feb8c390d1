//! What a chart release is, as the project step finds it: where its chart comes from, its
//! values layers in Helm's order, and what `helm template` is told about it. Types only:
//! `charts.rs` finds releases, `release_render.rs` layers their values.

use std::path::PathBuf;
use std::sync::Arc;

use crate::finding::Location;

/// Where a chart comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChartSource {
    /// A classic Helm repository (`index.yaml` at `url`).
    Classic {
        url: String,
        chart: String,
        version: Option<String>,
    },
    /// An OCI chart: `host/path/chart`, and a version or range.
    Oci {
        repository: String,
        version: Option<String>,
    },
    /// A chart directory of the repository.
    Local { dir: PathBuf },
}

impl ChartSource {
    pub fn describe(&self) -> String {
        match self {
            ChartSource::Classic {
                url,
                chart,
                version,
            } => {
                format!("{chart} {} from {url}", version.as_deref().unwrap_or("*"))
            }
            ChartSource::Oci {
                repository,
                version,
            } => format!("oci://{repository} {}", version.as_deref().unwrap_or("*")),
            ChartSource::Local { dir } => dir.display().to_string(),
        }
    }
}

/// One layer of a release's values, in Helm's order.
#[derive(Debug, Clone)]
pub enum Layer {
    /// A mapping in a file of the report, at a path of keys in one of its documents.
    Node {
        file: usize,
        text: Arc<str>,
        doc: usize,
        path: Vec<String>,
    },
    /// An Argo CD Helm source's own values (`values`, `valuesObject`, `parameters`).
    Argo {
        file: usize,
        text: Arc<str>,
        doc: usize,
        path: Vec<String>,
    },
    /// Values text reported at one place (a values file, a ConfigMap's key).
    Text { text: String, at: Location },
}

/// A release of a chart with its values.
#[derive(Debug, Clone)]
pub struct Release {
    /// `HelmRelease/web`, `Application/guestbook`, `helmCharts[redis]`.
    pub label: String,
    pub source: ChartSource,
    /// Where the chart version (else the chart) is written.
    pub at: Location,
    pub layers: Vec<Layer>,
    /// The release's name, namespace and hooks, for `helm template` (`--render`).
    pub rendering: Rendering,
}

/// What `helm template` is told about a release besides its chart and values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendering {
    pub name: String,
    pub namespace: String,
    /// Test hooks are deployed.
    pub tests: bool,
    /// Hooks are deployed.
    pub hooks: bool,
}
