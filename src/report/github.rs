//! The GitHub format: one workflow command per finding, so that each shows as an annotation
//! on the PR diff at its line. Paths are relative to the repository root.

use std::io::{self, Write};

use super::{Context, repo_path, sorted_findings, span, summary_line};
use crate::check::Report;
use crate::finding::Severity;

pub fn render(report: &Report, ctx: &Context, out: &mut dyn Write) -> io::Result<()> {
    for f in sorted_findings(report) {
        let command = match report.level(f) {
            Severity::Error | Severity::Undecided => "error",
            Severity::Warning => "warning",
            Severity::Note => "notice",
        };
        let mut props = Vec::new();
        if let Some(location) = f.location {
            let s = span(report, &location);
            props.push(format!("file={}", property(&repo_path(s.path, ctx))));
            if !f.code.is_file_level() {
                props.push(format!("line={}", s.start.line));
                if s.end.line == s.start.line {
                    props.push(format!("col={}", s.start.column));
                    props.push(format!("endColumn={}", s.end.column));
                } else {
                    // Columns only mean something on a single line.
                    props.push(format!("endLine={}", s.end.line));
                }
            }
        }
        props.push(format!(
            "title={}",
            property(&format!("imagegate {}", f.code.as_str()))
        ));
        let mut message = f.message.clone();
        if let Some(hint) = &f.hint {
            message.push_str("\nhint: ");
            message.push_str(hint);
        }
        writeln!(out, "::{command} {}::{}", props.join(","), data(&message))?;
    }
    writeln!(out, "{}", summary_line(report))
}

/// Escapes a workflow command's message.
pub fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
pub fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escaping() {
        assert_eq!(data("100%\r\nx"), "100%25%0D%0Ax");
        assert_eq!(property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
