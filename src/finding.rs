//! Findings are data: what imagegate found wrong (or could not decide) about the input,
//! with a stable kebab-case code, a severity, a location and a hint. They are not errors;
//! errors are for when the tool itself cannot run.

use serde::Serialize;

/// A stable finding code. The kebab-case name is part of the output contract.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[cfg_attr(test, derive(strum_macros::EnumIter))]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    NotFound,
    NotFoundOrDenied,
    InvalidReference,
    NonStringImage,
    EmptyImage,
    UnresolvedVariable,
    /// An unresolved variable under `--strict`: an error.
    #[serde(rename = "unresolved-variable")]
    #[schemars(skip)]
    UnresolvedVariableStrict,
    Unreachable,
    RateLimited,
    RegistryError,
    TagDigestMismatch,
    InvalidYaml,
    UnreadableFile,
    HelmTemplate,
    BinaryFile,
    Skipped,
    PolicyLatest,
    PolicyDigest,
    PolicyRegistry,
    PolicyPlatform,
    /// The registry answered a pinned digest with other content (issue 13).
    DigestMismatch,
    /// A reference to an address imagegate never contacts (link-local, cloud metadata, or a
    /// trusted deny list).
    DeniedDestination,
    /// A file the repository names leads outside the repository (issue 13).
    PathEscape,
    /// The change edits the repository's config, which takes effect once merged.
    ConfigChanged,
    /// `kustomize build` would fail on this input (issue 15).
    KustomizeBuild,
    /// A kustomize `images:` entry or patch that changes nothing in the build (issue 15).
    NoEffect,
    /// `--render` found an image the native model did not predict (issue 15).
    ModelGap,
    /// A chart package or repository index is too large, a tar or gzip bomb, or not a
    /// chart (issue 16).
    ChartUnreadable,
    /// A chart's defaults were not read (`--offline`, or the chart could not be fetched):
    /// the images they decide are not checked (issue 16).
    ChartNotRead,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NotFound => "not-found",
            Code::NotFoundOrDenied => "not-found-or-denied",
            Code::InvalidReference => "invalid-reference",
            Code::NonStringImage => "non-string-image",
            Code::EmptyImage => "empty-image",
            Code::UnresolvedVariable | Code::UnresolvedVariableStrict => "unresolved-variable",
            Code::Unreachable => "unreachable",
            Code::RateLimited => "rate-limited",
            Code::RegistryError => "registry-error",
            Code::TagDigestMismatch => "tag-digest-mismatch",
            Code::InvalidYaml => "invalid-yaml",
            Code::UnreadableFile => "unreadable-file",
            Code::HelmTemplate => "helm-template",
            Code::BinaryFile => "binary-file",
            Code::Skipped => "skipped",
            Code::PolicyLatest => "policy-latest",
            Code::PolicyDigest => "policy-digest",
            Code::PolicyRegistry => "policy-registry",
            Code::PolicyPlatform => "policy-platform",
            Code::DigestMismatch => "digest-mismatch",
            Code::DeniedDestination => "denied-destination",
            Code::PathEscape => "path-escape",
            Code::ConfigChanged => "config-changed",
            Code::KustomizeBuild => "kustomize-build",
            Code::NoEffect => "no-effect",
            Code::ModelGap => "model-gap",
            Code::ChartUnreadable => "chart-unreadable",
            Code::ChartNotRead => "chart-not-read",
        }
    }

    pub fn severity(self) -> Severity {
        match self {
            Code::NotFound
            | Code::InvalidReference
            | Code::NonStringImage
            | Code::EmptyImage
            | Code::InvalidYaml
            | Code::UnresolvedVariableStrict
            | Code::UnreadableFile
            | Code::PolicyLatest
            | Code::PolicyDigest
            | Code::PolicyRegistry
            | Code::PolicyPlatform
            | Code::DigestMismatch
            | Code::DeniedDestination
            | Code::PathEscape
            | Code::KustomizeBuild
            | Code::ChartUnreadable => Severity::Error,
            Code::NotFoundOrDenied
            | Code::Unreachable
            | Code::RateLimited
            | Code::RegistryError => Severity::Undecided,
            Code::UnresolvedVariable | Code::TagDigestMismatch | Code::Skipped => Severity::Warning,
            Code::HelmTemplate
            | Code::BinaryFile
            | Code::ConfigChanged
            | Code::NoEffect
            | Code::ModelGap
            | Code::ChartNotRead => Severity::Note,
        }
    }

    /// Whether the finding is about a whole file, so it has no meaningful line.
    pub fn is_file_level(self) -> bool {
        matches!(
            self,
            Code::UnreadableFile | Code::HelmTemplate | Code::BinaryFile
        )
    }

    /// One line of help, for SARIF rules and `--help`-style listings.
    pub fn describe(self) -> &'static str {
        match self {
            Code::NotFound => {
                "The registry answered 404: the tag, digest or repository does not exist."
            }
            Code::NotFoundOrDenied => {
                "The registry refused access after authentication: the image is missing or needs credentials."
            }
            Code::InvalidReference => {
                "The reference does not follow the image reference grammar; Kubernetes would report InvalidImageName."
            }
            Code::NonStringImage => {
                "YAML typed the image as a number, boolean or collection, which mangles it."
            }
            Code::EmptyImage => "The image field is empty.",
            Code::UnresolvedVariable | Code::UnresolvedVariableStrict => {
                "The reference holds a variable or template that imagegate cannot resolve."
            }
            Code::Unreachable => "The registry could not be reached in time.",
            Code::RateLimited => {
                "The registry kept answering 429 Too Many Requests past every retry."
            }
            Code::RegistryError => "The registry answered with an unexpected error.",
            Code::TagDigestMismatch => {
                "The tag exists but now points at a different digest than the one pinned."
            }
            Code::InvalidYaml => "The file is not valid YAML.",
            Code::UnreadableFile => "The file could not be read.",
            Code::HelmTemplate => {
                "The file is a Helm template, YAML only once rendered: only images written in it literally are checked."
            }
            Code::BinaryFile => "The file is binary and is not checked.",
            Code::Skipped => {
                "A reference was not checked: a remote resource, an unknown image policy, or a source outside the checked files."
            }
            Code::PolicyLatest => "Policy deny-latest: the reference pulls `latest`, which moves.",
            Code::PolicyDigest => "Policy require-digest: the reference is not pinned by digest.",
            Code::PolicyRegistry => {
                "Policy allowed-registries: the reference comes from a registry that is not allowed."
            }
            Code::PolicyPlatform => {
                "Policy platforms: the image lacks a platform the policy requires."
            }
            Code::DigestMismatch => {
                "The registry answered a pinned digest with a different or malformed Docker-Content-Digest."
            }
            Code::DeniedDestination => {
                "The reference names an address imagegate never contacts: link-local, cloud metadata, or a trusted deny list."
            }
            Code::PathEscape => {
                "A file the repository names leads outside the repository, so it is not read."
            }
            Code::ConfigChanged => {
                "The change edits .imagegate.yaml; a diff check uses the merge base's config, so the edit applies once merged."
            }
            Code::KustomizeBuild => {
                "kustomize build would fail on this kustomization input, so nothing it deploys can be checked."
            }
            Code::NoEffect => {
                "A kustomize images entry or patch matches nothing in the build; it changes no image."
            }
            Code::ModelGap => {
                "--render found an image imagegate's kustomize or Helm model did not predict; it was checked anyway."
            }
            Code::ChartUnreadable => {
                "A chart package or Helm repository index is too large (a tar or gzip bomb), malformed, or not a chart."
            }
            Code::ChartNotRead => {
                "A chart's defaults were not read (offline, or the chart could not be fetched), so the images they decide are not checked."
            }
        }
    }
}

/// How much a finding matters, and so which exit code it leads to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Definitely wrong: exit 1.
    Error,
    /// Could not be decided: exit 3 when nothing is definitely wrong. Never a pass.
    Undecided,
    Warning,
    Note,
}

/// One finding, tied to a place in a file when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: Code,
    pub message: String,
    pub hint: Option<String>,
    pub location: Option<Location>,
    /// The image as written, when the finding is about one.
    pub image: Option<String>,
}

impl Finding {
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
}

/// A byte span in a file of the source store.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    pub file: usize,
    pub start: usize,
    pub end: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the schema publishes (the strict twin of `unresolved-variable` shares its
    /// name), checked against the published schema's list so `as_str` and serde agree.
    fn every_code() -> Vec<Code> {
        use strum::IntoEnumIterator;
        let all: Vec<Code> = Code::iter()
            .filter(|&c| c != Code::UnresolvedVariableStrict)
            .collect();
        fn names(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        match (k.as_str(), v) {
                            ("const", serde_json::Value::String(s)) => out.push(s.clone()),
                            ("enum", serde_json::Value::Array(items)) => out.extend(
                                items.iter().filter_map(|i| i.as_str().map(str::to_string)),
                            ),
                            _ => names(v, out),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| names(i, out)),
                _ => {}
            }
        }
        let mut published = Vec::new();
        names(
            &serde_json::to_value(schemars::schema_for!(Code)).unwrap(),
            &mut published,
        );
        published.sort();
        let mut listed: Vec<String> = all.iter().map(|c| c.as_str().to_string()).collect();
        listed.sort();
        assert_eq!(listed, published, "as_str names every code as serde does");
        all
    }

    // Issue 16: the README listed `skipped` as a note while the code made it a warning.
    #[test]
    fn the_readme_findings_table_gives_every_code_its_severity() {
        let readme = include_str!("../README.md");
        let table = readme
            .split("### Findings")
            .nth(1)
            .and_then(|s| s.split("\n\n").nth(1))
            .expect("the README has a Findings table");
        for code in every_code() {
            let name = format!("`{}`", code.as_str());
            let rows: Vec<&str> = table
                .lines()
                .filter(|l| l.split('|').nth(1).is_some_and(|c| c.contains(&name)))
                .collect();
            assert_eq!(rows.len(), 1, "{name} has one row: {rows:?}");
            let severity = rows[0].split('|').nth(2).unwrap().split_whitespace().next();
            let want = serde_json::to_value(code.severity()).unwrap();
            assert_eq!(severity, want.as_str(), "{}", rows[0]);
        }
    }
}
