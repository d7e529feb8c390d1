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
pub mod env;
pub mod error;
pub mod files;
pub mod finding;
pub mod git;
pub mod hook;
pub mod hook_command;
pub mod image_ref;
pub mod inspect;
pub mod kustomize;
pub mod manifest;
pub mod paths;
pub mod pipeline;
pub mod policy;
pub mod prepush;
pub mod project;
pub mod reader;
pub mod render;
pub mod repo_facts;
pub mod report;
pub mod resolve;
pub mod run_error;
pub mod settings;
pub mod source;
pub mod suggest;
pub mod terminal;
pub mod trust;
pub mod undecided;
pub mod variables;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::settings::Settings;
use std::io::Write;

/// Runs a command line and returns the exit code.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<i32, Error> {
    match cli.command {
        Command::Check(args) => {
            let settings = Settings::from_check(&args)?;
            let report = pipeline::check(&settings)?;
            report::emit(&settings, &report, out)?;
            let code = report.exit_code();
            // The process ends next: freeing a large report entry by entry only costs time.
            std::mem::forget(report);
            Ok(code)
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
