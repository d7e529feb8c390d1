//! One place where the command line and the environment (CI variables, NO_COLOR) merge
//! into typed settings. The config file joins here with its own issue.

use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cli::{CheckArgs, Format};
use crate::error::Error;

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Debug)]
pub struct Settings {
    pub paths: Vec<PathBuf>,
    pub include: GlobSet,
    pub exclude: GlobSet,
    pub offline: bool,
    pub format: Format,
    pub concurrency: usize,
    pub registry_concurrency: usize,
    pub timeout: Duration,
    pub deadline: Duration,
    pub insecure: Vec<String>,
    pub verbosity: Verbosity,
    pub color: bool,
    /// The working directory relative to the repository root, for repository-relative
    /// paths in CI annotations. Empty outside a repository or at its root.
    pub root_prefix: PathBuf,
    pub repo_root: Option<PathBuf>,
}

pub const DEFAULT_INCLUDE: [&str; 2] = ["*.yaml", "*.yml"];

impl Settings {
    pub fn from_check(args: &CheckArgs) -> Result<Settings, Error> {
        if !args.all {
            return Err(Error::Usage(
                "checking only what a change adds (against its merge base) is not in this build yet; \
                 pass --all to check every reference under PATH"
                    .into(),
            ));
        }
        if args.concurrency == 0 || args.registry_concurrency == 0 {
            return Err(Error::Usage(
                "--concurrency and --registry-concurrency must be at least 1".into(),
            ));
        }
        if args.timeout == 0 || args.deadline == 0 {
            return Err(Error::Usage(
                "--timeout and --deadline must be at least 1 second".into(),
            ));
        }
        let include: Vec<String> = if args.include.is_empty() {
            DEFAULT_INCLUDE.iter().map(|s| s.to_string()).collect()
        } else {
            args.include.clone()
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let format = args
            .format
            .unwrap_or(if env("GITHUB_ACTIONS").as_deref() == Some("true") {
                Format::Github
            } else {
                Format::Human
            });
        let verbosity = if args.quiet {
            Verbosity::Quiet
        } else if args.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        use std::io::IsTerminal;
        let color = env("NO_COLOR").is_none()
            && (std::io::stdout().is_terminal() || env("GITLAB_CI").as_deref() == Some("true"));
        let cwd = std::env::current_dir().map_err(|e| Error::Path {
            path: ".".into(),
            source: e,
        })?;
        let repo_root = find_repo_root(&cwd);
        let root_prefix = repo_root
            .as_deref()
            .and_then(|r| cwd.strip_prefix(r).ok())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Ok(Settings {
            paths: if args.paths.is_empty() {
                vec![PathBuf::from(".")]
            } else {
                args.paths.clone()
            },
            include: globs(&include)?,
            exclude: globs(&args.exclude)?,
            offline: args.offline,
            format,
            concurrency: args.concurrency,
            registry_concurrency: args.registry_concurrency,
            timeout: Duration::from_secs(args.timeout),
            deadline: Duration::from_secs(args.deadline),
            insecure: args.insecure_registry.clone(),
            verbosity,
            color,
            root_prefix,
            repo_root,
        })
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

/// The nearest directory at or above `dir` that holds `.git`.
fn find_repo_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}
