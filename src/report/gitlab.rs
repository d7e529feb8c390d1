//! The GitLab format: a Code Quality report (a JSON array), shown in the merge request
//! widget. Fingerprints are stable hashes of code, path and image, unique in the report.

use std::collections::HashSet;
use std::io::{self, Write};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Context, repo_path, sorted_findings, span};
use crate::check::Report;
use crate::finding::Severity;

#[derive(Serialize)]
struct Issue<'a> {
    description: String,
    check_name: &'static str,
    fingerprint: String,
    severity: &'static str,
    location: IssueLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
}

#[derive(Serialize)]
struct IssueLocation {
    path: String,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: usize,
}

pub fn render(report: &Report, ctx: &Context, out: &mut dyn Write) -> io::Result<()> {
    let mut seen = HashSet::new();
    let issues: Vec<Issue> = sorted_findings(report)
        .into_iter()
        .filter_map(|f| {
            let location = f.location?;
            let s = span(report, &location);
            let path = repo_path(s.path, ctx);
            let image = f.image.as_deref().unwrap_or("");
            // The same code, path and image twice gets a counter, so fingerprints stay unique.
            let mut n = 0;
            let fingerprint = loop {
                let mut h = Sha256::new();
                for part in [f.code.as_str(), &path, image, &n.to_string()] {
                    h.update(part.as_bytes());
                    h.update([0]);
                }
                let hex: String = h.finalize()[..16]
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                if seen.insert(hex.clone()) {
                    break hex;
                }
                n += 1;
            };
            let description = match &f.hint {
                Some(hint) => format!("{} ({hint})", f.message),
                None => f.message.clone(),
            };
            Some(Issue {
                description,
                check_name: f.code.as_str(),
                fingerprint,
                severity: match report.level(f) {
                    Severity::Error => "critical",
                    Severity::Undecided => "major",
                    Severity::Warning => "minor",
                    Severity::Note => "info",
                },
                location: IssueLocation {
                    path,
                    lines: Lines {
                        begin: s.start.line,
                    },
                },
                image: f.image.as_deref(),
            })
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &issues)?;
    writeln!(out)
}
