//! One place where the command line, the config file and the environment (CI variables,
//! NO_COLOR) merge into typed settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cli::{CheckArgs, CommonArgs, Format};
use crate::error::Error;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// What to check.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Every file under these paths.
    All { paths: Vec<PathBuf> },
    /// What a change adds against its merge base.
    Diff(DiffSettings),
}

#[derive(Debug, Clone)]
pub struct DiffSettings {
    pub repo: PathBuf,
    pub base: Option<String>,
    pub head: String,
    pub all_refs: bool,
    pub worktree: bool,
}

#[derive(Debug)]
pub struct Settings {
    pub mode: Mode,
    pub include: GlobSet,
    pub exclude: GlobSet,
    pub offline: bool,
    pub suggest: bool,
    pub strict: bool,
    /// Files read as Helm values besides those next to a `Chart.yaml`.
    pub helm_values: GlobSet,
    /// Flux variables from the config's files, for `${VAR}` nothing in the repository defines.
    pub variables: crate::variables::Variables,
    pub format: Format,
    /// Extra reports: format and path.
    pub reports: Vec<(Format, PathBuf)>,
    /// Where to append a Markdown summary (`$GITHUB_STEP_SUMMARY` under GitHub Actions).
    pub step_summary: Option<PathBuf>,
    pub concurrency: usize,
    pub registry_concurrency: usize,
    pub timeout: Duration,
    pub deadline: Duration,
    pub registries: std::sync::Arc<crate::resolve::hosts::Registries>,
    /// Image globs not to check.
    pub skip: Vec<String>,
    pub policy: crate::config::Policy,
    /// Whether the local result cache is read and written, and a tag's time to live.
    pub cache: Option<Duration>,
    pub verbosity: Verbosity,
    pub color: bool,
    pub cwd: PathBuf,
    /// Whether undecided references fail (`--undecided`, else the config's key).
    pub undecided: crate::undecided::Undecided,
}

pub const DEFAULT_INCLUDE: [&str; 4] = ["*.yaml", "*.yml", "Kustomization", "**/Kustomization"];

/// An environment variable, when set and not empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Whether this runs in CI (the `CI` variable every major CI sets).
pub fn in_ci() -> bool {
    env("CI").is_some_and(|v| v != "false" && v != "0")
        || env("GITHUB_ACTIONS").as_deref() == Some("true")
        || env("GITLAB_CI").as_deref() == Some("true")
}

impl Settings {
    pub fn from_check(args: &CheckArgs) -> Result<Settings, Error> {
        let mode = if args.all {
            Mode::All {
                paths: if args.paths.is_empty() {
                    vec![PathBuf::from(".")]
                } else {
                    args.paths.clone()
                },
            }
        } else {
            if !args.paths.is_empty() {
                return Err(Error::Usage(
                    "PATH arguments go with --all; a diff check takes the repository from --repo"
                        .into(),
                ));
            }
            let d = &args.diff;
            let head = env("PRE_COMMIT_TO_REF")
                .filter(|_| d.head == "HEAD" && d.base.is_none())
                .unwrap_or_else(|| d.head.clone());
            if d.worktree && head != "HEAD" {
                return Err(Error::Usage(
                    "--worktree only makes sense with --head HEAD".into(),
                ));
            }
            let worktree = d.worktree || (!d.no_worktree && !in_ci() && head == "HEAD");
            Mode::Diff(DiffSettings {
                repo: d.repo.clone().unwrap_or_else(|| PathBuf::from(".")),
                base: d.base.clone(),
                head,
                all_refs: d.all_refs,
                worktree,
            })
        };
        Settings::new(&args.common, mode)
    }

    pub fn new(common: &CommonArgs, mode: Mode) -> Result<Settings, Error> {
        if common.concurrency == 0 || common.registry_concurrency == 0 {
            return Err(Error::Usage(
                "--concurrency and --registry-concurrency must be at least 1".into(),
            ));
        }
        if common.timeout == 0 || common.deadline == 0 {
            return Err(Error::Usage(
                "--timeout and --deadline must be at least 1 second".into(),
            ));
        }
        let cwd = std::env::current_dir().map_err(|e| Error::Path {
            path: ".".into(),
            source: e,
        })?;
        let config = crate::config::load(common.config.as_deref(), &cwd)?;
        // Flags win; lists that only add (excludes, values files, hosts) are joined.
        let joined = |a: &[String], b: &[String]| [a, b].concat();
        let include: Vec<String> = if !common.include.is_empty() {
            common.include.clone()
        } else if !config.include.is_empty() {
            config.include.clone()
        } else {
            DEFAULT_INCLUDE.iter().map(|s| s.to_string()).collect()
        };
        let format = common
            .format
            .unwrap_or(if env("GITHUB_ACTIONS").as_deref() == Some("true") {
                Format::Github
            } else {
                Format::Human
            });
        let verbosity = if common.quiet {
            Verbosity::Quiet
        } else if common.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let color = crate::terminal::color(common.color);
        Ok(Settings {
            mode,
            include: globs(&include)?,
            exclude: globs(&joined(&common.exclude, &config.exclude))?,
            offline: common.offline,
            suggest: !common.no_suggest,
            strict: common.strict || config.strict,
            helm_values: globs(&joined(&common.helm_values, &config.helm_values))?,
            variables: crate::variables::Variables::load(
                &config.variables,
                config
                    .path
                    .as_deref()
                    .and_then(Path::parent)
                    .unwrap_or(Path::new("")),
            )?,
            reports: common.report.clone(),
            step_summary: env("GITHUB_STEP_SUMMARY")
                .filter(|_| env("GITHUB_ACTIONS").as_deref() == Some("true"))
                .map(PathBuf::from),
            format,
            concurrency: common.concurrency,
            registry_concurrency: common.registry_concurrency,
            timeout: Duration::from_secs(common.timeout),
            deadline: Duration::from_secs(common.deadline),
            registries: std::sync::Arc::new(
                crate::resolve::hosts::Registries::new(&common.registry.flags(), &config)
                    .map_err(Error::Config)?,
            ),
            skip: joined(&common.skip, &config.skip),
            policy: crate::config::Policy {
                deny_latest: common.deny_latest || config.policy.deny_latest,
                require_digest: common.require_digest || config.policy.require_digest,
                allowed_registries: joined(
                    &common.allowed_registry,
                    &config.policy.allowed_registries,
                ),
                platforms: joined(&common.platform, &config.policy.platforms),
            },
            cache: cache_ttl(common.no_cache, &config.cache),
            verbosity,
            color,
            cwd,
            undecided: crate::undecided::Undecided::choose(common.undecided, config.undecided)?,
        })
    }

    /// Whether a path (relative to the walk root or the repository) is to be checked.
    pub fn wanted(&self, relative: &Path) -> bool {
        self.include.is_match(relative) && !self.exclude.is_match(relative)
    }
}

/// The cache's tag time to live when the cache is on: on by default outside CI, off in CI
/// unless the config turns it on, and off with `--no-cache`.
fn cache_ttl(no_cache: bool, config: &crate::config::CacheSettings) -> Option<Duration> {
    let on = !no_cache && config.enabled.unwrap_or(!in_ci());
    on.then(|| Duration::from_secs(config.tag_ttl.unwrap_or(600)))
}

fn globs(patterns: &[String]) -> Result<GlobSet, Error> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| Error::Glob {
            glob: p.clone(),
            source: e,
        })?);
    }
    b.build().map_err(|e| Error::Glob {
        glob: patterns.join(", "),
        source: e,
    })
}

/// The nearest directory at or above `dir` that holds `.git`.
pub fn find_repo_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}
