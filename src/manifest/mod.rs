//! Turns one file's bytes into the image occurrences it holds, plus findings about the file
//! itself (invalid YAML, binary data, Helm templates). One submodule per family of inputs.

pub mod argocd;
mod chart_template;
pub mod flux;
mod helm_scalar;
mod heuristic;
pub mod kubernetes;
pub mod kustomize;
pub mod merge;
pub mod operators;
pub mod values;
pub mod yaml;

use std::path::{Component, Path, PathBuf};

use crate::finding::{Code, Finding, Location};
use crate::source::SourceFile;
use yaml::{Document, NodeId, ScalarType};

/// How an image field's value was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImageValue {
    /// A YAML string: the reference as written.
    Text(String),
    /// Null or the empty string.
    Empty,
    /// A container with no `image` key at all.
    Missing,
    /// A number, boolean or collection where a string belongs; says what YAML made of it.
    NonString {
        written: String,
        typed_as: &'static str,
        /// What Helm prints for it, where that is not what is written (a values tag).
        rendered: Option<String>,
    },
    /// A version range that some tag of a repository must satisfy (Flux `semver`, chart
    /// version ranges).
    Range {
        repository: String,
        constraint: String,
    },
}

/// One place in a file where an image is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub location: Location,
    pub value: ImageValue,
    /// Which object and field, e.g. `Deployment/web containers[app]`.
    pub context: String,
    /// In a diff check: what the same field held at the merge base, when it changed.
    pub previous: Option<String>,
}

impl Occurrence {
    /// The occurrence of an image field's node, its value classified as it was written.
    pub fn at(doc: &Document, node: NodeId, file: usize, context: String) -> Occurrence {
        let value = match doc.scalar_type(node) {
            Some(ScalarType::String) => match doc.scalar(node) {
                Some("") | None => ImageValue::Empty,
                Some(s) => ImageValue::Text(s.to_string()),
            },
            Some(ScalarType::Null) => ImageValue::Empty,
            Some(t) => ImageValue::NonString {
                written: doc.scalar(node).unwrap_or_default().to_string(),
                typed_as: match t {
                    ScalarType::Bool => "a boolean",
                    ScalarType::Int => "an integer",
                    _ => "a number",
                },
                rendered: None,
            },
            // `image: {{ .AppImage }}` unquoted: YAML reads a mapping, a template means text.
            None if doc.template_text(node).is_some() => {
                ImageValue::Text(doc.template_text(node).unwrap_or_default().to_string())
            }
            None => ImageValue::NonString {
                written: String::new(),
                typed_as: if doc.is_map(node) {
                    "a mapping"
                } else {
                    "a sequence"
                },
                rendered: None,
            },
        };
        Occurrence {
            location: doc.location(node, file),
            value,
            context,
            previous: None,
        }
    }
}

/// How a file is read, decided by the caller from what lies around it.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// The file sits in a chart's `templates/` directory (see [`chart_template`]): with
    /// `{{` in it, it is a Helm template, not YAML.
    pub chart_template: bool,
    /// Guess images in kinds no table knows (`image-heuristic` in the config).
    pub heuristic: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            chart_template: false,
            heuristic: true,
        }
    }
}

/// Whether a path lies in a chart's `templates/` directory: some `templates` directory
/// above it has a `Chart.yaml` beside it. `exists` answers for a path built from `path`'s
/// own components.
pub fn chart_template(path: &Path, exists: &dyn Fn(&Path) -> bool) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let mut above = PathBuf::new();
    for c in dir.components() {
        if matches!(c, Component::Normal(n) if n == "templates")
            && exists(&above.join("Chart.yaml"))
        {
            return true;
        }
        above.push(c);
    }
    false
}

/// What one file holds.
#[derive(Debug)]
pub struct FileScan {
    pub source: SourceFile,
    pub occurrences: Vec<Occurrence>,
    pub findings: Vec<Finding>,
    /// Flux objects that other files' objects refer to.
    pub flux: flux::FluxFacts,
}

impl FileScan {
    /// A file that yields nothing but one finding.
    pub fn failed(source: SourceFile, finding: Finding) -> FileScan {
        FileScan {
            source,
            occurrences: Vec::new(),
            findings: vec![finding],
            flux: Default::default(),
        }
    }
}

/// A finding about a file at one offset.
fn file_finding(code: Code, file: usize, at: usize, message: &str, hint: &str) -> Finding {
    Finding {
        code,
        message: message.into(),
        hint: Some(hint.into()),
        location: Some(Location {
            file,
            start: at,
            end: at,
        }),
        image: None,
    }
}

/// Scans a file's bytes as a file outside any chart, with the image heuristic on.
pub fn scan(file: usize, path: &Path, bytes: Vec<u8>) -> FileScan {
    scan_with(file, path, bytes, ScanOptions::default())
}

/// Scans a file's bytes. Never fails: every problem with the input is a finding.
pub fn scan_with(file: usize, path: &Path, bytes: Vec<u8>, options: ScanOptions) -> FileScan {
    let mut findings = Vec::new();
    if bytes.contains(&0) {
        return FileScan::failed(
            SourceFile::new(path.to_path_buf(), ""),
            file_finding(
                Code::BinaryFile,
                file,
                0,
                "file holds NUL bytes; it is binary, not YAML, and was skipped",
                "exclude it with --exclude if it is not a manifest",
            ),
        );
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
            // The lossy text keeps every valid byte before the first bad one in place.
            return FileScan::failed(
                SourceFile::new(path.to_path_buf(), lossy.as_str()),
                file_finding(
                    Code::InvalidYaml,
                    file,
                    valid,
                    "file is not valid UTF-8",
                    "YAML files must be UTF-8 encoded",
                ),
            );
        }
    };
    let source = SourceFile::new(path.to_path_buf(), text);
    // Only a chart's templates are Helm templates; anything else that does not parse is
    // invalid YAML at the parser's position, `{{` or not (issue 16).
    if options.chart_template && source.text.contains("{{") {
        let occurrences = chart_template::literal_images(&source, path, file);
        return FileScan {
            occurrences,
            ..FileScan::failed(
                source,
                file_finding(
                    Code::HelmTemplate,
                    file,
                    0,
                    "Helm template: YAML only once Helm renders it; the images written in it literally are checked",
                    "images it takes from values are checked in the chart's values where they follow the image conventions; an image it composes otherwise is not checked",
                ),
            )
        };
    }
    let parsed = yaml::parse(&source);
    let mut occurrences = Vec::new();
    let mut facts = flux::FluxFacts::default();
    let is_kustomization = kustomize::is_kustomization_file(path);
    let kubeadm_patch = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(kubernetes::kubeadm_patch_kind);
    for doc in &parsed.documents {
        let before = occurrences.len();
        kubernetes::extract_with(doc, file, options.heuristic, &mut occurrences);
        // kubeadm applies such a file as a patch of its component: a container it names
        // without an `image` keeps the component's own image (kube-prometheus
        // tests/e2e/kind/patches/kube-controller-manager.yaml). An empty image is still set.
        let kind = doc
            .root
            .and_then(|r| doc.get(r, "kind"))
            .and_then(|k| doc.str(k));
        if kubeadm_patch.is_some() && kind == kubeadm_patch {
            let added = occurrences.split_off(before);
            occurrences.extend(added.into_iter().filter(|o| o.value != ImageValue::Missing));
        }
        flux::extract(doc, file, &mut occurrences, &mut facts);
        flux::markers(doc, &source, file, &mut facts);
        argocd::extract(doc, &source, file, &mut occurrences);
        if is_kustomization {
            kustomize::extract_local(doc, file, &mut occurrences);
        }
    }
    if let Some(err) = parsed.error {
        findings.push(Finding {
            code: Code::InvalidYaml,
            message: format!("invalid YAML: {}", err.message),
            hint: None,
            location: Some(Location {
                file,
                start: err.offset,
                end: err.offset,
            }),
            image: None,
        });
    }
    FileScan {
        source,
        occurrences,
        findings,
        flux: facts,
    }
}

/// An occurrence's value as unit tests compare it: the text, or `<what it is>`.
#[cfg(test)]
pub(crate) fn shown(value: &ImageValue) -> String {
    match value {
        ImageValue::Text(s) => s.clone(),
        ImageValue::Empty => "<empty>".into(),
        ImageValue::Missing => "<missing>".into(),
        ImageValue::NonString { typed_as, .. } => format!("<{typed_as}>"),
        ImageValue::Range { .. } => "<range>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(scan: &FileScan) -> Vec<Code> {
        scan.findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn binary_and_non_utf8_files_are_findings() {
        let s = scan(0, Path::new("a.yaml"), b"a: \0".to_vec());
        assert_eq!(codes(&s), [Code::BinaryFile]);
        let s = scan(0, Path::new("a.yaml"), b"a: b\nc: \xff\n".to_vec());
        assert_eq!(codes(&s), [Code::InvalidYaml]);
        let loc = s.findings[0].location.unwrap();
        assert_eq!(s.source.position(loc.start).line, 2);
    }

    #[test]
    fn helm_templates_are_skipped_with_a_note() {
        let text = "apiVersion: v1\nkind: Pod\n{{- if .Values.x }}\nspec: {}\n{{- end }}\n";
        let options = ScanOptions {
            chart_template: true,
            ..ScanOptions::default()
        };
        let s = scan_with(
            0,
            Path::new("chart/templates/pod.yaml"),
            text.into(),
            options,
        );
        assert_eq!(codes(&s), [Code::HelmTemplate]);
        assert!(s.occurrences.is_empty());
    }

    // issue 16: `{{` outside a chart's templates is no excuse for invalid YAML.
    #[test]
    fn invalid_yaml_with_braces_outside_a_chart_is_invalid_yaml() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    note: \"{{ .Values.x }}\"\n   name: web\n";
        for path in ["deploy/web.yaml", "templates/web.yaml"] {
            let s = scan(0, Path::new(path), text.into());
            assert_eq!(codes(&s), [Code::InvalidYaml], "{path}");
            let p = s.source.position(s.findings[0].location.unwrap().start);
            assert_eq!((p.line, p.column), (6, 4), "{path}");
        }
    }

    #[test]
    fn chart_templates_need_a_chart_yaml_above_them() {
        let charts = ["charts/web/Chart.yaml", "Chart.yaml"];
        let exists = |p: &Path| charts.iter().any(|c| Path::new(c) == p);
        assert!(chart_template(
            Path::new("charts/web/templates/a.yaml"),
            &exists
        ));
        assert!(chart_template(
            Path::new("charts/web/templates/sub/a.yaml"),
            &exists
        ));
        assert!(chart_template(Path::new("templates/a.yaml"), &exists));
        assert!(!chart_template(Path::new("apps/templates/a.yaml"), &exists));
        assert!(!chart_template(Path::new("charts/web/a.yaml"), &exists));
        assert!(!chart_template(Path::new("charts/web/templates"), &|_| {
            false
        }));
    }

    #[test]
    fn invalid_yaml_is_a_finding_with_a_position() {
        let s = scan(0, Path::new("a.yaml"), b"a: [\nb: c\n".to_vec());
        assert_eq!(codes(&s), [Code::InvalidYaml]);
        assert!(s.findings[0].location.is_some());
    }
}
