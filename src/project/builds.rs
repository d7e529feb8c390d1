//! Kustomize roots joined into the report: every kustomization a check covers is built by
//! `crate::kustomize` (and each same-repository path of an Argo CD Application with
//! `kustomize.images`, the way Argo CD edits it), its images are reported at the line that
//! decided them, the plain scan's images that no build deploys as written are dropped, and
//! what a build could not do becomes a finding at the input.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::argo_kustomize::AppRoot;
use super::{Joined, Scanned, note};
use crate::finding::{Code, Finding, Location};
use crate::kustomize::graph::support_paths;
use crate::kustomize::{self, Effective, Problem};
use crate::manifest::kustomize::is_kustomization_file;
use crate::reader::Reader;

/// Builds every root: the kustomizations of the checked set and, in a diff, `affected` (the
/// kustomizations whose builds read a changed file), then the Applications' `apps`.
/// Components are built by their users.
pub(super) fn kustomizations(
    scanned: &Scanned<'_>,
    reader: &dyn Reader,
    affected: &[PathBuf],
    apps: Vec<AppRoot>,
    first_extra_id: usize,
    j: &mut Joined,
) {
    let ids: HashMap<&Path, usize> = scanned.files().map(|(i, _, p)| (p.as_path(), i)).collect();
    let mut roots: Vec<PathBuf> = scanned
        .files()
        .filter(|(_, _, p)| is_kustomization_file(p))
        .map(|(_, _, p)| p.clone())
        .chain(affected.iter().cloned())
        .collect();
    roots.sort();
    roots.dedup();
    roots.retain(|k| !is_component(reader, k));
    if !roots.is_empty() {
        let names: Vec<String> = roots.iter().map(|k| k.display().to_string()).collect();
        log::debug!(
            "kustomize: building {} root(s): {}",
            roots.len(),
            names.join(", ")
        );
    }
    let builds: Vec<Effective> = {
        use rayon::prelude::*;
        let jobs: Vec<(&Path, Option<&AppRoot>)> = roots
            .iter()
            .map(|k| (k.parent().unwrap_or(Path::new("")), None))
            .chain(apps.iter().map(|a| (a.dir.as_path(), Some(a))))
            .collect();
        jobs.par_iter()
            .map(|(dir, app)| kustomize::effective_edited(dir, reader, app.map(|a| &a.edits)))
            .collect()
    };
    // Where an Application's build succeeds, its entries as written are not checked: the
    // images they decide are.
    let mut written = HashSet::new();
    let app_builds = builds.iter().skip(roots.len());
    for (a, b) in apps.iter().zip(app_builds) {
        if !b.record.failed {
            written.extend(a.written.iter().copied());
        }
    }
    let mut files = Files {
        ids,
        extra: HashMap::new(),
        first: first_extra_id,
        reader,
    };
    // Patch files and configurations are not manifests, whether or not a build reached
    // them: known from the text of every kustomization at hand (components included).
    let kustomization_files = scanned
        .files()
        .filter(|(_, _, p)| is_kustomization_file(p))
        .map(|(_, _, p)| p.clone())
        .chain(roots.iter().cloned());
    for k in kustomization_files {
        let Some(bytes) = reader.read(&k) else {
            continue;
        };
        for p in support_paths(&k, &bytes) {
            if let Some(&id) = files.ids.get(p.as_path()) {
                j.patch_files.insert(id);
            }
        }
    }
    let mut tracked = HashSet::new();
    let mut deployed = HashSet::new();
    let mut seen = HashSet::new();
    let mut said = HashSet::new();
    for (i, b) in builds.into_iter().enumerate() {
        // A failing build is already an error at its input; `--render` renders the rest (an
        // Application's edited build is not rendered: the real engine would need the edits
        // written into a copy of the path).
        if let Some(root) = roots.get(i)
            && !b.record.failed
        {
            j.roots.push(crate::render::Root {
                file: root.clone(),
                predicted: b.occurrences.iter().map(|o| o.value.clone()).collect(),
            });
        }
        let map: Vec<Option<usize>> = b.record.files.iter().map(|p| files.id(p, j)).collect();
        let at = |l: Location| {
            map.get(l.file)
                .copied()
                .flatten()
                .map(|file| Location { file, ..l })
        };
        for l in &b.tracked {
            if let Some(l) = at(*l) {
                tracked.insert(l);
            }
        }
        for &f in &b.record.patch_files {
            if let Some(&id) = files.ids.get(b.record.files[f].as_path()) {
                j.patch_files.insert(id);
            }
        }
        for mut o in b.occurrences {
            let Some(l) = at(o.location) else { continue };
            deployed.insert(l);
            o.location = l;
            // A field as written in a scanned file is the plain scan's to report.
            let scanned_here = l.file < first_extra_id && tracked.contains(&l);
            if scanned_here || !seen.insert((l, o.value.clone())) {
                continue;
            }
            j.occurrences.push(o);
        }
        for n in b.record.notes {
            let Some(location) = n.at.and_then(|a| {
                at(Location {
                    file: a.file,
                    start: a.start,
                    end: a.end,
                })
            }) else {
                continue;
            };
            if said.insert((location, n.message.clone())) {
                j.findings.push(finding(n.problem, n.message, location));
            }
        }
    }
    j.replaced = tracked.difference(&deployed).copied().collect();
    j.replaced.extend(written);
}

fn is_component(reader: &dyn Reader, k: &Path) -> bool {
    reader.read(k).is_some_and(|b| {
        String::from_utf8_lossy(&b)
            .lines()
            .any(|l| l.trim_end() == "kind: Component")
    })
}

fn finding(problem: Problem, message: String, at: Location) -> Finding {
    let (code, hint) = match problem {
        Problem::Fails => (
            Code::KustomizeBuild,
            "kustomize build fails here, so nothing this kustomization deploys is checked; fix the input",
        ),
        Problem::NoEffect => (
            Code::NoEffect,
            "remove it, or fix its name or target so it matches what the build holds",
        ),
        Problem::Unmodelled => (
            Code::Skipped,
            "run with --render to check the output of the real kustomize build",
        ),
        Problem::Remote => (Code::Skipped, "check that repository with imagegate too"),
        Problem::Escapes => (
            Code::PathEscape,
            "name files inside the repository; a symbolic link may not point out of it",
        ),
    };
    note(code, message, hint, at)
}

/// Report file ids for a build's files: the scanned set's, or a new extra source.
struct Files<'a> {
    ids: HashMap<&'a Path, usize>,
    extra: HashMap<PathBuf, usize>,
    first: usize,
    reader: &'a dyn Reader,
}

impl Files<'_> {
    fn id(&mut self, path: &Path, j: &mut Joined) -> Option<usize> {
        if let Some(&id) = self.ids.get(path) {
            return Some(id);
        }
        if let Some(&id) = self.extra.get(path) {
            return Some(id);
        }
        let text = String::from_utf8_lossy(&self.reader.read(path)?).into_owned();
        let id = self.first + j.extra_sources.len();
        j.extra_sources.push((path.to_path_buf(), text));
        self.extra.insert(path.to_path_buf(), id);
        Some(id)
    }
}
