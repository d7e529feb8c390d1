//! Step 3c, `--render` for charts: each chart release the chart step read is rendered by the
//! real `helm template`, with the chart as fetched and the release's own values, and every
//! image of the output the native model did not predict for that release is checked anyway,
//! at the release's chart line, with a `model-gap` note. In a diff, as for kustomize roots,
//! the merge base's release is rendered only when the head has such images, and what it
//! already deployed is not the change's. A failing render is exit 2 with helm's message.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::charts::{Renderable, ToRender};
use super::extract::Scans;
use crate::error::Error;
use crate::finding::{Code, Finding};
use crate::image_ref::ImageRef;
use crate::manifest::{ImageValue, Occurrence};
use crate::project::charts::ChartSource;
use crate::project::release_render;
use crate::reader::Reader;
use crate::render::Images;
use crate::render::helm::{Chart, Helm, Job};
use crate::settings::Settings;

/// The images `--render` adds for chart releases, and their `model-gap` notes.
#[derive(Default)]
pub struct Rendered {
    pub occurrences: Vec<Occurrence>,
    pub findings: Vec<Finding>,
}

/// One side's files on disk, written out only when a chart directory must be rendered.
struct Tree<'a> {
    reader: &'a dyn Reader,
    scratch: PathBuf,
    root: std::sync::OnceLock<Result<PathBuf, String>>,
}

impl Tree<'_> {
    fn root(&self) -> Result<&Path, String> {
        self.root
            .get_or_init(|| {
                self.reader
                    .materialise(&self.scratch)
                    .map_err(|e| format!("cannot write the tree to render: {e}"))
            })
            .as_ref()
            .map(PathBuf::as_path)
            .map_err(Clone::clone)
    }
}

/// Renders every release, and gives the images the native model missed. An image written
/// literally in a scanned file of a chart directory's (a template's, checked at its line)
/// counts as predicted for the releases of that chart.
pub fn derive(
    settings: &Settings,
    releases: &[ToRender],
    scans: &Scans,
    head: &dyn Reader,
    base: Option<&dyn Reader>,
) -> Result<Rendered, Error> {
    let mut out = Rendered::default();
    if releases.is_empty() {
        return Ok(out);
    }
    let helm = Helm::find(settings.render.helm.as_deref()).map_err(Error::Render)?;
    // helm is given nothing to fetch; were it to try, the rules of kustomize's renders hold.
    let _egress = crate::render::egress::Egress::start(settings.registries.destinations.clone())
        .map_err(Error::Render)?;
    let scratch = tempfile::Builder::new()
        .prefix("imagegate-render-")
        .tempdir()
        .map_err(|e| Error::Render(format!("--render: cannot make a temporary directory: {e}")))?;
    let tree = |reader, side: &str| Tree {
        reader,
        scratch: scratch.path().join(side),
        root: std::sync::OnceLock::new(),
    };
    let head_tree = tree(head, "head");
    let started = std::time::Instant::now();
    let rendered = render_all(&helm, &head_tree, releases.iter().map(|t| &t.head));
    log::debug!(
        "--render: {} chart release(s) rendered by helm in {:.2} s",
        releases.len(),
        started.elapsed().as_secs_f64()
    );
    let mut gaps: Vec<(usize, Images)> = Vec::new();
    for (i, (t, result)) in releases.iter().zip(rendered).enumerate() {
        let (command, images) = result;
        let images = images.map_err(|message| {
            Error::Render(format!(
                "`{command}` failed (--render), so what {} deploys cannot be checked:\n{message}",
                t.head.release.label
            ))
        })?;
        let written = match &t.head.release.source {
            ChartSource::Local { dir } => written_in(scans, dir),
            _ => Vec::new(),
        };
        let predicted: HashSet<ImageValue> =
            t.predicted.iter().chain(&written).map(normal).collect();
        let mut said = HashSet::new();
        let missed: Images = images
            .into_iter()
            .filter(|(v, _)| !predicted.contains(&normal(v)) && said.insert(normal(v)))
            .collect();
        if !missed.is_empty() {
            gaps.push((i, missed));
        }
    }
    // The merge base's side, only for the releases with gaps that exist there.
    if let Some(base) = base {
        let base_tree = tree(base, "base");
        let twins: Vec<(usize, &Renderable)> = gaps
            .iter()
            .filter_map(|(i, _)| Some((*i, releases[*i].base.as_ref()?)))
            .collect();
        let before = render_all(&helm, &base_tree, twins.iter().map(|(_, r)| *r));
        for ((i, _), (command, images)) in twins.iter().zip(before) {
            match images {
                Ok(images) => {
                    let had: HashSet<ImageValue> = images.iter().map(|(v, _)| normal(v)).collect();
                    if let Some((_, missed)) = gaps.iter_mut().find(|(j, _)| j == i) {
                        missed.retain(|(v, _)| !had.contains(&normal(v)));
                    }
                }
                Err(e) => log::debug!(
                    "`{command}` fails at the merge base, so every image it renders at head counts as new: {e}"
                ),
            }
        }
    }
    for (i, missed) in gaps {
        let t = &releases[i];
        let release = &t.head.release;
        let chart = format!(
            "chart {} {}",
            t.chart.name,
            t.chart.version.as_deref().unwrap_or("")
        );
        for (value, context) in missed {
            let shown = match &value {
                ImageValue::Text(s) => s.clone(),
                other => format!("{other:?}"),
            };
            log::debug!(
                "model gap: helm renders `{shown}` ({context}) for {}, which imagegate's chart model did not predict",
                release.label
            );
            out.findings.push(Finding {
                code: Code::ModelGap,
                message: format!(
                    "helm renders `{shown}` ({context}) for {} ({chart}), which imagegate's chart model did not predict; it is checked as rendered",
                    release.label
                ),
                hint: Some(
                    "nothing to fix here; the chart's templates compute this image in a way the values conventions do not follow".into(),
                ),
                location: Some(release.at),
                image: Some(shown),
            });
            out.occurrences.push(Occurrence {
                location: release.at,
                value,
                context: format!(
                    "{} {context} (rendered by helm, {})",
                    release.label,
                    chart.trim_end()
                ),
                previous: None,
            });
        }
    }
    Ok(out)
}

/// The images the scanned files under a chart directory name at their own lines.
fn written_in(scans: &Scans, dir: &Path) -> Vec<ImageValue> {
    scans
        .repo_paths
        .iter()
        .zip(&scans.heads)
        .filter(|(p, _)| p.starts_with(dir))
        .flat_map(|(_, s)| s.occurrences.iter().map(|o| o.value.clone()))
        .collect()
}

/// A reference in its canonical form, so `nginx:1` and `docker.io/library/nginx:1` are one
/// image; anything that does not parse is compared as written.
fn normal(v: &ImageValue) -> ImageValue {
    match v {
        ImageValue::Text(t) => ImageRef::parse(t)
            .map(|r| ImageValue::Text(r.canonical()))
            .unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// Each release rendered, in parallel, in order: the command (for messages) and the images
/// or helm's message.
fn render_all<'a>(
    helm: &Helm,
    tree: &Tree<'_>,
    releases: impl Iterator<Item = &'a Renderable>,
) -> Vec<(String, Result<Images, String>)> {
    use rayon::prelude::*;
    let releases: Vec<&Renderable> = releases.collect();
    releases
        .par_iter()
        .map(|r| render_one(helm, tree, r))
        .collect()
}

fn render_one(helm: &Helm, tree: &Tree<'_>, r: &Renderable) -> (String, Result<Images, String>) {
    let values = release_render::user_values(&r.release);
    let how = &r.release.rendering;
    let chart = match (&r.release.source, r.package.as_deref()) {
        (_, Some(bytes)) => Ok(Chart::Package {
            bytes,
            name: r.shown.clone(),
        }),
        (ChartSource::Local { dir }, None) => tree.root().map(|root| Chart::Dir {
            root,
            dir,
            shown: r.shown.clone(),
        }),
        (other, None) => Err(format!("the chart {} was not fetched", other.describe())),
    };
    let chart = match chart {
        Ok(c) => c,
        Err(e) => return (format!("helm template {} {}", how.name, r.shown), Err(e)),
    };
    let job = Job {
        release: &how.name,
        namespace: &how.namespace,
        tests: how.tests,
        hooks: how.hooks,
        chart,
        values: &values,
    };
    (helm.command(&job), helm.render(&job))
}
