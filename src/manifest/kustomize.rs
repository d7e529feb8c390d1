//! Kustomize: the effective references a kustomization's `images:` produce. It follows the
//! local `resources:`, `components:` and legacy `bases:` (files and directories, recursively,
//! with cycle protection), applies each level's images transformer with kustomize's rules,
//! and reports every rewritten reference at the `images:` entry that produced it. Remote
//! resources are not fetched; they are reported as skipped. `helmCharts:` entries with an
//! `oci://` repo are OCI chart references.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use super::yaml::{self, Document, NodeId};
use super::{ImageValue, Occurrence, kubernetes};
use crate::finding::Location;
pub use crate::reader::Reader;
use crate::source::SourceFile;

/// The file names kustomize reads in a directory, in its order.
pub const FILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
/// How deep a chain of kustomizations may go.
const MAX_DEPTH: usize = 16;

pub fn is_kustomization_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| FILE_NAMES.contains(&n))
}

/// One `images:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
    pub tag_suffix: Option<String>,
    /// Where a reference it produces is reported: its newTag, digest, newName or name.
    pub location: Location,
}

impl ImageEntry {
    /// kustomize's `IsImageMatched`: the image's name, before any tag or digest, is `name`.
    pub fn matches(&self, image: &str) -> bool {
        let (name, _, _) = split(image);
        name == self.name
    }

    /// kustomize's image tag updater: `newName` replaces the name; `newTag` and `digest`
    /// replace the tag and digest (both kept when both are given; the digest is pulled).
    pub fn apply(&self, image: &str) -> String {
        let (name, tag, digest) = split(image);
        let mut name = self.new_name.clone().unwrap_or_else(|| name.to_string());
        let (mut tag, mut digest) = (tag.map(str::to_string), digest.map(str::to_string));
        match (&self.new_tag, &self.digest) {
            (Some(t), Some(d)) => (tag, digest) = (Some(t.clone()), Some(d.clone())),
            (Some(t), None) => (tag, digest) = (Some(t.clone()), None),
            (None, Some(d)) => (tag, digest) = (None, Some(d.clone())),
            (None, None) => {}
        }
        if let (Some(suffix), Some(t)) = (&self.tag_suffix, tag.as_mut()) {
            t.push_str(suffix);
        }
        if let Some(t) = tag {
            name.push(':');
            name.push_str(&t);
        }
        if let Some(d) = digest {
            name.push('@');
            name.push_str(&d);
        }
        name
    }

    /// The reference an entry names by itself, when nothing in the resources matches.
    pub fn as_written(&self) -> Option<String> {
        if self.new_tag.is_none() && self.digest.is_none() {
            return None;
        }
        let base = self.new_name.clone().unwrap_or_else(|| self.name.clone());
        Some(self.apply(&base))
    }
}

/// Splits `name[:tag][@digest]` the way kustomize does (a `:` before the first `/` is a port).
pub fn split(image: &str) -> (&str, Option<&str>, Option<&str>) {
    let (rest, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    let slash = rest.find('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], Some(&rest[slash + i + 1..]), digest),
        None => (rest, None, digest),
    }
}

/// A parsed kustomization: its image entries and what it builds on.
#[derive(Debug, Default)]
pub struct Kustomization {
    pub images: Vec<ImageEntry>,
    /// `resources`, `components` and `bases`, as written, with where each is written.
    pub resources: Vec<(String, Location)>,
}

fn scalar(doc: &Document, node: NodeId, key: &str) -> Option<String> {
    doc.get(node, key)
        .and_then(|n| doc.scalar(n))
        .map(str::to_string)
}

/// Reads a kustomization document.
pub fn parse_kustomization(doc: &Document, file: usize) -> Kustomization {
    let mut k = Kustomization::default();
    let Some(root) = doc.root else { return k };
    for key in ["images", "imageTags"] {
        let Some(list) = doc.get(root, key) else {
            continue;
        };
        for &e in doc.items(list) {
            let Some(name) = scalar(doc, e, "name") else {
                continue;
            };
            let at = ["newTag", "digest", "newName", "name"]
                .iter()
                .find_map(|f| doc.get(e, f))
                .unwrap_or(e);
            k.images.push(ImageEntry {
                name,
                new_name: scalar(doc, e, "newName"),
                new_tag: scalar(doc, e, "newTag"),
                digest: scalar(doc, e, "digest"),
                tag_suffix: scalar(doc, e, "tagSuffix"),
                location: doc.location(at, file),
            });
        }
    }
    for key in ["resources", "components", "bases"] {
        if let Some(list) = doc.get(root, key) {
            for &r in doc.items(list) {
                if let Some(s) = doc.scalar(r) {
                    k.resources.push((s.to_string(), doc.location(r, file)));
                }
            }
        }
    }
    k
}

/// Occurrences a kustomization file holds by itself: OCI `helmCharts`, and `newTag`s that
/// YAML typed as numbers (`newTag: 3.6`), which kustomize turns into mangled tags.
pub fn extract_local(doc: &Document, file: usize, out: &mut Vec<Occurrence>) {
    let Some(root) = doc.root else { return };
    if let Some(list) = doc.get(root, "images") {
        for &e in doc.items(list) {
            if let Some(t) = doc.get(e, "newTag")
                && let Some(kind) = doc.scalar_type(t)
                && matches!(
                    kind,
                    yaml::ScalarType::Int | yaml::ScalarType::Float | yaml::ScalarType::Bool
                )
            {
                out.push(Occurrence {
                    location: doc.location(t, file),
                    value: ImageValue::NonString {
                        written: doc.scalar(t).unwrap_or_default().to_string(),
                        typed_as: if kind == yaml::ScalarType::Bool {
                            "a boolean"
                        } else {
                            "a number"
                        },
                    },
                    context: format!(
                        "images[{}] newTag",
                        doc.get(e, "name").and_then(|n| doc.scalar(n)).unwrap_or("")
                    ),
                    previous: None,
                });
            }
        }
    }
    let Some(charts) = doc.get(root, "helmCharts") else {
        return;
    };
    for &c in doc.items(charts) {
        let (Some(repo), Some(name)) = (scalar(doc, c, "repo"), scalar(doc, c, "name")) else {
            continue;
        };
        let Some(base) = super::flux::oci_repository(&repo) else {
            continue;
        };
        let version = doc.get(c, "version");
        let at = version.unwrap_or(c);
        let value = match version.and_then(|v| doc.scalar(v)) {
            Some(v) if super::flux::exact_version(v) => {
                ImageValue::Text(format!("{base}/{name}:{}", super::flux::oci_tag(v)))
            }
            v => ImageValue::Range {
                repository: format!("{base}/{name}"),
                constraint: v.unwrap_or("*").to_string(),
            },
        };
        out.push(Occurrence {
            location: doc.location(at, file),
            value,
            context: format!("helmCharts[{name}]"),
            previous: None,
        });
    }
}

/// Whether a resource entry is remote (a git or http URL), which is not fetched.
pub fn is_remote(resource: &str) -> bool {
    resource.contains("://")
        || resource.starts_with("git@")
        || resource.starts_with("github.com/")
        || resource.contains("?ref=")
}

/// Joins and normalises a relative path without touching the file system.
pub fn join(dir: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in dir.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// An image as a build sees it, and the entry that last rewrote it.
#[derive(Debug, Clone)]
struct Built {
    value: String,
    by: Option<ImageEntry>,
    from: String,
}

/// The result of building one kustomization.
#[derive(Debug, Default)]
pub struct Build {
    /// References rewritten by an `images:` entry of this kustomization or one it includes,
    /// located at that entry; with the context of the resource they came from.
    pub rewritten: Vec<Occurrence>,
    /// Repository paths of every file read, kustomizations included.
    pub files: HashSet<PathBuf>,
    /// Remote resources that were not fetched.
    pub remote: Vec<(String, Location)>,
    /// Resources that lead outside the repository, which were not read.
    pub escaped: Vec<(String, Location)>,
}

/// Builds the kustomization file at `path` (a repository path), reporting rewritten
/// references only for entries in `report_file` (the file id of `path` in the report).
pub fn build(path: &Path, report_file: usize, reader: &dyn Reader) -> Build {
    let mut b = Build::default();
    let mut stack = HashSet::new();
    let images = build_dir(path, reader, &mut stack, &mut b, 0, Some(report_file));
    for built in images {
        if let Some(entry) = built.by {
            if entry.location.file != report_file {
                continue;
            }
            let o = Occurrence {
                location: entry.location,
                value: ImageValue::Text(built.value),
                context: format!("images[{}] on {}", entry.name, built.from),
                previous: None,
            };
            if !b.rewritten.contains(&o) {
                b.rewritten.push(o);
            }
        }
    }
    b
}

/// The local paths a kustomization file names (its `resources`, `components` and `bases`),
/// resolved against its directory. Remote resources name nothing here.
pub fn named_paths(path: &Path, bytes: &[u8]) -> Vec<PathBuf> {
    let text = String::from_utf8_lossy(bytes);
    let source = SourceFile::new(path.to_path_buf(), &*text);
    let parsed = yaml::parse(&source);
    let Some(doc) = parsed.documents.first() else {
        return Vec::new();
    };
    let dir = path.parent().unwrap_or(Path::new(""));
    parse_kustomization(doc, usize::MAX)
        .resources
        .into_iter()
        .filter(|(res, _)| !is_remote(res))
        .map(|(res, _)| join(dir, &res))
        .collect()
}

/// Which kustomizations name a path (a file, or a directory holding a kustomization).
pub trait Namers {
    /// The kustomization files that name `path`, in path order.
    fn naming(&self, path: &Path) -> Vec<PathBuf>;
}

/// The reverse resource graph of a set of kustomizations, parsed in one go.
pub struct NamedBy(HashMap<PathBuf, Vec<PathBuf>>);

impl NamedBy {
    /// From every kustomization file (path and text), in path order.
    pub fn new(all: &[(PathBuf, Vec<u8>)]) -> NamedBy {
        let mut named_by: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
        for (k, bytes) in all {
            for name in named_paths(k, bytes) {
                named_by.entry(name).or_default().push(k.clone());
            }
        }
        NamedBy(named_by)
    }
}

impl Namers for NamedBy {
    fn naming(&self, path: &Path) -> Vec<PathBuf> {
        self.0.get(path).cloned().unwrap_or_default()
    }
}

/// The kustomizations whose builds can read one of the `changed` files: a reverse walk over
/// the resource graph that reads no resource, so a one-file change in a repository of many
/// kustomizations stays cheap.
pub fn including(graph: &dyn Namers, changed: &HashSet<PathBuf>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut queue: Vec<PathBuf> = changed.iter().cloned().collect();
    queue.sort();
    while let Some(path) = queue.pop() {
        // A kustomization file is named through its directory too.
        let mut names = vec![path.clone()];
        if is_kustomization_file(&path)
            && let Some(dir) = path.parent()
        {
            names.push(dir.to_path_buf());
        }
        for name in names {
            for k in graph.naming(&name) {
                if seen.insert(k.clone()) {
                    found.push(k.clone());
                    queue.push(k);
                }
            }
        }
    }
    found
}

fn read_kustomization(dir_or_file: &Path, reader: &dyn Reader) -> Option<(PathBuf, Vec<u8>)> {
    if is_kustomization_file(dir_or_file) {
        return reader
            .read(dir_or_file)
            .map(|b| (dir_or_file.to_path_buf(), b));
    }
    FILE_NAMES.iter().find_map(|n| {
        let p = dir_or_file.join(n);
        reader.read(&p).map(|b| (p, b))
    })
}

fn build_dir(
    path: &Path,
    reader: &dyn Reader,
    stack: &mut HashSet<PathBuf>,
    b: &mut Build,
    depth: usize,
    file_id: Option<usize>,
) -> Vec<Built> {
    let Some((kpath, bytes)) = read_kustomization(path, reader) else {
        return Vec::new();
    };
    // Cycle protection: a kustomization already on the way down adds nothing.
    if depth > MAX_DEPTH || !stack.insert(kpath.clone()) {
        return Vec::new();
    }
    b.files.insert(kpath.clone());
    let dir = kpath.parent().map(Path::to_path_buf).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let source = SourceFile::new(kpath.clone(), text.as_str());
    let parsed = yaml::parse(&source);
    // Entries of nested kustomizations get a file id that never matches the report's.
    let id = file_id.unwrap_or(usize::MAX - 1 - depth);
    let k = parsed
        .documents
        .first()
        .map(|d| parse_kustomization(d, id))
        .unwrap_or_default();
    let mut images = Vec::new();
    for (res, at) in &k.resources {
        if is_remote(res) {
            if file_id.is_some() {
                b.remote.push((res.clone(), *at));
            }
            continue;
        }
        let target = join(&dir, res);
        if let Some(bytes) = reader
            .read(&target)
            .filter(|_| !is_kustomization_file(&target))
        {
            b.files.insert(target.clone());
            images.extend(resource_images(&target, bytes));
        } else if reader.escapes(&target) {
            if file_id.is_some() {
                b.escaped.push((res.clone(), *at));
            }
        } else {
            images.extend(build_dir(&target, reader, stack, b, depth + 1, None));
        }
    }
    for entry in &k.images {
        let mut matched = false;
        for img in images.iter_mut() {
            if entry.matches(&img.value) {
                img.value = entry.apply(&img.value);
                img.by = Some(entry.clone());
                matched = true;
            }
        }
        if !matched && let Some(value) = entry.as_written() {
            images.push(Built {
                value,
                by: Some(entry.clone()),
                from: "no matching resource (as written)".into(),
            });
        }
    }
    stack.remove(&kpath);
    images
}

fn resource_images(path: &Path, bytes: Vec<u8>) -> Vec<Built> {
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let source = SourceFile::new(path.to_path_buf(), text.as_str());
    let parsed = yaml::parse(&source);
    let mut occ = Vec::new();
    for d in &parsed.documents {
        kubernetes::extract(d, usize::MAX, &mut occ);
    }
    occ.into_iter()
        .filter_map(|o| match o.value {
            ImageValue::Text(t) => Some(Built {
                value: t,
                by: None,
                from: format!("{} {}", path.display(), o.context),
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(
        name: &str,
        new_name: Option<&str>,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> ImageEntry {
        ImageEntry {
            name: name.into(),
            new_name: new_name.map(Into::into),
            new_tag: tag.map(Into::into),
            digest: digest.map(Into::into),
            tag_suffix: None,
            location: Location {
                file: 0,
                start: 0,
                end: 0,
            },
        }
    }

    #[test]
    fn name_matches_with_or_without_tag_or_digest_but_exactly() {
        let e = entry("nginx", None, Some("1.27"), None);
        assert!(e.matches("nginx"));
        assert!(e.matches("nginx:1.25"));
        assert!(e.matches("nginx@sha256:abc"));
        assert!(e.matches("nginx:1.25@sha256:abc"));
        assert!(
            !e.matches("docker.io/library/nginx:1.25"),
            "no normalisation"
        );
        assert!(!e.matches("nginx-ingress:1"));
        let with_registry = entry("registry:5000/team/app", None, Some("2"), None);
        assert!(with_registry.matches("registry:5000/team/app:1"));
        assert!(!with_registry.matches("team/app:1"));
    }

    #[test]
    fn new_name_alone_keeps_the_original_tag() {
        let e = entry("nginx", Some("mirror.io/nginx"), None, None);
        assert_eq!(e.apply("nginx:1.25"), "mirror.io/nginx:1.25");
        assert_eq!(e.apply("nginx@sha256:abc"), "mirror.io/nginx@sha256:abc");
    }

    #[test]
    fn new_tag_replaces_tag_and_digest_and_digest_wins_for_pulls() {
        let e = entry("nginx", None, Some("1.27"), None);
        assert_eq!(e.apply("nginx:1.25@sha256:abc"), "nginx:1.27");
        let d = entry("nginx", None, None, Some("sha256:def"));
        assert_eq!(d.apply("nginx:1.25"), "nginx@sha256:def");
        let both = entry("nginx", None, Some("1.27"), Some("sha256:def"));
        let r = crate::image_ref::ImageRef::parse(
            &both
                .apply("nginx:1.25")
                .replace("sha256:def", &format!("sha256:{}", "d".repeat(64))),
        )
        .unwrap();
        assert_eq!(
            r.pull_reference(),
            format!("sha256:{}", "d".repeat(64)),
            "the digest is what is pulled"
        );
    }

    #[test]
    fn tag_suffix_and_entries_with_no_match() {
        let mut e = entry("app", None, Some("1.0"), None);
        e.tag_suffix = Some("-debug".into());
        assert_eq!(e.apply("app:0.9"), "app:1.0-debug");
        assert_eq!(
            entry("app", Some("ghcr.io/a/app"), Some("2"), None)
                .as_written()
                .as_deref(),
            Some("ghcr.io/a/app:2")
        );
        assert_eq!(entry("app", Some("x"), None, None).as_written(), None);
    }

    #[test]
    fn splitting_like_kustomize() {
        assert_eq!(
            split("registry:5000/a/b:1@sha256:x"),
            ("registry:5000/a/b", Some("1"), Some("sha256:x"))
        );
        assert_eq!(
            split("registry:5000/a/b"),
            ("registry:5000/a/b", None, None)
        );
        assert_eq!(split("nginx"), ("nginx", None, None));
    }

    struct Mem(HashMap<PathBuf, String>);
    impl Reader for Mem {
        fn read(&self, path: &Path) -> Option<Vec<u8>> {
            self.0.get(path).map(|s| s.clone().into_bytes())
        }
    }

    #[test]
    fn overlay_chains_and_cycles() {
        let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      containers: [{name: web, image: 'acme/web:1.0'}, {name: side, image: busybox:1}]\n";
        let files = Mem(
            [
                ("base/deploy.yaml", deploy),
                ("base/kustomization.yaml", "resources: [deploy.yaml]\n"),
                ("mid/kustomization.yaml", "resources: [../base, ../prod]\nimages:\n- name: acme/web\n  newName: ghcr.io/acme/web\n"),
                ("prod/kustomization.yaml", "resources:\n- ../mid\n- https://github.com/x/y//z?ref=v1\nimages:\n- name: ghcr.io/acme/web\n  newTag: 1.1\n- name: unused\n  newName: ghcr.io/acme/unused\n  newTag: '3'\n"),
            ]
            .into_iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect(),
        );
        let b = build(Path::new("prod/kustomization.yaml"), 7, &files);
        let values: Vec<String> = b
            .rewritten
            .iter()
            .map(|o| match &o.value {
                ImageValue::Text(t) => t.clone(),
                _ => String::new(),
            })
            .collect();
        assert_eq!(
            values,
            ["ghcr.io/acme/web:1.1", "ghcr.io/acme/unused:3"],
            "{b:?}"
        );
        assert!(b.files.contains(Path::new("base/deploy.yaml")));
        assert_eq!(b.remote.len(), 1);
        // mid → prod → mid is a cycle: it ends, and mid's rewrite is not reported as prod's.
        let mid = build(Path::new("mid/kustomization.yaml"), 3, &files);
        assert!(mid.rewritten.iter().all(|o| o.location.file == 3));
    }
}
