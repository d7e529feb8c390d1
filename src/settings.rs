//! One place where the command line, the config file and the environment (CI variables,
//! NO_COLOR) merge into typed settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cli::{CheckArgs, CommonArgs, Format};
use crate::env::{in_ci, var as env};
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
    /// Guess images in unknown kinds (`image-heuristic`).
    pub image_heuristic: bool,
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
    /// The repository config's `policy.allowed-registries`, which narrows the trusted list.
    pub repo_allowed: Vec<String>,
    /// Notes and problems about the config files, shown as findings at their keys.
    pub config_findings: Vec<crate::trust::ConfigFinding>,
    /// Whether undecided references fail (`--undecided`, else the config's key).
    pub undecided: crate::undecided::Undecided,
    /// `--render`: whether the real engines run, and which programs (trusted settings only).
    pub render: crate::render::Options,
    /// What the settings were built from, to build them again with the repository config of
    /// a merge base.
    common: CommonArgs,
    trusted: Option<crate::config::Config>,
}

pub const DEFAULT_INCLUDE: [&str; 4] = ["*.yaml", "*.yml", "Kustomization", "**/Kustomization"];

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

    /// Settings from the flags, the trusted config and, outside a diff check, the
    /// repository's config on disk. A diff check reads the repository's config at the merge
    /// base instead ([`Settings::with_repo_config`]).
    pub fn new(common: &CommonArgs, mode: Mode) -> Result<Settings, Error> {
        let cwd = std::env::current_dir().map_err(|e| Error::Path {
            path: ".".into(),
            source: e,
        })?;
        let trusted = crate::trust::load_trusted(common.config.as_deref())?;
        let repo = match mode {
            Mode::All { .. } => crate::trust::load_repo_from_disk(&cwd, trusted.as_ref())?,
            Mode::Diff(_) => None,
        };
        if let Some(path) = repo.as_ref().and_then(|c| c.path.as_deref())
            && in_ci()
        {
            // In CI the working tree is the change under check; only a diff check reads the
            // repository's config where the change cannot have written it.
            log::warn!(
                "`check --all` in CI reads {} from the working tree, which the change under check may have written; a diff check (no --all) reads it from the merge base",
                path.display()
            );
        }
        Settings::build(common, mode, cwd, trusted, repo, Vec::new())
    }

    /// Where the trusted config was read from, if one was.
    pub fn trusted_path(&self) -> Option<&Path> {
        self.trusted.as_ref().and_then(|c| c.path.as_deref())
    }

    /// The same settings with a repository config read elsewhere (the merge base's), and
    /// notes about it.
    pub fn with_repo_config(
        &self,
        repo: Option<crate::config::Config>,
        notes: Vec<crate::trust::ConfigFinding>,
    ) -> Result<Settings, Error> {
        Settings::build(
            &self.common,
            self.mode.clone(),
            self.cwd.clone(),
            self.trusted.clone(),
            repo,
            notes,
        )
    }

    fn build(
        common: &CommonArgs,
        mode: Mode,
        cwd: PathBuf,
        trusted: Option<crate::config::Config>,
        repo: Option<crate::config::Config>,
        mut config_findings: Vec<crate::trust::ConfigFinding>,
    ) -> Result<Settings, Error> {
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
        let merged = crate::trust::merge(trusted.clone(), repo)?;
        config_findings.extend(merged.findings);
        for c in &mut config_findings {
            if let Ok(shown) = c.path.strip_prefix(&cwd) {
                c.path = shown.to_path_buf();
            }
        }
        let config = merged.config;
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
        let render = render_options(common, &config, &cwd)?;
        Ok(Settings {
            mode,
            include: globs(&include)?,
            exclude: globs(&joined(&common.exclude, &config.exclude))?,
            offline: common.offline,
            suggest: !common.no_suggest,
            strict: common.strict || config.strict,
            image_heuristic: config.image_heuristic.unwrap_or(true),
            helm_values: globs(&joined(&common.helm_values, &config.helm_values))?,
            variables: crate::variables::Variables::load(&config.variables, &cwd)?,
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
                crate::resolve::hosts::Registries::new(&common.registry, &config)
                    .map_err(Error::Registries)?,
            ),
            skip: joined(&common.skip, &config.skip),
            policy: crate::config::Policy {
                deny_latest: common.policy.deny_latest || config.policy.deny_latest,
                require_digest: common.policy.require_digest || config.policy.require_digest,
                allowed_registries: joined(
                    &common.policy.allowed_registry,
                    &config.policy.allowed_registries,
                ),
                platforms: joined(&common.policy.platform, &config.policy.platforms),
            },
            cache: cache_ttl(common.no_cache, &config.cache),
            verbosity,
            color,
            cwd,
            repo_allowed: merged.repo_allowed,
            config_findings,
            undecided: crate::undecided::Undecided::choose(common.undecided, config.undecided)?,
            render,
            common: common.clone(),
            trusted,
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

/// `--render`, else `IMAGEGATE_RENDER`, else the config's `render` (the repository's may
/// turn it on); the programs from `--kustomize`/`--helm`, else `IMAGEGATE_KUSTOMIZE`/
/// `IMAGEGATE_HELM`, else the merged config's `engines`, which only a trusted config can
/// set (`trust::merge`).
fn render_options(
    common: &CommonArgs,
    config: &crate::config::Config,
    cwd: &Path,
) -> Result<crate::render::Options, Error> {
    let from_env = match env("IMAGEGATE_RENDER").as_deref().map(str::trim) {
        None | Some("") => None,
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        Some(other) => {
            return Err(Error::Usage(format!(
                "IMAGEGATE_RENDER must be true or false, not `{other}`"
            )));
        }
    };
    let enabled = common.render || from_env.or(config.render).unwrap_or(false);
    // The flag, else the environment variable, else the trusted config.
    let program = |flag: &Option<PathBuf>, var: &str, configured: &Option<String>| {
        flag.clone()
            .or_else(|| env(var).filter(|v| !v.is_empty()).map(PathBuf::from))
            .map(|p| match p.components().count() {
                // A bare name is found on PATH; a path is the caller's, from where they stand.
                1 if p.is_relative() => p,
                _ => cwd.join(p),
            })
            .or_else(|| configured.as_ref().map(PathBuf::from))
    };
    let kustomize = program(
        &common.kustomize,
        "IMAGEGATE_KUSTOMIZE",
        &config.engines.kustomize,
    );
    let helm = program(&common.helm, "IMAGEGATE_HELM", &config.engines.helm);
    Ok(crate::render::Options {
        enabled,
        kustomize,
        helm,
    })
}

/// How much the log shows: warnings and errors with `-q`, notes with `-v`.
pub fn log_level(cli: &crate::cli::Cli) -> log::LevelFilter {
    use crate::cli::Command;
    let common = match &cli.command {
        Command::Check(a) => &a.common,
        Command::PrePush(a) => &a.common,
        _ => return log::LevelFilter::Info,
    };
    if common.quiet {
        log::LevelFilter::Warn
    } else if common.verbose > 0 {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    }
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
