//! Reads files by their path in the repository, from the working tree or from git, never
//! outside the repository: the one way a join across files reaches a file it was not given.

use std::path::{Path, PathBuf};

/// Files larger than this are not read (a manifest this big is not a manifest).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Reads files by repository path, from the working tree or from git.
pub trait Reader: Sync {
    fn read(&self, path: &Path) -> Option<Vec<u8>>;

    /// The images of a file already scanned (value and context), so a build need not parse
    /// it again. `None` means "read and parse it".
    fn images(&self, _path: &Path) -> Option<Vec<(String, String)>> {
        None
    }

    /// Whether a path leads outside the repository (through a symbolic link), so it was
    /// not read.
    fn escapes(&self, _path: &Path) -> bool {
        false
    }

    /// The directory holding these files on disk, for an engine that reads files itself
    /// (`--render`): the root itself, or `scratch` once a commit's tree is written there.
    fn materialise(&self, _scratch: &Path) -> std::io::Result<PathBuf> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "these files are not on disk",
        ))
    }

    /// The repository path a file or directory resolves to once symbolic links are
    /// followed (kustomize's loader judges a file by it); as given where there are none.
    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        Some(path.to_path_buf())
    }
}

/// Reads files under a root directory, never outside it.
pub struct DiskReader {
    /// Canonical: symbolic links are resolved against it.
    pub root: PathBuf,
}

impl Reader for DiskReader {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
            || path.is_absolute()
        {
            return None;
        }
        let full = self.inside(path)?;
        let meta = std::fs::metadata(&full).ok()?;
        (meta.is_file() && meta.len() <= MAX_FILE_BYTES)
            .then(|| std::fs::read(&full).ok())
            .flatten()
    }

    fn escapes(&self, path: &Path) -> bool {
        let full = self.root.join(path);
        full.symlink_metadata().is_ok() && self.inside(path).is_none()
    }

    fn materialise(&self, _scratch: &Path) -> std::io::Result<PathBuf> {
        Ok(self.root.clone())
    }

    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        let real = self.inside(path)?;
        real.strip_prefix(&self.root).ok().map(Path::to_path_buf)
    }
}

impl DiskReader {
    /// The file at a repository path once symbolic links are resolved, when it is still
    /// inside the root (issue 13, row 12: a committed link may not lead out).
    fn inside(&self, path: &Path) -> Option<PathBuf> {
        let real = self.root.join(path).canonicalize().ok()?;
        real.starts_with(&self.root).then_some(real)
    }
}
