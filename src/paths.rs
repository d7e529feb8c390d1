//! Where things are on disk: the repository root above a directory, and the user's own
//! config and cache directories (XDG, else under `HOME`).

use std::path::{Path, PathBuf};

/// The nearest directory at or above `dir` that holds `.git`.
pub fn find_repo_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .map(Path::to_path_buf)
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home() -> Option<PathBuf> {
    user_dir("XDG_CONFIG_HOME", ".config")
}

/// `$XDG_CACHE_HOME/imagegate`, else `~/.cache/imagegate`.
pub fn cache_dir() -> Option<PathBuf> {
    user_dir("XDG_CACHE_HOME", ".cache").map(|d| d.join("imagegate"))
}

fn user_dir(var: &str, under_home: &str) -> Option<PathBuf> {
    crate::env::var(var)
        .map(PathBuf::from)
        .or_else(|| crate::env::var("HOME").map(|h| PathBuf::from(h).join(under_home)))
}
