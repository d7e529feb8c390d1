//! The trust boundary between the people who run imagegate and the repository it checks.
//! Flags, the environment, a trusted config file (`--config`, `$IMAGEGATE_CONFIG`, or
//! `~/.config/imagegate/config.yaml`) and the user's own docker/podman files are trusted. The
//! repository's `.imagegate.yaml` is written by the person whose change is checked, so this
//! module reads it under rules: it may narrow the check, never choose where a credential
//! goes, weaken the transport of a host that gets credentials, or read outside the
//! repository. README's "Security model" is the prose of these rules.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config, CredentialSource, RegistrySettings};
use crate::error::Error;
use crate::finding::Code;

/// How long the credential search for a host whose transport the repository weakens may
/// take (it may run a credential helper).
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// `PATH` without its relative entries (`.`, an empty entry, `bin`), when it has any:
/// imagegate runs credential helpers and git by name, and a relative entry would find them
/// in the repository under check.
pub fn absolute_path_entries() -> Option<std::ffi::OsString> {
    let path = std::env::var_os("PATH")?;
    let entries: Vec<PathBuf> = std::env::split_paths(&path).collect();
    if entries.iter().all(|p| p.is_absolute()) {
        return None;
    }
    std::env::join_paths(entries.into_iter().filter(|p| p.is_absolute())).ok()
}

/// A problem or note about the config, shown as a finding at a place in a config file.
#[derive(Debug, Clone)]
pub struct ConfigFinding {
    pub code: Code,
    /// The config file (as read; its text may come from git).
    pub path: PathBuf,
    pub text: String,
    pub offset: usize,
    pub message: String,
    pub hint: String,
}

/// The settings the config files give, merged, with what the repository's file says kept
/// apart where it may only narrow.
#[derive(Debug, Default)]
pub struct Merged {
    /// Trusted values win; the repository fills in what they leave unset. Relative paths
    /// are made absolute (and the repository's confined to the repository).
    pub config: Config,
    /// The repository's `policy.allowed-registries`: a reference must match these as well as
    /// the trusted list.
    pub repo_allowed: Vec<String>,
    pub findings: Vec<ConfigFinding>,
}

/// The trusted config file: `--config PATH`, else `$IMAGEGATE_CONFIG`, else the user's own
/// `$XDG_CONFIG_HOME/imagegate/config.yaml` (`~/.config/imagegate/config.yaml`) when it exists.
pub fn trusted_path(explicit: Option<&Path>) -> Option<PathBuf> {
    use crate::env::var as env;
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    if let Some(p) = env("IMAGEGATE_CONFIG") {
        return Some(PathBuf::from(p));
    }
    Some(
        crate::paths::config_home()?
            .join("imagegate")
            .join("config.yaml"),
    )
    .filter(|p| p.is_file())
}

/// Reads the trusted config, if there is one.
pub fn load_trusted(explicit: Option<&Path>) -> Result<Option<Config>, Error> {
    trusted_path(explicit)
        .map(|p| config::load_file(&p))
        .transpose()
}

/// The repository's config as it is on disk (`--all`, `inspect`, `auth`): the nearest
/// `.imagegate.yaml` from `cwd` up to the repository root. The trusted file, when it is the
/// same file, is not read twice.
pub fn load_repo_from_disk(cwd: &Path, trusted: Option<&Config>) -> Result<Option<Config>, Error> {
    let Some(path) = config::find(cwd) else {
        return Ok(None);
    };
    let same = |t: &Config| {
        t.path
            .as_deref()
            .and_then(|p| p.canonicalize().ok())
            .is_some_and(|p| path.canonicalize().is_ok_and(|q| q == p))
    };
    if trusted.is_some_and(same) {
        return Ok(None);
    }
    config::load_file(&path).map(Some)
}

/// The repository's config text at a commit (the merge base of a diff check): the nearest
/// `.imagegate.yaml` from `cwd`'s place in the repository up to its root. Returns the path
/// it would have on disk and its text.
pub fn repo_config_text(
    read: &dyn Fn(&Path) -> Option<Vec<u8>>,
    root: &Path,
    cwd: &Path,
) -> Option<(PathBuf, String)> {
    let rel = cwd.strip_prefix(root).unwrap_or(Path::new(""));
    rel.ancestors().find_map(|dir| {
        let path = dir.join(config::FILE_NAME);
        let bytes = read(&path)?;
        Some((
            root.join(path),
            String::from_utf8_lossy(&bytes).into_owned(),
        ))
    })
}

/// The repository root a repository config may read under: the git work tree that holds
/// it, else its own directory.
pub fn repo_root_of(config_path: &Path) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    crate::paths::find_repo_root(&dir).unwrap_or(dir)
}

/// Whether `path` (relative to `base`, or absolute) stays inside `root` once symbolic links
/// are resolved. A path that does not exist yet is judged by its text.
pub fn confined(root: &Path, base: &Path, path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if p.is_absolute() {
        return None;
    }
    let joined = base.join(p);
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    match joined.canonicalize() {
        Ok(real) => real.starts_with(&root).then_some(real),
        Err(_) => {
            // Lexically: `..` may not climb out.
            let mut depth: isize = 0;
            let inside = base
                .canonicalize()
                .ok()
                .and_then(|b| b.strip_prefix(&root).ok().map(|r| r.components().count()))
                .unwrap_or(0) as isize;
            for c in p.components() {
                match c {
                    std::path::Component::ParentDir => depth -= 1,
                    std::path::Component::Normal(_) => depth += 1,
                    _ => {}
                }
                if inside + depth < 0 {
                    return None;
                }
            }
            Some(joined)
        }
    }
}

/// Merges the trusted config and the repository's under the rules of the trust boundary.
pub fn merge(trusted: Option<Config>, repo: Option<Config>) -> Result<Merged, Error> {
    let mut merged = Merged::default();
    let trusted = trusted.map(absolutise_trusted).unwrap_or_default();
    let Some(repo) = repo else {
        merged.config = Config {
            path: None,
            text: None,
            ..trusted
        };
        return Ok(merged);
    };
    let repo = confine_repo(repo, &mut merged.findings);
    refuse_chosen_secrets(&repo)?;
    refuse_switching_undecided_off(&repo)?;
    refuse_chosen_programs(&repo)?;
    refuse_weakened_credentialed_hosts(&trusted, &repo)?;
    let t = trusted;
    let joined = |a: &[String], b: &[String]| [a, b].concat();
    let mut registries: BTreeMap<String, RegistrySettings> = repo
        .registries
        .keys()
        .chain(t.registries.keys())
        .map(|h| (canonical(h), RegistrySettings::default()))
        .collect();
    for (host, entry) in registries.iter_mut() {
        let find = |c: &Config| {
            c.registries
                .iter()
                .find(|(h, _)| canonical(h) == *host)
                .map(|(_, s)| s.clone())
                .unwrap_or_default()
        };
        let (ts, rs) = (find(&t), find(&repo));
        *entry = RegistrySettings {
            concurrency: ts.concurrency.or(rs.concurrency),
            requests_per_second: ts.requests_per_second.or(rs.requests_per_second),
            timeout: ts.timeout.or(rs.timeout),
            ca_file: ts.ca_file.or(rs.ca_file),
            client_cert: ts.client_cert.clone().or(rs.client_cert.clone()),
            client_key: if ts.client_cert.is_some() {
                ts.client_key
            } else {
                rs.client_key
            },
            insecure: ts.insecure.or(rs.insecure),
            mirrors: if ts.mirrors.is_empty() {
                rs.mirrors
            } else {
                ts.mirrors
            },
            rewrite: ts.rewrite.or(rs.rewrite),
            credentials: ts.credentials.or(rs.credentials),
        };
    }
    merged.repo_allowed = repo.policy.allowed_registries.clone();
    merged.config = Config {
        path: None,
        text: None,
        include: if t.include.is_empty() {
            repo.include
        } else {
            t.include
        },
        exclude: joined(&t.exclude, &repo.exclude),
        skip: joined(&t.skip, &repo.skip),
        helm_values: joined(&t.helm_values, &repo.helm_values),
        variables: joined(&t.variables, &repo.variables),
        strict: t.strict || repo.strict,
        // The repository may turn its guesses off, as it may skip images: in a diff the
        // merge base's config applies, so a change cannot hide its own images this way.
        image_heuristic: t.image_heuristic.or(repo.image_heuristic),
        insecure_registries: joined(&t.insecure_registries, &repo.insecure_registries),
        policy: config::Policy {
            deny_latest: t.policy.deny_latest || repo.policy.deny_latest,
            require_digest: t.policy.require_digest || repo.policy.require_digest,
            // The trusted list is the ceiling; the repository's is kept apart to narrow it.
            allowed_registries: t.policy.allowed_registries,
            platforms: joined(&t.policy.platforms, &repo.policy.platforms),
        },
        registries,
        cache: config::CacheSettings {
            enabled: t.cache.enabled.or(repo.cache.enabled),
            tag_ttl: t.cache.tag_ttl.or(repo.cache.tag_ttl),
        },
        undecided: t.undecided.or(repo.undecided),
        // The repository may ask for the real engine (it only adds checks), never name it.
        render: t.render.or(repo.render),
        engines: t.engines,
    };
    Ok(merged)
}

/// `docker.io` for Docker Hub's other names; other hosts lower-cased.
fn canonical(host: &str) -> String {
    crate::resolve::hosts::canonical_host(host)
}

/// A trusted config's relative paths, made absolute against its directory.
fn absolutise_trusted(mut c: Config) -> Config {
    let base = c.dir();
    let abs = |p: &mut String| *p = base.join(&*p).to_string_lossy().into_owned();
    c.variables.iter_mut().for_each(abs);
    // A bare program name is looked up on `PATH`; a path is the file's.
    [&mut c.engines.kustomize, &mut c.engines.helm]
        .into_iter()
        .flatten()
        .filter(|p| p.contains('/') || p.contains(std::path::MAIN_SEPARATOR))
        .for_each(abs);
    for s in c.registries.values_mut() {
        for p in [&mut s.ca_file, &mut s.client_cert, &mut s.client_key]
            .into_iter()
            .flatten()
        {
            abs(p);
        }
    }
    c
}

/// The repository config with every file it names resolved inside the repository. A path
/// that leads outside (absolute, `..`, or a symbolic link) is not read: it is dropped, and
/// a `path-escape` finding says so at the key.
fn confine_repo(mut c: Config, findings: &mut Vec<ConfigFinding>) -> Config {
    let Some(path) = c.path.clone() else {
        return c;
    };
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = repo_root_of(&path);
    let mut escape = |keys: &[&str], value: &str| {
        findings.push(ConfigFinding {
            code: Code::PathEscape,
            path: path.clone(),
            text: c.text.clone().unwrap_or_default(),
            offset: c.offset(keys),
            message: format!(
                "`{}` names `{value}`, which is outside the repository; it is not read",
                keys.join(".")
            ),
            hint: "name a file inside the repository; files outside it belong in a trusted config (--config, $IMAGEGATE_CONFIG)".into(),
        });
    };
    let mut kept = Vec::new();
    for (i, v) in c.variables.iter().enumerate() {
        match confined(&root, &base, v) {
            Some(p) => kept.push(p.to_string_lossy().into_owned()),
            None => escape(&["variables", &i.to_string()], v),
        }
    }
    let mut registries = c.registries.clone();
    for (host, s) in registries.iter_mut() {
        for (key, slot) in [
            ("ca-file", &mut s.ca_file),
            ("client-cert", &mut s.client_cert),
            ("client-key", &mut s.client_key),
        ] {
            if let Some(v) = slot.clone() {
                match confined(&root, &base, &v) {
                    Some(p) => *slot = Some(p.to_string_lossy().into_owned()),
                    None => {
                        escape(&["registries", host, key], &v);
                        *slot = None;
                    }
                }
            }
        }
        if s.client_cert.is_none() != s.client_key.is_none() {
            s.client_cert = None;
            s.client_key = None;
        }
    }
    c.variables = kept;
    c.registries = registries;
    c
}

fn trusted_elsewhere() -> &'static str {
    "a trusted config (--config outside the checkout, $IMAGEGATE_CONFIG, or ~/.config/imagegate/config.yaml)"
}

/// A repository config may not bind a secret of the environment to a host: that would let
/// the change under check send `$GITHUB_TOKEN` (say) to a host of its choice.
fn refuse_chosen_secrets(repo: &Config) -> Result<(), Error> {
    for (host, s) in &repo.registries {
        if let Some(CredentialSource::Env(var)) = &s.credentials {
            return Err(repo.error_at(
                &["registries", host, "credentials", "env"],
                format!(
                    "`registries.{host}.credentials.env` ({var}) is not honoured from the repository's config: a change under check could send any secret of the environment to a host of its choosing. Bind ${var} to {host} in {}",
                    trusted_elsewhere()
                ),
            ));
        }
    }
    Ok(())
}

/// A repository config may not let undecided references pass: `undecided: warn` turns an
/// unreachable registry or an ambiguous 401 into exit 0, which only the people running the
/// check may choose.
fn refuse_switching_undecided_off(repo: &Config) -> Result<(), Error> {
    if repo.undecided == Some(crate::undecided::Undecided::Warn) {
        return Err(repo.error_at(
            &["undecided"],
            format!(
                "`undecided: warn` is not honoured from the repository's config: it would let a check that cannot decide pass. Set it with --undecided warn, IMAGEGATE_UNDECIDED=warn or in {}",
                trusted_elsewhere()
            ),
        ));
    }
    Ok(())
}

/// A repository config may not name a program for `--render` to run: `engines.kustomize:
/// ./x.sh` (or `engines.helm`) would run a file of the change's choosing. Turning `render`
/// on is its to ask.
fn refuse_chosen_programs(repo: &Config) -> Result<(), Error> {
    for (key, program, flag) in [
        (
            "kustomize",
            &repo.engines.kustomize,
            "--kustomize, IMAGEGATE_KUSTOMIZE",
        ),
        ("helm", &repo.engines.helm, "--helm, IMAGEGATE_HELM"),
    ] {
        if let Some(program) = program {
            return Err(repo.error_at(
                &["engines", key],
                format!(
                    "`engines.{key}` ({program}) is not honoured from the repository's config: it would run a program of the change's choosing. Name it with {flag} or in {}",
                    trusted_elsewhere()
                ),
            ));
        }
    }
    Ok(())
}

/// A repository config may weaken a host's transport (plain HTTP, unverified TLS, its own
/// CA) only where no credential goes: for a host that trusted sources give credentials,
/// that would hand them to whoever sits on the path.
fn refuse_weakened_credentialed_hosts(trusted: &Config, repo: &Config) -> Result<(), Error> {
    let mut weakened: Vec<(String, Vec<String>)> = Vec::new();
    for (i, h) in repo.insecure_registries.iter().enumerate() {
        weakened.push((h.clone(), vec!["insecure-registries".into(), i.to_string()]));
    }
    for (host, s) in &repo.registries {
        if s.insecure == Some(true) {
            weakened.push((
                host.clone(),
                vec!["registries".into(), host.clone(), "insecure".into()],
            ));
        }
        if s.ca_file.is_some() {
            weakened.push((
                host.clone(),
                vec!["registries".into(), host.clone(), "ca-file".into()],
            ));
        }
    }
    for (host, keys) in weakened {
        let canon = canonical(&host);
        let setting = |c: &Config| {
            c.registries
                .iter()
                .find(|(h, _)| canonical(h) == canon)
                .and_then(|(_, s)| s.credentials.clone())
        };
        // The trusted config decides the host's credentials when it names them.
        let source = setting(trusted).or_else(|| setting(repo));
        if matches!(source, Some(CredentialSource::Anonymous)) {
            continue;
        }
        if let Some(found) = credentials_found(&canon, source) {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            return Err(repo.error_at(
                &keys,
                format!(
                    "the repository's config weakens the transport of {host} (`{}`), and {host} gets credentials from {found}; a repository config may not weaken TLS for a host that is sent credentials. Set it in {}, or set `registries.{host}.credentials: anonymous`",
                    keys.join("."),
                    trusted_elsewhere()
                ),
            ));
        }
    }
    Ok(())
}

/// Where a host's credentials would come from (never the secret), if any are found.
fn credentials_found(host: &str, source: Option<CredentialSource>) -> Option<String> {
    let host = host.to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let found = crate::resolve::credentials::lookup(&host, source.as_ref());
        let _ = tx.send(found);
    });
    match rx.recv_timeout(LOOKUP_TIMEOUT) {
        Ok(found) => found
            .host
            .as_ref()
            .or_else(|| found.namespaces.first().map(|(_, s)| s))
            .map(|s| s.source.clone()),
        // A helper that hangs cannot prove there is nothing to protect.
        Err(_) => Some("a credential helper that did not answer in time".into()),
    }
}

/// The note for a change that edits the repository's config: a diff check reads it at the
/// merge base, so the edit takes effect once merged.
pub fn config_change_note(
    path: &Path,
    base_text: Option<&str>,
    head_text: Option<&str>,
) -> Option<ConfigFinding> {
    if base_text == head_text {
        return None;
    }
    let changed = config::changed_keys(base_text, head_text);
    let offset = changed.iter().map(|(_, o)| *o).min().unwrap_or(0);
    let keys: Vec<&str> = changed.iter().map(|(k, _)| k.as_str()).collect();
    let what = if keys.is_empty() {
        "its text".to_string()
    } else {
        format!("`{}`", keys.join("`, `"))
    };
    let verb = match (base_text, head_text) {
        (None, _) => "adds",
        (_, None) => "deletes",
        _ => "edits",
    };
    Some(ConfigFinding {
        code: Code::ConfigChanged,
        path: path.to_path_buf(),
        text: head_text.unwrap_or_default().to_string(),
        offset,
        message: format!(
            "the change {verb} {} ({what}); this check uses the config of the merge base, so the change takes effect once it is merged",
            config::FILE_NAME
        ),
        hint: "a change cannot loosen the check that judges it: settings from the branch under review apply after review".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, text: &str) -> Config {
        let path = dir.join(config::FILE_NAME);
        std::fs::write(&path, text).unwrap();
        config::load_file(&path).unwrap()
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/vars.yaml"), "x: 1\n").unwrap();
        assert!(confined(&root, &root, "a/vars.yaml").is_some());
        assert!(confined(&root, &root.join("a/b"), "../vars.yaml").is_some());
        assert!(confined(&root, &root, "/etc/passwd").is_none());
        assert!(confined(&root, &root, "../outside.yaml").is_none());
        assert!(confined(&root, &root.join("a"), "../../x").is_none());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
            assert!(confined(&root, &root, "link/hostname").is_none());
        }
    }

    #[test]
    fn the_repository_narrows_allowed_registries_and_cannot_bind_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let t = tempfile::tempdir().unwrap();
        let trusted = cfg(t.path(), "policy:\n  allowed-registries: [ghcr.io]\n");
        let repo = cfg(
            dir.path(),
            "policy:\n  allowed-registries: [ghcr.io/acme/**, evil.example]\nskip: [a/**]\n",
        );
        let m = merge(Some(trusted.clone()), Some(repo)).unwrap();
        assert_eq!(m.config.policy.allowed_registries, ["ghcr.io"]);
        assert_eq!(m.repo_allowed, ["ghcr.io/acme/**", "evil.example"]);
        assert_eq!(m.config.skip, ["a/**"]);
        let repo = cfg(
            dir.path(),
            "registries:\n  evil.example:\n    credentials:\n      env: GITHUB_TOKEN\n",
        );
        let e = merge(Some(trusted), Some(repo)).unwrap_err().to_string();
        assert!(e.contains(".imagegate.yaml:4:12"), "{e}");
        assert!(
            e.contains("GITHUB_TOKEN") && e.contains("trusted config"),
            "{e}"
        );
    }

    #[test]
    fn changed_keys_are_named_where_they_are() {
        let old = "skip: []\nregistries:\n  ghcr.io:\n    concurrency: 4\n";
        let new = "skip: ['**']\nregistries:\n  ghcr.io:\n    concurrency: 4\n  docker.io:\n    mirrors: [evil.example]\n";
        let keys = config::changed_keys(Some(old), Some(new));
        let names: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["registries.docker.io", "skip"]);
        assert_eq!(&new[keys[1].1..keys[1].1 + 6], "['**']");
        assert!(config_change_note(Path::new("c"), Some(old), Some(old)).is_none());
    }
}
