//! The build itself, in kustomize's order: resources (files, and directories built on their
//! own), `configurations:`, ConfigMap and Secret generators (then `generators:`), components
//! (run on what is accumulated so far), then patches, namespace, name prefix and suffix,
//! labels, JSON 6902 patches, `images:` and `transformers:`; resources marked local-config
//! are left out at the end. Files load as kustomize's default loader allows (inside the
//! kustomization's directory tree). Where the build holds less than kustomize's (a remote
//! part, an unmodelled plugin), what matches nothing is a note, not a verdict.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod plugins;
mod resources;
mod transform;

use super::edit::{self, Edits};
use super::file::{self, ImageEntry, Kustomization};
use super::images::{self, FieldSpec};
use super::select::Id;
use super::tree::{At, Val};
use crate::manifest::kustomize::{FILE_NAMES, is_remote, join};
use crate::manifest::yaml;
use crate::reader::Reader;
use crate::source::SourceFile;

/// How deep a chain of kustomizations may go.
const MAX_DEPTH: usize = 16;

/// A resource in a build, with its identity as first read and the kustomizations it went
/// through (base → component → overlay).
#[derive(Debug, Clone)]
pub struct Resource {
    pub val: Val,
    pub original: Id,
    /// kustomize's previous ids (`PrevIds`): the ids it had before each transformer that
    /// stores one (namespace, name prefix and suffix, JSON patches), oldest first.
    pub previous: Vec<Id>,
    pub chain: Vec<String>,
    /// An unmodelled plugin ran on it and may have changed its id (what, for notes).
    pub unsure: Option<String>,
}

impl Resource {
    /// kustomize's `StorePreviousId`: remembers the current id before a transformer.
    pub fn store_previous_id(&mut self) {
        self.previous.push(Id::of(&self.val));
    }

    /// kustomize's `GetMatchingResourcesByAnyId`: a previous id or the current one.
    pub fn has_id(&self, id: &Id) -> bool {
        self.previous.iter().any(|p| p.equals(id)) || Id::of(&self.val).equals(id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// `kustomize build` would fail here.
    Fails,
    /// An entry or a patch that changes nothing.
    NoEffect,
    /// Something the native model does not apply (`--render` does).
    Unmodelled,
    /// A remote resource, not fetched.
    Remote,
    /// A path that leads outside the repository, not read.
    Escapes,
}

/// What a build found wrong or could not do, at the input.
#[derive(Debug, Clone)]
pub struct Note {
    pub problem: Problem,
    pub message: String,
    pub at: Option<At>,
}

/// What a build read and said, whether or not it finished.
#[derive(Debug, Default)]
pub struct Record {
    /// The file table positions point into.
    pub files: Vec<PathBuf>,
    /// Files read as patches or configurations (not resources).
    pub patch_files: Vec<usize>,
    pub notes: Vec<Note>,
    /// Whether the build failed (what was built is then what was built before the failure).
    pub failed: bool,
}

/// A finished build: its resources, and what it read and said.
#[derive(Debug, Default)]
pub struct Built {
    pub record: Record,
    pub resources: Vec<Resource>,
    /// Every resource as read from its file, before any transformer.
    pub originals: Vec<Val>,
}

pub(super) struct Ctx<'a> {
    pub(super) reader: &'a dyn Reader,
    pub(super) built: Built,
    index: HashMap<PathBuf, usize>,
    texts: HashMap<usize, String>,
    stack: Vec<PathBuf>,
    /// The edits of the root with their parsed images, taken when the root is read.
    root_edits: Option<(Vec<ImageEntry>, &'a Edits)>,
}

/// The kustomization being accumulated (kustomize's `KustTarget`): its directory, what it
/// says, and its directory as messages name it.
pub(super) struct Target<'a> {
    pub(super) dir: &'a Path,
    pub(super) k: &'a Kustomization,
    pub(super) here: String,
}

#[derive(Default)]
pub(super) struct Acc {
    pub(super) resources: Vec<Resource>,
    pub(super) specs: Vec<FieldSpec>,
    /// Parts of the build imagegate does not hold (a remote resource, an unmodelled
    /// generator): what matches nothing here may match there.
    pub(super) gaps: Vec<Gap>,
}

/// Why a lookup that finds nothing in what imagegate built is not decided.
#[derive(Debug, Clone)]
pub(super) struct Gap {
    pub(super) problem: Problem,
    /// Ends a sentence: "the remote resource `x` is not fetched".
    pub(super) why: String,
}

impl Acc {
    /// The first gap, or an unmodelled plugin that may have changed an id.
    pub(super) fn undecided(&self) -> Option<Gap> {
        self.gaps.first().cloned().or_else(|| {
            self.resources.iter().find_map(|r| {
                r.unsure.clone().map(|why| Gap {
                    problem: Problem::Unmodelled,
                    why,
                })
            })
        })
    }
}

impl Acc {
    /// A remote `what` (a resource, a component) is not fetched: a note, and a gap in what
    /// imagegate builds.
    pub(super) fn remote(&mut self, ctx: &mut Ctx, what: &str, path: &str, at: At) {
        ctx.note(
            Problem::Remote,
            format!("remote {what} `{path}` is not fetched; its images are not checked"),
            Some(at),
        );
        self.gaps.push(Gap {
            problem: Problem::Remote,
            why: format!("the remote {what} `{path}` is not fetched"),
        });
    }
}

impl Gap {
    /// A note for a verdict the gap leaves open: `what` happened in what imagegate built.
    pub(super) fn note(&self, ctx: &mut Ctx, what: String, at: Option<At>) {
        ctx.note(
            self.problem,
            format!("{what}; {}, so kustomize's verdict is not known", self.why),
            at,
        );
    }
}

/// A build stops at the first failure, as kustomize does.
pub(super) struct Stop;

/// Builds the kustomization in `dir` (a repository path).
pub fn build(dir: &Path, reader: &dyn Reader) -> Built {
    build_edited(dir, reader, None)
}

/// Builds the kustomization in `dir` after `edits` (none: as it is written).
pub fn build_edited(dir: &Path, reader: &dyn Reader, edits: Option<&Edits>) -> Built {
    let mut ctx = Ctx {
        reader,
        built: Built::default(),
        index: HashMap::new(),
        texts: HashMap::new(),
        stack: Vec::new(),
        root_edits: None,
    };
    let mut acc = Acc {
        specs: images::default_specs(),
        ..Acc::default()
    };
    let mut named_at = None;
    if let Some(e) = edits {
        let f = ctx.file(&e.file, e.text.clone());
        named_at = e.named_at.map(|s| edit::span(f, s));
        // setimage.go validates its arguments before it reads the kustomization.
        match e.images(f) {
            Ok(images) => ctx.root_edits = Some((images, e)),
            Err((why, at)) => {
                ctx.fail(format!("kustomize edit set image refuses {why}"), Some(at));
                ctx.built.record.failed = true;
                return ctx.built;
            }
        }
    }
    let failed = target(&mut ctx, dir, &mut acc, false, named_at).is_err();
    ctx.built.record.failed = failed;
    // api/internal/target/kusttarget.go `IgnoreLocal`, last: a resource annotated
    // `config.kubernetes.io/local-config` (other than "false") is not output.
    acc.resources.retain(|r| {
        r.val
            .path(&[
                "metadata",
                "annotations",
                "config.kubernetes.io/local-config",
            ])
            .is_none_or(|v| v.text() == Some("false"))
    });
    ctx.built.resources = acc.resources;
    ctx.built
}

impl Ctx<'_> {
    pub(super) fn file(&mut self, path: &Path, text: String) -> usize {
        if let Some(&i) = self.index.get(path) {
            return i;
        }
        let i = self.built.record.files.len();
        self.built.record.files.push(path.to_path_buf());
        self.index.insert(path.to_path_buf(), i);
        self.texts.insert(i, text);
        i
    }

    pub(super) fn note(&mut self, problem: Problem, message: String, at: Option<At>) {
        self.built.record.notes.push(Note {
            problem,
            message,
            at,
        });
    }

    pub(super) fn fail(&mut self, message: String, at: Option<At>) -> Stop {
        self.note(Problem::Fails, message, at);
        Stop
    }

    /// kustomize's `LoadRestrictionsRootOnly` (api/internal/loader/loadrestrictions.go): a
    /// file the kustomization in `dir` loads must resolve, symbolic links followed, to a
    /// file in `dir` or below it. Directories (bases, components) may be anywhere.
    pub(super) fn outside_root(&self, dir: &Path, path: &Path) -> bool {
        match (self.reader.resolve(dir), self.reader.resolve(path)) {
            (Some(root), Some(file)) => !file.parent().is_some_and(|p| p.starts_with(&root)),
            _ => false,
        }
    }

    pub(super) fn read(&self, path: &Path) -> Option<String> {
        self.reader
            .read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Parses a file (or inline text) into values; a syntax error fails the build.
    pub(super) fn parse(
        &mut self,
        file: usize,
        text: &str,
        map: &dyn Fn(usize) -> usize,
    ) -> Result<Vec<Val>, Stop> {
        let source = SourceFile::new(self.built.record.files[file].clone(), text);
        let parsed = yaml::parse(&source);
        if let Some(e) = parsed.error {
            let at = map(e.offset);
            return Err(self.fail(
                format!("invalid YAML: {}", e.message),
                Some(At {
                    file,
                    start: at,
                    end: at,
                }),
            ));
        }
        let mut out = Vec::new();
        for d in &parsed.documents {
            let Some(root) = d.root else { continue };
            match Val::from_doc(d, root, file, map) {
                Some(v) if v.is_null() => {}
                Some(v) => out.push(v),
                None => {
                    return Err(self.fail(
                        "document too large or deep to build".into(),
                        Some(at0(file)),
                    ));
                }
            }
        }
        Ok(out)
    }
}

fn at0(file: usize) -> At {
    At {
        file,
        start: 0,
        end: 0,
    }
}

fn label(dir: &Path) -> String {
    let s = dir.display().to_string();
    if s.is_empty() { ".".into() } else { s }
}

/// kustomize's `accumulateTarget` for the kustomization in `dir`.
pub(super) fn target(
    ctx: &mut Ctx,
    dir: &Path,
    acc: &mut Acc,
    component: bool,
    named_at: Option<At>,
) -> Result<(), Stop> {
    let found: Vec<(PathBuf, String)> = FILE_NAMES
        .iter()
        .filter_map(|n| {
            let p = dir.join(n);
            // A kustomization file that resolves outside its directory does not load.
            if ctx.outside_root(dir, &p) {
                return None;
            }
            ctx.read(&p).map(|t| (p, t))
        })
        .collect();
    if found.len() > 1 {
        // api/internal/target/kusttarget.go `LoadKustFile`.
        let message = format!("`{}` holds more than one kustomization file", label(dir));
        return Err(ctx.fail(message, named_at));
    }
    let Some((kpath, text)) = found.into_iter().next() else {
        return Err(ctx.fail(format!("`{}` holds no kustomization", label(dir)), named_at));
    };
    if ctx.stack.len() > MAX_DEPTH || ctx.stack.contains(&kpath) {
        return Err(ctx.fail(
            format!("`{}` includes itself (a cycle)", kpath.display()),
            named_at,
        ));
    }
    ctx.stack.push(kpath.clone());
    let result = target_in(ctx, dir, &kpath, text, acc, component, named_at);
    ctx.stack.pop();
    result
}

fn target_in(
    ctx: &mut Ctx,
    dir: &Path,
    kpath: &Path,
    text: String,
    acc: &mut Acc,
    component: bool,
    named_at: Option<At>,
) -> Result<(), Stop> {
    let kfile = ctx.file(kpath, text.clone());
    let source = SourceFile::new(kpath.to_path_buf(), text.as_str());
    let parsed = yaml::parse(&source);
    if let Some(e) = &parsed.error {
        let at = At {
            file: kfile,
            start: e.offset,
            end: e.offset,
        };
        return Err(ctx.fail(format!("invalid YAML: {}", e.message), Some(at)));
    }
    let mut k = parsed
        .documents
        .first()
        .map(|d| file::read(d, &source, kfile))
        .unwrap_or_else(|| file::read(&yaml::Document::default(), &source, kfile));
    // kusttarget.go `Load` refuses a malformed kustomization before anything is built.
    if let Some((why, at)) = k.invalid.first() {
        return Err(ctx.fail(format!("kustomize refuses {why}"), Some(*at)));
    }
    if k.is_component != component {
        let message = if component {
            format!(
                "`{}` is named as a component but is not `kind: Component`",
                label(dir)
            )
        } else {
            format!(
                "`{}` is a Component; name it under `components:`",
                label(dir)
            )
        };
        return Err(ctx.fail(message, named_at));
    }
    // The root is read first: the edits rewrite its `images:`, `patches:` and `components:`.
    if let Some((images, edits)) = ctx.root_edits.take() {
        edits.apply(&images, &mut k);
    }
    for (key, at) in &k.unmodelled {
        ctx.note(
            Problem::Unmodelled,
            format!("`{key}` is not applied by imagegate's kustomize model; images it changes are not checked without --render"),
            Some(*at),
        );
    }
    let t = Target {
        dir,
        k: &k,
        here: label(dir),
    };
    resources::resources(ctx, &t, acc)?;
    for (path, at) in &k.configurations {
        if is_remote_file(path) {
            ctx.note(
                Problem::Remote,
                format!("remote configuration `{path}` is not fetched; image fields it declares are not checked"),
                Some(*at),
            );
            continue;
        }
        let p = join(dir, path);
        let Some(text) = ctx.read(&p) else {
            return Err(ctx.fail(format!("configuration `{path}` not found"), Some(*at)));
        };
        if ctx.outside_root(dir, &p) {
            return Err(ctx.fail(outside(path, dir), Some(*at)));
        }
        let f = ctx.file(&p, text.clone());
        ctx.built.record.patch_files.push(f);
        for v in ctx.parse(f, &text, &|o| o)? {
            acc.specs.extend(images::specs_from(&v));
        }
    }
    for g in &k.generated {
        plugins::generate(ctx, acc, g, &t.here)?;
    }
    for (key, _) in &k.adds {
        acc.gaps.push(Gap {
            problem: Problem::Unmodelled,
            why: format!(
                "`{key}` in `{}` adds objects imagegate's model does not build",
                t.here
            ),
        });
    }
    plugins::generators(ctx, &t, acc)?;
    for (path, at) in &k.components {
        if is_remote(path) {
            acc.remote(ctx, "component", path, *at);
            continue;
        }
        target(ctx, &join(dir, path), acc, true, Some(*at))?;
        let name = label(&join(dir, path));
        for r in &mut acc.resources {
            if r.chain.last() != Some(&name) {
                r.chain.push(name.clone());
            }
        }
    }
    transform::transform(ctx, &t, acc)?;
    // The `transformers:` field runs after the builtin ones (kusttarget.go
    // `runTransformers`).
    let unsure = plugins::transformers(ctx, &t, acc)?;
    for r in &mut acc.resources {
        if r.unsure.is_none() {
            r.unsure.clone_from(&unsure);
        }
        if r.chain.last() != Some(&t.here) {
            r.chain.push(t.here.clone());
        }
    }
    Ok(())
}

/// Whether a path is a URL kustomize's loader fetches (fileloader.go `IsRemoteFile`).
pub(super) fn is_remote_file(path: &str) -> bool {
    path.starts_with("http://") || path.starts_with("https://")
}

/// The message of a file refused by `LoadRestrictionsRootOnly`.
pub(super) fn outside(path: &str, dir: &Path) -> String {
    format!(
        "`{path}` is not in or below `{}`; kustomize loads a file only from the kustomization's own directory tree (LoadRestrictionsRootOnly)",
        label(dir)
    )
}
