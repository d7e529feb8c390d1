//! The SARIF format (2.1.0), for GitHub code scanning: one rule per finding code with its
//! help text, and one result per finding with its physical location. Built with the typed
//! model of the serde-sarif crate.

use std::collections::BTreeSet;
use std::io::{self, Write};

use serde_sarif::sarif::{
    ArtifactLocation, Location, Message, MultiformatMessageString, PhysicalLocation, Region,
    ReportingConfiguration, ReportingDescriptor, Result as SarifResult, ResultLevel, Run, Sarif,
    Tool, ToolComponent,
};

use super::{Context, repo_path, sorted_findings, span};
use crate::check::Report;
use crate::finding::{Code, Severity};

fn level(severity: Severity) -> ResultLevel {
    match severity {
        Severity::Error | Severity::Undecided => ResultLevel::Error,
        Severity::Warning => ResultLevel::Warning,
        Severity::Note => ResultLevel::Note,
    }
}

pub fn render(report: &Report, ctx: &Context, out: &mut dyn Write) -> io::Result<()> {
    let findings = sorted_findings(report);
    // One rule per code name: a strict unresolved variable shares its rule with the warning,
    // at the stricter level.
    let mut codes: Vec<Code> = Vec::new();
    for c in findings.iter().map(|f| f.code).collect::<BTreeSet<Code>>() {
        match codes.iter_mut().find(|k| k.as_str() == c.as_str()) {
            Some(k) if c.severity() < k.severity() => *k = c,
            Some(_) => {}
            None => codes.push(c),
        }
    }
    let rules: Vec<ReportingDescriptor> = codes
        .iter()
        .map(|c| {
            ReportingDescriptor::builder()
                .id(c.as_str())
                .name(c.as_str())
                .short_description(
                    MultiformatMessageString::builder()
                        .text(c.describe())
                        .build(),
                )
                .help(
                    MultiformatMessageString::builder()
                        .text(c.describe())
                        .build(),
                )
                .default_configuration(
                    ReportingConfiguration::builder()
                        .level(serde_json::to_value(level(c.severity())).unwrap_or_default())
                        .build(),
                )
                .build()
        })
        .collect();
    let results: Vec<SarifResult> = findings
        .iter()
        .map(|f| {
            let mut text = f.message.clone();
            if let Some(hint) = &f.hint {
                text.push_str("\nhint: ");
                text.push_str(hint);
            }
            let locations: Vec<Location> = f
                .location
                .iter()
                .map(|l| {
                    let s = span(report, l);
                    let region = if f.code.is_file_level() {
                        Region::builder().start_line(1).build()
                    } else {
                        Region::builder()
                            .start_line(s.start.line as i64)
                            .start_column(s.start.column as i64)
                            .end_line(s.end.line as i64)
                            .end_column(s.end.column as i64)
                            .build()
                    };
                    Location::builder()
                        .physical_location(
                            PhysicalLocation::builder()
                                .artifact_location(
                                    ArtifactLocation::builder()
                                        .uri(repo_path(s.path, ctx))
                                        .build(),
                                )
                                .region(region)
                                .build(),
                        )
                        .build()
                })
                .collect();
            let rule_index = codes
                .iter()
                .position(|c| c.as_str() == f.code.as_str())
                .unwrap_or(0) as i64;
            SarifResult::builder()
                .rule_id(f.code.as_str())
                .rule_index(rule_index)
                .level(level(report.level(f)))
                .message(Message::builder().text(text).build())
                .locations(locations)
                .build()
        })
        .collect();
    let tool = Tool::builder()
        .driver(
            ToolComponent::builder()
                .name("imagegate")
                .version(env!("CARGO_PKG_VERSION"))
                .information_uri("https://github.com/imagegate/imagegate")
                .rules(rules)
                .build(),
        )
        .build();
    let sarif = Sarif::builder()
        .schema(serde_sarif::sarif::SCHEMA_URL)
        .version(serde_json::json!("2.1.0"))
        .runs(vec![Run::builder().tool(tool).results(results).build()])
        .build();
    serde_json::to_writer_pretty(&mut *out, &sarif)?;
    writeln!(out)
}
