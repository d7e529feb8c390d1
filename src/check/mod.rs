//! Joins resolutions back to every occurrence and produces the report: one entry per
//! occurrence with its status, and a finding wherever something is wrong or undecided.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;

use crate::finding::{Code, Finding};
use crate::image_ref::{ImageRef, has_variable};
use crate::manifest::{ImageValue, Occurrence};
use crate::resolve::{Found, Resolution};

mod annotate;
mod summary;

pub use annotate::{annotate, fails, previous_to_resolve, repositories_to_list, resolve_ranges};
pub use summary::{Report, Summary, summarise};

/// The verdict for one occurrence, as the JSON schema names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    NotFound,
    NotFoundOrDenied,
    Invalid,
    UnresolvedVariable,
    Unreachable,
    RateLimited,
    RegistryError,
    Skipped,
    /// Not asked: a destination imagegate never contacts, or a registry the allowed list
    /// leaves out.
    Refused,
    /// The registry answered a pinned digest with other content.
    DigestMismatch,
}

/// What an occurrence holds once its text is read as a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classified {
    Ref(ImageRef),
    /// Some tag of a repository must satisfy a version range.
    Range(ImageRef, String),
    Variable,
    Invalid(Finding),
}

/// One occurrence and its verdict.
#[derive(Debug, Clone)]
pub struct Entry {
    pub occurrence: Occurrence,
    /// The image as written (empty for empty images).
    pub written: String,
    pub reference: Option<ImageRef>,
    pub status: Status,
    pub digest: Option<String>,
    pub finding: Option<Finding>,
    /// Existing tags close to a tag that was not found, best first.
    pub suggestions: Vec<String>,
    /// In a diff check, what the field held at the merge base when this entry fails.
    pub previous: Option<Previous>,
    /// The host that answered, when a mirror or rewrite did rather than the registry.
    pub via: Option<String>,
}

impl Entry {
    /// A finding about this entry's reference, at its place in the file.
    pub fn finding_about(&self, code: Code, message: String, hint: &str) -> Finding {
        Finding {
            code,
            message,
            hint: Some(hint.to_string()),
            location: Some(self.occurrence.location),
            image: Some(self.written.clone()),
        }
    }
}

/// The value a failing reference had at the merge base, and whether it resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Previous {
    pub image: String,
    /// `ok`, `not-found`, … as for references; `None` when it was not checked (offline).
    pub status: Option<Status>,
}

/// A repository's tags, or `None` when the repository does not exist.
pub type TagLists = HashMap<(String, String), Option<Vec<String>>>;

/// The status a resolution gives a reference.
pub fn status_of(res: &Resolution) -> Status {
    match res {
        Resolution::Found(_) => Status::Ok,
        Resolution::NotFound => Status::NotFound,
        Resolution::Denied(_) => Status::NotFoundOrDenied,
        Resolution::Unreachable(_) => Status::Unreachable,
        Resolution::RateLimited(_) => Status::RateLimited,
        Resolution::RegistryError(_) => Status::RegistryError,
        Resolution::Refused(_) => Status::Refused,
        Resolution::DigestMismatch(_) => Status::DigestMismatch,
    }
}

/// Reads an occurrence's value as a reference.
pub fn classify(o: &Occurrence) -> Classified {
    let invalid = |code: Code, message: String, hint: &str, image: Option<String>| {
        Classified::Invalid(Finding {
            code,
            message,
            hint: Some(hint.to_string()),
            location: Some(o.location),
            image,
        })
    };
    match &o.value {
        ImageValue::Empty => invalid(
            Code::EmptyImage,
            format!("{}: image is empty", o.context),
            "set the image; Kubernetes rejects a container without one",
            None,
        ),
        ImageValue::Missing => invalid(
            Code::EmptyImage,
            format!("{}: has no image", o.context),
            "set the image; Kubernetes rejects a container without one",
            None,
        ),
        ImageValue::NonString {
            written,
            typed_as,
            rendered: Some(rendered),
        } => invalid(
            Code::NonStringImage,
            format!(
                "{}: the tag of `{written}` is {typed_as} in YAML, and helm renders it as `{rendered}`",
                o.context
            ),
            "quote the tag so YAML keeps it as written, e.g. tag: \"1.10\"",
            Some(written.clone()),
        ),
        ImageValue::NonString {
            written, typed_as, ..
        } => {
            let shown = if written.is_empty() {
                String::new()
            } else {
                format!(" `{written}`")
            };
            invalid(
                Code::NonStringImage,
                format!(
                    "{}: image{shown} is {typed_as} in YAML, not a string",
                    o.context
                ),
                "quote the value so YAML keeps it as written, e.g. image: \"repo:1.10\"",
                Some(written.clone()),
            )
        }
        ImageValue::Range {
            repository,
            constraint,
        } => match ImageRef::parse(repository) {
            Ok(r) if r.tag.is_none() && r.digest.is_none() => {
                Classified::Range(r, constraint.clone())
            }
            _ => invalid(
                Code::InvalidReference,
                format!("`{repository}` is not a valid repository"),
                "check the repository URL",
                Some(repository.clone()),
            ),
        },
        ImageValue::Text(text) if has_variable(text) => Classified::Variable,
        ImageValue::Text(text) => match ImageRef::parse(text) {
            Ok(r) => Classified::Ref(r),
            Err(e) => invalid(
                Code::InvalidReference,
                format!("`{text}` is not a valid image reference: {e}"),
                "Kubernetes would fail to pull it with InvalidImageName",
                Some(text.clone()),
            ),
        },
    }
}

/// The unique requests for a set of references: what each pulls, plus the tag of every
/// `tag@digest` reference (to warn when the tag has moved).
pub fn unique_requests<'a>(refs: impl Iterator<Item = &'a ImageRef>) -> Vec<ImageRef> {
    let mut set = BTreeSet::new();
    // The same reference written many times is looked at once.
    let mut seen = std::collections::HashSet::new();
    for r in refs.filter(|r| seen.insert(*r)) {
        set.insert(r.pulled());
        if r.tag.is_some() && r.digest.is_some() {
            set.insert(tag_only(r));
        }
    }
    set.into_iter().collect()
}

fn tag_only(r: &ImageRef) -> ImageRef {
    ImageRef {
        digest: None,
        ..r.clone()
    }
}

/// Builds the entries. `resolutions` is `None` offline.
pub fn entries(
    occurrences: Vec<Occurrence>,
    resolutions: Option<&HashMap<ImageRef, Resolution>>,
) -> Vec<Entry> {
    let mut entries: Vec<Entry> = occurrences
        .into_iter()
        .map(|o| {
            let c = classify(&o);
            entry(o, c)
        })
        .collect();
    judge_entries(&mut entries, resolutions);
    entries
}

/// An occurrence's entry before any registry is asked: what its classification decides
/// (invalid, a variable), and `skipped` for references and ranges until they are judged.
pub fn entry(o: Occurrence, classified: Classified) -> Entry {
    let written = match &o.value {
        ImageValue::Text(t) => t.clone(),
        ImageValue::NonString { written, .. } => written.clone(),
        ImageValue::Range {
            repository,
            constraint,
        } => format!("{repository}:{constraint}"),
        ImageValue::Empty | ImageValue::Missing => String::new(),
    };
    let (reference, status, finding) = match classified {
        Classified::Invalid(f) => (None, Status::Invalid, Some(f)),
        Classified::Variable => (
            None,
            Status::UnresolvedVariable,
            Some(Finding {
                code: Code::UnresolvedVariable,
                message: format!(
                    "`{written}` holds a variable or template that is substituted at deploy time; it was not checked"
                ),
                hint: Some("check the rendered value, or pin a literal reference".into()),
                location: Some(o.location),
                image: Some(written.clone()),
            }),
        ),
        // Resolved against the tag list later, by `resolve_ranges`.
        Classified::Range(..) => (None, Status::Skipped, None),
        Classified::Ref(r) => (Some(r), Status::Skipped, None),
    };
    Entry {
        occurrence: o,
        written,
        reference,
        status,
        digest: None,
        finding,
        suggestions: Vec::new(),
        previous: None,
        via: None,
    }
}

/// Gives every reference entry its verdict from the resolutions (none offline: they stay
/// `skipped`), and the mirror or rewrite host that answered, when one did.
pub fn judge_entries(entries: &mut [Entry], resolutions: Option<&HashMap<ImageRef, Resolution>>) {
    let Some(map) = resolutions else {
        return;
    };
    for e in entries {
        let Some(r) = &e.reference else {
            continue;
        };
        let (status, digest, finding) = verdict(&e.occurrence, &e.written, r, map);
        e.via = match map.get(&r.pulled()) {
            Some(Resolution::Found(found)) => found.via.clone(),
            _ => None,
        };
        (e.status, e.digest, e.finding) = (status, digest, finding);
    }
}

fn verdict(
    o: &Occurrence,
    written: &str,
    r: &ImageRef,
    map: &HashMap<ImageRef, Resolution>,
) -> (Status, Option<String>, Option<Finding>) {
    let finding = |code: Code, message: String, hint: String| {
        Some(Finding {
            code,
            message,
            hint: Some(hint),
            location: Some(o.location),
            image: Some(written.to_string()),
        })
    };
    let domain = &r.domain;
    let Some(res) = map.get(&r.pulled()) else {
        return (
            Status::RegistryError,
            None,
            finding(
                Code::RegistryError,
                format!("`{written}` was not resolved"),
                "this is a bug in imagegate; please report it".into(),
            ),
        );
    };
    match res {
        Resolution::Found(Found { digest, .. }) => {
            let moved = match (&r.tag, &r.digest) {
                (Some(tag), Some(pinned)) => match map.get(&tag_only(r)) {
                    Some(Resolution::Found(Found {
                        digest: Some(now), ..
                    })) if now != pinned => Some((tag, pinned, now)),
                    _ => None,
                },
                _ => None,
            };
            let f = moved.and_then(|(tag, pinned, now)| {
                finding(
                    Code::TagDigestMismatch,
                    format!(
                        "`{written}`: tag `{tag}` now points at {now}, not the pinned {pinned}"
                    ),
                    "the digest is what is pulled; update the tag or the digest so that they agree"
                        .into(),
                )
            });
            (Status::Ok, digest.clone().or(r.digest.clone()), f)
        }
        Resolution::NotFound => (
            Status::NotFound,
            None,
            finding(
                Code::NotFound,
                format!(
                    "`{written}` not found: {domain} has no manifest {} in {}",
                    r.pull_reference(),
                    r.path
                ),
                "check the tag or digest and the repository name for typos".into(),
            ),
        ),
        Resolution::Denied(detail) => (
            Status::NotFoundOrDenied,
            None,
            finding(
                Code::NotFoundOrDenied,
                format!("`{written}` is missing or needs credentials: {detail}"),
                format!(
                    "if the image exists, log in so imagegate can see it: docker login {domain}"
                ),
            ),
        ),
        Resolution::Unreachable(detail) => (
            Status::Unreachable,
            None,
            finding(
                Code::Unreachable,
                format!("`{written}` could not be checked: {detail}"),
                format!(
                    "make {domain} reachable from here; the check cannot pass without an answer"
                ),
            ),
        ),
        Resolution::RateLimited(detail) => (
            Status::RateLimited,
            None,
            finding(
                Code::RateLimited,
                format!("`{written}` could not be checked: {detail}"),
                format!("retry later, or log in to {domain} for a higher limit"),
            ),
        ),
        Resolution::RegistryError(detail) => (
            Status::RegistryError,
            None,
            finding(
                Code::RegistryError,
                format!("`{written}` could not be checked: {detail}"),
                "retry; if it persists, the registry is misbehaving".into(),
            ),
        ),
        Resolution::Refused(detail) => (
            Status::Refused,
            None,
            finding(
                Code::DeniedDestination,
                format!("`{written}` was not checked: {detail}"),
                "imagegate never contacts link-local or cloud-metadata addresses, nor what --deny-destination names".into(),
            ),
        ),
        Resolution::DigestMismatch(detail) => (
            Status::DigestMismatch,
            None,
            finding(
                Code::DigestMismatch,
                format!("`{written}`: {detail}"),
                "the registry (or a mirror) does not serve the pinned content; do not trust it for this image".into(),
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Location;

    fn occ(text: &str) -> Occurrence {
        Occurrence {
            location: Location {
                file: 0,
                start: 0,
                end: text.len(),
            },
            value: ImageValue::Text(text.into()),
            context: "Pod/x containers[a]".into(),
            previous: None,
        }
    }

    const D: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const E: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn duplicates_cost_one_request_and_tag_digest_adds_the_tag() {
        let a = ImageRef::parse("nginx").unwrap();
        let b = ImageRef::parse("docker.io/library/nginx:latest").unwrap();
        let c = ImageRef::parse(&format!("ghcr.io/a/b:v1@{D}")).unwrap();
        let reqs = unique_requests([&a, &b, &c].into_iter());
        let shown: Vec<String> = reqs.iter().map(ImageRef::canonical).collect();
        assert_eq!(
            shown,
            [
                "docker.io/library/nginx:latest".to_string(),
                format!("ghcr.io/a/b@{D}"),
                "ghcr.io/a/b:v1".to_string()
            ]
        );
    }

    #[test]
    fn verdicts_map_to_statuses_and_exit_codes() {
        let found = Resolution::found;
        let mut map = HashMap::new();
        map.insert(ImageRef::parse("ok:1").unwrap().pulled(), found(D));
        map.insert(
            ImageRef::parse("gone:1").unwrap().pulled(),
            Resolution::NotFound,
        );
        map.insert(
            ImageRef::parse("priv:1").unwrap().pulled(),
            Resolution::Denied("401".into()),
        );
        map.insert(
            ImageRef::parse(&format!("pin@{D}")).unwrap().pulled(),
            found(D),
        );
        map.insert(ImageRef::parse("pin:1").unwrap().pulled(), found(E));
        let occs = vec![
            occ("ok:1"),
            occ("gone:1"),
            occ("priv:1"),
            occ(&format!("pin:1@{D}")),
            occ("${TAG}"),
            occ("Bad"),
        ];
        let e = entries(occs, Some(&map));
        let statuses: Vec<Status> = e.iter().map(|e| e.status).collect();
        assert_eq!(
            statuses,
            [
                Status::Ok,
                Status::NotFound,
                Status::NotFoundOrDenied,
                Status::Ok,
                Status::UnresolvedVariable,
                Status::Invalid
            ]
        );
        assert_eq!(e[3].finding.as_ref().unwrap().code, Code::TagDigestMismatch);
        assert!(
            e[2].finding
                .as_ref()
                .unwrap()
                .hint
                .as_ref()
                .unwrap()
                .contains("docker login docker.io")
        );

        let report = |entries: Vec<Entry>| Report {
            sources: vec![],
            entries,
            file_findings: vec![],
            summary: Summary::default(),
            git: None,
            repo_root: None,
            undecided: Default::default(),
        };
        assert_eq!(report(e.clone()).exit_code(), 1);
        let undecided: Vec<Entry> = e
            .iter()
            .filter(|x| x.status != Status::NotFound && x.status != Status::Invalid)
            .cloned()
            .collect();
        assert_eq!(report(undecided).exit_code(), 3);
        let fine: Vec<Entry> = e
            .iter()
            .filter(|x| x.status == Status::Ok || x.status == Status::UnresolvedVariable)
            .cloned()
            .collect();
        assert_eq!(report(fine).exit_code(), 0);
        let s = summarise(&e, &[], 1);
        assert_eq!(
            (
                s.references,
                s.unique,
                s.ok,
                s.not_found,
                s.undecided,
                s.invalid
            ),
            (6, 4, 2, 1, 1, 1)
        );
    }
}
