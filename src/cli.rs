//! The command line, declared with clap. It only parses; `settings` turns it into typed
//! settings and `lib::run` does the work.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::resolve::hosts::RegistryFlags;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  every reference resolves
  1  at least one error finding (not found, invalid reference, malformed manifest)
  2  imagegate could not run (bad flags, unreadable path, bad config, missing history)
  3  at least one reference could not be decided (unreachable registry, rate limit,
     401/403 that may mean missing or no access) and nothing definite failed
Every non-zero code fails a CI job: nothing undecided is ever reported as a pass, unless
`--undecided warn` asks for exit 0 and warnings.";

#[derive(Debug, Parser)]
#[command(name = "imagegate", version = env!("IMAGEGATE_VERSION"), about = "Stops broken container image references before they reach a cluster", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Find image references in YAML manifests and check that each one exists. Without
    /// --all, only what the change adds against its merge base is checked.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Run as git's pre-push hook: reads git's pre-push lines on stdin and checks what the
    /// push adds. Exits non-zero to block the push.
    #[command(name = "pre-push", after_help = EXIT_CODES)]
    PrePush(PrePushArgs),
    /// Install or remove imagegate's git pre-push hook.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Show what a reference resolves to: canonical form, registry endpoint, where the
    /// credentials come from, digest, media type, size and, for an index, its platforms.
    #[command(after_help = EXIT_CODES)]
    Inspect(InspectArgs),
    /// Say where the credentials for a registry come from (never the secret) and whether
    /// the registry accepts them. Exit 0 accepted, 1 rejected, 3 undecided.
    Auth(AuthArgs),
    /// Print the JSON Schema of `.imagegate.yaml`, for editors (also published as
    /// imagegate.schema.json).
    ConfigSchema,
    /// Print the JSON Schema of `--format json` reports (also published as
    /// report.schema.json).
    ReportSchema,
    /// Print a shell completion script, e.g. `imagegate completions bash >
    /// /etc/bash_completion.d/imagegate`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `imagegate man | man -l -`.
    Man,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Image references, as they would be written in a manifest.
    #[arg(value_name = "REF", required = true)]
    pub refs: Vec<String>,

    #[command(flatten)]
    pub probe: ProbeArgs,
}

/// Options of the commands that ask a registry one thing for a person (`inspect`, `auth`).
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    pub format: InspectFormat,

    /// Timeout for one request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub timeout: u64,

    /// Read registry settings from this file (default: the nearest .imagegate.yaml).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub registry: RegistryFlags,
}

#[derive(Debug, clap::Args)]
pub struct AuthArgs {
    /// The registry (`ghcr.io`, `127.0.0.1:5000`), optionally with a repository
    /// (`quay.io/org/app`) to check a pull token for it.
    #[arg(value_name = "HOST[/REPOSITORY]")]
    pub target: String,

    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Write the pre-push hook (honours core.hooksPath).
    Install {
        /// Replace a pre-push hook that imagegate did not write.
        #[arg(long)]
        force: bool,
        /// Keep an existing pre-push hook and run it before imagegate.
        #[arg(long, conflicts_with = "force")]
        chain: bool,
        /// The repository (default: discovered from the working directory).
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
        /// Record `--undecided warn` in the hook: a push whose references cannot be
        /// decided (offline, registry down) passes with a warning.
        #[arg(long, value_enum, value_name = "error|warn")]
        undecided: Option<crate::undecided::Undecided>,
    },
    /// Remove imagegate's pre-push hook (restoring a chained one).
    Uninstall {
        #[arg(long, value_name = "DIR")]
        repo: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Reports with source snippets, for people.
    Human,
    /// A stable JSON document (schema version 1).
    Json,
    /// GitHub Actions workflow commands that annotate the PR diff.
    Github,
    /// A GitLab Code Quality report.
    Gitlab,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// JUnit XML, for GitLab test reports and Jenkins.
    Junit,
    /// A Markdown summary, for $GITHUB_STEP_SUMMARY and merge request comments.
    Markdown,
}

/// `FORMAT=PATH`, for `--report`.
pub fn parse_report(s: &str) -> Result<(Format, PathBuf), String> {
    let (format, path) = s
        .split_once('=')
        .ok_or_else(|| format!("expected FORMAT=PATH, got `{s}`"))?;
    let format = Format::from_str(format, true).map_err(|_| {
        format!("unknown format `{format}` (human, json, github, gitlab, sarif, junit, markdown)")
    })?;
    if path.is_empty() {
        return Err("the report path is empty".into());
    }
    Ok((format, PathBuf::from(path)))
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Check every reference in the YAML files under PATH, with no git involved.
    #[arg(long)]
    pub all: bool,

    /// With --all: files or directories to check (default: the current directory).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub diff: DiffArgs,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// How a diff check finds what changed.
#[derive(Debug, Clone, clap::Args)]
pub struct DiffArgs {
    /// The repository (default: discovered from the working directory).
    #[arg(long, value_name = "DIR", conflicts_with = "all")]
    pub repo: Option<PathBuf>,

    /// Compare against the merge base with this revision (default: the CI's base, else the
    /// upstream default branch).
    #[arg(long, value_name = "REV", conflicts_with = "all")]
    pub base: Option<String>,

    /// The revision to check.
    #[arg(
        long,
        value_name = "REV",
        default_value = "HEAD",
        conflicts_with = "all"
    )]
    pub head: String,

    /// Check every reference in the changed files, not only the new or changed ones.
    #[arg(long, conflicts_with = "all")]
    pub all_refs: bool,

    /// Include uncommitted changes, staged and unstaged (default outside CI).
    #[arg(long, overrides_with = "no_worktree", conflicts_with = "all")]
    pub worktree: bool,

    /// Check committed changes only (default in CI).
    #[arg(long, conflicts_with = "all")]
    pub no_worktree: bool,
}

#[derive(Debug, clap::Args)]
pub struct PrePushArgs {
    /// The remote's name, as git passes it.
    pub remote: String,
    /// The remote's URL, as git passes it.
    pub url: Option<String>,

    /// Check every reference in the changed files, not only the new or changed ones.
    #[arg(long)]
    pub all_refs: bool,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// Options shared by every command that checks references.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Read settings from this file (default: .imagegate.yaml at the repository root, when
    /// it exists). Flags win over it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Only check files matching this glob (repeatable; default: *.yaml and *.yml).
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Skip files matching this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Parse and lint only: YAML, extraction and reference grammar, no registry requests.
    #[arg(long)]
    pub offline: bool,

    /// Also read files matching this glob as Helm values (repeatable; `values*.yaml` next to
    /// a `Chart.yaml` always are).
    #[arg(long, value_name = "GLOB")]
    pub helm_values: Vec<String>,

    /// Treat references with unresolved variables as errors, not warnings.
    #[arg(long)]
    pub strict: bool,

    /// Do not list a repository's tags to suggest the ones nearest a tag that was not found.
    #[arg(long)]
    pub no_suggest: bool,

    /// Output format on stdout (default: github under GitHub Actions, else human).
    #[arg(long, value_enum)]
    pub format: Option<Format>,

    /// Also write a report in FORMAT to PATH (repeatable), e.g.
    /// `--report gitlab=gl-code-quality-report.json --report junit=report.xml`.
    #[arg(long, value_name = "FORMAT=PATH", value_parser = parse_report)]
    pub report: Vec<(Format, PathBuf)>,

    /// Requests in flight at once, over all registries.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub concurrency: usize,

    /// The most requests in flight at once to one registry. Each registry's window starts at
    /// 8, grows while its answers stay fast, halves on 429 or 503, and shrinks by a tenth
    /// to a half when latency rises.
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub registry_concurrency: usize,

    /// Timeout for one request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15)]
    pub timeout: u64,

    /// Deadline for all registry checks together, in seconds. What is unanswered by then is
    /// reported as unreachable (exit 3), never as a pass.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub deadline: u64,

    #[command(flatten)]
    pub registry: RegistryFlags,

    /// Do not check references matching this image glob, such as `registry.internal/**`
    /// (repeatable; joined with the config's `skip`).
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Do not read or write the local result cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Also run the real `kustomize build` on every kustomization and `helm template` on every
    /// chart release the check covers, and check the images of their output that imagegate's
    /// models did not predict (reported at the kustomization, "rendered by kustomize", or at
    /// the release's chart line, "rendered by helm"). Exec and container functions, plugins
    /// and downloads stay off; a failing render is exit 2. Also IMAGEGATE_RENDER=true and the
    /// config's `render`.
    #[arg(long)]
    pub render: bool,

    /// The program --render runs: `kustomize`, or `kubectl` (run as `kubectl kustomize`); a
    /// bare name is looked up on PATH. Default: IMAGEGATE_KUSTOMIZE, else the trusted
    /// config's `engines.kustomize`, else `kustomize` on PATH, else `kubectl`.
    #[arg(long, value_name = "PATH")]
    pub kustomize: Option<PathBuf>,

    /// The helm program --render runs for chart releases (`helm template`); a bare name is
    /// looked up on PATH. Default: IMAGEGATE_HELM, else the trusted config's `engines.helm`,
    /// else `helm` on PATH.
    #[arg(long, value_name = "PATH")]
    pub helm: Option<PathBuf>,

    /// References that could not be decided: `error` fails (exit 3, drawn as errors),
    /// `warn` passes (exit 0, drawn as warnings). Default: IMAGEGATE_UNDECIDED, else the
    /// config's `undecided`, else error.
    #[arg(long, value_enum, value_name = "error|warn")]
    pub undecided: Option<crate::undecided::Undecided>,

    /// Colour human output: auto (a terminal, or GitLab's log, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: clap::ColorChoice,

    /// Print only failures.
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Say more: the base chosen, every reference checked, registry notes, request counts.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The policy flags, joined with the config's `policy` rules.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicyArgs {
    /// Policy: refuse `:latest` and untagged references.
    #[arg(long)]
    pub deny_latest: bool,

    /// Policy: require every reference to be pinned by digest.
    #[arg(long)]
    pub require_digest: bool,

    /// Policy: only allow references from registries or repositories matching this glob
    /// (repeatable), such as `ghcr.io/acme/**`.
    #[arg(long, value_name = "GLOB")]
    pub allowed_registry: Vec<String>,

    /// Policy: require every image to provide this platform, such as linux/arm64
    /// (repeatable). Fetches the index of each image that exists.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Vec<String>,
}
