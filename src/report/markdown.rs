//! The Markdown format: a summary for `$GITHUB_STEP_SUMMARY` and merge request comments.
//! Failures come first, each with file:line, reference, reason and hint; then the counts.

use std::io::{self, Write};

use super::{Context, repo_path, sorted_findings, span, summary_line};
use crate::check::Report;
use crate::finding::Severity;

pub fn render(report: &Report, ctx: &Context, out: &mut dyn Write) -> io::Result<()> {
    let s = &report.summary;
    let verdict = match report.exit_code() {
        0 if s.undecided > 0 => format!(
            "✅ passed; ⚠️ {} reference(s) could not be decided (--undecided warn)",
            s.undecided
        ),
        0 => "✅ every image reference resolves".to_string(),
        1 => format!("❌ {} error(s)", s.errors),
        _ => format!("⚠️ {} reference(s) could not be decided", s.undecided),
    };
    writeln!(out, "### imagegate: {verdict}\n")?;
    let mut findings = sorted_findings(report);
    findings.retain(|f| f.severity() <= Severity::Warning);
    findings.sort_by_key(|f| report.level(f));
    if !findings.is_empty() {
        writeln!(out, "| | Where | Reference | Reason | Hint |")?;
        writeln!(out, "|---|---|---|---|---|")?;
        for f in findings {
            let icon = match f.severity() {
                Severity::Error => "❌",
                Severity::Undecided => "⚠️",
                _ => "ℹ️",
            };
            let place = f.location.map_or_else(String::new, |l| {
                let s = span(report, &l);
                format!("`{}:{}`", repo_path(s.path, ctx), s.start.line)
            });
            let image = f
                .image
                .as_deref()
                .map_or_else(String::new, |i| format!("`{}`", cell(i)));
            writeln!(
                out,
                "| {icon} | {place} | {image} | {} | {} |",
                cell(&f.message),
                cell(f.hint.as_deref().unwrap_or(""))
            )?;
        }
        writeln!(out)?;
    }
    writeln!(out, "{}", summary_line(report))
}

/// A table cell: pipes escaped, line breaks flattened.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\r', '\n'], " ")
}
