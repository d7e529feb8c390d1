//! Flux variables files named in the config: the values `postBuild.substituteFrom` brings
//! from ConfigMaps and Secrets in the cluster, which the repository alone cannot show. They
//! resolve a `${VAR}` that no Flux Kustomization's `postBuild.substitute` defines.

use std::path::{Path, PathBuf};

use base64::Engine;

use crate::error::Error;
use crate::manifest::yaml::{self, Document, NodeId};
use crate::source::SourceFile;

/// Variables from the config's files, in the order given (the first definition wins).
#[derive(Debug, Clone, Default)]
pub struct Variables {
    /// Name, value, and the file it came from (as the config names it).
    pub vars: Vec<(String, String, PathBuf)>,
}

impl Variables {
    /// A variable's value and the file that defines it.
    pub fn get(&self, name: &str) -> Option<(&str, &Path)> {
        self.vars
            .iter()
            .find(|(k, _, _)| k == name)
            .map(|(_, v, f)| (v.as_str(), f.as_path()))
    }

    /// Reads the files (absolute, or relative to `base`, the working directory, which is
    /// also where they are shown from). A file that cannot be read or holds anything but
    /// variables is an error naming the file and position.
    pub fn load(files: &[String], base: &Path) -> Result<Variables, Error> {
        let mut out = Variables::default();
        for f in files {
            let path = base.join(f);
            let text = std::fs::read_to_string(&path).map_err(|e| Error::VariablesFile {
                path: path.clone(),
                source: e,
            })?;
            let first = out.vars.len();
            read(&path, &text, &mut out)?;
            // Shown from the working directory.
            let shown = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
            for v in &mut out.vars[first..] {
                v.2 = shown.clone();
            }
        }
        Ok(out)
    }
}

/// Every document of one file: a ConfigMap (`data`), a Secret (`stringData`, and `data`
/// decoded from base64), or a plain mapping of names to values.
fn read(path: &Path, text: &str, out: &mut Variables) -> Result<(), Error> {
    let source = SourceFile::new(path.to_path_buf(), text);
    let at = |offset: usize, message: &str| crate::error::Located::at(&source, offset, message);
    let parsed = yaml::parse(&source);
    if let Some(e) = &parsed.error {
        return Err(at(e.offset, &format!("invalid YAML: {}", e.message)));
    }
    for doc in &parsed.documents {
        let Some(root) = doc.root else { continue };
        if !doc.is_map(root) {
            return Err(at(
                doc.node(root).start,
                "a variables file holds ConfigMaps, Secrets or a mapping of names to values",
            ));
        }
        let kind = doc.get(root, "kind").and_then(|n| doc.scalar(n));
        let mut add = |map: NodeId, decode: bool| -> Result<(), Error> {
            entries(doc, map, decode, path, out).map_err(|(node, m)| at(doc.node(node).start, &m))
        };
        match kind {
            Some("ConfigMap") => {
                if let Some(data) = doc.get(root, "data") {
                    add(data, false)?;
                }
            }
            Some("Secret") => {
                if let Some(data) = doc.get(root, "stringData") {
                    add(data, false)?;
                }
                if let Some(data) = doc.get(root, "data") {
                    add(data, true)?;
                }
            }
            Some(other) if doc.get(root, "apiVersion").is_some() => {
                return Err(at(
                    doc.node(root).start,
                    &format!(
                        "a {other} holds no variables: use a ConfigMap, a Secret or a plain mapping"
                    ),
                ));
            }
            _ => add(root, false)?,
        }
    }
    Ok(())
}

fn entries(
    doc: &Document,
    map: NodeId,
    decode: bool,
    path: &Path,
    out: &mut Variables,
) -> Result<(), (NodeId, String)> {
    if !doc.is_map(map) {
        return Err((map, "expected a mapping of names to values".into()));
    }
    for &(k, v) in doc.entries(map) {
        let (Some(name), Some(value)) = (doc.scalar(k), doc.scalar(v)) else {
            return Err((v, "a variable's value must be a scalar".into()));
        };
        let value = if decode {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| (v, format!("`{name}` in a Secret's data is not base64")))?;
            String::from_utf8(bytes)
                .map_err(|_| (v, format!("`{name}` in a Secret's data is not text")))?
        } else {
            value.to_string()
        };
        out.vars.push((name.to_string(), value, path.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(text: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Variables::default();
        read(Path::new("v.yaml"), text, &mut out).map_err(|e| e.to_string())?;
        Ok(out.vars.into_iter().map(|(k, v, _)| (k, v)).collect())
    }

    #[test]
    fn configmaps_secrets_and_plain_mappings() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cluster-vars}\ndata:\n  TAG: \"1.2\"\n---\napiVersion: v1\nkind: Secret\nstringData: {A: x}\ndata: {B: eQ==}\n---\nPLAIN: z\n";
        assert_eq!(
            vars(text).unwrap(),
            [("TAG", "1.2"), ("A", "x"), ("B", "y"), ("PLAIN", "z")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let e = vars("kind: ConfigMap\napiVersion: v1\ndata:\n  TAG: [1]\n").unwrap_err();
        assert!(e.contains("v.yaml:4:8") && e.contains("scalar"), "{e}");
        let e = vars("apiVersion: apps/v1\nkind: Deployment\n").unwrap_err();
        assert!(e.contains("v.yaml:1:1") && e.contains("Deployment"), "{e}");
        let e = vars("kind: Secret\napiVersion: v1\ndata: {B: \"%%\"}\n").unwrap_err();
        assert!(e.contains("v.yaml:3:") && e.contains("base64"), "{e}");
        let e = vars("- a\n").unwrap_err();
        assert!(e.contains("v.yaml:1:1"), "{e}");
    }
}
