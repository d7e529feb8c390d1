//! Errors for when imagegate itself cannot run (exit 2). Problems with the input are
//! findings, not errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    #[error("{0}")]
    #[diagnostic(code(imagegate::usage))]
    Usage(String),

    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(imagegate::path))]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid glob `{glob}`: {source}")]
    #[diagnostic(code(imagegate::glob))]
    Glob {
        glob: String,
        source: globset::Error,
    },

    #[error("{0}")]
    #[diagnostic(code(imagegate::setup))]
    Setup(String),

    #[error(transparent)]
    #[diagnostic(code(imagegate::git))]
    Git(#[from] crate::git::GitError),

    #[error("{0}")]
    #[diagnostic(code(imagegate::config))]
    Config(String),

    #[error("{0}")]
    #[diagnostic(code(imagegate::hook))]
    Hook(String),

    #[error("cannot write the report: {0}")]
    #[diagnostic(code(imagegate::output))]
    Output(#[source] std::io::Error),
}
