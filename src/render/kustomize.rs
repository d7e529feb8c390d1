//! The kustomize engine: `kustomize build DIR`, or `kubectl kustomize DIR`, found on `PATH`
//! or named by a trusted setting, run with kustomize's own safe defaults made explicit:
//! root-only load restrictions, and none of `--enable-exec`, `--enable-alpha-plugins` or
//! `--enable-helm`, so a kustomization under check can read files but never run a program.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Engine, process};

/// How long one root's build may take (a remote base is fetched with git).
const TIMEOUT: Duration = Duration::from_secs(120);

/// A kustomize program and how it is called.
#[derive(Debug, Clone)]
pub struct Kustomize {
    program: PathBuf,
    /// `kubectl kustomize` rather than `kustomize build`.
    kubectl: bool,
}

impl Kustomize {
    /// The program a trusted setting names (a bare name is looked up on `PATH`), else
    /// `kustomize` on `PATH`, else `kubectl` on `PATH`.
    pub fn find(configured: Option<&Path>) -> Result<Kustomize, String> {
        let program = match super::configured(configured)? {
            Some(p) => p,
            None => super::on_path(Path::new("kustomize"))
                .or_else(|| super::on_path(Path::new("kubectl")))
                .ok_or_else(|| {
                    "--render needs kustomize: neither `kustomize` nor `kubectl` is on PATH; install one or name it with --kustomize PATH (or IMAGEGATE_KUSTOMIZE)".to_string()
                })?,
        };
        let kubectl = program
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(|s| s.starts_with("kubectl"));
        Ok(Kustomize { program, kubectl })
    }

    /// The arguments for one root (a directory relative to the tree).
    fn args(&self, dir: &str) -> Vec<String> {
        let sub = if self.kubectl { "kustomize" } else { "build" };
        vec![
            sub.to_string(),
            "--load-restrictor=LoadRestrictionsRootOnly".to_string(),
            dir.to_string(),
        ]
    }
}

impl Engine for Kustomize {
    fn name(&self) -> &'static str {
        "kustomize"
    }

    fn command(&self, dir: &Path) -> String {
        let program = if self.kubectl {
            "kubectl kustomize"
        } else {
            "kustomize build"
        };
        format!("{program} {}", shown(dir))
    }

    fn render(&self, tree: &Path, dir: &Path) -> Result<Vec<u8>, String> {
        // `./` keeps a directory named like a flag (`-x`) a directory.
        let dir = match dir.is_absolute() {
            true => dir.to_string_lossy().into_owned(),
            false => format!("./{}", dir.to_string_lossy()),
        };
        let args = self.args(&dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        process::run(&self.program, &args, tree, TIMEOUT)?.into_stdout(&self.program)
    }
}

/// A root directory as a person types it (`.` for the repository's root).
fn shown(dir: &Path) -> String {
    match dir.as_os_str().is_empty() {
        true => ".".to_string(),
        false => dir.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_enables_exec_plugins_or_helm_and_keeps_root_only_loading() {
        for kubectl in [false, true] {
            let k = Kustomize {
                program: PathBuf::from("/bin/x"),
                kubectl,
            };
            let args = k.args("./-o");
            assert!(args.iter().all(|a| !a.contains("enable")), "{args:?}");
            assert!(args.contains(&"--load-restrictor=LoadRestrictionsRootOnly".into()));
            assert_eq!(args.last().unwrap(), "./-o");
        }
    }
}
