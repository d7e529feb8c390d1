//! Step 3, join: what one file cannot decide (charts with their repositories, `${VAR}` with
//! the Flux Kustomization that defines it, kustomizations with their resources), then every
//! source, occurrence and file finding of the run in one place. In a diff, a derived
//! reference the merge base already produced is not the change's.

use std::collections::HashSet;
use std::path::PathBuf;

use super::collect::Sides;
use super::extract::{Scans, keep_changed, unreadable};
use crate::files::WalkProblem;
use crate::finding::{Finding, Location};
use crate::manifest::{ImageValue, Occurrence};
use crate::project;
use crate::settings::Settings;
use crate::source::SourceFile;

/// Everything the later steps look at: sources by file id, the occurrences to check, and
/// findings about whole files.
pub struct Assembled {
    pub sources: Vec<SourceFile>,
    pub occurrences: Vec<Occurrence>,
    pub file_findings: Vec<Finding>,
}

/// The joins across files at head, without what the merge base already derived.
pub fn derive(
    settings: &Settings,
    scans: &Scans,
    sides: &Sides,
    all_refs: bool,
) -> project::Joined {
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
    let mut out = Assembled {
        sources: Vec::with_capacity(scans.heads.len() + joined.extra_sources.len()),
        occurrences: Vec::new(),
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
