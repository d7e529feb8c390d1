//! The report of a run: its sources, entries and file findings, the counts of the summary
//! line, and the exit code they give.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde::Serialize;

use super::{Entry, Status};
use crate::finding::{Finding, Severity};
use crate::manifest::ImageValue;
use crate::resolve::RequestCounts;
use crate::source::SourceFile;

/// Counts for the summary line and the JSON summary.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Summary {
    pub references: usize,
    pub unique: usize,
    pub registries: usize,
    pub ok: usize,
    pub not_found: usize,
    pub undecided: usize,
    pub invalid: usize,
    pub unresolved: usize,
    pub skipped: usize,
    pub errors: usize,
    pub warnings: usize,
    pub files: usize,
    pub offline: bool,
    /// Seconds.
    #[serde(serialize_with = "seconds")]
    #[schemars(with = "f64")]
    pub duration: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<RequestCountsSchema>")]
    pub requests: Option<RequestCounts>,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Everything a renderer needs.
#[derive(Debug)]
pub struct Report {
    pub sources: Vec<SourceFile>,
    pub entries: Vec<Entry>,
    /// Findings about files rather than references (invalid YAML, skipped templates).
    pub file_findings: Vec<Finding>,
    pub summary: Summary,
    /// What a diff check compared.
    pub git: Option<crate::git::Range>,
    /// The repository root, when known, for repository-relative paths.
    pub repo_root: Option<std::path::PathBuf>,
    /// Whether undecided references fail (issue 18: one switch for exit code and level).
    pub undecided: crate::undecided::Undecided,
}

impl Report {
    /// Every finding: file findings first, then reference findings in file order.
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.file_findings
            .iter()
            .chain(self.entries.iter().filter_map(|e| e.finding.as_ref()))
    }

    /// 1 for any error, 3 for anything undecided (and no error) unless `--undecided warn`,
    /// else 0.
    pub fn exit_code(&self) -> i32 {
        let worst = self.findings().map(Finding::severity).min();
        self.undecided.exit_code(worst)
    }

    /// The level a finding is drawn at: an undecided one is a warning under
    /// `--undecided warn`.
    pub fn level(&self, finding: &Finding) -> Severity {
        self.undecided.level(finding.severity())
    }
}

/// Counts the entries for the summary.
pub fn summarise(entries: &[Entry], file_findings: &[Finding], files: usize) -> Summary {
    let mut unique: HashMap<String, Status> = HashMap::new();
    let mut registries = BTreeSet::new();
    let mut s = Summary {
        references: entries.len(),
        files,
        ..Summary::default()
    };
    for e in entries {
        match e.status {
            Status::Invalid => s.invalid += 1,
            Status::UnresolvedVariable => s.unresolved += 1,
            _ => {}
        }
        // A version range counts once per repository and range until a tag decides it
        // (offline, or no tag satisfies it), so the counts agree with the table.
        let counted = match &e.reference {
            Some(r) => Some((r.pulled().canonical(), r.domain.clone())),
            None if matches!(e.occurrence.value, ImageValue::Range { .. }) => {
                match super::classify(&e.occurrence) {
                    super::Classified::Range(r, constraint) => {
                        Some((format!("{}:{constraint}", r.canonical()), r.domain))
                    }
                    _ => None,
                }
            }
            None => None,
        };
        if let Some((key, domain)) = counted {
            unique.insert(key, e.status);
            registries.insert(domain);
        }
    }
    s.unique = unique.len();
    s.registries = registries.len();
    for status in unique.values() {
        match status {
            Status::Ok => s.ok += 1,
            Status::NotFound => s.not_found += 1,
            Status::Skipped => s.skipped += 1,
            Status::NotFoundOrDenied
            | Status::Unreachable
            | Status::RateLimited
            | Status::RegistryError => s.undecided += 1,
            Status::Invalid
            | Status::UnresolvedVariable
            | Status::Refused
            | Status::DigestMismatch => {}
        }
    }
    let all = file_findings
        .iter()
        .chain(entries.iter().filter_map(|e| e.finding.as_ref()));
    for f in all {
        match f.severity() {
            Severity::Error => s.errors += 1,
            Severity::Warning => s.warnings += 1,
            _ => {}
        }
    }
    s
}

/// The schema of `summary.requests` (resolve's `RequestCounts`, which stays free of
/// schema derives); a test checks both have the same fields.
#[derive(Serialize, schemars::JsonSchema, Default)]
#[schemars(deny_unknown_fields)]
pub struct RequestCountsSchema {
    pub pings: usize,
    pub tokens: usize,
    pub heads: usize,
    pub tag_lists: usize,
    pub gets: usize,
    pub retries: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_counts_schema_has_the_fields_request_counts_has() {
        let keys = |v: serde_json::Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(serde_json::to_value(RequestCounts::default()).unwrap()),
            keys(serde_json::to_value(RequestCountsSchema::default()).unwrap())
        );
    }
}
