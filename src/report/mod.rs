//! Renders a report. One module per output format, all fed the same [`Report`]; positions
//! come only from the source store.

pub mod github;
pub mod gitlab;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod sarif;
/// Renders a report in the settings' format on `out`, and the extra reports and step
/// summary the settings ask for.
pub fn emit(
    settings: &crate::settings::Settings,
    report: &Report,
    out: &mut dyn std::io::Write,
) -> Result<(), crate::error::Error> {
    let repo_root = report
        .repo_root
        .clone()
        .or_else(|| crate::paths::find_repo_root(&settings.cwd));
    let root_prefix = repo_root
        .as_deref()
        .and_then(|r| settings.cwd.strip_prefix(r).ok())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let ctx = Context {
        color: settings.color,
        verbosity: settings.verbosity,
        root_prefix,
        repo_root,
    };
    render(settings.format, report, &ctx, out).map_err(crate::error::Error::Output)?;
    for (format, path) in &settings.reports {
        write_report(*format, report, &ctx, path, false)?;
    }
    if let Some(path) = &settings.step_summary {
        write_report(Format::Markdown, report, &ctx, path, true)?;
    }
    Ok(())
}

/// Writes (or appends) one report to a file.
fn write_report(
    format: Format,
    report: &Report,
    ctx: &Context,
    path: &Path,
    append: bool,
) -> Result<(), crate::error::Error> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| crate::error::Error::Path {
            path: path.to_path_buf(),
            source: e,
        })?;
    let mut w = std::io::BufWriter::new(file);
    use std::io::Write;
    render(format, report, ctx, &mut w)
        .and_then(|()| w.flush())
        .map_err(|e| crate::error::Error::Path {
            path: path.to_path_buf(),
            source: e,
        })
}

#[cfg(test)]
mod snapshot_tests;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::check::Report;
use crate::cli::Format;
use crate::finding::{Finding, Location};
use crate::settings::Verbosity;
use crate::source::Position;

/// What renderers need to know besides the report.
#[derive(Debug, Clone)]
pub struct Context {
    pub color: bool,
    pub verbosity: Verbosity,
    /// Working directory relative to the repository root.
    pub root_prefix: PathBuf,
    pub repo_root: Option<PathBuf>,
}

pub fn render(
    format: Format,
    report: &Report,
    ctx: &Context,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        Format::Human => human::render(report, ctx, out),
        Format::Json => json::render(report, out),
        Format::Github => github::render(report, ctx, out),
        Format::Gitlab => gitlab::render(report, ctx, out),
        Format::Sarif => sarif::render(report, ctx, out),
        Format::Junit => junit::render(report, ctx, out),
        Format::Markdown => markdown::render(report, ctx, out),
    }
}

/// A located span: the file's display path and the start and end positions.
pub struct Span<'a> {
    pub path: &'a Path,
    pub start: Position,
    pub end: Position,
}

pub fn span<'a>(report: &'a Report, location: &Location) -> Span<'a> {
    let source = &report.sources[location.file];
    Span {
        path: &source.path,
        start: source.position(location.start),
        end: source.position(location.end),
    }
}

/// Findings in a stable order: by file, then position, then code.
pub fn sorted_findings(report: &Report) -> Vec<&Finding> {
    let mut all: Vec<&Finding> = report.findings().collect();
    // Keys borrow the paths: cloning one per comparison cost more than the sort.
    let key = |f: &Finding| {
        (
            f.location
                .map(|l| (report.sources[l.file].path.as_path(), l.start)),
            f.code,
        )
    };
    all.sort_by(|a, b| key(a).cmp(&key(b)));
    all
}

/// A path relative to the repository root (or the working directory outside one), with
/// `/` separators and no `./` prefix, as CI annotations want it.
pub fn repo_path(path: &Path, ctx: &Context) -> String {
    let joined = if path.is_absolute() {
        ctx.repo_root
            .as_deref()
            .and_then(|r| path.strip_prefix(r).ok())
            .map_or_else(|| path.to_path_buf(), Path::to_path_buf)
    } else {
        ctx.root_prefix.join(path)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            std::path::Component::CurDir
            | std::path::Component::RootDir
            | std::path::Component::Prefix(_) => {}
            std::path::Component::ParentDir => {
                if parts.last().is_some_and(|p| p != "..") {
                    parts.pop();
                } else {
                    parts.push("..".into());
                }
            }
            other => parts.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    let s = parts.join("/");
    if joined.has_root() {
        format!("/{s}")
    } else {
        s
    }
}

/// The summary sentence shared by the human and GitHub formats.
pub fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut parts = Vec::new();
    if s.offline {
        parts.push(format!(
            "{} valid, not checked against registries (offline)",
            s.skipped
        ));
    } else {
        parts.push(format!("{} ok", s.ok));
        parts.push(format!("{} not found", s.not_found));
        parts.push(format!("{} undecided", s.undecided));
    }
    if s.invalid > 0 {
        parts.push(format!("{} invalid", s.invalid));
    }
    if s.unresolved > 0 {
        parts.push(format!("{} with unresolved variables", s.unresolved));
    }
    let file_problems = report
        .file_findings
        .iter()
        .filter(|f| f.severity() <= crate::finding::Severity::Undecided)
        .count();
    if file_problems > 0 {
        parts.push(plural(file_problems, "file problem", "file problems"));
    }
    format!(
        "checked {} ({} unique) in {} from {}: {} in {:.2} s",
        plural(s.references, "reference", "references"),
        s.unique,
        plural(s.registries, "registry", "registries"),
        plural(s.files, "file", "files"),
        parts.join(", "),
        s.duration.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(prefix: &str, root: Option<&str>) -> Context {
        Context {
            color: false,
            verbosity: Verbosity::Normal,
            root_prefix: prefix.into(),
            repo_root: root.map(PathBuf::from),
        }
    }

    #[test]
    fn repo_paths_are_relative_to_the_root() {
        let cases = [
            ("a/b.yaml", "", None, "a/b.yaml"),
            ("./a/b.yaml", "sub", Some("/r"), "sub/a/b.yaml"),
            ("../x.yaml", "sub", Some("/r"), "x.yaml"),
            ("/r/k/x.yaml", "", Some("/r"), "k/x.yaml"),
            ("/elsewhere/x.yaml", "", Some("/r"), "/elsewhere/x.yaml"),
        ];
        for (path, prefix, root, shown) in cases {
            assert_eq!(
                repo_path(Path::new(path), &ctx(prefix, root)),
                shown,
                "{path}"
            );
        }
    }
}
