//! imagegate: finds every container image reference in Kubernetes YAML and proves that each
//! one exists in its registry, before a merge deploys it.
//!
//! The pipeline runs one way: cli → settings → files → manifest (sources, occurrences) →
//! unique references → resolve → check (findings) → report. See ARCHITECTURE.md.

pub mod check;
pub mod cli;
pub mod error;
pub mod files;
pub mod finding;
pub mod image_ref;
pub mod manifest;
pub mod report;
pub mod resolve;
pub mod settings;
pub mod source;

use std::io::Write;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cli::{CheckArgs, Cli, Command};
use crate::error::Error;
use crate::finding::{Code, Finding, Location};
use crate::manifest::FileScan;
use crate::settings::{Settings, Verbosity};
use crate::source::SourceFile;

/// Files larger than this are not read (a manifest this big is not a manifest).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Runs a command line and returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<i32, Error> {
    match cli.command {
        Command::Check(args) => check(&args, out),
    }
}

fn check(args: &CheckArgs, out: &mut dyn Write) -> Result<i32, Error> {
    let started = Instant::now();
    let settings = Settings::from_check(args)?;
    let (paths, problems) = files::collect(&settings.paths, &settings.include, &settings.exclude)?;

    let scans: Vec<FileScan> = paths
        .par_iter()
        .enumerate()
        .map(|(id, path)| read_and_scan(id, path))
        .collect();
    let mut sources = Vec::with_capacity(scans.len() + problems.len());
    let mut occurrences = Vec::new();
    let mut file_findings = Vec::new();
    for scan in scans {
        sources.push(scan.source);
        occurrences.extend(scan.occurrences);
        file_findings.extend(scan.findings);
    }
    for p in problems {
        let file = sources.len();
        sources.push(SourceFile::new(p.path, ""));
        file_findings.push(unreadable(file, p.message));
    }

    let resolutions = if settings.offline {
        None
    } else {
        let refs: Vec<_> = occurrences
            .iter()
            .filter_map(|o| match check::classify(o) {
                check::Classified::Ref(r) => Some(r),
                _ => None,
            })
            .collect();
        let unique = check::unique_requests(refs.iter());
        Some(resolve_online(&settings, unique)?)
    };
    let (resolved, counts) = match resolutions {
        Some((map, counts)) => (Some(map), Some(counts)),
        None => (None, None),
    };
    let entries = check::entries(occurrences, resolved.as_ref());
    let mut summary = check::summarise(&entries, &file_findings, paths.len());
    summary.offline = settings.offline;
    summary.requests = counts;
    summary.duration = started.elapsed();
    let report = check::Report {
        sources,
        entries,
        file_findings,
        summary,
    };
    let ctx = report::Context {
        color: settings.color,
        verbosity: settings.verbosity,
        root_prefix: settings.root_prefix.clone(),
        repo_root: settings.repo_root.clone(),
    };
    report::render(settings.format, &report, &ctx, out).map_err(Error::Output)?;
    Ok(report.exit_code())
}

fn read_and_scan(id: usize, path: &std::path::Path) -> FileScan {
    let read = std::fs::metadata(path).and_then(|m| {
        if m.len() > MAX_FILE_BYTES {
            Err(std::io::Error::other(format!(
                "file is {} MiB, larger than the {} MiB a manifest may be",
                m.len() >> 20,
                MAX_FILE_BYTES >> 20
            )))
        } else {
            std::fs::read(path)
        }
    });
    match read {
        Ok(bytes) => manifest::scan(id, path, bytes),
        Err(e) => FileScan {
            source: SourceFile::new(path.to_path_buf(), ""),
            occurrences: Vec::new(),
            findings: vec![unreadable(id, e.to_string())],
        },
    }
}

fn unreadable(file: usize, message: String) -> Finding {
    Finding {
        code: Code::UnreadableFile,
        message: format!("cannot read the file: {message}"),
        hint: Some("fix its permissions, or exclude it with --exclude".into()),
        location: Some(Location {
            file,
            start: 0,
            end: 0,
        }),
        image: None,
    }
}

type Resolved = (
    std::collections::HashMap<image_ref::ImageRef, resolve::Resolution>,
    resolve::RequestCounts,
);

fn resolve_online(
    settings: &Settings,
    unique: Vec<image_ref::ImageRef>,
) -> Result<Resolved, Error> {
    if unique.is_empty() {
        return Ok((Default::default(), Default::default()));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Setup(format!("could not start the async runtime: {e}")))?;
    let verbose = settings.verbosity == Verbosity::Verbose;
    let total = unique.len() as u64;
    let show_progress = settings.verbosity != Verbosity::Quiet;
    runtime.block_on(async {
        let opts = resolve::Options {
            concurrency: settings.concurrency,
            per_registry: settings.registry_concurrency,
            timeout: settings.timeout,
            deadline: tokio::time::Instant::now() + settings.deadline,
            deadline_secs: settings.deadline.as_secs(),
            insecure: settings.insecure.clone(),
            verbose,
        };
        let client = resolve::Client::new(opts).map_err(Error::Setup)?;
        let bar = progress_bar(total, show_progress);
        let tick = || bar.inc(1);
        let map = resolve::resolve_all(&client, unique, &tick).await;
        bar.finish_and_clear();
        let counts = client.counts();
        if verbose {
            eprintln!(
                "imagegate: {} registry pings, {} token requests, {} manifest HEADs, {} retries",
                counts.pings, counts.tokens, counts.heads, counts.retries
            );
            for (host, remaining) in client.rate_limits() {
                eprintln!("imagegate: {host} ratelimit-remaining: {remaining}");
            }
        }
        Ok((map, counts))
    })
}

/// A progress bar on stderr, drawn only when stderr is a terminal and the run is long.
fn progress_bar(total: u64, wanted: bool) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::hidden(),
    );
    if wanted && std::io::stderr().is_terminal() {
        let shown = bar.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            if !shown.is_finished() {
                shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                shown.set_message("checking references");
            }
        });
    }
    bar
}
