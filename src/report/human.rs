//! The human format: a miette report for every finding, with the file, line and source
//! snippet, the image underlined, the reason and a hint; then one summary line.

use std::io::{self, Write};

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteDiagnostic, NamedSource};

use super::{Context, sorted_findings, span, summary_line};
use crate::check::{Report, Status};
use crate::finding::{Finding, Severity};
use crate::settings::Verbosity;

pub fn render(report: &Report, ctx: &Context, out: &mut dyn Write) -> io::Result<()> {
    let theme = if ctx.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    let findings = sorted_findings(report);
    // Labels only for the places a finding points at: a clean run of 50,000 references
    // draws no diagnostic and needs no canonical names.
    let at: std::collections::HashSet<_> = findings.iter().filter_map(|f| f.location).collect();
    let labels: std::collections::HashMap<_, _> = report
        .entries
        .iter()
        .filter(|e| at.contains(&e.occurrence.location))
        .filter_map(|e| Some((e.occurrence.location, e.reference.as_ref()?.canonical())))
        .collect();
    for finding in findings {
        let severity = report.level(finding);
        if ctx.verbosity == Verbosity::Quiet && severity > Severity::Undecided {
            continue;
        }
        if severity == Severity::Note && ctx.verbosity < Verbosity::Verbose {
            continue;
        }
        let mut text = String::new();
        let rendered =
            handler.render_report(&mut text, diagnostic(report, finding, &labels).as_ref());
        if rendered.is_err() {
            text = format!("{}: {}\n", finding.code.as_str(), finding.message);
        }
        writeln!(out, "{text}")?;
    }
    if ctx.verbosity == Verbosity::Verbose {
        for e in report.entries.iter().filter(|e| e.status == Status::Ok) {
            let s = span(report, &e.occurrence.location);
            writeln!(
                out,
                "ok {}:{}:{} {} {}",
                s.path.display(),
                s.start.line,
                s.start.column,
                e.reference
                    .as_ref()
                    .map(|r| r.canonical())
                    .unwrap_or_default(),
                e.digest.as_deref().unwrap_or("")
            )?;
        }
    }
    if report.summary.offline && ctx.verbosity != Verbosity::Quiet {
        offline_table(report, ctx, out)?;
    }
    if ctx.verbosity != Verbosity::Quiet {
        writeln!(out, "{}", summary_line(report))?;
    }
    Ok(())
}

/// Offline, nothing is looked up, so the run shows what it found: one row per reference
/// with file:line:col (issue 18: the first command shows the references). Long lists are
/// cut unless `-v`.
fn offline_table(report: &Report, ctx: &Context, out: &mut dyn Write) -> io::Result<()> {
    const SHOWN: usize = 40;
    let mut entries: Vec<_> = report.entries.iter().collect();
    if entries.is_empty() {
        return Ok(());
    }
    entries.sort_by_key(|e| (e.occurrence.location.file, e.occurrence.location.start));
    let limit = if ctx.verbosity == Verbosity::Verbose {
        entries.len()
    } else {
        SHOWN
    };
    // Only the rows shown are formatted.
    let rows: Vec<(String, &str, &str)> = entries
        .iter()
        .take(limit)
        .map(|e| {
            let s = span(report, &e.occurrence.location);
            let place = format!("{}:{}:{}", s.path.display(), s.start.line, s.start.column);
            let status = match (&e.finding, e.status) {
                (Some(f), _) => f.code.as_str(),
                (None, Status::Skipped) => "valid",
                (None, _) => "ok",
            };
            (place, e.written.as_str(), status)
        })
        .collect();
    let width = |f: fn(&(String, &str, &str)) -> usize| rows.iter().map(f).max();
    let place_w = width(|r| r.0.len()).unwrap_or(0);
    // A digest-pinned reference is long; it may overflow rather than widen every row.
    let image_w = width(|r| r.1.len()).unwrap_or(0).min(40);
    writeln!(
        out,
        "{:place_w$}  {:image_w$}  grammar",
        "reference at", "image as written"
    )?;
    for (place, image, status) in &rows {
        writeln!(out, "{place:place_w$}  {image:image_w$}  {status}")?;
    }
    if entries.len() > rows.len() {
        writeln!(
            out,
            "… and {} more (-v lists them all)",
            entries.len() - rows.len()
        )?;
    }
    Ok(())
}

/// A finding as a miette diagnostic, with its source attached.
fn diagnostic(
    report: &Report,
    finding: &Finding,
    labels: &std::collections::HashMap<crate::finding::Location, String>,
) -> miette::Report {
    let severity = match report.level(finding) {
        Severity::Error | Severity::Undecided => miette::Severity::Error,
        Severity::Warning => miette::Severity::Warning,
        Severity::Note => miette::Severity::Advice,
    };
    let code = match finding.severity() {
        Severity::Undecided => format!("{} (undecided)", finding.code.as_str()),
        _ => finding.code.as_str().to_string(),
    };
    let mut d = MietteDiagnostic::new(finding.message.clone())
        .with_code(code)
        .with_severity(severity);
    if let Some(hint) = &finding.hint {
        d = d.with_help(hint.clone());
    }
    let Some(location) = finding.location else {
        return miette::Report::new(d);
    };
    if finding.code.is_file_level() {
        let path = report.sources[location.file].path.display();
        let message = format!("{path}: {}", finding.message);
        return miette::Report::new(MietteDiagnostic { message, ..d });
    }
    let label = labels
        .get(&location)
        .cloned()
        .unwrap_or_else(|| finding.code.as_str().to_string());
    let len = location.end.saturating_sub(location.start);
    d = d.with_label(LabeledSpan::at(location.start..location.start + len, label));
    let source = &report.sources[location.file];
    miette::Report::new(d).with_source_code(NamedSource::new(
        source.path.display().to_string(),
        source.text.clone(),
    ))
}
