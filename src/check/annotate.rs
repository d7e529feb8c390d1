//! What a failing entry gets besides its verdict: tags near the one that was not found,
//! the value the field had at the merge base (and whether that resolved), and version
//! ranges decided from tag lists.

use std::collections::{BTreeSet, HashMap};

use super::{Classified, Entry, Previous, Status, TagLists, classify, status_of, unique_requests};
use crate::finding::{Code, Severity};
use crate::image_ref::ImageRef;
use crate::resolve::Resolution;

/// Whether an entry fails (an error or undecided finding about its reference).
pub fn fails(e: &Entry) -> bool {
    e.finding
        .as_ref()
        .is_some_and(|f| f.severity() <= Severity::Undecided)
}

/// The repositories whose tag lists would explain a not-found tag.
pub fn repositories_to_list(entries: &[Entry]) -> Vec<ImageRef> {
    let mut set = BTreeSet::new();
    for e in entries {
        if let (Status::NotFound, Some(r)) = (e.status, &e.reference)
            && r.digest.is_none()
        {
            set.insert(ImageRef {
                tag: None,
                digest: None,
                ..r.clone()
            });
        }
    }
    set.into_iter().collect()
}

/// The merge-base values of failing entries, to be resolved too.
pub fn previous_to_resolve(entries: &[Entry]) -> Vec<ImageRef> {
    let refs: Vec<ImageRef> = entries
        .iter()
        .filter(|e| fails(e))
        .filter_map(|e| e.occurrence.previous.as_deref())
        .filter_map(|p| ImageRef::parse(p).ok())
        .collect();
    unique_requests(refs.iter())
}

/// Decides version-range entries from their repositories' tag lists (`None` offline).
pub fn resolve_ranges(entries: &mut [Entry], tags: Option<&TagLists>) {
    for e in entries.iter_mut() {
        let Classified::Range(repo, constraint) = classify(&e.occurrence) else {
            continue;
        };
        let Some(tags) = tags else { continue };
        let name = format!("{}/{}", repo.domain, repo.path);
        match tags.get(&(repo.domain.clone(), repo.path.clone())) {
            None => {
                e.status = Status::RegistryError;
                e.finding = Some(e.finding_about(
                    Code::RegistryError,
                    format!("the tags of {name} could not be listed to decide `{constraint}`"),
                    "retry; if the registry needs credentials, log in",
                ));
            }
            Some(None) => {
                e.status = Status::NotFound;
                e.finding = Some(e.finding_about(
                    Code::NotFound,
                    format!(
                        "`{}` not found: the repository {name} does not exist",
                        e.written
                    ),
                    "check the repository URL and the chart name",
                ));
            }
            Some(Some(list)) => match crate::suggest::best_match(&constraint, list) {
                Some(tag) => {
                    e.status = Status::Ok;
                    e.reference = Some(ImageRef {
                        tag: Some(tag),
                        ..repo.clone()
                    });
                }
                None => {
                    e.status = Status::NotFound;
                    // An exact chart version is the range `=1.2.3`.
                    let wanted = constraint.strip_prefix('=').unwrap_or(&constraint);
                    e.suggestions = crate::suggest::nearby(wanted, list);
                    let near = match e.suggestions.is_empty() {
                        true => String::new(),
                        false => format!(
                            "; nearest existing versions: {}",
                            e.suggestions
                                .iter()
                                .map(|t| format!("`{t}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    e.finding = Some(e.finding_about(
                        Code::NotFound,
                        format!("no version of {name} satisfies `{constraint}`{near}"),
                        "check the version against the published versions",
                    ));
                }
            },
        }
    }
}

/// Adds did-you-mean tags and the merge-base value to failing entries.
pub fn annotate(
    entries: &mut [Entry],
    tags: &TagLists,
    resolutions: Option<&HashMap<ImageRef, Resolution>>,
) {
    for e in entries.iter_mut() {
        if !fails(e) {
            continue;
        }
        let written = e.written.clone();
        if let (Status::NotFound, Some(r)) = (e.status, e.reference.clone())
            && r.digest.is_none()
            && let Some(listed) = tags.get(&(r.domain.clone(), r.path.clone()))
            && let Some(finding) = e.finding.as_mut()
        {
            let repo = format!("{}/{}", r.domain, r.path);
            match listed {
                None => {
                    finding.message =
                        format!("`{written}` not found: the repository {repo} does not exist");
                    finding.hint = Some("check the repository name for typos".into());
                }
                Some(all) => {
                    let tag = r.pull_reference();
                    e.suggestions = crate::suggest::nearby(tag, all);
                    if let Some(best) = e.suggestions.first() {
                        let list: Vec<String> =
                            e.suggestions.iter().map(|t| format!("`{t}`")).collect();
                        finding.message = format!(
                            "`{tag}` not found in {repo}; existing tags nearby: {}",
                            list.join(", ")
                        );
                        finding.hint = Some(format!("did you mean {repo}:{best}?"));
                    }
                }
            }
        }
        if let Some(previous) = e.occurrence.previous.clone() {
            let status = ImageRef::parse(&previous).ok().and_then(|p| {
                let res = resolutions?.get(&p.pulled())?;
                Some(status_of(res))
            });
            let state = match status {
                Some(Status::Ok) => "exists",
                Some(Status::NotFound) => "does not exist either",
                Some(_) => "could not be checked",
                None => "not checked",
            };
            let advice = if status == Some(Status::Ok) {
                ": to roll back, restore that value"
            } else {
                ""
            };
            if let Some(finding) = e.finding.as_mut() {
                let line = format!("was `{previous}` at the merge base ({state}){advice}");
                finding.hint = Some(match finding.hint.take() {
                    Some(h) => format!("{h}; {line}"),
                    None => line,
                });
            }
            e.previous = Some(Previous {
                image: previous,
                status,
            });
        }
    }
}
