//! Errors for when imagegate itself cannot run (exit 2). Problems with the input are
//! findings, not errors. Each variant is typed and keeps its cause; a problem in a config
//! or variables file points into that file (miette draws the line, with a label).

use std::path::PathBuf;

use miette::{NamedSource, SourceSpan};

use crate::source::SourceFile;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// The command line asks for something impossible; the message says what.
    #[error("{0}")]
    #[diagnostic(code(imagegate::usage))]
    Usage(String),

    #[error("cannot read {path}: {source}")]
    #[diagnostic(code(imagegate::path))]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot read variables file {path}: {source}")]
    #[diagnostic(code(imagegate::variables))]
    VariablesFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid glob `{glob}`: {source}")]
    #[diagnostic(code(imagegate::glob))]
    Glob {
        glob: String,
        source: globset::Error,
    },

    #[error("could not start the async runtime: {0}")]
    #[diagnostic(code(imagegate::setup))]
    Runtime(#[source] std::io::Error),

    /// The registry settings (flags, config, `certs.d`) cannot be used.
    #[error("{0}")]
    #[diagnostic(code(imagegate::registries))]
    Registries(String),

    #[error(transparent)]
    #[diagnostic(code(imagegate::git))]
    Git(#[from] crate::git::GitError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(Box<Located>),

    #[error(transparent)]
    #[diagnostic(code(imagegate::hook))]
    Hook(#[from] HookError),

    #[error("cannot write the report: {0}")]
    #[diagnostic(code(imagegate::output))]
    Output(#[source] std::io::Error),

    /// `--render` could not render a root: the engine is missing, or it failed (its own
    /// message is kept), so what the root deploys cannot be checked.
    #[error("{0}")]
    #[diagnostic(code(imagegate::render))]
    Render(String),
}

/// A problem at a place in a config or variables file.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{place}: {message}")]
#[diagnostic(code(imagegate::config))]
pub struct Located {
    /// `file:line:column`, kept in the one-line message for grep and CI logs.
    pub place: String,
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("here")]
    pub span: SourceSpan,
}

impl Located {
    /// An error at a byte offset of a file.
    pub fn at(source: &SourceFile, offset: usize, message: impl Into<String>) -> Error {
        let offset = offset.min(source.text.len());
        Error::Config(Box::new(Located {
            place: source.place(offset),
            message: message.into(),
            src: NamedSource::new(source.path.display().to_string(), source.text.to_string()),
            span: SourceSpan::from((offset, 0)),
        }))
    }
}

/// The pre-push hook cannot be written or removed.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} exists and {what}; pass --chain to run it before imagegate, or --force to move it aside"
    )]
    Occupied { path: PathBuf, what: &'static str },
    #[error("{path} {why}; left as it is")]
    NotOurs { path: PathBuf, why: &'static str },
    #[error("too many {stem} files in {dir}")]
    TooMany { stem: String, dir: PathBuf },
}
