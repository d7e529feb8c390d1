//! Parses and normalises image references exactly as Docker and containerd do, so that a
//! reference we call valid is one kubelet can pull and one we call invalid is one kubelet
//! rejects with `InvalidImageName`.
//!
//! The grammar and the normalisation rules follow distribution/reference v0.6
//! (`reference.go`, `normalize.go`) and go-digest. Everything here is a pure function.

use std::fmt;

/// Docker Hub's canonical domain.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const MAX_PATH_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// Registry domain, possibly with a port (`docker.io`, `localhost:5000`, `[::1]:5000`).
    pub domain: String,
    /// Repository path within the registry (`library/nginx`).
    pub path: String,
    /// Tag as written, if any.
    pub tag: Option<String>,
    /// Digest as written, if any (`sha256:…`).
    pub digest: Option<String>,
}

/// Why a reference is invalid. Each message reads like the reason kubelet would give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("the reference is empty")]
    Empty,
    #[error("the reference contains whitespace")]
    Whitespace,
    #[error("a 64-character hexadecimal string is an image ID, not a repository name")]
    HexIdentifier,
    #[error("repository name `{0}` must be lowercase")]
    Uppercase(String),
    #[error("registry host `{0}` is not a valid host[:port]")]
    InvalidDomain(String),
    #[error(
        "repository name `{0}` is not valid: components are lowercase letters and digits separated by `.`, `_`, `__` or `-`"
    )]
    InvalidPath(String),
    #[error("repository name is longer than {MAX_PATH_LEN} characters")]
    NameTooLong,
    #[error(
        "tag `{0}` is not valid: it must start with a letter, digit or `_` and contain only letters, digits, `_`, `.` and `-`"
    )]
    InvalidTag(String),
    #[error("tag is longer than {MAX_TAG_LEN} characters")]
    TagTooLong,
    #[error("digest `{0}` is not of the form algorithm:hex")]
    InvalidDigest(String),
    #[error("unsupported digest algorithm `{0}` (sha256 and sha512 are supported)")]
    UnsupportedDigest(String),
    #[error("{algorithm} digest must be {expected} lowercase hexadecimal characters")]
    DigestLength {
        algorithm: &'static str,
        expected: usize,
    },
}

impl ImageRef {
    /// Parses a reference as `ParseNormalizedNamed` does, adding nothing: use
    /// [`ImageRef::canonical`] for the fully qualified form.
    pub fn parse(s: &str) -> Result<ImageRef, RefError> {
        if s.is_empty() {
            return Err(RefError::Empty);
        }
        if s.chars().any(char::is_whitespace) {
            return Err(RefError::Whitespace);
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(RefError::HexIdentifier);
        }
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        let (name, tag) = split_tag(name_tag);
        let (domain, path) = split_domain(name);
        // Upper case in the repository path is its own, clearer error (as in normalize.go).
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(RefError::Uppercase(path.to_string()));
        }
        if let Some(d) = &domain {
            validate_domain(d)?;
        }
        validate_path(path)?;
        if let Some(t) = tag {
            validate_tag(t)?;
        }
        if let Some(d) = digest {
            validate_digest(d)?;
        }
        let domain = match domain {
            None => DOCKER_HUB.to_string(),
            Some("index.docker.io") => DOCKER_HUB.to_string(),
            Some(d) => d.to_string(),
        };
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        // As in ParseNormalizedNamed, the limit applies to the normalised path, `library/`
        // included (found by fuzzing, issue 7).
        if path.len() > MAX_PATH_LEN {
            return Err(RefError::NameTooLong);
        }
        Ok(ImageRef {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The reference that is pulled: the digest when there is one, else the tag, else `latest`.
    pub fn pull_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Fully qualified form, `docker.io/library/nginx:latest`. A reference with neither tag
    /// nor digest gets `:latest`, as kubelet adds it.
    pub fn canonical(&self) -> String {
        let mut s = format!("{}/{}", self.domain, self.path);
        match (&self.tag, &self.digest) {
            (None, None) => s.push_str(":latest"),
            (tag, digest) => {
                if let Some(t) = tag {
                    s.push(':');
                    s.push_str(t);
                }
                if let Some(d) = digest {
                    s.push('@');
                    s.push_str(d);
                }
            }
        }
        s
    }

    /// The host that serves the registry API for this reference's domain.
    pub fn api_host(&self) -> &str {
        if self.domain == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.domain
        }
    }

    /// The same reference pinned only by what is pulled (tag dropped when a digest exists).
    pub fn pulled(&self) -> ImageRef {
        ImageRef {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: if self.digest.is_some() {
                None
            } else {
                Some(self.pull_reference().to_string())
            },
            digest: self.digest.clone(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Splits `name[:tag]`: the tag is after the last `:` that follows the last `/`.
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    }
}

/// `splitDockerDomain`: the first component is a domain when it has `.` or `:`, is
/// `localhost`, or has upper case (so that the upper case is reported against the domain).
fn split_domain(name: &str) -> (Option<&str>, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    }
}

fn validate_domain(d: &str) -> Result<(), RefError> {
    let bad = || RefError::InvalidDomain(d.to_string());
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return Err(bad());
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(bad)?),
        };
        (None, port)
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    let valid_component = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !c.starts_with('-')
            && !c.ends_with('-')
    };
    if host.is_some_and(|h| !h.split('.').all(valid_component)) {
        return Err(bad());
    }
    Ok(())
}

fn validate_path(path: &str) -> Result<(), RefError> {
    if path.len() > MAX_PATH_LEN {
        return Err(RefError::NameTooLong);
    }
    let bad = || RefError::InvalidPath(path.to_string());
    for component in path.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(bad());
        }
        // Separators: `.`, `_`, `__`, or any run of `-`.
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if alnum(b) {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !ok {
                return Err(bad());
            }
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), RefError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    if bytes.is_empty()
        || !word(bytes[0])
        || !bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
    {
        return Err(RefError::InvalidTag(tag.to_string()));
    }
    if tag.len() > MAX_TAG_LEN {
        return Err(RefError::TagTooLong);
    }
    Ok(())
}

/// Whether a digest (a registry's `Docker-Content-Digest`, say) is well formed.
pub fn is_valid_digest(d: &str) -> bool {
    validate_digest(d).is_ok()
}

fn validate_digest(d: &str) -> Result<(), RefError> {
    let bad = || RefError::InvalidDigest(d.to_string());
    let (alg, hex) = d.split_once(':').ok_or_else(bad)?;
    // The grammar: algorithm components [A-Za-z][A-Za-z0-9]* joined by [+._-]; hex at least 32.
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            let b = c.as_bytes();
            !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
        });
    if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let (algorithm, expected) = match alg {
        "sha256" => ("sha256", 64),
        "sha512" => ("sha512", 128),
        other => return Err(RefError::UnsupportedDigest(other.to_string())),
    };
    if hex.len() != expected || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(RefError::DigestLength {
            algorithm,
            expected,
        });
    }
    Ok(())
}

/// Whether a string holds a template or variable that a tool would substitute before
/// deploying: `${VAR}`, `$(VAR)` or `{{ … }}`.
pub fn has_variable(s: &str) -> bool {
    s.contains("${") || s.contains("$(") || s.contains("{{")
}

#[cfg(test)]
mod tests {
    use super::*;

    const H64: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    /// Valid references and their canonical form. Cases follow distribution/reference's
    /// `reference_test.go` and `normalize_test.go`.
    #[test]
    fn valid_references_normalise_like_docker() {
        let d = format!("sha256:{H64}");
        let d512 = format!("sha512:{}", "a".repeat(128));
        let cases: Vec<(String, String)> = vec![
            ("nginx".into(), "docker.io/library/nginx:latest".into()),
            ("nginx:1.25".into(), "docker.io/library/nginx:1.25".into()),
            (
                "library/nginx".into(),
                "docker.io/library/nginx:latest".into(),
            ),
            (
                "docker.io/nginx".into(),
                "docker.io/library/nginx:latest".into(),
            ),
            (
                "index.docker.io/nginx".into(),
                "docker.io/library/nginx:latest".into(),
            ),
            (
                "index.docker.io/user/app:v1".into(),
                "docker.io/user/app:v1".into(),
            ),
            (
                "docker.io/library/nginx:1".into(),
                "docker.io/library/nginx:1".into(),
            ),
            ("user/app".into(), "docker.io/user/app:latest".into()),
            ("user/team/app:1".into(), "docker.io/user/team/app:1".into()),
            (
                "ghcr.io/acme/web:v1.5.0".into(),
                "ghcr.io/acme/web:v1.5.0".into(),
            ),
            ("localhost/app".into(), "localhost/app:latest".into()),
            (
                "localhost:5000/app:dev".into(),
                "localhost:5000/app:dev".into(),
            ),
            ("127.0.0.1:5000/a/b:c".into(), "127.0.0.1:5000/a/b:c".into()),
            ("[::1]:5000/app:1".into(), "[::1]:5000/app:1".into()),
            (
                "[2001:db8::1]/app".into(),
                "[2001:db8::1]/app:latest".into(),
            ),
            (
                "registry:5000/app".into(),
                "registry:5000/app:latest".into(),
            ),
            (
                "my-registry.example.com/a".into(),
                "my-registry.example.com/a:latest".into(),
            ),
            ("Example.com/app".into(), "Example.com/app:latest".into()),
            ("a.b.c/d/e/f/g".into(), "a.b.c/d/e/f/g:latest".into()),
            ("app_1:tag".into(), "docker.io/library/app_1:tag".into()),
            ("app__x".into(), "docker.io/library/app__x:latest".into()),
            ("app---x".into(), "docker.io/library/app---x:latest".into()),
            (
                "app.x-y_z".into(),
                "docker.io/library/app.x-y_z:latest".into(),
            ),
            (
                "nginx:TAG_Upper.1-x".into(),
                "docker.io/library/nginx:TAG_Upper.1-x".into(),
            ),
            (
                "nginx:_under".into(),
                "docker.io/library/nginx:_under".into(),
            ),
            (
                format!("nginx:{}", "t".repeat(128)),
                format!("docker.io/library/nginx:{}", "t".repeat(128)),
            ),
            (format!("nginx@{d}"), format!("docker.io/library/nginx@{d}")),
            (
                format!("nginx:1.25@{d}"),
                format!("docker.io/library/nginx:1.25@{d}"),
            ),
            (format!("ghcr.io/a/b@{d512}"), format!("ghcr.io/a/b@{d512}")),
            (
                format!("localhost:5000/x:y@{d}"),
                format!("localhost:5000/x:y@{d}"),
            ),
            (
                "quay.io/jetstack/cert-manager-controller:v1.14.4".into(),
                "quay.io/jetstack/cert-manager-controller:v1.14.4".into(),
            ),
            (
                "registry-1.docker.io/library/nginx".into(),
                "registry-1.docker.io/library/nginx:latest".into(),
            ),
            (
                "xn--bcher-kva.example/app".into(),
                "xn--bcher-kva.example/app:latest".into(),
            ),
            ("foo.com:8080/bar:1.0".into(), "foo.com:8080/bar:1.0".into()),
            ("a/b".into(), "docker.io/a/b:latest".into()),
            ("0/1".into(), "docker.io/0/1:latest".into()),
            (
                format!("{}/x", "a".repeat(63)),
                format!("docker.io/{}/x:latest", "a".repeat(63)),
            ),
            (
                format!("{}g", "e".repeat(63)),
                format!("docker.io/library/{}g:latest", "e".repeat(63)),
            ),
        ];
        for (input, want) in &cases {
            let got = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(&got.canonical(), want, "input {input}");
        }
        assert!(cases.len() >= 35);
    }

    #[test]
    fn invalid_references_say_why() {
        let length = |algorithm, expected| RefError::DigestLength {
            algorithm,
            expected,
        };
        let long_path = format!("ghcr.io/{}", "a".repeat(256));
        let path_255 = format!("ghcr.io/{}", "a".repeat(255));
        assert!(
            ImageRef::parse(&path_255).is_ok(),
            "255 counts the path only"
        );
        let cases: Vec<(String, RefError)> = vec![
            ("".into(), RefError::Empty),
            (" nginx".into(), RefError::Whitespace),
            ("nginx\n".into(), RefError::Whitespace),
            ("ngi nx".into(), RefError::Whitespace),
            (H64.into(), RefError::HexIdentifier),
            ("Nginx".into(), RefError::Uppercase("Nginx".into())),
            (
                "docker.io/Foo/bar".into(),
                RefError::Uppercase("Foo/bar".into()),
            ),
            (
                "ghcr.io/Acme/web:v1".into(),
                RefError::Uppercase("Acme/web".into()),
            ),
            ("-nginx".into(), RefError::InvalidPath("-nginx".into())),
            ("nginx-".into(), RefError::InvalidPath("nginx-".into())),
            ("ng..inx".into(), RefError::InvalidPath("ng..inx".into())),
            ("ng___inx".into(), RefError::InvalidPath("ng___inx".into())),
            ("ng._inx".into(), RefError::InvalidPath("ng._inx".into())),
            ("a//b".into(), RefError::InvalidPath("a//b".into())),
            ("ghcr.io/".into(), RefError::InvalidPath("".into())),
            ("ghcr.io/a/".into(), RefError::InvalidPath("a/".into())),
            ("/nginx".into(), RefError::InvalidPath("/nginx".into())),
            ("ghcr.io/a+b".into(), RefError::InvalidPath("a+b".into())),
            ("nginx:".into(), RefError::InvalidTag("".into())),
            ("nginx:-x".into(), RefError::InvalidTag("-x".into())),
            ("nginx:.x".into(), RefError::InvalidTag(".x".into())),
            ("nginx:a+b".into(), RefError::InvalidTag("a+b".into())),
            (
                "nginx:a/b".into(),
                RefError::InvalidDomain("nginx:a".into()),
            ),
            (format!("nginx:{}", "t".repeat(129)), RefError::TagTooLong),
            (long_path, RefError::NameTooLong),
            (
                "foo_bar.com:8080/x".into(),
                RefError::InvalidDomain("foo_bar.com:8080".into()),
            ),
            (
                "-foo.com/x".into(),
                RefError::InvalidDomain("-foo.com".into()),
            ),
            (
                "foo-.com/x".into(),
                RefError::InvalidDomain("foo-.com".into()),
            ),
            (
                "foo.com:/x".into(),
                RefError::InvalidDomain("foo.com:".into()),
            ),
            (
                "foo.com:abc/x".into(),
                RefError::InvalidDomain("foo.com:abc".into()),
            ),
            (
                "foo..com/x".into(),
                RefError::InvalidDomain("foo..com".into()),
            ),
            ("[::1/x".into(), RefError::InvalidDomain("[::1".into())),
            (
                "[]:5000/x".into(),
                RefError::InvalidDomain("[]:5000".into()),
            ),
            (
                "[zz::1]/x".into(),
                RefError::InvalidDomain("[zz::1]".into()),
            ),
            (
                "[::1]5000/x".into(),
                RefError::InvalidDomain("[::1]5000".into()),
            ),
            (
                "nginx@sha256".into(),
                RefError::InvalidDigest("sha256".into()),
            ),
            (
                "nginx@sha256:abc".into(),
                RefError::InvalidDigest("sha256:abc".into()),
            ),
            (
                format!("nginx@sha256:{}", "g".repeat(64)),
                RefError::InvalidDigest(format!("sha256:{}", "g".repeat(64))),
            ),
            (
                format!("nginx@sha256:{}", "a".repeat(63)),
                length("sha256", 64),
            ),
            (
                format!("nginx@sha256:{}", "a".repeat(65)),
                length("sha256", 64),
            ),
            (
                format!("nginx@sha256:{}", "A".repeat(64)),
                length("sha256", 64),
            ),
            (
                format!("nginx@sha512:{}", "a".repeat(64)),
                length("sha512", 128),
            ),
            (
                format!("nginx@md5:{}", "a".repeat(32)),
                RefError::UnsupportedDigest("md5".into()),
            ),
            (
                format!("nginx@1sha:{}", "a".repeat(64)),
                RefError::InvalidDigest(format!("1sha:{}", "a".repeat(64))),
            ),
            (
                format!("nginx@sha256:{H64}@sha256:{H64}"),
                RefError::InvalidDigest(format!("sha256:{H64}@sha256:{H64}")),
            ),
        ];
        for (input, want) in &cases {
            assert_eq!(
                ImageRef::parse(input).as_ref(),
                Err(want),
                "input {input:?}"
            );
        }
        assert!(cases.len() >= 40);
    }

    /// Regression (issue 7, fuzzing): a 250-character Docker Hub name is too long once
    /// `library/` is added, as Docker counts it; it must not parse and then fail to reparse.
    #[test]
    fn the_length_limit_counts_the_library_prefix() {
        let name = "a".repeat(250);
        assert_eq!(ImageRef::parse(&name), Err(RefError::NameTooLong));
        assert!(ImageRef::parse(&"a".repeat(247)).is_ok());
        assert!(ImageRef::parse(&format!("user/{}", "a".repeat(250))).is_ok());
    }

    #[test]
    fn pulled_reference_prefers_digest() {
        let d = format!("sha256:{H64}");
        let r = ImageRef::parse(&format!("nginx:1.25@{d}")).unwrap();
        assert_eq!(r.pull_reference(), d);
        assert_eq!(
            r.pulled().canonical(),
            format!("docker.io/library/nginx@{d}")
        );
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.pull_reference(), "latest");
        assert_eq!(r.api_host(), DOCKER_HUB_API);
        assert_eq!(
            ImageRef::parse("ghcr.io/a/b").unwrap().api_host(),
            "ghcr.io"
        );
    }

    #[test]
    fn canonical_form_reparses_to_itself() {
        for s in [
            "nginx",
            "user/app:1",
            "localhost:5000/x",
            "[::1]:5000/a/b:c",
        ] {
            let r = ImageRef::parse(s).unwrap();
            let again = ImageRef::parse(&r.canonical()).unwrap();
            assert_eq!(again.canonical(), r.canonical());
        }
    }

    #[test]
    fn variables_are_detected() {
        assert!(has_variable("ghcr.io/a:${TAG}"));
        assert!(has_variable("$(REGISTRY)/a"));
        assert!(has_variable("{{ .Values.image }}"));
        assert!(!has_variable("ghcr.io/a:v$1"));
    }
}
