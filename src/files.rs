//! Picks the files to check: walks the given paths with the `ignore` crate, so `.gitignore`
//! and `.ignore` are honoured, and filters them with the include and exclude globs.
//! Symbolic links are not followed, so a link loop or a link out of the tree is never read.

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::settings::Settings;

/// Whether a path names a YAML file (`.yaml` or `.yml`).
pub fn is_yaml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "yaml" || e == "yml")
}

/// A walk problem that is about the input, not the tool: reported as a finding.
#[derive(Debug)]
pub struct WalkProblem {
    pub path: PathBuf,
    pub message: String,
}

/// Files to check, in a stable order, plus the problems met on the way.
pub fn collect(
    paths: &[PathBuf],
    settings: &Settings,
) -> Result<(Vec<PathBuf>, Vec<WalkProblem>), Error> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for root in paths {
        let meta = std::fs::metadata(root).map_err(|e| Error::Path {
            path: root.clone(),
            source: e,
        })?;
        if meta.is_file() {
            // A file named on the command line is checked whatever its name.
            if !settings.exclude.is_match(display(root)) {
                files.push(display(root));
            }
            continue;
        }
        let walker = ignore::WalkBuilder::new(root)
            .require_git(false)
            .follow_links(false)
            .sort_by_file_path(Path::cmp)
            .build();
        for item in walker {
            match item {
                Ok(entry) => {
                    if !entry.file_type().is_some_and(|t| t.is_file()) {
                        continue;
                    }
                    let path = entry.path();
                    let relative = path.strip_prefix(root).unwrap_or(path);
                    if settings.wanted(relative) {
                        files.push(display(path));
                    }
                }
                Err(e) => problems.push(WalkProblem {
                    path: error_path(&e).unwrap_or_else(|| root.clone()),
                    message: e.to_string(),
                }),
            }
        }
    }
    files.dedup();
    Ok((files, problems))
}

/// A path as shown to the user: without a leading `./`.
fn display(path: &Path) -> PathBuf {
    path.strip_prefix(".").unwrap_or(path).to_path_buf()
}

fn error_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(display(path)),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}
