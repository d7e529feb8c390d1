//! `--render`, the completeness net behind the native models: the real engines
//! (`kustomize build`, and `helm template` for chart releases, each an [`Engine`]) turn what
//! a check covers into the manifests it deploys, and every image of that output the native
//! model did not predict is checked anyway. kustomize runs on files on disk: the working
//! tree, or a commit's tree written to a temporary directory ([`Reader::materialise`]); helm
//! on a chart and a values file written to a private directory. Neither gets anything of
//! the repository's choosing but those files (see `kustomize.rs`, `helm.rs` and
//! `process.rs`), and what they fetch is held to imagegate's destination rules
//! (`egress.rs`). Called by `pipeline/join.rs` and `pipeline/chart_render.rs`, never by
//! `manifest`.

pub mod egress;
pub mod helm;
pub mod kustomize;
pub mod process;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::manifest::{ImageValue, kubernetes, yaml};
use crate::reader::Reader;
use crate::source::SourceFile;

/// Whether `--render` is on, and the programs trusted settings name.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub enabled: bool,
    /// The kustomize program (`--kustomize`, `IMAGEGATE_KUSTOMIZE`, the trusted config's
    /// `engines.kustomize`); `None` looks it up on `PATH`.
    pub kustomize: Option<PathBuf>,
    /// The helm program (`--helm`, `IMAGEGATE_HELM`, the trusted config's `engines.helm`);
    /// `None` looks it up on `PATH`.
    pub helm: Option<PathBuf>,
}

/// The program a trusted setting names: a bare name is looked up on `PATH`, a path must be
/// a file. `None` when nothing names one.
fn configured(configured: Option<&Path>) -> Result<Option<PathBuf>, String> {
    match configured {
        Some(p) if p.components().count() == 1 && p.is_relative() => on_path(p)
            .map(Some)
            .ok_or_else(|| format!("--render: `{}` is not on PATH", p.display())),
        Some(p) if p.is_file() => Ok(Some(p.to_path_buf())),
        Some(p) => Err(format!("--render: {} is not a file", p.display())),
        None => Ok(None),
    }
}

/// The first absolute `PATH` entry holding `name` (main drops relative entries, so a file
/// in the checked repository is never found).
fn on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .flat_map(|d| {
            let plain = d.join(name);
            let exe = d.join(name).with_extension(std::env::consts::EXE_EXTENSION);
            [plain, exe]
        })
        .find(|p| p.is_file())
}

/// A real engine that turns one root into YAML.
pub trait Engine: Sync {
    /// Its name in contexts and messages (`kustomize`).
    fn name(&self) -> &'static str;
    /// The command a person would type for `dir` (`kustomize build overlays/prod`).
    fn command(&self, dir: &Path) -> String;
    /// Runs on `dir`, relative to `tree` (the files on disk), giving the rendered YAML or
    /// the engine's own error message.
    fn render(&self, tree: &Path, dir: &Path) -> Result<Vec<u8>, String>;
}

/// Images of rendered output: value, and the object and field that holds it.
pub type Images = Vec<(ImageValue, String)>;

/// A root the native model built: the file the root is reported at (`kustomization.yaml`),
/// and the images the model predicted for it.
#[derive(Debug, Clone)]
pub struct Root {
    pub file: PathBuf,
    pub predicted: HashSet<ImageValue>,
}

/// An image the engine deployed for a root that the native model did not predict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The root's file, where the image is reported.
    pub file: PathBuf,
    pub value: ImageValue,
    /// The object and field in the rendered output (`Deployment/web containers[app]`).
    pub context: String,
    /// The engine's name (`kustomize`).
    pub engine: &'static str,
    /// The command that rendered it, for the message.
    pub command: String,
}

/// Renders every root at head and returns what the native model missed. With `base` (a
/// diff), a missed image that the same root's rendered output at the merge base already
/// held is not the change's and is left out, as `pipeline/join.rs` leaves out what the merge
/// base's native build held. A failing render at head is an error (exit 2); at the merge
/// base it only means nothing there is known, so every missed image counts as new.
pub fn gaps(
    engine: &dyn Engine,
    head: &dyn Reader,
    base: Option<&dyn Reader>,
    roots: &[Root],
) -> Result<Vec<Gap>, Error> {
    if roots.is_empty() {
        return Ok(Vec::new());
    }
    let scratch = tempfile::Builder::new()
        .prefix("imagegate-render-")
        .tempdir()
        .map_err(|e| Error::Render(format!("--render: cannot make a temporary directory: {e}")))?;
    let started = std::time::Instant::now();
    let tree = materialise(head, &scratch.path().join("head"))?;
    let dirs: Vec<PathBuf> = roots.iter().map(|r| dir_of(&r.file)).collect();
    let rendered = render_all(engine, &tree, &dirs);
    log::debug!(
        "--render: {} root(s) rendered by {} in {:.2} s",
        dirs.len(),
        engine.name(),
        started.elapsed().as_secs_f64()
    );
    let mut found = Vec::new();
    for (root, (dir, rendered)) in roots.iter().zip(rendered) {
        let images = rendered.map_err(|message| {
            Error::Render(format!(
                "`{}` failed (--render), so what it deploys cannot be checked:\n{message}",
                engine.command(&dir)
            ))
        })?;
        let mut said = HashSet::new();
        for (value, context) in images {
            if !root.predicted.contains(&value) && said.insert(value.clone()) {
                found.push(Gap {
                    file: root.file.clone(),
                    value,
                    context,
                    engine: engine.name(),
                    command: engine.command(&dir),
                });
            }
        }
    }
    let Some(base) = base.filter(|_| !found.is_empty()) else {
        return Ok(found);
    };
    // The merge base side, only for the roots with gaps that exist there.
    let missed: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = found.iter().map(|g| g.file.clone()).collect();
        v.dedup();
        v.retain(|f| base.read(f).is_some());
        v
    };
    let mut before: HashMap<PathBuf, HashSet<ImageValue>> = HashMap::new();
    if !missed.is_empty() {
        let tree = materialise(base, &scratch.path().join("base"))?;
        let dirs: Vec<PathBuf> = missed.iter().map(|f| dir_of(f)).collect();
        for (file, (dir, rendered)) in missed.iter().zip(render_all(engine, &tree, &dirs)) {
            match rendered {
                Ok(images) => {
                    before.insert(file.clone(), images.into_iter().map(|(v, _)| v).collect());
                }
                Err(e) => log::debug!(
                    "`{}` fails at the merge base, so every image it renders at head counts as new: {e}",
                    engine.command(&dir)
                ),
            }
        }
    }
    found.retain(|g| !before.get(&g.file).is_some_and(|b| b.contains(&g.value)));
    Ok(found)
}

/// The directory of a root's file (`overlays/prod` for `overlays/prod/kustomization.yaml`).
fn dir_of(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn materialise(reader: &dyn Reader, scratch: &Path) -> Result<PathBuf, Error> {
    reader.materialise(scratch).map_err(|e| {
        Error::Render(format!(
            "--render: cannot write the tree to render to {}: {e}",
            scratch.display()
        ))
    })
}

/// Each directory's rendered images (value and context), in parallel, in order; a failure
/// is the engine's message with the temporary tree's path taken out.
fn render_all(
    engine: &dyn Engine,
    tree: &Path,
    dirs: &[PathBuf],
) -> Vec<(PathBuf, Result<Images, String>)> {
    use rayon::prelude::*;
    let prefix = format!("{}{}", tree.display(), std::path::MAIN_SEPARATOR);
    dirs.par_iter()
        .map(|dir| {
            let images = engine
                .render(tree, dir)
                .and_then(|out| images(engine, &out))
                .map_err(|e| e.replace(&prefix, ""));
            (dir.clone(), images)
        })
        .collect()
}

/// The images of rendered YAML (value and context), found by the same reader the native
/// model's output goes through.
pub fn images(engine: &dyn Engine, output: &[u8]) -> Result<Images, String> {
    let text = String::from_utf8_lossy(output);
    let source = SourceFile::new(PathBuf::from("rendered.yaml"), text.as_ref());
    let parsed = yaml::parse(&source);
    if let Some(e) = parsed.error {
        return Err(format!(
            "{}'s output is not YAML: {}",
            engine.name(),
            e.message
        ));
    }
    let mut found = Vec::new();
    for d in &parsed.documents {
        kubernetes::extract(d, usize::MAX, &mut found);
    }
    Ok(found.into_iter().map(|o| (o.value, o.context)).collect())
}
