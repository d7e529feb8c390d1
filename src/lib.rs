//! imagegate: finds every container image reference in Kubernetes YAML and proves that each
//! one exists in its registry, before a merge deploys it.
//!
//! The pipeline runs one way: cli → settings → files or git → manifest (sources,
//! occurrences) → unique references → resolve → check (findings) → report. See
//! ARCHITECTURE.md.

pub mod auth_check;
pub mod cache;
pub mod check;
pub mod cli;
pub mod config;
pub mod docs;
pub mod error;
pub mod files;
pub mod finding;
pub mod git;
pub mod hook;
pub mod hook_command;
pub mod image_ref;
pub mod inspect;
pub mod manifest;
pub mod policy;
pub mod prepush;
pub mod project;
pub mod repo_facts;
pub mod report;
pub mod resolve;
pub mod run_error;
pub mod settings;
pub mod source;
pub mod terminal;
pub mod undecided;
pub mod variables;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::finding::{Code, Finding, Location};
use crate::manifest::kustomize::Reader;
use crate::manifest::{FileScan, ImageValue};
use crate::settings::{DiffSettings, Mode, Settings, Verbosity};
use crate::source::SourceFile;

/// Files larger than this are not read (a manifest this big is not a manifest).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Runs a command line and returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<i32, Error> {
    match cli.command {
        Command::Check(args) => {
            let settings = Settings::from_check(&args)?;
            let report = check(&settings)?;
            render(&settings, &report, out)?;
            Ok(report.exit_code())
        }
        Command::PrePush(args) => prepush::run(&args, std::io::stdin().lock(), out),
        Command::Hook(cmd) => hook::run(&cmd, out),
        Command::Inspect(args) => inspect::run(&args, out),
        Command::Auth(args) => auth_check::run(&args, out),
        Command::ConfigSchema => {
            out.write_all(config::schema_json().as_bytes())
                .map_err(Error::Output)?;
            Ok(0)
        }
        Command::ReportSchema => {
            out.write_all(docs::report_schema_json().as_bytes())
                .map_err(Error::Output)?;
            Ok(0)
        }
        Command::Completions { shell } => docs::completions(shell, out),
        Command::Man => docs::man(out),
    }
}

/// Renders a report in the settings' format.
pub fn render(
    settings: &Settings,
    report: &check::Report,
    out: &mut dyn Write,
) -> Result<(), Error> {
    let repo_root = report
        .repo_root
        .clone()
        .or_else(|| settings::find_repo_root(&settings.cwd));
    let root_prefix = repo_root
        .as_deref()
        .and_then(|r| settings.cwd.strip_prefix(r).ok())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let ctx = report::Context {
        color: settings.color,
        verbosity: settings.verbosity,
        root_prefix,
        repo_root,
    };
    report::render(settings.format, report, &ctx, out).map_err(Error::Output)?;
    for (format, path) in &settings.reports {
        write_report(*format, report, &ctx, path, false)?;
    }
    if let Some(path) = &settings.step_summary {
        write_report(cli::Format::Markdown, report, &ctx, path, true)?;
    }
    Ok(())
}

/// Writes (or appends) one report to a file.
fn write_report(
    format: cli::Format,
    report: &check::Report,
    ctx: &report::Context,
    path: &Path,
    append: bool,
) -> Result<(), Error> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| Error::Path {
            path: path.to_path_buf(),
            source: e,
        })?;
    let mut w = std::io::BufWriter::new(file);
    report::render(format, report, ctx, &mut w)
        .and_then(|()| w.flush())
        .map_err(|e| Error::Path {
            path: path.to_path_buf(),
            source: e,
        })
}

/// A file to check: on disk (read in parallel), or a changed file read from git. Both know
/// their path in the repository (or under the walk root), for joins across files.
enum Input {
    OnDisk {
        path: PathBuf,
        repo_path: PathBuf,
    },
    Changed {
        display: PathBuf,
        repo_path: PathBuf,
        new: Vec<u8>,
        old: Option<Vec<u8>>,
    },
}

/// How the joins across files read files that are not being checked.
struct Sides {
    head: Box<dyn Reader>,
    /// In a diff: the merge base, to tell new derived references from old ones.
    base: Option<Box<dyn Reader>>,
    /// In a diff: the kustomizations whose builds read a changed file.
    kustomizations: Vec<PathBuf>,
    changed: HashSet<PathBuf>,
    /// Where repository paths start, for showing extra files.
    root: PathBuf,
    /// In a diff: the repository's other YAML files, listed only when a join needs them.
    elsewhere: Box<dyn Fn() -> Vec<PathBuf>>,
}

/// Reads files under a root directory, never outside it.
struct DiskReader {
    root: PathBuf,
}

impl Reader for DiskReader {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
            || path.is_absolute()
        {
            return None;
        }
        let full = self.root.join(path);
        let meta = std::fs::metadata(&full).ok()?;
        (meta.is_file() && meta.len() <= MAX_FILE_BYTES)
            .then(|| std::fs::read(&full).ok())
            .flatten()
    }
}

/// Runs the whole check for the settings' mode.
pub fn check(settings: &Settings) -> Result<check::Report, Error> {
    match &settings.mode {
        Mode::All { paths } => {
            let started = Instant::now();
            let (paths, problems) = files::collect(paths, settings)?;
            let root =
                settings::find_repo_root(&settings.cwd).unwrap_or_else(|| settings.cwd.clone());
            // Repository paths without a system call per file: the working directory's
            // place in the repository, joined to each relative path.
            let prefix = settings
                .cwd
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let inputs = paths
                .into_iter()
                .map(|path| {
                    let repo_path = if path.is_absolute() {
                        let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
                        abs.strip_prefix(&root)
                            .map(Path::to_path_buf)
                            .unwrap_or(abs)
                    } else {
                        manifest::kustomize::join(&prefix, &path.to_string_lossy())
                    };
                    Input::OnDisk { path, repo_path }
                })
                .collect();
            let sides = Sides {
                head: Box::new(DiskReader { root: root.clone() }),
                base: None,
                kustomizations: Vec::new(),
                changed: HashSet::new(),
                root,
                elsewhere: Box::new(Vec::new),
            };
            build_report(settings, inputs, problems, false, sides, started)
        }
        Mode::Diff(diff) => check_diff(settings, diff),
    }
}

/// Checks what a change adds against its merge base.
pub fn check_diff(settings: &Settings, diff: &DiffSettings) -> Result<check::Report, Error> {
    let repo = git::Repo::open(&settings.cwd.join(&diff.repo)).map_err(git_error)?;
    let base = repo
        .choose_base(diff.base.as_deref(), &settings::env)
        .map_err(git_error)?;
    check_against(settings, &repo, base, diff)
}

/// Checks `diff.head` against the merge base with a chosen base.
pub fn check_against(
    settings: &Settings,
    repo: &git::Repo,
    base: git::BaseChoice,
    diff: &DiffSettings,
) -> Result<check::Report, Error> {
    let started = Instant::now();
    let range = repo
        .range(base, &diff.head, diff.worktree)
        .map_err(git_error)?;
    if let Some(fetched) = &range.fetched
        && settings.verbosity != Verbosity::Quiet
    {
        eprintln!("imagegate: {fetched} to find the merge base");
    }
    if settings.verbosity == Verbosity::Verbose {
        eprintln!(
            "imagegate: checking {} ({}){} against merge base {} of `{}`, chosen from {}",
            range.head_rev,
            short(&range.head),
            if range.worktree {
                " with uncommitted changes"
            } else {
                ""
            },
            short(&range.merge_base),
            range.base.rev,
            range.base.reason
        );
    }
    let git::Changes {
        files: changed,
        touched,
    } = repo
        .changed_files(&range, &|p| settings.wanted(p))
        .map_err(git_error)?;
    // Canonical once, so that showing each path costs no system call.
    let root = repo
        .root()
        .canonicalize()
        .unwrap_or_else(|_| repo.root().to_path_buf());
    let changed_paths: HashSet<PathBuf> = changed
        .iter()
        .flat_map(|c| std::iter::once(c.path.clone()).chain(c.old_path.clone()))
        .collect();
    let inputs = changed
        .into_iter()
        .map(|c| Input::Changed {
            display: display_path(&root, &c.path, &settings.cwd),
            repo_path: c.path,
            new: c.new,
            old: c.old,
        })
        .collect();
    let head: Box<dyn Reader> = if range.worktree {
        Box::new(DiskReader { root: root.clone() })
    } else {
        Box::new(
            repo.reader_at(&range.head)
                .ok_or_else(|| Error::Git("cannot read head's tree".into()))?,
        )
    };
    let base: Box<dyn Reader> = Box::new(
        repo.reader_at(&range.merge_base)
            .ok_or_else(|| Error::Git("cannot read the merge base's tree".into()))?,
    );
    // The overlays of a changed base: every kustomization whose resources lead to a
    // changed file (each kustomization read once, no resource read), and the files a join
    // may read. With the cache on, they come from the merge base's stored facts with the
    // touched paths read again.
    let yaml_changed = changed_paths
        .iter()
        .any(|p| files::is_yaml(p) || manifest::kustomize::is_kustomization_file(p));
    let facts = if yaml_changed && settings.cache.is_some() {
        repo_facts::facts(
            repo,
            &range.merge_base,
            &touched,
            head.as_ref(),
            &changed_paths,
        )
    } else {
        None
    };
    let (kustomizations, elsewhere): (_, Box<dyn Fn() -> Vec<PathBuf>>) = match facts {
        Some(facts) => {
            if settings.verbosity == Verbosity::Verbose {
                eprintln!("imagegate: {}", facts.how);
            }
            let elsewhere = facts.elsewhere;
            (facts.kustomizations, Box::new(move || elsewhere.clone()))
        }
        None => {
            let kustomizations = if yaml_changed {
                let graph = manifest::kustomize::NamedBy::new(&repo.kustomization_files(&range));
                manifest::kustomize::including(&graph, &changed_paths)
            } else {
                Vec::new()
            };
            let repo = git::Repo::open(&root).map_err(git_error)?;
            let range = range.clone();
            (
                kustomizations,
                Box::new(move || repo.paths_at_head(&range, &files::is_yaml)),
            )
        }
    };
    let sides = Sides {
        head,
        base: Some(base),
        kustomizations,
        changed: changed_paths,
        root: root.clone(),
        elsewhere,
    };
    let mut report = build_report(settings, inputs, Vec::new(), diff.all_refs, sides, started)?;
    report.git = Some(range);
    report.repo_root = Some(root);
    Ok(report)
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

pub fn git_error(e: git::GitError) -> Error {
    Error::Git(e.to_string())
}

/// A repository path as the user sees it from the working directory.
/// `root` and `cwd` are canonical (the working directory always is).
fn display_path(root: &Path, rel: &Path, cwd: &Path) -> PathBuf {
    let abs = root.join(rel);
    abs.strip_prefix(cwd).map(Path::to_path_buf).unwrap_or(abs)
}

fn build_report(
    settings: &Settings,
    inputs: Vec<Input>,
    problems: Vec<files::WalkProblem>,
    all_refs: bool,
    sides: Sides,
    started: Instant,
) -> Result<check::Report, Error> {
    let file_count = inputs.len();
    let scanned: Vec<(FileScan, Option<FileScan>, PathBuf)> = inputs
        .into_par_iter()
        .enumerate()
        .map(|(id, input)| match input {
            Input::OnDisk { path, repo_path } => (read_and_scan(id, &path), None, repo_path),
            Input::Changed {
                display,
                repo_path,
                new,
                old,
            } => {
                let old_scan = old.map(|o| manifest::scan(id, &display, o));
                (manifest::scan(id, &display, new), old_scan, repo_path)
            }
        })
        .collect();
    let mut scans = Vec::with_capacity(scanned.len());
    let mut old_scans = Vec::with_capacity(scanned.len());
    let mut repo_paths = Vec::with_capacity(scanned.len());
    for (head, old, path) in scanned {
        scans.push(head);
        old_scans.push(old);
        repo_paths.push(path);
    }

    // Joins across files, on the unfiltered scans.
    let head_side = project::Side {
        reader: sides.head.as_ref(),
        kustomizations: &sides.kustomizations,
        changed: &sides.changed,
        first_extra_id: scans.len(),
        elsewhere: sides.elsewhere.as_ref(),
        helm_values: &settings.helm_values,
        variables: &settings.variables,
    };
    let mut joined = project::join(
        &project::Scanned {
            scans: scans.iter().map(Some).collect(),
            repo_paths: &repo_paths,
        },
        &head_side,
    );
    if let Some(base) = sides.base.as_deref().filter(|_| !all_refs) {
        // A derived reference the merge base already produced is not the change's.
        let before = project::join(
            &project::Scanned {
                scans: old_scans.iter().map(Option::as_ref).collect(),
                repo_paths: &repo_paths,
            },
            &project::Side {
                reader: base,
                ..head_side
            },
        );
        let key = |extra: &[(PathBuf, String)], o: &manifest::Occurrence| {
            let f = o.location.file;
            let path = repo_paths.get(f).cloned().or_else(|| {
                f.checked_sub(repo_paths.len())
                    .and_then(|i| extra.get(i))
                    .map(|(p, _)| p.clone())
            });
            (path, o.context.clone(), o.value.clone())
        };
        let seen: HashSet<_> = before
            .occurrences
            .iter()
            .map(|o| key(&before.extra_sources, o))
            .collect();
        let extra = joined.extra_sources.clone();
        joined
            .occurrences
            .retain(|o| !seen.contains(&key(&extra, o)));
    }

    let mut sources = Vec::with_capacity(scans.len() + joined.extra_sources.len() + problems.len());
    let mut occurrences = Vec::new();
    let mut file_findings = Vec::new();
    for (mut scan, old) in scans.into_iter().zip(old_scans) {
        if let Some(old) = old.filter(|_| !all_refs) {
            keep_changed(&mut scan, &old);
        }
        scan.occurrences.retain(|o| {
            !(joined.substituted.contains(&o.location)
                && matches!(&o.value, ImageValue::Text(t) if t.contains("${")))
        });
        sources.push(scan.source);
        occurrences.extend(scan.occurrences);
        file_findings.extend(scan.findings);
    }
    for (path, text) in joined.extra_sources {
        sources.push(SourceFile::new(
            display_path(&sides.root, &path, &settings.cwd),
            text,
        ));
    }
    occurrences.extend(joined.occurrences);
    file_findings.extend(joined.findings);
    for p in problems {
        let file = sources.len();
        sources.push(SourceFile::new(p.path, ""));
        file_findings.push(unreadable(file, p.message));
    }

    // Ignore comments and skip globs take references out before anything is asked.
    let rules = policy::Rules::new(&settings.skip, &settings.policy)?;
    let mut passed_over = Vec::new();
    occurrences.retain(|o| match rules.passed_over(o, &sources[o.location.file]) {
        Some(why) => {
            if settings.verbosity == Verbosity::Verbose {
                let place = sources[o.location.file].place(o.location.start);
                eprintln!("imagegate: {place}: not checked ({why})");
            }
            passed_over.push(o.clone());
            false
        }
        None => true,
    });

    // One pass: what to HEAD, and which repositories' tags decide version ranges.
    let mut refs = Vec::new();
    let mut ranges = std::collections::BTreeSet::new();
    for o in &occurrences {
        match check::classify(o) {
            check::Classified::Ref(r) => refs.push(r),
            check::Classified::Range(r, _) => {
                ranges.insert(r);
            }
            _ => {}
        }
    }
    let unique = check::unique_requests(refs.iter());
    let ranges: Vec<image_ref::ImageRef> = ranges.into_iter().collect();
    let online = if settings.offline || (unique.is_empty() && ranges.is_empty()) {
        None
    } else {
        Some(Online::new(settings)?)
    };
    let mut resolved = online.as_ref().map(|o| o.resolve(unique, true));
    let mut entries = check::entries(occurrences, resolved.as_ref());
    if let Some(online) = &online
        && !ranges.is_empty()
    {
        check::resolve_ranges(&mut entries, Some(&online.tag_lists(ranges)));
    }
    if settings.strict {
        for f in entries.iter_mut().filter_map(|e| e.finding.as_mut()) {
            if f.code == Code::UnresolvedVariable {
                f.code = Code::UnresolvedVariableStrict;
            }
        }
    }
    let mut tags = check::TagLists::new();
    if let (Some(online), Some(map)) = (&online, resolved.as_mut()) {
        if settings.suggest {
            tags = online.tag_lists(check::repositories_to_list(&entries));
        }
        let previous: Vec<_> = check::previous_to_resolve(&entries)
            .into_iter()
            .filter(|r| !map.contains_key(r))
            .collect();
        if !previous.is_empty() {
            map.extend(online.resolve(previous, false));
        }
    }
    check::annotate(&mut entries, &tags, resolved.as_ref());
    if rules.policy.any() {
        let platforms = match &online {
            Some(online) if !rules.policy.platforms.is_empty() => {
                let wanted: std::collections::BTreeSet<_> = entries
                    .iter()
                    .filter(|e| e.status == check::Status::Ok)
                    .filter_map(|e| {
                        let r = e.reference.as_ref()?.pulled();
                        Some((r, e.via.clone()))
                    })
                    .collect();
                online.platforms(wanted.into_iter().collect())
            }
            _ => HashMap::new(),
        };
        for e in &mut entries {
            if e.finding
                .as_ref()
                .is_some_and(|f| f.severity() <= finding::Severity::Undecided)
            {
                continue;
            }
            let listed = e
                .reference
                .as_ref()
                .and_then(|r| platforms.get(&r.pulled()));
            if let Some(f) = rules.check(e, listed) {
                e.finding = Some(f);
            }
        }
    }
    if !passed_over.is_empty() {
        let mut skipped = check::entries(passed_over, None);
        for e in &mut skipped {
            e.status = check::Status::Skipped;
            e.finding = None;
        }
        entries.extend(skipped);
        entries.sort_by_key(|e| (e.occurrence.location.file, e.occurrence.location.start));
    }
    let counts = online.as_ref().map(|o| o.finish());
    let mut summary = check::summarise(&entries, &file_findings, file_count);
    summary.offline = settings.offline;
    summary.requests = counts;
    summary.duration = started.elapsed();
    Ok(check::Report {
        sources,
        entries,
        file_findings,
        summary,
        git: None,
        repo_root: None,
        undecided: settings.undecided,
    })
}

/// Keeps only the occurrences whose value is new in this file: an untouched reference, or
/// one that only moved, is not checked.
/// Each kept occurrence remembers what the same field held at the merge base.
fn keep_changed(scan: &mut FileScan, before: &FileScan) {
    let seen: HashSet<&ImageValue> = before.occurrences.iter().map(|o| &o.value).collect();
    let was: HashMap<&str, &ImageValue> = before
        .occurrences
        .iter()
        .map(|o| (o.context.as_str(), &o.value))
        .collect();
    scan.occurrences.retain(|o| !seen.contains(&o.value));
    for o in &mut scan.occurrences {
        if let Some(ImageValue::Text(previous)) = was.get(o.context.as_str()) {
            o.previous = Some(previous.clone());
        }
    }
}

fn read_and_scan(id: usize, path: &Path) -> FileScan {
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
            flux: Default::default(),
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

/// The registry side of a run: one runtime and one client for every request it makes.
struct Online {
    runtime: tokio::runtime::Runtime,
    client: resolve::Client,
    verbosity: Verbosity,
    cache: std::sync::Mutex<Option<cache::Cache>>,
}

impl Online {
    fn new(settings: &Settings) -> Result<Online, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Setup(format!("could not start the async runtime: {e}")))?;
        let opts = resolve::Options {
            concurrency: settings.concurrency,
            per_registry: settings.registry_concurrency,
            timeout: settings.timeout,
            deadline: tokio::time::Instant::now() + settings.deadline,
            deadline_secs: settings.deadline.as_secs(),
            registries: settings.registries.clone(),
            verbose: settings.verbosity == Verbosity::Verbose,
        };
        let client = resolve::Client::new(opts).map_err(Error::Setup)?;
        Ok(Online {
            runtime,
            client,
            verbosity: settings.verbosity,
            cache: std::sync::Mutex::new(settings.cache.and_then(cache::Cache::open)),
        })
    }

    /// Resolves references, with a progress bar for the main pass.
    fn resolve(
        &self,
        refs: Vec<image_ref::ImageRef>,
        progress: bool,
    ) -> HashMap<image_ref::ImageRef, resolve::Resolution> {
        // Answers the cache still trusts are not asked again.
        let mut known = HashMap::new();
        let mut ask = Vec::with_capacity(refs.len());
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for r in refs {
                match cache.as_ref().and_then(|c| c.get(&r)) {
                    Some(found) => {
                        known.insert(r, resolve::Resolution::Found(found));
                    }
                    None => ask.push(r),
                }
            }
        }
        if !known.is_empty() && self.verbosity == Verbosity::Verbose {
            eprintln!(
                "imagegate: {} answers from the cache ({})",
                known.len(),
                cache::dir().map_or_else(String::new, |d| d.display().to_string())
            );
        }
        let total = ask.len() as u64;
        let wanted = progress && self.verbosity != Verbosity::Quiet;
        let map = self.runtime.block_on(async {
            let bar = progress_bar(total, wanted);
            let tick = || bar.inc(1);
            let map = resolve::resolve_all(&self.client, ask, &tick).await;
            bar.finish_and_clear();
            map
        });
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            for (r, res) in &map {
                if let resolve::Resolution::Found(found) = res {
                    c.put(r, found);
                }
            }
        }
        known.extend(map);
        known
    }

    /// Tag lists of repositories (at most five pages each); refusals just give nothing.
    fn tag_lists(&self, repos: Vec<image_ref::ImageRef>) -> check::TagLists {
        use futures::StreamExt;
        let concurrency = self.client.options().concurrency.max(1);
        self.runtime.block_on(async {
            futures::stream::iter(repos)
                .map(|r| async move {
                    let listed = self.client.tags(&r, 5).await;
                    ((r.domain.clone(), r.path.clone()), listed)
                })
                .buffer_unordered(concurrency)
                .filter_map(|(key, listed)| async move { listed.ok().map(|l| (key, l)) })
                .collect()
                .await
        })
    }

    /// The platforms of images that exist, for the platform policy.
    fn platforms(
        &self,
        refs: Vec<(image_ref::ImageRef, Option<String>)>,
    ) -> HashMap<image_ref::ImageRef, Result<Vec<String>, String>> {
        use futures::StreamExt;
        let concurrency = self.client.options().concurrency.max(1);
        self.runtime.block_on(async {
            futures::stream::iter(refs)
                .map(|(r, via)| async move {
                    let listed =
                        self.client
                            .platforms(&r, via.as_deref())
                            .await
                            .map_err(|e| match e {
                                resolve::Resolution::NotFound => "the manifest is gone".to_string(),
                                e => e.detail(),
                            });
                    (r, listed)
                })
                .buffer_unordered(concurrency)
                .collect()
                .await
        })
    }

    /// Request counts, printed in verbose mode.
    fn finish(&self) -> resolve::RequestCounts {
        if let Some(c) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).take() {
            c.save();
        }
        let counts = self.client.counts();
        if self.verbosity == Verbosity::Verbose {
            eprintln!(
                "imagegate: {} registry pings, {} token requests, {} manifest HEADs, {} tag lists, {} manifest GETs, {} retries",
                counts.pings,
                counts.tokens,
                counts.heads,
                counts.tag_lists,
                counts.gets,
                counts.retries
            );
            for (host, remaining) in self.client.rate_limits() {
                eprintln!("imagegate: {host} ratelimit-remaining: {remaining}");
            }
        }
        counts
    }
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
pub mod suggest;
