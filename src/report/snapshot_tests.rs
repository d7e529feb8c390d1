//! Every output format rendered from one shared set of findings (issue 5): an error with
//! special characters in its message, a multi-line location, a warning, an undecided
//! result, an ok reference, and file findings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Context, render};
use crate::check::{self, Report};
use crate::cli::Format;
use crate::finding::{Code, Finding, Location};
use crate::image_ref::ImageRef;
use crate::manifest;
use crate::resolve::Resolution;
use crate::settings::Verbosity;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

fn shared_report() -> Report {
    let web = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/web:v1.5.0-typo\n        - name: private\n          image: registry.example.com/team/private:1\n        - name: pinned\n          image: ghcr.io/acme/api:2@{D1}\n        - name: folded\n          image: \"ghcr.io/acme/\n            long:3\"\n        - name: ok\n          image: nginx:1.27\n"
    );
    let mut scans = vec![
        manifest::scan(0, Path::new("deploy/web.yaml"), web.into_bytes()),
        manifest::scan(1, Path::new("deploy/broken.yaml"), b"a: [\n".to_vec()),
        manifest::scan_with(
            2,
            Path::new("chart/templates/x.yaml"),
            b"{{ if }}\n".to_vec(),
            manifest::ScanOptions {
                chart_template: true,
                heuristic: true,
            },
        ),
    ];
    let mut sources = Vec::new();
    let mut occurrences = Vec::new();
    let mut file_findings = Vec::new();
    for s in scans.drain(..) {
        sources.push(s.source);
        occurrences.extend(s.occurrences);
        file_findings.extend(s.findings);
    }
    let found = Resolution::found;
    let mut map = HashMap::new();
    let r = |s: &str| ImageRef::parse(s).unwrap().pulled();
    map.insert(r("ghcr.io/acme/web:v1.5.0-typo"), Resolution::NotFound);
    map.insert(
        r("registry.example.com/team/private:1"),
        Resolution::Denied("registry.example.com answered 401 Unauthorized anonymously".into()),
    );
    map.insert(r(&format!("ghcr.io/acme/api@{D1}")), found(D1));
    map.insert(r("ghcr.io/acme/api:2"), found(D2));
    map.insert(r("ghcr.io/acme/long:3"), Resolution::NotFound);
    map.insert(r("nginx:1.27"), found(D2));
    let mut entries = check::entries(occurrences, Some(&map));
    let mut tags = check::TagLists::new();
    tags.insert(
        ("ghcr.io".into(), "acme/web".into()),
        Some(vec!["v1.5.0".into(), "v1.4.9".into()]),
    );
    check::annotate(&mut entries, &tags, Some(&map));
    // Special characters that every format must escape or carry safely.
    if let Some(f) = entries[0].finding.as_mut() {
        f.message
            .push_str(" — 100% sure: <a|b> & \"c\", d\nsecond line");
    }
    let mut summary = check::summarise(&entries, &file_findings, 3);
    summary.duration = Duration::from_millis(420);
    Report {
        sources,
        entries,
        file_findings,
        summary,
        git: None,
        repo_root: None,
        undecided: Default::default(),
    }
}

fn rendered(format: Format) -> String {
    render_report(format, &shared_report())
}

fn render_report(format: Format, report: &Report) -> String {
    let ctx = Context {
        color: false,
        verbosity: Verbosity::Verbose,
        root_prefix: PathBuf::new(),
        repo_root: None,
    };
    let mut out = Vec::new();
    render(format, report, &ctx, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_shared_report_has_every_kind_of_finding() {
    let r = shared_report();
    let codes: Vec<Code> = r.findings().map(|f: &Finding| f.code).collect();
    for want in [
        Code::NotFound,
        Code::NotFoundOrDenied,
        Code::TagDigestMismatch,
        Code::InvalidYaml,
        Code::HelmTemplate,
    ] {
        assert!(codes.contains(&want), "{want:?} in {codes:?}");
    }
    let multi_line = r.entries.iter().any(|e| {
        let Location { file, start, end } = e.occurrence.location;
        r.sources[file].position(start).line != r.sources[file].position(end).line
    });
    assert!(multi_line, "a location spans lines");
}

#[test]
fn human() {
    insta::assert_snapshot!(rendered(Format::Human));
}

#[test]
fn json() {
    let text = rendered(Format::Json);
    serde_json::from_str::<serde_json::Value>(&text).unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn github() {
    let text = rendered(Format::Github);
    for line in text.lines().filter(|l| l.starts_with("::")) {
        assert!(!line.contains('\n'));
    }
    // The multi-line location drops its columns.
    assert!(
        text.contains("file=deploy/web.yaml,line=16,endLine=17,title="),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn gitlab() {
    let text = rendered(Format::Gitlab);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let prints: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["fingerprint"].as_str().unwrap())
        .collect();
    let unique: std::collections::HashSet<_> = prints.iter().collect();
    assert_eq!(unique.len(), prints.len(), "fingerprints are unique");
    assert_eq!(text, rendered(Format::Gitlab), "and stable");
    insta::assert_snapshot!(text);
}

#[test]
fn sarif() {
    let text = rendered(Format::Sarif);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "2.1.0");
    insta::assert_snapshot!(text);
}

#[test]
fn sarif_has_one_rule_per_code_and_results_point_at_it() {
    // Issue 14: this used to pass with duplicate rules. Two findings whose codes share a
    // name (`unresolved-variable`, warning and strict) must still make one rule.
    let mut report = shared_report();
    let any = report.findings().next().cloned().unwrap();
    for code in [Code::UnresolvedVariable, Code::UnresolvedVariableStrict] {
        report.file_findings.push(Finding {
            code,
            ..any.clone()
        });
    }
    let v: serde_json::Value =
        serde_json::from_str(&render_report(Format::Sarif, &report)).unwrap();
    let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "one rule per code: {ids:?}");
    for result in v["runs"][0]["results"].as_array().unwrap() {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"], "{result}");
    }
}

#[test]
fn junit() {
    let text = rendered(Format::Junit);
    assert!(text.contains("<testsuites"));
    assert!(
        text.contains("&lt;a|b&gt; &amp; &quot;c&quot;")
            || text.contains("&lt;a|b&gt; &amp; \"c\""),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn markdown() {
    let text = rendered(Format::Markdown);
    assert!(text.contains("<a\\|b>"), "pipes are escaped: {text}");
    insta::assert_snapshot!(text);
}
