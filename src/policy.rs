//! The team's rules, applied to the references a check found: `skip` globs and inline
//! `# imagegate: ignore` comments take references out of the check, and the policy rules
//! (deny-latest, require-digest, allowed-registries, platforms) add error findings.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::check::{Entry, Status};
use crate::config::Policy;
use crate::error::Error;
use crate::finding::{Code, Finding};
use crate::image_ref::ImageRef;
use crate::manifest::Occurrence;
use crate::source::SourceFile;

/// The comment that skips a reference on its line, or on the line below it.
pub const IGNORE_COMMENT: &str = "imagegate: ignore";

/// Compiled rules for a run.
#[derive(Debug)]
pub struct Rules {
    skip: Patterns,
    /// The trusted allowed list (flags and the trusted config): the ceiling.
    allowed: Patterns,
    /// The repository config's allowed list, which can only narrow the ceiling.
    repo_allowed: Patterns,
    pub policy: Policy,
}

/// Image globs: a pattern with no `/` names a registry host; others match the normalised
/// name (`docker.io/library/nginx`), the full reference, and the text as written.
#[derive(Debug)]
struct Patterns {
    hosts: GlobSet,
    names: GlobSet,
    empty: bool,
}

impl Patterns {
    fn new(patterns: &[String], what: &str) -> Result<Patterns, Error> {
        let mut hosts = GlobSetBuilder::new();
        let mut names = GlobSetBuilder::new();
        for p in patterns {
            let glob = Glob::new(p).map_err(|e| Error::Glob {
                glob: format!("{p} ({what})"),
                source: e,
            })?;
            if p.contains('/') {
                names.add(glob);
            } else {
                hosts.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build().map_err(|e| Error::Glob {
                glob: patterns.join(", "),
                source: e,
            })
        };
        Ok(Patterns {
            hosts: build(hosts)?,
            names: build(names)?,
            empty: patterns.is_empty(),
        })
    }

    fn matches(&self, written: &str, r: Option<&ImageRef>) -> bool {
        if self.names.is_match(written) {
            return true;
        }
        r.is_some_and(|r| {
            self.hosts.is_match(&r.domain)
                || self.names.is_match(format!("{}/{}", r.domain, r.path))
                || self.names.is_match(r.canonical())
        })
    }
}

impl Rules {
    pub fn new(skip: &[String], policy: &Policy, repo_allowed: &[String]) -> Result<Rules, Error> {
        Ok(Rules {
            skip: Patterns::new(skip, "skip")?,
            allowed: Patterns::new(&policy.allowed_registries, "allowed-registries")?,
            repo_allowed: Patterns::new(repo_allowed, "allowed-registries")?,
            policy: policy.clone(),
        })
    }

    /// Whether a reference's registry is allowed: by the trusted list when there is one,
    /// and by the repository's when there is one.
    fn allowed(&self, written: &str, r: &ImageRef) -> bool {
        [&self.allowed, &self.repo_allowed]
            .iter()
            .all(|p| p.empty || p.matches(written, Some(r)))
    }

    /// The finding for an occurrence that is never asked about: its registry is not allowed,
    /// or it names a destination imagegate never contacts. Decided before any request, so a
    /// reference cannot make imagegate contact a host the policy or deny list rules out.
    /// `classified` is the occurrence read as a reference ([`crate::check::classify`]).
    pub fn refused(
        &self,
        o: &Occurrence,
        classified: &crate::check::Classified,
        destinations: &crate::resolve::destinations::Destinations,
    ) -> Option<Finding> {
        let r = match classified {
            crate::check::Classified::Ref(r) | crate::check::Classified::Range(r, _) => r,
            _ => return None,
        };
        let written = match &o.value {
            crate::manifest::ImageValue::Text(t) => std::borrow::Cow::Borrowed(t.as_str()),
            _ => std::borrow::Cow::Owned(r.canonical()),
        };
        let finding = |code: Code, message: String, hint: &str| Finding {
            code,
            message,
            hint: Some(hint.to_string()),
            location: Some(o.location),
            image: Some(written.to_string()),
        };
        if let Some(why) = destinations.denies_host(&r.domain) {
            return Some(finding(
                Code::DeniedDestination,
                format!("`{written}` was not checked: {why}"),
                "imagegate never contacts link-local or cloud-metadata addresses, nor what --deny-destination names",
            ));
        }
        (!self.allowed(&written, r)).then(|| {
            finding(
                Code::PolicyRegistry,
                format!(
                    "`{written}` comes from {}, which the allowed-registries policy does not list; it was not asked",
                    r.domain
                ),
                "use an image from an allowed registry, or add it to policy.allowed-registries",
            )
        })
    }

    /// Why an occurrence is not checked, if it is not: an ignore comment or a skip glob.
    pub fn passed_over(&self, o: &Occurrence, source: &SourceFile) -> Option<String> {
        if has_ignore_comment(source, o.location.start) {
            return Some(format!("`# {IGNORE_COMMENT}` comment"));
        }
        if self.skip.empty {
            return None;
        }
        let written = match &o.value {
            crate::manifest::ImageValue::Text(t) => t.as_str(),
            _ => return None,
        };
        let parsed = ImageRef::parse(written).ok();
        self.skip
            .matches(written, parsed.as_ref())
            .then(|| "a `skip` glob".to_string())
    }

    /// The policy finding for an entry, when a rule is broken and nothing worse was found.
    pub fn check(
        &self,
        e: &Entry,
        platforms: Option<&Result<Vec<String>, String>>,
    ) -> Option<Finding> {
        let r = e.reference.as_ref()?;
        let written = &e.written;
        if !self.allowed(written, r) {
            return Some(e.finding_about(
                Code::PolicyRegistry,
                format!(
                    "`{written}` comes from {}, which the allowed-registries policy does not list",
                    r.domain
                ),
                "use an image from an allowed registry, or add it to policy.allowed-registries",
            ));
        }
        if self.policy.require_digest && r.digest.is_none() {
            return Some(e.finding_about(
                Code::PolicyDigest,
                format!("`{written}` is not pinned by digest"),
                "pin it: name:tag@sha256:…, as `imagegate inspect` prints",
            ));
        }
        if self.policy.deny_latest
            && r.digest.is_none()
            && r.tag.as_deref().is_none_or(|t| t == "latest")
        {
            return Some(e.finding_about(
                Code::PolicyLatest,
                format!("`{written}` pulls `latest`, which moves"),
                "pin a version tag or a digest",
            ));
        }
        if !self.policy.platforms.is_empty() && e.status == Status::Ok {
            match platforms? {
                Ok(have) => {
                    let missing: Vec<&str> = self
                        .policy
                        .platforms
                        .iter()
                        .filter(|want| !have.iter().any(|h| platform_matches(want, h)))
                        .map(String::as_str)
                        .collect();
                    if !missing.is_empty() {
                        let have = if have.is_empty() {
                            "none that it declares".to_string()
                        } else {
                            have.join(", ")
                        };
                        return Some(e.finding_about(
                            Code::PolicyPlatform,
                            format!(
                                "`{written}` has no image for {} (it has {have})",
                                missing.join(", ")
                            ),
                            "use a multi-platform image, or build and push the missing platforms",
                        ));
                    }
                }
                Err(why) => {
                    return Some(e.finding_about(
                        Code::RegistryError,
                        format!("`{written}`: its platforms could not be read: {why}"),
                        "retry; the platform policy cannot pass without them",
                    ));
                }
            }
        }
        None
    }
}

/// `linux/arm64` is met by `linux/arm64` and `linux/arm64/v8`; a wanted variant must match.
pub fn platform_matches(want: &str, have: &str) -> bool {
    have == want
        || have
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether the line of `offset`, or the line above it, holds the ignore comment.
fn has_ignore_comment(source: &SourceFile, offset: usize) -> bool {
    let text: &str = &source.text;
    let line_start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let comment = |l: &str| {
        l.split_once('#')
            .is_some_and(|(_, c)| c.trim_start().starts_with(IGNORE_COMMENT))
    };
    if comment(line) {
        return true;
    }
    if line_start == 0 {
        return false;
    }
    let above_end = line_start - 1;
    let above_start = text[..above_end].rfind('\n').map_or(0, |i| i + 1);
    let above = text[above_start..above_end].trim_start();
    above.starts_with('#') && comment(above)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Location;
    use crate::manifest::ImageValue;

    fn occurrence(text: &str, image: &str) -> (Occurrence, SourceFile) {
        let start = text.find(image).unwrap();
        let o = Occurrence {
            location: Location {
                file: 0,
                start,
                end: start + image.len(),
            },
            value: ImageValue::Text(image.into()),
            context: String::new(),
            previous: None,
        };
        (o, SourceFile::new("f.yaml".into(), text))
    }

    #[test]
    fn ignore_comments_on_the_line_or_above() {
        let rules = Rules::new(&[], &Policy::default(), &[]).unwrap();
        let cases = [
            ("image: a:1 # imagegate: ignore\n", true),
            ("  # imagegate: ignore (vendored)\n  image: a:1\n", true),
            ("x: 1\n#imagegate: ignore\nimage: a:1\n", true),
            ("image: a:1\n", false),
            ("# imagegate: ignore\nother: 1\nimage: a:1\n", false),
            ("note: 'imagegate: ignore'\nimage: a:1\n", false),
            ("image: a:1 # imagegate: check\n", false),
        ];
        for (text, ignored) in cases {
            let (o, s) = occurrence(text, "a:1");
            assert_eq!(rules.passed_over(&o, &s).is_some(), ignored, "{text}");
        }
    }

    #[test]
    fn skip_globs_match_hosts_names_and_text() {
        let skip = vec![
            "registry.internal".to_string(),
            "docker.io/library/*".to_string(),
            "*.corp.example/**".to_string(),
        ];
        let rules = Rules::new(&skip, &Policy::default(), &[]).unwrap();
        let passed = |image: &str| {
            let (o, s) = occurrence(&format!("image: {image}\n"), image);
            rules.passed_over(&o, &s).is_some()
        };
        assert!(passed("registry.internal/team/app:1"));
        assert!(passed("nginx:1.27"));
        assert!(passed("git.corp.example/a/b:2"));
        assert!(!passed("ghcr.io/acme/app:1"));
        assert!(!passed("bitnami/redis:7"));
    }

    #[test]
    fn platforms_match_with_and_without_variants() {
        assert!(platform_matches("linux/arm64", "linux/arm64/v8"));
        assert!(platform_matches("linux/amd64", "linux/amd64"));
        assert!(!platform_matches("linux/arm64", "linux/arm"));
        assert!(!platform_matches("linux/arm/v7", "linux/arm/v6"));
    }
}
