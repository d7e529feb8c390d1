//! Argo CD Applications whose `kustomize.images` (or `patches`, `components`) apply to a path
//! of this repository. Argo CD runs `kustomize edit set image` with those entries in the
//! path's kustomization, appends the patches, adds the components, then builds it
//! (util/kustomize/kustomize.go `Build`), so the path is built that way here
//! (`crate::kustomize::Edits`) and each image an entry decides is reported at the entry's line
//! in the Application. A path in another repository is checked as written, with a note.

use std::path::{Component, Path, PathBuf};

use super::{Joined, Scanned, note};
use crate::finding::{Code, Location};
use crate::kustomize::Edits;
use crate::kustomize::file::{self, PatchField};
use crate::kustomize::tree::At;
use crate::manifest::kustomize::{FILE_NAMES, Reader};
use crate::manifest::yaml::{self, Document, NodeId};
use crate::source::SourceFile;

/// A root built the way an Application deploys it.
pub(super) struct AppRoot {
    pub dir: PathBuf,
    pub edits: Edits,
    /// The Application's entries as written (the plain scan's occurrences), which the build
    /// decides instead when it succeeds.
    pub written: Vec<Location>,
}

/// The Applications of the scanned files whose `kustomize.images` apply to a path of this
/// repository, as roots to build; notes for those that are checked as written instead.
pub(super) fn roots(
    scanned: &Scanned<'_>,
    reader: &dyn Reader,
    remotes: &[String],
    j: &mut Joined,
) -> Vec<AppRoot> {
    let mut out = Vec::new();
    for (id, scan, path) in scanned.files() {
        let text = &*scan.source.text;
        if !text.contains("argoproj.io") || !text.contains("kustomize") {
            continue;
        }
        let parsed = yaml::parse(&scan.source);
        for doc in &parsed.documents {
            let Some(root) = doc.root else { continue };
            let field = |n: NodeId, keys: &[&str]| doc.get_path(n, keys).and_then(|v| doc.str(v));
            let is_app = field(root, &["kind"]) == Some("Application")
                && field(root, &["apiVersion"]).is_some_and(|a| a.starts_with("argoproj.io/"));
            if !is_app {
                continue;
            }
            let app = App {
                name: field(root, &["metadata", "name"]).unwrap_or(""),
                namespace: field(root, &["spec", "destination", "namespace"]).unwrap_or(""),
                project: field(root, &["spec", "project"]).unwrap_or(""),
            };
            for s in crate::manifest::argocd::sources(doc, root) {
                let found = Source {
                    doc,
                    node: s,
                    file: id,
                    path,
                    text,
                    app: &app,
                };
                if let Some(r) = found.root(reader, remotes, j) {
                    out.push(r);
                }
            }
        }
    }
    out
}

struct App<'a> {
    name: &'a str,
    namespace: &'a str,
    project: &'a str,
}

/// One `spec.source` or `spec.sources` item of an Application.
struct Source<'a> {
    doc: &'a Document,
    node: NodeId,
    file: usize,
    path: &'a Path,
    text: &'a str,
    app: &'a App<'a>,
}

impl Source<'_> {
    fn root(&self, reader: &dyn Reader, remotes: &[String], j: &mut Joined) -> Option<AppRoot> {
        let doc = self.doc;
        let kustomize = doc.get(self.node, "kustomize")?;
        let list = |key: &str| doc.get(kustomize, key).map(|n| doc.items(n).to_vec());
        let items = list("images").unwrap_or_default();
        let patches = list("patches").unwrap_or_default();
        let components = list("components").unwrap_or_default();
        // A Helm repository's chart is no kustomization; options that change no image
        // (namePrefix, nameSuffix, namespace, commonLabels, commonAnnotations, replicas) need
        // no build of their own (the first three are set when there is one, for contexts).
        let changes = !items.is_empty() || !patches.is_empty() || !components.is_empty();
        if !changes || doc.get(self.node, "chart").is_some() {
            return None;
        }
        let images = doc
            .get(kustomize, "images")
            .or_else(|| doc.get(kustomize, "patches"))
            .or_else(|| doc.get(kustomize, "components"))
            .unwrap_or(kustomize);
        let s = |key: &str| doc.get(self.node, key).and_then(|n| doc.str(n));
        let repo_url = s("repoURL").unwrap_or("").trim();
        let rel = s("path").unwrap_or("");
        let path_node = doc.get(self.node, "path");
        let at = |n: NodeId| doc.location(n, self.file);
        let label = format!("Application/{}", self.app.name);
        // util/app/path/path.go `Path`: an absolute path or one that leaves the repository is
        // refused.
        let Some(dir) = inside(rel) else {
            j.findings.push(note(
                Code::PathEscape,
                format!("{label} path `{rel}` leads outside the repository; its kustomize.images are checked as written"),
                "name a directory inside the repository",
                at(path_node.unwrap_or(images)),
            ));
            return None;
        };
        let same = if repo_url.is_empty() {
            FILE_NAMES
                .iter()
                .any(|n| reader.read(&dir.join(n)).is_some())
        } else {
            remotes.iter().any(|r| same_repository(r, repo_url))
        };
        if !same {
            let why = if repo_url.is_empty() {
                format!("`{rel}` holds no kustomization in this repository")
            } else if remotes.is_empty() {
                format!("this repository has no git remote to compare `{repo_url}` with")
            } else {
                format!("`{repo_url}` is another repository")
            };
            j.findings.push(note(
                Code::Skipped,
                format!(
                    "{label} kustomize.images are checked as written, not applied to `{rel}`: {why}"
                ),
                "check that repository with imagegate too, or add the remote this repoURL names",
                at(doc.get(self.node, "repoURL").unwrap_or(images)),
            ));
            return None;
        }
        let vars = |name: &str| -> Option<String> {
            // reposerver/repository/repository.go `newEnv`; the revision is the commit Argo CD
            // syncs, which the check cannot know.
            Some(match name {
                "ARGOCD_APP_NAME" => self.app.name.to_string(),
                "ARGOCD_APP_NAMESPACE" => self.app.namespace.to_string(),
                "ARGOCD_APP_PROJECT_NAME" => self.app.project.to_string(),
                "ARGOCD_APP_SOURCE_REPO_URL" => repo_url.to_string(),
                "ARGOCD_APP_SOURCE_PATH" => rel.to_string(),
                "ARGOCD_APP_SOURCE_TARGET_REVISION" => s("targetRevision").unwrap_or("").into(),
                "ARGOCD_APP_REVISION"
                | "ARGOCD_APP_REVISION_SHORT"
                | "ARGOCD_APP_REVISION_SHORT_8" => {
                    return None;
                }
                _ => String::new(),
            })
        };
        let mut set_images = Vec::new();
        let mut written = Vec::new();
        for &item in &items {
            let Some(arg) = doc.scalar(item) else {
                continue;
            };
            let node = doc.node(item);
            set_images.push((expand(arg, &vars), (node.start, node.end)));
            written.push(at(item));
        }
        // Positions in the build's file 0, the Application.
        let at0 = |n: NodeId| {
            let node = doc.node(n);
            At {
                file: 0,
                start: node.start,
                end: node.end,
            }
        };
        let source = SourceFile::new(self.path.to_path_buf(), self.text);
        let mut edit_patches = Vec::new();
        for p in patches {
            match file::patch(doc, &source, p, PatchField::Patches, at0(p)) {
                Some(patch) => edit_patches.push(patch),
                None => {
                    j.findings.push(note(
                        Code::KustomizeBuild,
                        format!("{label} kustomize.patches entry has neither `path` nor `patch`; kustomize build fails"),
                        "give the patch a `path` or an inline `patch`",
                        at(p),
                    ));
                    return None;
                }
            }
        }
        let ignore_missing = doc
            .get(kustomize, "ignoreMissingComponents")
            .and_then(|n| doc.scalar(n))
            == Some("true");
        let mut edit_components = Vec::new();
        for c in components {
            let Some(name) = doc.scalar(c) else { continue };
            if name.contains(['*', '?', '[']) {
                j.findings.push(note(
                    Code::Skipped,
                    format!("{label} kustomize.components pattern `{name}` is not expanded; images its components change are not checked"),
                    "name each component's directory",
                    at(c),
                ));
                continue;
            }
            let exists = inside(&dir.join(name).to_string_lossy())
                .is_some_and(|d| FILE_NAMES.iter().any(|n| reader.read(&d.join(n)).is_some()));
            if ignore_missing && !exists {
                continue;
            }
            edit_components.push((name.to_string(), at0(c)));
        }
        // Argo CD sets these when they are not empty.
        let set = |key: &str| {
            doc.get(kustomize, key)
                .and_then(|n| doc.str(n))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let named = path_node.unwrap_or(images);
        let named = doc.node(named);
        Some(AppRoot {
            dir,
            edits: Edits {
                file: self.path.to_path_buf(),
                text: self.text.to_string(),
                set_images,
                patches: edit_patches,
                components: edit_components,
                name_prefix: set("namePrefix"),
                name_suffix: set("nameSuffix"),
                namespace: set("namespace"),
                named_at: Some((named.start, named.end)),
                by: label,
            },
            written,
        })
    }
}

/// A repository-relative directory, normalised; `None` when it is absolute or leaves the
/// repository.
fn inside(rel: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Go's `os.Expand` as Argo CD's `Env.Envsubst` calls it: `$NAME` and `${NAME}` take
/// `vars(NAME)`, `$$` is `$`, bad syntax is eaten. A variable `vars` cannot know stays as
/// `${NAME}`, so the reference is reported as unresolved.
fn expand(s: &str, vars: &dyn Fn(&str) -> Option<String>) -> String {
    let b = s.as_bytes();
    if !b.contains(&b'$') {
        return s.to_string();
    }
    let special = |c: u8| b"*#$@!?-".contains(&c) || c.is_ascii_digit();
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while j < b.len() {
        if b[j] == b'$' && j + 1 < b.len() {
            out.push_str(&s[i..j]);
            let rest = &s[j + 1..];
            let r = rest.as_bytes();
            // `getShellName`: the name and how many bytes it took.
            let (name, w): (&str, usize) = if r[0] == b'{' {
                if r.len() > 2 && special(r[1]) && r[2] == b'}' {
                    (&rest[1..2], 3)
                } else {
                    match rest[1..].find('}') {
                        Some(0) => ("", 2),
                        Some(k) => (&rest[1..k + 1], k + 2),
                        None => ("", 1),
                    }
                }
            } else if special(r[0]) {
                (&rest[..1], 1)
            } else {
                let n = r
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count();
                (&rest[..n], n)
            };
            // `$` not followed by a name stays; `$$` is `$` (Argo CD's mapping); bad syntax
            // (a name empty but `w` bytes long) is eaten.
            if (name.is_empty() && w == 0) || name == "$" {
                out.push('$');
            } else if !name.is_empty() {
                match vars(name) {
                    Some(v) => out.push_str(&v),
                    None => out.push_str(&format!("${{{name}}}")),
                }
            }
            j += w;
            i = j + 1;
        }
        j += 1;
    }
    out.push_str(&s[i.min(s.len())..]);
    out
}

/// Whether two git URLs name the same repository: equal once normalised by [`normalise`].
pub fn same_repository(a: &str, b: &str) -> bool {
    matches!((normalise(a), normalise(b)), (Some(x), Some(y)) if x == y)
}

/// A git URL as `host/path`, the same for each way of writing it: any scheme (`https://`,
/// `ssh://`, `git://`), scp-like `git@host:path`, user information, a port, a trailing `/` or
/// `.git`, and letter case (Argo CD's `NormalizeGitURL` lowers the whole URL). `None` for
/// what names no remote repository (a local path, an empty string).
pub fn normalise(url: &str) -> Option<String> {
    let url = url.trim().to_ascii_lowercase();
    let rest = match url.split_once("://") {
        Some((scheme, rest)) => {
            let known = ["https", "http", "ssh", "git", "git+ssh", "ssh+git"];
            if !known.contains(&scheme) {
                return None;
            }
            rest.to_string()
        }
        None => {
            // scp-like `[user@]host:path`: a `:` before any `/`.
            let colon = url.find(':')?;
            if url[..colon].contains('/') {
                return None;
            }
            format!("{}/{}", &url[..colon], &url[colon + 1..])
        }
    };
    let (authority, path) = rest.split_once('/').unwrap_or((&rest, ""));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let path = path.trim_matches('/');
    let path = path
        .strip_suffix(".git")
        .unwrap_or(path)
        .trim_end_matches('/');
    if host.is_empty() || path.is_empty() {
        return None;
    }
    Some(format!("{host}/{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repository_url_is_the_same_however_it_is_written() {
        // issue 16: the checked clone's remote against an Application's repoURL.
        let same = [
            "https://github.com/acme/fleet.git",
            "https://github.com/acme/fleet",
            "https://GitHub.com/acme/fleet/",
            "git@github.com:acme/fleet.git",
            "ssh://git@github.com/acme/fleet.git",
            "ssh://git@github.com:22/acme/fleet",
            "https://x-access-token:secret@github.com/acme/fleet.git",
            "git://github.com/acme/fleet",
            "github.com:acme/fleet.git",
        ];
        for a in same {
            assert_eq!(
                normalise(a).as_deref(),
                Some("github.com/acme/fleet"),
                "{a}"
            );
            assert!(same_repository(same[0], a), "{a}");
        }
        for other in [
            "https://github.com/acme/fleet-two.git",
            "https://gitlab.com/acme/fleet.git",
            "https://github.com/other/fleet",
            "",
            "/srv/git/fleet.git",
            "file:///srv/git/fleet.git",
            "https://github.com/",
        ] {
            assert!(!same_repository(same[0], other), "{other}");
        }
        assert_eq!(
            normalise("ssh://git@gitlab.example.com:2222/group/sub/app.git").as_deref(),
            Some("gitlab.example.com/group/sub/app")
        );
    }

    #[test]
    fn paths_stay_inside_the_repository() {
        assert_eq!(inside("apps/web/"), Some(PathBuf::from("apps/web")));
        assert_eq!(inside("./apps/../web"), Some(PathBuf::from("web")));
        assert_eq!(inside(""), Some(PathBuf::new()));
        assert_eq!(inside("."), Some(PathBuf::new()));
        assert_eq!(inside("../other"), None);
        assert_eq!(inside("apps/../../x"), None);
        assert_eq!(inside("/etc"), None);
    }

    #[test]
    fn variables_expand_as_go_os_expand_does() {
        // issue 16: Argo CD's `Env.Envsubst` is `os.Expand` over its build environment.
        let vars = |n: &str| match n {
            "ARGOCD_APP_NAME" => Some("web".to_string()),
            "ARGOCD_APP_REVISION" => None,
            _ => Some(String::new()),
        };
        let cases = [
            ("app:1", "app:1"),
            ("app:${ARGOCD_APP_NAME}-1", "app:web-1"),
            ("app:$ARGOCD_APP_NAME", "app:web"),
            ("app:${ARGOCD_APP_REVISION}", "app:${ARGOCD_APP_REVISION}"),
            ("app:${UNKNOWN}x", "app:x"),
            ("app:$$1", "app:$1"),
            ("app:${}x", "app:x"),
            ("app:${x", "app:x"),
            ("app:1$", "app:1$"),
            ("a$/b", "a$/b"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &vars), want, "{input}");
        }
    }
}
