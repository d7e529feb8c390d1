//! Step 3, join: what one file cannot decide (charts with their repositories, `${VAR}` with
//! the Flux Kustomization that defines it, kustomizations with their resources), then every
//! source, occurrence and file finding of the run in one place. In a diff, a derived
//! reference the merge base already produced is not the change's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::collect::Sides;
use super::extract::{Scans, keep_changed, unreadable};
use crate::error::Error;
use crate::files::WalkProblem;
use crate::finding::{Code, Finding, Location};
use crate::manifest::{ImageValue, Occurrence};
use crate::project;
use crate::render;
use crate::settings::Settings;
use crate::source::SourceFile;

/// Everything the later steps look at: sources by file id, the occurrences to check, and
/// findings about whole files.
pub struct Assembled {
    pub sources: Vec<SourceFile>,
    pub occurrences: Vec<Occurrence>,
    pub file_findings: Vec<Finding>,
}

/// The joins across files at head, without what the merge base already derived, and with
/// `--render`, the real engine's images that the native model missed.
pub fn derive(
    settings: &Settings,
    scans: &Scans,
    sides: &Sides,
    all_refs: bool,
) -> Result<project::Joined, Error> {
    let mut joined = native(settings, scans, sides, all_refs);
    if settings.render.enabled {
        rendered(settings, scans, sides, all_refs, &mut joined)?;
    }
    Ok(joined)
}

/// `--render`: each root's image that the real `kustomize build` deploys and the native
/// model did not predict is checked, reported at the kustomization file (its `resources:`
/// key, else line 1) with a `model-gap` note. In a diff only what is new against the same
/// root rendered at the merge base counts (`render::gaps`).
fn rendered(
    settings: &Settings,
    scans: &Scans,
    sides: &Sides,
    all_refs: bool,
    joined: &mut project::Joined,
) -> Result<(), Error> {
    if joined.roots.is_empty() {
        return Ok(());
    }
    let engine = render::kustomize::Kustomize::find(settings.render.kustomize.as_deref())
        .map_err(Error::Render)?;
    let base = sides.base.as_deref().filter(|_| !all_refs);
    // While the engines run, what they fetch goes through imagegate's destination rules.
    let _egress = render::egress::Egress::start(settings.registries.destinations.clone())
        .map_err(Error::Render)?;
    let roots = std::mem::take(&mut joined.roots);
    let gaps = render::gaps(&engine, sides.head.as_ref(), base, &roots)?;
    joined.roots = roots;
    for g in gaps {
        let Some((file, text)) = source_of(scans, sides, joined, &g.file) else {
            continue;
        };
        let (start, end) = resources_key(&text);
        let location = Location { file, start, end };
        let shown = match &g.value {
            ImageValue::Text(t) => t.clone(),
            other => format!("{other:?}"),
        };
        log::debug!(
            "model gap: `{}` deploys `{shown}` ({}), which imagegate's kustomize model did not predict",
            g.command,
            g.context
        );
        joined.findings.push(Finding {
            code: Code::ModelGap,
            message: format!(
                "`{}` deploys `{shown}` ({}), which imagegate's kustomize model did not predict; it is checked as rendered",
                g.command, g.context
            ),
            hint: Some(
                "nothing to fix here; the model's notes at this kustomization say what it does not apply".into(),
            ),
            location: Some(location),
            image: Some(shown),
        });
        joined.occurrences.push(Occurrence {
            location,
            value: g.value,
            context: format!("{} (rendered by {})", g.context, g.engine),
            previous: None,
        });
    }
    Ok(())
}

/// The report's file id and text for a repository path: a scanned file, an extra source
/// already added, or the head's file added now.
fn source_of(
    scans: &Scans,
    sides: &Sides,
    joined: &mut project::Joined,
    path: &Path,
) -> Option<(usize, String)> {
    if let Some(i) = scans.repo_paths.iter().position(|p| p == path) {
        return Some((i, scans.heads.get(i)?.source.text.to_string()));
    }
    let first = scans.heads.len();
    if let Some(k) = joined.extra_sources.iter().position(|(p, _)| p == path) {
        return Some((first + k, joined.extra_sources[k].1.clone()));
    }
    let text = String::from_utf8_lossy(&sides.head.read(path)?).into_owned();
    joined
        .extra_sources
        .push((path.to_path_buf(), text.clone()));
    Some((first + joined.extra_sources.len() - 1, text))
}

/// The span of a kustomization's top-level `resources:` key, else the file's start.
fn resources_key(text: &str) -> (usize, usize) {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.starts_with("resources:") {
            return (offset, offset + "resources".len());
        }
        offset += line.len();
    }
    (0, 0)
}

/// The native joins at head, without what the merge base already derived.
fn native(settings: &Settings, scans: &Scans, sides: &Sides, all_refs: bool) -> project::Joined {
    let head_side = project::Side {
        reader: sides.head.as_ref(),
        kustomizations: &sides.kustomizations,
        changed: &sides.changed,
        first_extra_id: scans.heads.len(),
        elsewhere: sides.elsewhere.as_ref(),
        helm_values: &settings.helm_values,
        variables: &settings.variables,
        remotes: &sides.remotes,
    };
    let mut joined = project::join(
        &project::Scanned {
            scans: scans.heads.iter().map(Some).collect(),
            repo_paths: &scans.repo_paths,
        },
        &head_side,
    );
    let Some(base) = sides.base.as_deref().filter(|_| !all_refs) else {
        return joined;
    };
    let before = project::join(
        &project::Scanned {
            scans: scans.olds.iter().map(Option::as_ref).collect(),
            repo_paths: &scans.repo_paths,
        },
        &project::Side {
            reader: base,
            ..head_side
        },
    );
    joined.base_releases = before.releases.clone();
    let repo_paths = &scans.repo_paths;
    let key = |extra: &[(PathBuf, String)], o: &Occurrence| {
        let f = o.location.file;
        let path = repo_paths.get(f).cloned().or_else(|| {
            f.checked_sub(repo_paths.len())
                .and_then(|i| extra.get(i))
                .map(|(p, _)| p.clone())
        });
        // A kustomize chain names the root that reached the field first, which depends on
        // which roots each side builds: the field and its value decide.
        let context = o.context.split(" (kustomize: ").next().unwrap_or_default();
        (path, context.to_string(), o.value.clone())
    };
    let seen: HashSet<_> = before
        .occurrences
        .iter()
        .map(|o| key(&before.extra_sources, o))
        .collect();
    let extra = joined.extra_sources.clone();
    joined
        .occurrences
        .retain(|o| !seen.contains(&key(&extra, o)));
    joined
}

/// Every source and occurrence of the run: the files' own (only what is new in a changed
/// file, unless `all_refs`), the joins', the walk's problems and the config's findings.
pub fn assemble(
    settings: &Settings,
    scans: Scans,
    joined: project::Joined,
    sides: &Sides,
    problems: Vec<WalkProblem>,
    all_refs: bool,
) -> Assembled {
    // Sized once: grown by doubling, the list of 50,000 occurrences held up to twice its size.
    let occurrences = scans
        .heads
        .iter()
        .map(|s| s.occurrences.len())
        .sum::<usize>()
        + joined.occurrences.len();
    let mut out = Assembled {
        sources: Vec::with_capacity(scans.heads.len() + joined.extra_sources.len()),
        occurrences: Vec::with_capacity(occurrences),
        file_findings: Vec::new(),
    };
    for (mut scan, old) in scans.heads.into_iter().zip(scans.olds) {
        if let Some(old) = old.filter(|_| !all_refs) {
            keep_changed(&mut scan, &old);
        }
        scan.occurrences.retain(|o| {
            let substituted = joined.substituted.contains(&o.location)
                && matches!(&o.value, ImageValue::Text(t) if t.contains("${"));
            let built_instead = joined.replaced.contains(&o.location)
                || joined.patch_files.contains(&o.location.file);
            !(substituted || built_instead)
        });
        out.sources.push(scan.source);
        out.occurrences.extend(scan.occurrences);
        out.file_findings.extend(scan.findings);
    }
    for (path, text) in joined.extra_sources {
        out.sources.push(SourceFile::new(
            super::collect::display_path(&sides.root, &path, &settings.cwd),
            text,
        ));
    }
    out.occurrences.extend(joined.occurrences);
    out.file_findings.extend(joined.findings);
    for p in problems {
        let file = out.sources.len();
        out.sources.push(SourceFile::new(p.path, ""));
        out.file_findings.push(unreadable(file, p.message));
    }
    for c in &settings.config_findings {
        let file = out.sources.len();
        out.sources
            .push(SourceFile::new(c.path.clone(), c.text.as_str()));
        out.file_findings.push(Finding {
            code: c.code,
            message: c.message.clone(),
            hint: Some(c.hint.clone()),
            location: Some(Location {
                file,
                start: c.offset,
                end: c.offset,
            }),
            image: None,
        });
    }
    out
}
