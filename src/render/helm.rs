//! The Helm engine: `helm template` on one chart release, found on `PATH` or named by a
//! trusted setting. The chart (the package as fetched, which helm reads itself without
//! anything being extracted, or a copy of a chart directory's regular files) and the
//! release's merged values are written to a private scratch directory, and helm runs there
//! with its cache, config, data and plugin directories and `HOME` pointed into it: no
//! repositories, registry logins, plugins or kube config of the user are read, nothing is
//! downloaded (no `--repo`, no `--dependency-update`, no `--enable-dns`), and no
//! post-renderer runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Engine, Images, process};

/// How long one release's render may take.
const TIMEOUT: Duration = Duration::from_secs(120);
/// The most bytes and entries of a chart directory copied for helm (as for packages).
const MAX_COPY: (u64, usize) = (100 << 20, 20_000);

/// A helm program.
#[derive(Debug, Clone)]
pub struct Helm {
    program: PathBuf,
}

impl Helm {
    /// The program a trusted setting names (a bare name is looked up on `PATH`), else
    /// `helm` on `PATH`.
    pub fn find(configured: Option<&Path>) -> Result<Helm, String> {
        let program = match super::configured(configured)? {
            Some(p) => p,
            None => super::on_path(Path::new("helm")).ok_or_else(|| {
                "--render needs helm for the chart releases the check covers: `helm` is not on PATH; install it or name it with --helm PATH (or IMAGEGATE_HELM)".to_string()
            })?,
        };
        Ok(Helm { program })
    }
}

/// Where a release's chart is.
pub enum Chart<'a> {
    /// A packaged chart (`.tgz`) as fetched; `name` is how messages show it.
    Package { bytes: &'a [u8], name: String },
    /// A chart directory on disk, inside `root`: its regular files are copied (symbolic
    /// links are left out, as a commit's tree is written); `shown` is its repository path.
    Dir {
        root: &'a Path,
        dir: &'a Path,
        shown: String,
    },
}

/// One release to render.
pub struct Job<'a> {
    pub release: &'a str,
    pub namespace: &'a str,
    /// Test hooks are deployed (Flux `spec.test.enable`, kustomize without `skipTests`).
    pub tests: bool,
    /// Hooks are deployed (all but kustomize's `skipHooks`).
    pub hooks: bool,
    pub chart: Chart<'a>,
    /// The release's own values, merged in the order the tool gives them to helm.
    pub values: &'a serde_json::Value,
}

/// `helm template` for one release, in its scratch directory.
struct Template<'a> {
    program: &'a Path,
    job: &'a Job<'a>,
    /// The scratch directory's helm homes and `HOME`.
    homes: Vec<(&'static str, PathBuf)>,
}

impl Template<'_> {
    fn args(&self, chart: &str) -> Vec<String> {
        let mut args = vec![
            "template".to_string(),
            format!("--namespace={}", self.job.namespace),
            "--values=values.json".to_string(),
        ];
        if !self.job.tests {
            args.push("--skip-tests".into());
        }
        if !self.job.hooks {
            args.push("--no-hooks".into());
        }
        // Names after `--` are never flags, whatever the repository wrote.
        args.extend(["--".into(), self.job.release.to_string(), chart.to_string()]);
        args
    }
}

impl Engine for Template<'_> {
    fn name(&self) -> &'static str {
        "helm"
    }

    fn command(&self, _dir: &Path) -> String {
        let chart = match &self.job.chart {
            Chart::Package { name, .. } => name.as_str(),
            Chart::Dir { shown, .. } => shown.as_str(),
        };
        let mut shown = format!(
            "helm template {} {chart} --namespace {}",
            self.job.release, self.job.namespace
        );
        if !self.job.tests {
            shown.push_str(" --skip-tests");
        }
        if !self.job.hooks {
            shown.push_str(" --no-hooks");
        }
        shown
    }

    fn render(&self, tree: &Path, dir: &Path) -> Result<Vec<u8>, String> {
        let args = self.args(&format!("./{}", dir.display()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let set: Vec<(&str, &Path)> = self.homes.iter().map(|(k, v)| (*k, v.as_path())).collect();
        process::run_with(self.program, &args, tree, TIMEOUT, &set)?.into_stdout(self.program)
    }
}

impl Helm {
    /// The command a person would type for a job (for messages).
    pub fn command(&self, job: &Job<'_>) -> String {
        self.template(job, Path::new("")).command(Path::new(""))
    }

    fn template<'a>(&'a self, job: &'a Job<'a>, scratch: &Path) -> Template<'a> {
        let helm = scratch.join("helm");
        Template {
            program: &self.program,
            job,
            homes: vec![
                ("HOME", scratch.join("home")),
                ("HELM_CACHE_HOME", helm.join("cache")),
                ("HELM_CONFIG_HOME", helm.join("config")),
                ("HELM_DATA_HOME", helm.join("data")),
                ("HELM_PLUGINS", helm.join("plugins")),
            ],
        }
    }

    /// Renders one release in a scratch directory of its own (removed afterwards) and gives
    /// the images of the output, or helm's own message.
    pub fn render(&self, job: &Job<'_>) -> Result<Images, String> {
        let scratch = tempfile::Builder::new()
            .prefix("imagegate-helm-")
            .tempdir()
            .map_err(|e| format!("cannot make a temporary directory: {e}"))?;
        let s = scratch.path();
        let written = |e: std::io::Error| format!("cannot write to {}: {e}", s.display());
        for d in [
            "home",
            "helm/cache",
            "helm/config",
            "helm/data",
            "helm/plugins",
        ] {
            std::fs::create_dir_all(s.join(d)).map_err(written)?;
        }
        let chart = match &job.chart {
            Chart::Package { bytes, .. } => {
                std::fs::write(s.join("chart.tgz"), bytes).map_err(written)?;
                "chart.tgz"
            }
            Chart::Dir { root, dir, .. } => {
                copy_chart(root, dir, &s.join("chart"))?;
                "chart"
            }
        };
        let values = serde_json::to_vec(job.values).map_err(|e| e.to_string())?;
        std::fs::write(s.join("values.json"), values).map_err(written)?;
        let engine = self.template(job, s);
        let out = engine
            .render(s, Path::new(chart))
            .map_err(|e| e.replace(&format!("{}/", s.display()), ""))?;
        super::images(&engine, &out)
    }
}

/// Copies `root/dir`'s directories and regular files to `to`, never following a symbolic
/// link, within [`MAX_COPY`].
fn copy_chart(root: &Path, dir: &Path, to: &Path) -> Result<(), String> {
    let from = root.join(dir);
    let inside = match (from.canonicalize(), root.canonicalize()) {
        (Ok(f), Ok(r)) => f.starts_with(r),
        _ => false,
    };
    if !inside
        || from
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
    {
        return Err(format!(
            "the chart directory {} is not a directory inside the repository",
            dir.display()
        ));
    }
    let mut left = MAX_COPY;
    copy_dir(&from, to, &mut left, 0)
}

fn copy_dir(from: &Path, to: &Path, left: &mut (u64, usize), depth: usize) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("copying the chart {}: {e}", from.display());
    if depth > 32 {
        return Err(format!("the chart {} nests too deep", from.display()));
    }
    std::fs::create_dir_all(to).map_err(failed)?;
    for entry in std::fs::read_dir(from).map_err(failed)? {
        let entry = entry.map_err(failed)?;
        let kind = entry.file_type().map_err(failed)?;
        left.1 = left
            .1
            .checked_sub(1)
            .ok_or_else(|| format!("the chart holds more than {} entries", MAX_COPY.1))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if kind.is_dir() {
            copy_dir(&src, &dst, left, depth + 1)?;
        } else if kind.is_file() {
            let size = entry.metadata().map_err(failed)?.len();
            left.0 = left
                .0
                .checked_sub(size)
                .ok_or_else(|| format!("the chart is larger than {} bytes", MAX_COPY.0))?;
            std::fs::copy(&src, &dst).map_err(failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_names_and_nothing_downloads_or_post_renders() {
        let values = serde_json::json!({});
        let job = Job {
            release: "--post-renderer=x",
            namespace: "ns",
            tests: false,
            hooks: true,
            chart: Chart::Package {
                bytes: b"",
                name: "c-1.0.0.tgz".into(),
            },
            values: &values,
        };
        let helm = Helm {
            program: PathBuf::from("/bin/helm"),
        };
        let t = helm.template(&job, Path::new("/s"));
        let args = t.args("./chart.tgz");
        let dashes = args.iter().position(|a| a == "--").unwrap();
        assert_eq!(&args[dashes + 1..], ["--post-renderer=x", "./chart.tgz"]);
        assert!(args.contains(&"--skip-tests".to_string()));
        for banned in [
            "--repo",
            "--dependency-update",
            "--enable-dns",
            "--post-renderer ",
        ] {
            assert!(
                args[..dashes].iter().all(|a| !a.starts_with(banned)),
                "{args:?}"
            );
        }
        assert_eq!(
            helm.command(&job),
            "helm template --post-renderer=x c-1.0.0.tgz --namespace ns --skip-tests"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_chart_directory_is_copied_without_its_links() {
        let root = tempfile::tempdir().unwrap();
        let chart = root.path().join("charts/web");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: web\n").unwrap();
        std::fs::write(chart.join("templates/a.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", chart.join("templates/p.yaml")).unwrap();
        std::os::unix::fs::symlink("/etc", root.path().join("out")).unwrap();
        let to = tempfile::tempdir().unwrap();
        copy_chart(root.path(), Path::new("charts/web"), &to.path().join("c")).unwrap();
        assert!(to.path().join("c/templates/a.yaml").is_file());
        assert!(
            to.path()
                .join("c/templates/p.yaml")
                .symlink_metadata()
                .is_err()
        );
        let err = copy_chart(root.path(), Path::new("out"), &to.path().join("d")).unwrap_err();
        assert!(err.contains("not a directory inside"), "{err}");
    }
}
