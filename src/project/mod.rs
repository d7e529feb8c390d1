//! Joins what single files cannot decide alone: HelmRelease charts with their OCI
//! HelmRepository, `${VAR}` references with the postBuild variables of the Flux
//! Kustomization that deploys them, Helm values files with their chart's `appVersion`,
//! kustomizations with the resources they rewrite (including the overlays of a changed base),
//! and Argo CD Applications' `kustomize.images` with the path they edit.

mod argo_kustomize;
pub mod chart_files;
pub mod charts;
mod markers;
mod release;
mod release_join;
pub mod release_render;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::finding::{Code, Finding, Location};
use crate::manifest::flux;
use crate::manifest::kustomize::{self, Reader};
use crate::manifest::values::{self, Values};
use crate::manifest::{FileScan, ImageValue, Occurrence, yaml};
use crate::source::SourceFile;
use crate::variables::Variables;

/// How one side (head, or the merge base) of a check reads what it joins.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub reader: &'a dyn Reader,
    /// In a diff, the kustomizations whose builds read a changed file (the overlays of a
    /// changed base), from `kustomize::including`.
    pub kustomizations: &'a [PathBuf],
    /// Repository paths of a diff's changed files (empty with `--all`).
    pub changed: &'a HashSet<PathBuf>,
    /// The file id the first extra source will get.
    pub first_extra_id: usize,
    /// The repository's other YAML files, listed only when a join needs them.
    pub elsewhere: &'a dyn Fn() -> Vec<PathBuf>,
    /// Files read as Helm values besides `values*.yaml` next to a `Chart.yaml`.
    pub helm_values: &'a globset::GlobSet,
    /// Flux variables from the config's files: definitions of last resort.
    pub variables: &'a Variables,
    /// The URLs of the repository's git remotes: an Argo CD Application whose `repoURL` is
    /// one of them deploys a path of this repository.
    pub remotes: &'a [String],
}

/// A reader that answers from the scans for files already scanned (no second parse).
struct Known<'a> {
    inner: &'a dyn Reader,
    images: HashMap<&'a Path, Vec<(&'a str, &'a str)>>,
    texts: HashMap<&'a Path, &'a str>,
}

impl<'a> Known<'a> {
    fn new(scanned: &'a Scanned<'a>, inner: &'a dyn Reader) -> Known<'a> {
        let images = scanned
            .files()
            .filter(|(_, _, p)| !kustomize::is_kustomization_file(p))
            .map(|(_, s, p)| {
                let found = s
                    .occurrences
                    .iter()
                    .filter_map(|o| match &o.value {
                        ImageValue::Text(t) => Some((t.as_str(), o.context.as_str())),
                        _ => None,
                    })
                    .collect();
                (p.as_path(), found)
            })
            .collect();
        let texts = scanned
            .files()
            .map(|(_, s, p)| (p.as_path(), &*s.source.text))
            .collect();
        Known {
            inner,
            images,
            texts,
        }
    }
}

impl Reader for Known<'_> {
    fn read(&self, path: &Path) -> Option<Vec<u8>> {
        match self.texts.get(path) {
            Some(text) => Some(text.as_bytes().to_vec()),
            None => self.inner.read(path),
        }
    }

    fn escapes(&self, path: &Path) -> bool {
        self.inner.escapes(path)
    }

    fn resolve(&self, path: &Path) -> Option<PathBuf> {
        self.inner.resolve(path)
    }

    fn images(&self, path: &Path) -> Option<Vec<(String, String)>> {
        let found = self.images.get(path)?;
        Some(
            found
                .iter()
                .map(|(v, c)| (v.to_string(), c.to_string()))
                .collect(),
        )
    }
}

/// The scanned files (`None` where a file does not exist on this side), with their
/// repository paths, parallel to the report's sources.
pub struct Scanned<'a> {
    pub scans: Vec<Option<&'a FileScan>>,
    pub repo_paths: &'a [PathBuf],
}

impl Scanned<'_> {
    fn files(&self) -> impl Iterator<Item = (usize, &FileScan, &PathBuf)> {
        self.scans
            .iter()
            .zip(self.repo_paths)
            .enumerate()
            .filter_map(|(i, (s, p))| s.map(|s| (i, s, p)))
    }
}

/// What the joins add.
#[derive(Debug, Default)]
pub struct Joined {
    pub occurrences: Vec<Occurrence>,
    pub findings: Vec<Finding>,
    /// Kustomization files outside the scanned set whose rewrites are reported (overlays of
    /// a changed base): repository path and text.
    pub extra_sources: Vec<(PathBuf, String)>,
    /// Where a `${VAR}` reference was substituted, so it is no longer unresolved.
    pub substituted: HashSet<Location>,
    /// Image fields of scanned files that no kustomize build deploys as written (every
    /// build that reads them rewrites them): the plain scan's occurrence there is dropped.
    pub replaced: HashSet<Location>,
    /// Scanned files that kustomizations read as patches or configurations, not as
    /// manifests: their images come only through the builds.
    pub patch_files: HashSet<usize>,
    /// Every kustomization root built, with the images the model predicted for it: what
    /// `--render` compares the real engine's output with.
    pub roots: Vec<crate::render::Root>,
    /// Chart releases whose charts decide images (fetched by the pipeline).
    pub releases: Vec<charts::Release>,
    /// The merge base's releases, in a diff.
    pub base_releases: Vec<charts::Release>,
}

/// Runs every join.
pub fn join(scanned: &Scanned<'_>, side: &Side<'_>) -> Joined {
    let Side {
        reader,
        kustomizations: all_kustomizations,
        changed: _,
        first_extra_id,
        elsewhere,
        helm_values: values_globs,
        variables,
        remotes,
    } = *side;
    let mut j = Joined::default();
    let known = Known::new(scanned, reader);
    let reader: &dyn Reader = &known;
    let repos = charts(scanned, reader, elsewhere, &mut j);
    j.releases = release_join::releases(scanned, reader, &repos);
    markers::join(scanned, reader, elsewhere, &mut j);
    substitutions(scanned, reader, elsewhere, variables, &mut j);
    helm_values(scanned, reader, values_globs, &mut j);
    let apps = argo_kustomize::roots(scanned, reader, remotes, &mut j);
    builds::kustomizations(
        scanned,
        reader,
        all_kustomizations,
        apps,
        first_extra_id,
        &mut j,
    );
    j
}

/// A finding at a place, with a hint.
pub fn note(code: Code, message: String, hint: &str, location: Location) -> Finding {
    Finding {
        code,
        message,
        hint: Some(hint.to_string()),
        location: Some(location),
        image: None,
    }
}

/// HelmRelease charts → OCI artifacts `<url host/path>/<chart>:<version>`. Returns the
/// HelmRepositories known, for the chart releases.
fn charts(
    scanned: &Scanned<'_>,
    reader: &dyn Reader,
    elsewhere: &dyn Fn() -> Vec<PathBuf>,
    j: &mut Joined,
) -> Vec<flux::HelmRepository> {
    let mut repos: Vec<flux::HelmRepository> = scanned
        .files()
        .flat_map(|(_, s, _)| s.flux.helm_repositories.iter().cloned())
        .collect();
    let mut looked_elsewhere = false;
    for chart in scanned.files().flat_map(|(_, s, _)| s.flux.charts.iter()) {
        let matches = |r: &flux::HelmRepository| chart.repository.names(&r.object);
        if !repos.iter().any(matches) && !looked_elsewhere {
            looked_elsewhere = true;
            let release_dir = scanned
                .files()
                .find(|(_, s, _)| s.flux.charts.contains(chart))
                .and_then(|(_, _, p)| p.parent().map(Path::to_path_buf))
                .unwrap_or_default();
            repos.extend(helm_repositories_elsewhere(
                reader,
                &elsewhere(),
                &release_dir,
            ));
        }
        let found = repos.iter().find(|r| matches(r));
        let skipped = |why: String, hint: &str| {
            note(
                Code::Skipped,
                format!(
                    "HelmRelease/{} chart `{}` not checked: {why}",
                    chart.release, chart.chart
                ),
                hint,
                chart.location,
            )
        };
        let Some(repo) = found else {
            j.findings.push(skipped(
                format!(
                    "its HelmRepository `{}` was not found beside the release or in the repository's source directories",
                    chart.repository.name
                ),
                "run `imagegate check --all` to search every file",
            ));
            continue;
        };
        // A classic repository's versions are decided from its index by the chart step.
        let Some(base) = repo.oci.then(|| flux::oci_repository(&repo.url)).flatten() else {
            continue;
        };
        let repository = format!("{base}/{}", chart.chart);
        let value = match chart.version.as_deref() {
            Some(v) if flux::exact_version(v) => {
                ImageValue::Text(format!("{repository}:{}", flux::oci_tag(v)))
            }
            v => ImageValue::Range {
                repository,
                constraint: v.unwrap_or("*").to_string(),
            },
        };
        j.occurrences.push(Occurrence {
            location: chart.location,
            value,
            context: format!("HelmRelease/{} chart", chart.release),
            previous: None,
        });
    }
    repos
}

/// Where Flux repositories keep their sources, by convention.
const SOURCE_DIRS: [&str; 6] = [
    "source",
    "repositor",
    "helm",
    "flux-system",
    "infrastructure",
    "clusters",
];

/// Whether a document of the file has the kind HelmRepository (not a sourceRef naming one).
fn declares_helm_repository(bytes: &[u8]) -> bool {
    bytes
        .split(|b| *b == b'\n')
        .any(|l| l.trim_ascii_end() == b"kind: HelmRepository")
}

/// Whether the file uses a `${VAR}`.
fn has_variables(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"${")
}

/// Whether a join may read the file when it is not among the checked ones: the files
/// `Side::elsewhere` must list, at the least.
pub fn may_be_joined(bytes: &[u8]) -> bool {
    declares_helm_repository(bytes) || has_variables(bytes) || declares_image_policy(bytes)
}

/// Whether the file declares a Flux ImagePolicy or ImageRepository (for `$imagepolicy`
/// markers).
fn declares_image_policy(bytes: &[u8]) -> bool {
    bytes.split(|b| *b == b'\n').any(|l| {
        let l = l.trim_ascii_end();
        l == b"kind: ImagePolicy" || l == b"kind: ImageRepository"
    })
}

/// HelmRepositories in files outside the checked set: those beside the release or above
/// it, and those in the directories Flux repositories keep sources in. Reading every file
/// of a large repository for one chart bump would cost more than the check; a repository
/// found nowhere there is reported, never assumed.
fn helm_repositories_elsewhere(
    reader: &dyn Reader,
    paths: &[PathBuf],
    release_dir: &Path,
) -> Vec<flux::HelmRepository> {
    let mut out = Vec::new();
    let near = |p: &Path| p.parent().is_some_and(|d| release_dir.starts_with(d));
    let conventional = |p: &Path| {
        let dir = p
            .parent()
            .unwrap_or(Path::new(""))
            .to_string_lossy()
            .to_ascii_lowercase();
        SOURCE_DIRS.iter().any(|d| dir.contains(d))
    };
    for path in paths.iter().filter(|p| near(p) || conventional(p)) {
        let Some(bytes) = reader.read(path) else {
            continue;
        };
        if !declares_helm_repository(&bytes) {
            continue;
        }
        let scan = crate::manifest::scan(usize::MAX, path, bytes);
        out.extend(scan.flux.helm_repositories);
    }
    out
}

/// `${VAR}` in files under a Flux Kustomization's path, resolved from its
/// `postBuild.substitute`, then from the config's variables files (which alone resolve
/// files under no Kustomization). What stays unresolved remains an `unresolved-variable`.
fn substitutions(
    scanned: &Scanned<'_>,
    reader: &dyn Reader,
    elsewhere: &dyn Fn() -> Vec<PathBuf>,
    variables: &Variables,
    j: &mut Joined,
) {
    let subs: Vec<&flux::Substitutions> = scanned
        .files()
        .flat_map(|(_, s, _)| s.flux.substitutions.iter())
        .collect();
    if subs.is_empty() && variables.vars.is_empty() {
        return;
    }
    let from_files = |name: &str| variables.get(name).map(|(v, _)| v.to_string());
    for (_, scan, path) in scanned.files() {
        for o in &scan.occurrences {
            let ImageValue::Text(text) = &o.value else {
                continue;
            };
            if !text.contains("${") {
                continue;
            }
            let mut covered = false;
            for s in subs
                .iter()
                .filter(|s| s.path.is_empty() || path.starts_with(&s.path))
            {
                covered = true;
                let lookup = |name: &str| {
                    s.vars
                        .iter()
                        .find(|(k, _, _)| k == name)
                        .map(|(_, v, _)| v.clone())
                        .or_else(|| from_files(name))
                };
                if let Some((value, _used)) = flux::substitute(text, &lookup) {
                    j.substituted.insert(o.location);
                    j.occurrences.push(Occurrence {
                        location: o.location,
                        value: ImageValue::Text(value),
                        context: format!("{} (postBuild of Kustomization/{})", o.context, s.name),
                        previous: None,
                    });
                }
            }
            if !covered && let Some((value, used)) = flux::substitute(text, &from_files) {
                let mut files: Vec<String> = Vec::new();
                for f in used.iter().filter_map(|u| variables.get(u)) {
                    let f = f.1.display().to_string();
                    if !files.contains(&f) {
                        files.push(f);
                    }
                }
                j.substituted.insert(o.location);
                j.occurrences.push(Occurrence {
                    location: o.location,
                    value: ImageValue::Text(value),
                    context: format!("{} (variables from {})", o.context, files.join(", ")),
                    previous: None,
                });
            }
        }
    }
    if !subs.is_empty() {
        definitions_elsewhere(scanned, &subs, reader, elsewhere, j);
    }
}

/// Files under a Flux Kustomization's path that are not among the checked ones (a diff that
/// changes only a variable's value): their `${VAR}` references are checked with the new
/// values and reported at the variable's definition.
fn definitions_elsewhere(
    scanned: &Scanned<'_>,
    subs: &[&flux::Substitutions],
    reader: &dyn Reader,
    elsewhere: &dyn Fn() -> Vec<PathBuf>,
    j: &mut Joined,
) {
    let checked: HashSet<&PathBuf> = scanned.files().map(|(_, _, p)| p).collect();
    let mut listed: Option<Vec<PathBuf>> = None;
    for s in subs {
        let paths = listed.get_or_insert_with(elsewhere);
        for path in paths
            .iter()
            .filter(|p| p.starts_with(&s.path) && !checked.contains(p))
        {
            let Some(bytes) = reader.read(path) else {
                continue;
            };
            if !has_variables(&bytes) {
                continue;
            }
            let scan = crate::manifest::scan(usize::MAX, path, bytes);
            for o in &scan.occurrences {
                let ImageValue::Text(text) = &o.value else {
                    continue;
                };
                let lookup = |name: &str| {
                    s.vars
                        .iter()
                        .find(|(k, _, _)| k == name)
                        .map(|(_, v, _)| v.clone())
                };
                let Some((value, used)) = flux::substitute(text, &lookup) else {
                    continue;
                };
                let Some((_, _, at)) = used
                    .iter()
                    .find_map(|u| s.vars.iter().find(|(k, _, _)| k == u))
                else {
                    continue;
                };
                j.occurrences.push(Occurrence {
                    location: *at,
                    value: ImageValue::Text(value),
                    context: format!(
                        "{} {} (postBuild of Kustomization/{})",
                        path.display(),
                        o.context,
                        s.name
                    ),
                    previous: None,
                });
            }
        }
    }
}

/// `values*.yaml` next to a `Chart.yaml`: images by the chart conventions, with the chart's
/// `appVersion` as the default tag.
fn helm_values(
    scanned: &Scanned<'_>,
    reader: &dyn Reader,
    configured: &globset::GlobSet,
    j: &mut Joined,
) {
    for (id, scan, path) in scanned.files() {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let conventional =
            name.starts_with("values") && (name.ends_with(".yaml") || name.ends_with(".yml"));
        let chart_path = path.parent().unwrap_or(Path::new("")).join("Chart.yaml");
        let chart = if conventional {
            reader.read(&chart_path)
        } else {
            None
        };
        if chart.is_none() && !configured.is_match(path) {
            continue;
        }
        let chart = chart.unwrap_or_default();
        let chart_text = String::from_utf8_lossy(&chart).into_owned();
        let chart_source = SourceFile::new(chart_path.clone(), chart_text.as_str());
        let app_version = yaml::parse(&chart_source).documents.first().and_then(|d| {
            let root = d.root?;
            d.get(root, "appVersion")
                .and_then(|n| d.scalar(n))
                .map(str::to_string)
        });
        let parsed = yaml::parse(&scan.source);
        for d in &parsed.documents {
            let Some(root) = d.root else { continue };
            values::extract(
                &Values {
                    doc: d,
                    root,
                    file: id,
                    label: format!(
                        "chart {}",
                        chart_path.parent().unwrap_or(Path::new(".")).display()
                    ),
                    default_tag: app_version
                        .clone()
                        .map(|v| (v, "Chart.yaml appVersion".to_string())),
                    shift: None,
                },
                &mut j.occurrences,
            );
        }
    }
}

mod builds;

#[cfg(test)]
mod tests;
