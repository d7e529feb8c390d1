//! Step 3b, charts: the charts the change's releases deploy, fetched once each (a classic
//! repository's `index.yaml` and package, an OCI chart layer, or a chart directory), read in
//! memory, and the images their defaults and the releases' values decide. A classic chart's
//! version becomes a version range decided from its index by the same code as OCI ranges.
//! In a diff, what the merge base's releases already derived is not the change's.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::online::Online;
use crate::check::TagLists;
use crate::finding::{Code, Finding, Location};
use crate::manifest::kustomize::Reader;
use crate::manifest::{ImageValue, Occurrence, yaml};
use crate::project::chart_files::{self, ArchiveError, ChartFiles};
use crate::project::charts::{self, ChartSource, Release};
use crate::project::note as finding;
use crate::resolve::Resolution;
use crate::resolve::charts::FetchError;
use crate::source::SourceFile;
use crate::suggest;

/// The largest `index.yaml` read.
pub const MAX_INDEX: usize = 20 << 20;

/// What the chart step adds to a run.
#[derive(Default)]
pub struct ChartImages {
    pub occurrences: Vec<Occurrence>,
    pub findings: Vec<Finding>,
    /// Classic charts' versions, from their indexes, by the name they are judged under.
    pub known_tags: TagLists,
    /// Places whose file-level occurrences the effective images replace.
    pub replaced: HashSet<Location>,
    /// With `--render`, each head release whose chart was read.
    pub to_render: Vec<ToRender>,
}

/// A release for `helm template` (`pipeline/chart_render.rs`): its chart as read, the
/// package as fetched (`None`: a chart directory of the repository), what the native model
/// predicted for it, and in a diff the same release at the merge base.
pub struct ToRender {
    pub head: Renderable,
    pub chart: ChartFiles,
    pub predicted: HashSet<ImageValue>,
    pub base: Option<Renderable>,
}

/// A release and its chart as fetched.
pub struct Renderable {
    pub release: Release,
    /// The package (`None`: a chart directory of the repository).
    pub package: Option<Arc<Vec<u8>>>,
    /// How messages name the chart: `podinfo-6.5.4.tgz`, or the directory.
    pub shown: String,
}

impl Renderable {
    fn new(release: &Release, f: &Fetched) -> Option<Renderable> {
        let chart = f.chart.as_ref().ok()?;
        let shown = match (&f.package, &release.source) {
            (None, ChartSource::Local { dir }) => dir.display().to_string(),
            _ => format!(
                "{}-{}.tgz",
                chart.name,
                chart.version.as_deref().unwrap_or("0")
            ),
        };
        Some(Renderable {
            release: release.clone(),
            package: f.package.clone(),
            shown,
        })
    }
}

/// A fetched chart, or why not.
#[derive(Clone)]
struct Fetched {
    chart: Result<ChartFiles, Problem>,
    /// The package as fetched (classic or OCI), for `--render`.
    package: Option<Arc<Vec<u8>>>,
    /// A classic index's versions of the chart (`None`: no such chart in the index).
    versions: Option<Result<Option<Vec<String>>, Problem>>,
}

#[derive(Clone)]
enum Problem {
    /// Past a limit or not a chart: a finding.
    Unreadable(String),
    /// Not fetched: a note.
    NotRead(String),
    /// The index itself could not be had: a finding with this code.
    Index(Code, String),
}

/// Runs the chart step for a side's releases and the merge base's; with `render`, lists
/// the head releases whose charts were read for `helm template`.
pub fn derive(
    head: &[Release],
    base: &[Release],
    online: Option<&Online>,
    readers: (&dyn Reader, Option<&dyn Reader>),
    repo_paths: &[PathBuf],
    render: bool,
) -> ChartImages {
    let (head_reader, base_reader) = readers;
    let mut out = ChartImages::default();
    if head.is_empty() {
        return out;
    }
    // Offline, only charts in the repository are read; the others are a note.
    let local = |r: &&Release| matches!(r.source, ChartSource::Local { .. });
    if online.is_none() {
        for r in head.iter().filter(|r| !local(r)) {
            out.findings.push(finding(
                Code::ChartNotRead,
                format!(
                    "{}: chart {} not read (--offline): its version and the images its defaults decide are not checked",
                    r.label,
                    r.source.describe()
                ),
                "run without --offline to check them",
                r.at,
            ));
        }
    }
    let head: Vec<&Release> = head
        .iter()
        .filter(|r| online.is_some() || local(r))
        .collect();
    let base: Vec<&Release> = base
        .iter()
        .filter(|r| online.is_some() || local(r))
        .collect();
    let mut fetched: HashMap<ChartSource, Fetched> = HashMap::new();
    for (releases, reader) in [(&head, Some(head_reader)), (&base, base_reader)] {
        let Some(reader) = reader else { continue };
        for r in releases.iter() {
            if !fetched.contains_key(&r.source) {
                let f = fetch(online, &r.source, reader);
                fetched.insert(r.source.clone(), f);
            }
        }
    }
    let key = |o: &Occurrence| {
        (
            repo_paths.get(o.location.file).cloned(),
            o.context.clone(),
            o.value.clone(),
        )
    };
    let mut before = HashSet::new();
    for r in &base {
        if let Some(Ok(chart)) = fetched.get(&r.source).map(|f| &f.chart) {
            before.extend(charts::effective_images(r, chart).iter().map(key));
        }
        if let Some((o, _)) = charts::classic_version(r) {
            before.insert(key(&o));
        }
    }
    for r in &head {
        let Some(f) = fetched.get(&r.source) else {
            continue;
        };
        if let Some(versions) = &f.versions
            && let Some((o, name)) = charts::classic_version(r)
            && !before.contains(&key(&o))
        {
            match versions {
                Ok(list) => {
                    out.known_tags.insert(name, list.clone());
                    out.occurrences.push(o);
                }
                Err(p) => out.findings.push(problem_finding(r, p)),
            }
        }
        match &f.chart {
            Ok(chart) => {
                let found = charts::effective_images(r, chart);
                if render && let Some(rel) = Renderable::new(r, f) {
                    let twin = same_release(r, &head, &base)
                        .and_then(|b| Renderable::new(b, fetched.get(&b.source)?));
                    out.to_render.push(ToRender {
                        head: rel,
                        chart: chart.clone(),
                        predicted: found.iter().map(|o| o.value.clone()).collect(),
                        base: twin,
                    });
                }
                for o in found {
                    if o.location != r.at {
                        out.replaced.insert(o.location);
                    }
                    if !before.contains(&key(&o)) {
                        out.occurrences.push(o);
                    }
                }
            }
            // The index's problem was reported with the version.
            Err(Problem::Index(..)) if f.versions.is_some() => {}
            Err(p) => out.findings.push(problem_finding(r, p)),
        }
    }
    out
}

/// The merge base's release that is the same as a head release: the same label in the same
/// file, the same how-manieth of that label (an Application's sources share one).
fn same_release<'a>(r: &Release, head: &[&Release], base: &[&'a Release]) -> Option<&'a Release> {
    let key = |x: &Release| (x.at.file, x.label.clone());
    let nth = head
        .iter()
        .take_while(|h| !std::ptr::eq(**h as *const Release, r))
        .filter(|h| key(h) == key(r))
        .count();
    base.iter().filter(|b| key(b) == key(r)).nth(nth).copied()
}

fn problem_finding(r: &Release, p: &Problem) -> Finding {
    let what = format!("{}: chart {}", r.label, r.source.describe());
    match p {
        Problem::Unreadable(why) => finding(
            Code::ChartUnreadable,
            format!("{what} cannot be read: {why}"),
            "a chart that large or malformed is refused; check the chart and its repository",
            r.at,
        ),
        Problem::NotRead(why) => finding(
            Code::ChartNotRead,
            format!("{what} not read: {why}; the images its defaults decide are not checked"),
            "check that the chart is reachable from here",
            r.at,
        ),
        Problem::Index(code, why) => finding(
            *code,
            format!("{what}: {why}"),
            "check the repository URL",
            r.at,
        ),
    }
}

/// How a failed request reads as an index problem.
fn index_problem(e: FetchError, url: &str) -> Problem {
    match e {
        FetchError::TooLarge(why) => Problem::Unreadable(why),
        FetchError::Failed(Resolution::NotFound) => Problem::Index(
            Code::NotFound,
            format!("the Helm repository has no index at {url}"),
        ),
        FetchError::Failed(Resolution::Refused(why)) => Problem::Index(
            Code::DeniedDestination,
            format!("{url} is not contacted: {why}"),
        ),
        FetchError::Failed(r @ Resolution::Denied(_)) => {
            Problem::Index(Code::NotFoundOrDenied, format!("{url}: {}", r.detail()))
        }
        FetchError::Failed(r @ Resolution::Unreachable(_)) => {
            Problem::Index(Code::Unreachable, format!("{url}: {}", r.detail()))
        }
        FetchError::Failed(r) => {
            Problem::Index(Code::RegistryError, format!("{url}: {}", r.detail()))
        }
    }
}

fn not_read(e: FetchError) -> Problem {
    match e {
        FetchError::TooLarge(why) => Problem::Unreadable(why),
        FetchError::Failed(r) => Problem::NotRead(r.detail()),
    }
}

/// A package read, kept with its bytes (for `--render`).
type Package = (ChartFiles, Arc<Vec<u8>>);

fn read(bytes: Vec<u8>) -> Result<Package, Problem> {
    match chart_files::read_package(&bytes) {
        Ok(chart) => Ok((chart, Arc::new(bytes))),
        Err(ArchiveError::TooLarge(m) | ArchiveError::Malformed(m)) => Err(Problem::Unreadable(m)),
    }
}

fn fetch(online: Option<&Online>, source: &ChartSource, reader: &dyn Reader) -> Fetched {
    let (chart, package, versions) = match (source, online) {
        (ChartSource::Local { dir }, _) => (
            chart_files::read_dir(reader, dir)
                .ok_or_else(|| Problem::NotRead(format!("no Chart.yaml in {}", dir.display()))),
            None,
            None,
        ),
        (_, None) => (Err(Problem::NotRead("--offline".into())), None, None),
        (
            ChartSource::Classic {
                url,
                chart,
                version,
            },
            Some(online),
        ) => {
            return classic(online, url, chart, version.as_deref());
        }
        (
            ChartSource::Oci {
                repository,
                version,
            },
            Some(online),
        ) => match oci(online, repository, version.as_deref()) {
            Ok((chart, bytes)) => (Ok(chart), Some(bytes), None),
            Err(p) => (Err(p), None, None),
        },
    };
    Fetched {
        chart,
        package,
        versions,
    }
}

/// One version of a classic index: its version, package URLs and digest.
struct Entry {
    version: String,
    urls: Vec<String>,
    digest: Option<String>,
}

/// The entries of one chart in an `index.yaml`; `None` when the chart is not listed.
fn index_entries(index: &[u8], chart: &str) -> Result<Option<Vec<Entry>>, Problem> {
    let text = String::from_utf8_lossy(index);
    let parsed = yaml::parse(&SourceFile::new("index.yaml".into(), &*text));
    let doc = parsed
        .documents
        .first()
        .filter(|d| d.root.is_some_and(|r| d.get(r, "entries").is_some()))
        .ok_or_else(|| {
            Problem::Unreadable("the repository's index.yaml has no `entries`".into())
        })?;
    let Some(list) = doc.root.and_then(|r| doc.get_path(r, &["entries", chart])) else {
        return Ok(None);
    };
    Ok(Some(
        doc.items(list)
            .iter()
            .filter_map(|&e| {
                Some(Entry {
                    version: doc
                        .get(e, "version")
                        .and_then(|n| doc.scalar(n))?
                        .to_string(),
                    urls: doc
                        .get(e, "urls")
                        .map(|u| {
                            doc.items(u)
                                .iter()
                                .filter_map(|&n| doc.scalar(n).map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default(),
                    digest: doc
                        .get(e, "digest")
                        .and_then(|n| doc.scalar(n))
                        .map(|d| format!("sha256:{}", d.trim_start_matches("sha256:"))),
                })
            })
            .collect(),
    ))
}

fn classic(online: &Online, url: &str, chart: &str, version: Option<&str>) -> Fetched {
    let base = format!("{}/", url.trim_end_matches('/'));
    let index_url = format!("{base}index.yaml");
    let client = online.client();
    let index = match online.block_on(client.fetch_url(&index_url, MAX_INDEX, "index.yaml")) {
        Ok(b) => b,
        Err(e) => {
            let p = index_problem(e, &index_url);
            return Fetched {
                chart: Err(p.clone()),
                package: None,
                versions: Some(Err(p)),
            };
        }
    };
    let entries = match index_entries(&index, chart) {
        Ok(Some(e)) => e,
        Ok(None) => {
            return Fetched {
                chart: Err(Problem::NotRead(format!(
                    "{index_url} lists no chart `{chart}`"
                ))),
                package: None,
                versions: Some(Ok(None)),
            };
        }
        Err(p) => {
            return Fetched {
                chart: Err(p.clone()),
                package: None,
                versions: Some(Err(p)),
            };
        }
    };
    let versions: Vec<String> = entries.iter().map(|e| e.version.clone()).collect();
    let wanted = match version {
        Some(v) if crate::manifest::flux::exact_version(v) => versions
            .iter()
            .find(|x| x.trim_start_matches('v') == v.trim_start_matches('v'))
            .cloned(),
        v => suggest::best_match(v.unwrap_or("*"), &versions),
    };
    let read = match wanted.and_then(|w| entries.iter().find(|e| e.version == w)) {
        // A missing version is reported by the version check.
        None => Err(Problem::NotRead("the version is not in the index".into())),
        Some(entry) => package(online, &base, entry),
    };
    let (chart, package) = match read {
        Ok((chart, bytes)) => (Ok(chart), Some(bytes)),
        Err(p) => (Err(p), None),
    };
    Fetched {
        chart,
        package,
        versions: Some(Ok(Some(versions))),
    }
}

/// A classic chart's package: from the cache by its digest, else from its first URL
/// (relative URLs resolved against the repository URL).
fn package(online: &Online, base: &str, entry: &Entry) -> Result<Package, Problem> {
    if let Some(d) = &entry.digest
        && let Some(bytes) = crate::cache::chart_package(d)
    {
        return read(bytes);
    }
    let first = entry
        .urls
        .first()
        .ok_or_else(|| Problem::Unreadable("the index entry lists no package URL".into()))?;
    let url = reqwest::Url::parse(base)
        .and_then(|b| b.join(first))
        .map_err(|e| Problem::Unreadable(format!("package URL `{first}`: {e}")))?;
    let bytes = online
        .block_on(online.client().fetch_url(
            url.as_str(),
            chart_files::MAX_PACKAGE,
            "chart package",
        ))
        .map_err(not_read)?;
    if let Some(d) = &entry.digest {
        if !crate::resolve::charts::matches_digest(&bytes, d) {
            return Err(Problem::Unreadable(format!(
                "the package at {url} does not match the index's digest {d}"
            )));
        }
        crate::cache::keep_chart_package(d, &bytes);
    }
    read(bytes)
}

fn oci(online: &Online, repository: &str, version: Option<&str>) -> Result<Package, Problem> {
    let client = online.client();
    let tag = match version {
        Some(v) if crate::manifest::flux::exact_version(v) => crate::manifest::flux::oci_tag(v),
        v => {
            let repo = crate::image_ref::ImageRef::parse(repository)
                .map_err(|e| Problem::NotRead(e.to_string()))?;
            let tags = online
                .block_on(client.tags(&repo, 5))
                .map_err(|r| Problem::NotRead(r.detail()))?
                .unwrap_or_default();
            suggest::best_match(v.unwrap_or("*"), &tags)
                .ok_or_else(|| Problem::NotRead("no version satisfies the range".into()))?
        }
    };
    let r = crate::image_ref::ImageRef::parse(&format!("{repository}:{tag}"))
        .map_err(|e| Problem::NotRead(e.to_string()))?;
    let (bytes, digest) = online
        .block_on(client.oci_chart(&r, chart_files::MAX_PACKAGE))
        .map_err(not_read)?;
    crate::cache::keep_chart_package(&digest, &bytes);
    read(bytes)
}
