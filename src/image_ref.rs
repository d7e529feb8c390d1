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

/// The registry host a reference names as written (`ghcr.io` in `ghcr.io/a/b:1`), before
/// any normalisation; `None` when Docker Hub is implied.
pub fn written_domain(s: &str) -> Option<&str> {
    let name_tag = s.split_once('@').map_or(s, |(n, _)| n);
    split_domain(split_tag(name_tag).0).0
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
#[path = "image_ref_tests.rs"]
mod tests;
