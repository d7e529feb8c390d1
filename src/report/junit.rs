//! The JUnit format, for GitLab test reports and Jenkins: one test case per unique
//! reference, failing when it has an error or undecided finding, plus one per file problem.
//! Written with the quick-junit crate.

use std::collections::BTreeMap;
use std::io::{self, Write};

use quick_junit::{NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestSuite};

use super::{Context, repo_path, span};
use crate::check::Report;
use crate::finding::{Finding, Severity};

pub fn render(report: &Report, ctx: &Context, out: &mut dyn Write) -> io::Result<()> {
    // Unique references by canonical form, each with every place it occurs.
    let mut cases: BTreeMap<String, Vec<(String, Option<&Finding>)>> = BTreeMap::new();
    for e in &report.entries {
        let s = span(report, &e.occurrence.location);
        let place = format!(
            "{}:{}:{}",
            repo_path(s.path, ctx),
            s.start.line,
            s.start.column
        );
        let name = e
            .reference
            .as_ref()
            .map_or_else(|| format!("{} ({place})", e.written), |r| r.canonical());
        cases
            .entry(name)
            .or_default()
            .push((place, e.finding.as_ref()));
    }
    let mut suite = TestSuite::new("image references");
    for (name, places) in cases {
        let worst = places
            .iter()
            .filter_map(|(_, f)| *f)
            .min_by_key(|f| f.severity());
        let mut case = TestCase::new(name, status(report, worst));
        case.set_classname("imagegate");
        let lines: Vec<String> = places
            .iter()
            .map(|(place, f)| match f {
                Some(f) => format!("{place}: {} {}", f.code.as_str(), f.message),
                None => format!("{place}: ok"),
            })
            .collect();
        case.set_system_out(lines.join("\n"));
        suite.add_test_case(case);
    }
    for f in &report.file_findings {
        let path = f
            .location
            .map_or_else(String::new, |l| repo_path(span(report, &l).path, ctx));
        let mut case = TestCase::new(
            format!("{path} ({})", f.code.as_str()),
            status(report, Some(f)),
        );
        case.set_classname("imagegate.files");
        suite.add_test_case(case);
    }
    let mut junit = JunitReport::new("imagegate");
    junit.add_test_suite(suite);
    junit.serialize(&mut *out).map_err(io::Error::other)?;
    writeln!(out)
}

fn status(report: &Report, finding: Option<&Finding>) -> TestCaseStatus {
    match finding {
        Some(f) if report.level(f) <= Severity::Undecided => {
            let kind = if f.severity() == Severity::Error {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(f.message.clone());
            s.set_type(f.code.as_str());
            if let Some(hint) = &f.hint {
                s.set_description(hint.clone());
            }
            s
        }
        _ => TestCaseStatus::success(),
    }
}
