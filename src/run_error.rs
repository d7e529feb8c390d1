//! Makes a run that could not happen (exit 2) as visible in CI as a failed check: under
//! GitHub Actions an `::error` annotation and a step summary, and every report asked for
//! with `--report` written as a failed report (a GitLab Code Quality issue, a JUnit error, a
//! JSON report with `error`, a SARIF run that did not succeed), so GitLab's merge request
//! widget and the artifacts say what went wrong instead of "no report found".

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{Command, Format};
use crate::report::github;

/// The `--report` targets of a parsed command line, kept before it runs.
pub fn reports(command: &Command) -> Vec<(Format, PathBuf)> {
    match command {
        Command::Check(a) => a.common.report.clone(),
        Command::PrePush(a) => a.common.report.clone(),
        _ => Vec::new(),
    }
}

/// Announces a failed run to the CI and writes its failed reports. Failures to write are
/// only reported on stderr: the run fails with exit 2 either way.
pub fn announce(message: &str, reports: &[(Format, PathBuf)]) {
    let message = message.trim();
    if crate::env::var("GITHUB_ACTIONS").as_deref() == Some("true") {
        println!(
            "::error title={}::{}",
            github::property("imagegate could not run"),
            github::data(message)
        );
        if let Some(summary) = crate::env::var("GITHUB_STEP_SUMMARY") {
            let _ = append(Path::new(&summary), Format::Markdown, message);
        }
    }
    for (format, path) in reports {
        if let Err(e) = write(path, *format, message) {
            eprintln!("imagegate: cannot write {}: {e}", path.display());
        }
    }
}

fn write(path: &Path, format: Format, message: &str) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    render(format, message, &mut file)?;
    file.flush()
}

fn append(path: &Path, format: Format, message: &str) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut file = std::io::BufWriter::new(file);
    render(format, message, &mut file)?;
    file.flush()
}

/// A failed report in `format`.
pub fn render(format: Format, message: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let version = env!("IMAGEGATE_VERSION");
    match format {
        Format::Human => writeln!(out, "imagegate could not run: {message}"),
        Format::Github => writeln!(
            out,
            "::error title={}::{}",
            github::property("imagegate could not run"),
            github::data(message)
        ),
        Format::Markdown => {
            writeln!(out, "### imagegate: ❌ could not run (exit 2)\n")?;
            writeln!(out, "```text\n{}\n```", message.replace("```", "'''"))
        }
        Format::Json => crate::report::json::render_error(message, out),
        Format::Gitlab => {
            let issue = serde_json::json!([{
                "description": format!("imagegate could not run: {message}"),
                "check_name": "imagegate-could-not-run",
                "fingerprint": "imagegate-could-not-run",
                "severity": "blocker",
                "location": {"path": ".imagegate.yaml", "lines": {"begin": 1}},
            }]);
            serde_json::to_writer_pretty(&mut *out, &issue)?;
            writeln!(out)
        }
        Format::Junit => {
            use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
            status.set_message(message);
            status.set_type("could-not-run");
            let mut case = TestCase::new("imagegate run", status);
            case.set_classname("imagegate");
            let mut suite = TestSuite::new("image references");
            suite.add_test_case(case);
            let mut report = Report::new("imagegate");
            report.add_test_suite(suite);
            report.serialize(&mut *out).map_err(std::io::Error::other)?;
            writeln!(out)
        }
        Format::Sarif => {
            let sarif = serde_json::json!({
                "version": "2.1.0",
                "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
                "runs": [{
                    "tool": {"driver": {"name": "imagegate", "version": version}},
                    "invocations": [{
                        "executionSuccessful": false,
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": message}}
                        ],
                    }],
                    "results": [],
                }],
            });
            serde_json::to_writer_pretty(&mut *out, &sarif)?;
            writeln!(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_says_the_run_failed() {
        for format in [
            Format::Human,
            Format::Json,
            Format::Github,
            Format::Gitlab,
            Format::Sarif,
            Format::Junit,
            Format::Markdown,
        ] {
            let mut out = Vec::new();
            render(format, "cannot read .imagegate.yaml: line 3", &mut out).unwrap();
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains("cannot read .imagegate.yaml"),
                "{format:?}: {text}"
            );
        }
    }
}
