//! Which imagegate the pre-push hook runs. The binary that ran `hook install` is often
//! `target/release/imagegate`, which `cargo clean` deletes; so the hook records the
//! `imagegate` found on `PATH` when there is one, and the hook script says clearly what to
//! do when the recorded binary is gone (issue 18).

use std::path::{Path, PathBuf};

/// The command the hook records, and whether it came from `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub path: PathBuf,
    pub on_path: bool,
}

const EXE: &str = if cfg!(windows) {
    "imagegate.exe"
} else {
    "imagegate"
};

/// The first `imagegate` on `path_var` (a `PATH` value) that is an executable file.
pub fn find_on_path(path_var: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(EXE))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

/// The `imagegate` on `PATH`, else the running binary.
pub fn recorded() -> Recorded {
    if let Some(path) = std::env::var_os("PATH").and_then(|p| find_on_path(&p)) {
        return Recorded {
            path,
            on_path: true,
        };
    }
    Recorded {
        path: std::env::current_exe().unwrap_or_else(|_| PathBuf::from(EXE)),
        on_path: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn only_an_executable_file_on_path_counts() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("imagegate"), "not executable").unwrap();
        std::fs::create_dir(b.path().join("x")).unwrap();
        let bin = b.path().join("imagegate");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths(["relative/dir".as_ref(), a.path(), b.path()]).unwrap();
        assert_eq!(find_on_path(&path), Some(bin));
        let none = std::env::join_paths([a.path()]).unwrap();
        assert_eq!(find_on_path(&none), None);
    }
}
