//! `kustomize edit set image`, rule for rule (v5.8.1 kustomize/commands/edit/set/setimage.go),
//! so a root can be built the way Argo CD builds an Application's path: it runs that command
//! with the Application's `kustomize.images` in the path's kustomization, then builds.

use std::path::PathBuf;

use super::file::{ImageEntry, Kustomization, Patch};
use super::images;
use super::tree::At;

/// Edits made to a root before it is built, as Argo CD makes them for an Application's path
/// (util/kustomize/kustomize.go `Build`): `kustomize edit set image`, patches appended to
/// `patches:`, `kustomize edit add component`, all written in another file (the
/// Application), which is the build's file 0, so what they decide is reported there.
#[derive(Debug, Clone, Default)]
pub struct Edits {
    /// The repository path and text of the file the edits are written in.
    pub file: PathBuf,
    pub text: String,
    /// `kustomize edit set image` arguments, each with its byte span in `file`.
    pub set_images: Vec<(String, (usize, usize))>,
    /// Patches appended to the root's `patches:` (positions in file 0).
    pub patches: Vec<Patch>,
    /// Components appended to the root's `components:` unless named there already
    /// (positions in file 0).
    pub components: Vec<(String, At)>,
    /// `kustomize edit set nameprefix`, `namesuffix`, `namespace`: they replace the root's.
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub namespace: Option<String>,
    /// Where `file` names the root (a failure to find its kustomization is reported there).
    pub named_at: Option<(usize, usize)>,
    /// Who edits, for contexts (`Application/web`).
    pub by: String,
}

impl Edits {
    /// The `set image` arguments parsed, at their spans in `file` (the build's file number
    /// `f`); `Err` names the argument kustomize refuses.
    pub(super) fn images(&self, f: usize) -> Result<Vec<ImageEntry>, (String, At)> {
        let args: Vec<(String, At)> = self
            .set_images
            .iter()
            .map(|(a, s)| (a.clone(), span(f, *s)))
            .collect();
        parse_args(&args)
    }

    /// Rewrites the root's kustomization as the edits do, with `images` parsed by
    /// [`Edits::images`]: its `images:`, `patches:`, names, namespace and `components:`.
    pub(super) fn apply(&self, images: &[ImageEntry], k: &mut Kustomization) {
        if !images.is_empty() {
            k.images = set_image(&k.images, images);
        }
        k.patches.extend(self.patches.iter().cloned());
        for (field, set) in [
            (&mut k.name_prefix, &self.name_prefix),
            (&mut k.name_suffix, &self.name_suffix),
            (&mut k.namespace, &self.namespace),
        ] {
            if set.is_some() {
                field.clone_from(set);
            }
        }
        for (c, at) in &self.components {
            if !k.components.iter().any(|(named, _)| named == c) {
                k.components.push((c.clone(), *at));
            }
        }
    }
}

/// A byte span of the build's file `f`.
pub(super) fn span(file: usize, (start, end): (usize, usize)) -> At {
    At { file, start, end }
}

/// What `*` in an argument's new name, tag or digest means: keep the kustomization's value.
const PRESERVE: &str = "*";

/// One parsed argument (`types.Image` as `parse` makes it; it never has a tag suffix).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Image {
    name: String,
    new_name: String,
    new_tag: String,
    digest: String,
    tag_suffix: String,
    at: At,
    entry: At,
}

/// setimage.go `parse`: `name=newName:tag@digest`, `name=newName`, `name:tag`, `name@digest`;
/// `Err` when the argument has none of these forms (kustomize refuses it before it reads the
/// kustomization).
fn parse(arg: &str, at: At) -> Result<Image, String> {
    // `imageArgParse`: split at the first `=`.
    let (key, value) = arg.split_once('=').unwrap_or(("", arg));
    let (name, tag, digest) = images::split(value);
    if name == arg {
        return Err(format!(
            "`{arg}`: it names no new name, tag or digest (write name=newName:tag, name:tag or name@digest)"
        ));
    }
    let (name, new_name) = if key.is_empty() {
        (name.to_string(), String::new())
    } else {
        (key.to_string(), name.to_string())
    };
    Ok(Image {
        name,
        new_name,
        new_tag: tag.to_string(),
        digest: digest.to_string(),
        tag_suffix: String::new(),
        at,
        entry: at,
    })
}

fn from_entry(e: &ImageEntry) -> Image {
    Image {
        name: e.name.clone(),
        new_name: e.new_name.clone().unwrap_or_default(),
        new_tag: e.new_tag.clone().unwrap_or_default(),
        digest: e.digest.clone().unwrap_or_default(),
        tag_suffix: e.tag_suffix.clone().unwrap_or_default(),
        at: e.at,
        entry: e.entry,
    }
}

fn to_entry(i: Image) -> ImageEntry {
    let some = |s: String| (!s.is_empty()).then_some(s);
    ImageEntry {
        name: i.name,
        new_name: some(i.new_name),
        new_tag: some(i.new_tag),
        digest: some(i.digest),
        tag_suffix: some(i.tag_suffix),
        at: i.at,
        entry: i.entry,
    }
}

/// The parsed arguments, one per name (a later argument replaces an earlier one of the same
/// name, as `Validate` fills a map); `Err` names the argument kustomize refuses.
pub fn parse_args(args: &[(String, At)]) -> Result<Vec<ImageEntry>, (String, At)> {
    let mut out: Vec<Image> = Vec::new();
    for (arg, at) in args {
        let image = parse(arg, *at).map_err(|why| (why, *at))?;
        match out.iter_mut().find(|i| i.name == image.name) {
            Some(slot) => *slot = image,
            None => out.push(image),
        }
    }
    Ok(out.into_iter().map(to_entry).collect())
}

/// setimage.go `RunSetImage`: `args` (from [`parse_args`]) over a kustomization's `images:`
/// (with the legacy `imageTags:` after them, as `FixKustomization` appends them). An entry of
/// the same name is replaced by the argument (`*` keeps its new name, tag or digest); other
/// entries stay, one per name (the first); the result is sorted by name.
pub fn set_image(existing: &[ImageEntry], args: &[ImageEntry]) -> Vec<ImageEntry> {
    // Go's map keyed by name, arguments first. Each kustomization entry whose name is in
    // the map already (an argument, or an earlier entry: the first of a name stays) only
    // fills that one's `*`; `replaceNewName` and its siblings build an Image without
    // `TagSuffix`.
    let mut map: Vec<Image> = args.iter().map(from_entry).collect();
    for im in existing.iter().map(from_entry) {
        let Some(slot) = map.iter_mut().find(|i| i.name == im.name) else {
            map.push(im);
            continue;
        };
        for (field, from) in [
            (&mut slot.new_name, &im.new_name),
            (&mut slot.new_tag, &im.new_tag),
            (&mut slot.digest, &im.digest),
        ] {
            if field == PRESERVE {
                *field = from.clone();
                slot.tag_suffix.clear();
            }
        }
    }
    let mut out: Vec<Image> = map
        .into_iter()
        .map(|mut i| {
            for field in [&mut i.new_name, &mut i.new_tag, &mut i.digest] {
                if field == PRESERVE {
                    field.clear();
                    i.tag_suffix.clear();
                }
            }
            i
        })
        .collect();
    // Names are unique here, so Go's unstable sort gives this order too (bytewise).
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.into_iter().map(to_entry).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: usize) -> At {
        At {
            file: 0,
            start: n,
            end: n,
        }
    }

    /// `name newName newTag digest tagSuffix @start` for each entry.
    fn shown(entries: &[ImageEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| {
                let f = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
                format!(
                    "{} {} {} {} {} @{}",
                    e.name,
                    f(&e.new_name),
                    f(&e.new_tag),
                    f(&e.digest),
                    f(&e.tag_suffix),
                    e.at.start
                )
            })
            .collect()
    }

    fn args(list: &[&str]) -> Vec<ImageEntry> {
        let owned: Vec<(String, At)> = list
            .iter()
            .enumerate()
            .map(|(i, a)| (a.to_string(), at(100 + i)))
            .collect();
        parse_args(&owned).unwrap()
    }

    #[test]
    fn arguments_parse_as_setimage_go_does() {
        // issue 16: the forms in setimage.go's help, and its `name == arg` refusal.
        assert_eq!(
            shown(&args(&[
                "postgres=eu.gcr.io/my-project/postgres:latest",
                "node:8.15.0",
                "mysql=mariadb",
                "alpine@sha256:24a0",
                "r:5000/app:1@sha256:ab",
                "=bare:2",
            ])),
            [
                "postgres eu.gcr.io/my-project/postgres latest - - @100",
                "node - 8.15.0 - - @101",
                "mysql mariadb - - - @102",
                "alpine - - sha256:24a0 - @103",
                "r:5000/app - 1 sha256:ab - @104",
                // An empty key is no key: the name is the value's.
                "bare - 2 - - @105",
            ]
        );
        for bad in ["nginx", "r:5000/app"] {
            let err = parse_args(&[(bad.to_string(), at(7))]).unwrap_err();
            assert_eq!(err.1, at(7), "{bad}");
        }
        // A later argument of the same name wins.
        assert_eq!(shown(&args(&["a:1", "a:2"])), ["a - 2 - - @101"]);
    }

    fn entry(name: &str, new_name: &str, tag: &str, digest: &str, suffix: &str) -> ImageEntry {
        let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
        ImageEntry {
            name: name.into(),
            new_name: some(new_name),
            new_tag: some(tag),
            digest: some(digest),
            tag_suffix: some(suffix),
            at: at(1),
            entry: at(1),
        }
    }

    #[test]
    fn an_entry_of_the_same_name_is_replaced_and_the_rest_sorted() {
        // issue 16: RunSetImage replaces by name, keeps the others (the first of a name, which
        // its map holds when the second comes), sorts.
        let existing = [
            entry("web", "mirror/web", "1.0", "", ""),
            entry("db", "", "", "", "-debug"),
            entry("cache", "", "1", "", ""),
            entry("cache", "", "2", "", ""),
        ];
        assert_eq!(
            shown(&set_image(&existing, &args(&["web:2.0", "api=r.io/api:3"]))),
            [
                "api r.io/api 3 - - @101",
                "cache - 1 - - @1",
                "db - - - -debug @1",
                "web - 2.0 - - @100",
            ]
        );
    }

    #[test]
    fn an_asterisk_keeps_the_kustomizations_value() {
        // issue 16: `*` as new name, tag or digest preserves the existing one; without an
        // existing entry it is empty. The rebuilt entry has no tagSuffix.
        let existing = [entry("web", "mirror/web", "1.0", "", "-x")];
        assert_eq!(
            shown(&set_image(&existing, &args(&["web=*:2.0", "new=*:*"]))),
            ["new - - - - @101", "web mirror/web 2.0 - - @100"]
        );
        assert_eq!(
            shown(&set_image(&existing, &args(&["web=other:*"]))),
            ["web other 1.0 - - @100"]
        );
    }
}
