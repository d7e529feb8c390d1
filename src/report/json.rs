//! The JSON format: a stable, documented schema (version 1). One entry per occurrence, plus
//! findings about files and a summary. Fields are only ever added, never renamed.

use std::io::{self, Write};

use schemars::JsonSchema;
use serde::Serialize;

use super::span;
use crate::check::{Report, Status, Summary};
use crate::finding::{Code, Finding, Severity};

/// An imagegate report (`--format json`, schema version 1). Published as
/// `report.schema.json`; fields are only ever added.
#[derive(Serialize, JsonSchema)]
#[schemars(title = "imagegate report", deny_unknown_fields)]
pub struct Document<'a> {
    /// The schema version: 1.
    version: u32,
    /// Why imagegate could not run (exit 2); the rest of the report is then empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// The base a diff check compared with, and why it was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<&'a crate::git::BaseChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    merge_base: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    worktree: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fetched: Option<&'a str>,
    /// One entry per occurrence of an image reference.
    #[serde(serialize_with = "entries")]
    #[schemars(with = "Vec<Reference<'static>>")]
    references: &'a Report,
    files: Vec<FileFinding<'a>>,
    summary: &'a Summary,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct Reference<'a> {
    file: String,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    image: &'a str,
    canonical: Option<String>,
    status: Status,
    digest: Option<&'a str>,
    message: Option<&'a str>,
    hint: Option<&'a str>,
    code: Option<Code>,
    severity: Option<Severity>,
    context: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    suggestions: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    previous: Option<&'a crate::check::Previous>,
    /// The mirror or rewrite host that answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    via: Option<&'a str>,
}

#[derive(Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
struct FileFinding<'a> {
    file: Option<String>,
    line: Option<usize>,
    column: Option<usize>,
    code: Code,
    severity: Severity,
    message: &'a str,
    hint: Option<&'a str>,
}

/// Streams the reference entries: a large report is never held twice in memory.
fn entries<S: serde::Serializer>(report: &&Report, s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(report.entries.iter().map(|e| reference(report, e)))
}

fn reference<'a>(report: &'a Report, e: &'a crate::check::Entry) -> Reference<'a> {
    let s = span(report, &e.occurrence.location);
    let f: Option<&Finding> = e.finding.as_ref();
    Reference {
        file: s.path.display().to_string(),
        line: s.start.line,
        column: s.start.column,
        end_line: s.end.line,
        end_column: s.end.column,
        image: &e.written,
        canonical: e.reference.as_ref().map(|r| r.canonical()),
        status: e.status,
        digest: e.digest.as_deref(),
        via: e.via.as_deref(),
        message: f.map(|f| f.message.as_str()),
        hint: f.and_then(|f| f.hint.as_deref()),
        code: f.map(|f| f.code),
        severity: f.map(Finding::severity),
        context: &e.occurrence.context,
        suggestions: &e.suggestions,
        previous: e.previous.as_ref(),
    }
}

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let files = report
        .file_findings
        .iter()
        .map(|f| {
            let s = f.location.map(|l| span(report, &l));
            FileFinding {
                file: s.as_ref().map(|s| s.path.display().to_string()),
                line: s.as_ref().map(|s| s.start.line),
                column: s.as_ref().map(|s| s.start.column),
                code: f.code,
                severity: f.severity(),
                message: &f.message,
                hint: f.hint.as_deref(),
            }
        })
        .collect();
    let git = report.git.as_ref();
    let doc = Document {
        version: 1,
        error: None,
        base: git.map(|g| &g.base),
        merge_base: git.map(|g| g.merge_base.as_str()),
        head: git.map(|g| g.head.as_str()),
        worktree: git.map(|g| g.worktree),
        fetched: git.and_then(|g| g.fetched.as_deref()),
        references: report,
        files,
        summary: &report.summary,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

/// The report of a run that could not happen (exit 2): the error and nothing else.
pub fn render_error(message: &str, out: &mut dyn Write) -> io::Result<()> {
    let empty = Report {
        sources: Vec::new(),
        entries: Vec::new(),
        file_findings: Vec::new(),
        summary: Summary::default(),
        git: None,
        repo_root: None,
        undecided: Default::default(),
    };
    let doc = Document {
        version: 1,
        error: Some(message),
        base: None,
        merge_base: None,
        head: None,
        worktree: None,
        fetched: None,
        references: &empty,
        files: Vec::new(),
        summary: &empty.summary,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}
