//! A chart's `Chart.yaml` and `values.yaml`, with its dependency subcharts', read from a
//! packaged chart (`.tgz`) in memory or from a chart directory through a `Reader`. Nothing
//! is ever extracted to disk, and a package is bounded in compressed size, unpacked size
//! and entries: a tar or gzip bomb is an error the caller reports as a finding.

use std::io::Read;
use std::path::{Component, Path};

use crate::manifest::kustomize::Reader;
use crate::manifest::yaml;
use crate::source::SourceFile;

/// The largest chart package read (compressed).
pub const MAX_PACKAGE: usize = 20 << 20;
/// The most bytes a package may unpack to.
pub const MAX_UNPACKED: u64 = 100 << 20;
/// The most entries a package may hold.
pub const MAX_ENTRIES: usize = 20_000;
/// How deep packaged subcharts (`charts/*.tgz`) are read.
const MAX_NESTING: usize = 3;

/// What is read of a chart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartFiles {
    pub name: String,
    pub version: Option<String>,
    pub app_version: Option<String>,
    /// `values.yaml`, when the chart has one.
    pub values: Option<String>,
    /// Dependency subcharts, by the key their values sit under in the parent (the alias,
    /// else the name).
    pub subcharts: Vec<(String, ChartFiles)>,
}

/// Why a package could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveError {
    /// Past a size or entry limit.
    TooLarge(String),
    Malformed(String),
}

impl ArchiveError {
    pub fn message(&self) -> &str {
        match self {
            ArchiveError::TooLarge(m) | ArchiveError::Malformed(m) => m,
        }
    }
}

/// Counts what a reader has produced, and stops past a limit.
struct Bounded<R> {
    inner: R,
    left: u64,
    exceeded: bool,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.exceeded = true;
            return Err(std::io::Error::other("unpacked size limit"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads a packaged chart (`helm package` output) from memory.
pub fn read_package(bytes: &[u8]) -> Result<ChartFiles, ArchiveError> {
    let mut budget = (MAX_UNPACKED, MAX_ENTRIES);
    read_nested(bytes, &mut budget, 0)
}

fn too_large(what: String) -> ArchiveError {
    ArchiveError::TooLarge(what)
}

fn read_nested(
    bytes: &[u8],
    budget: &mut (u64, usize),
    depth: usize,
) -> Result<ChartFiles, ArchiveError> {
    if bytes.len() > MAX_PACKAGE {
        return Err(too_large(format!(
            "the chart package is {} bytes, more than the limit of {MAX_PACKAGE}",
            bytes.len()
        )));
    }
    let gz = flate2::read::GzDecoder::new(bytes);
    let mut bounded = Bounded {
        inner: gz,
        left: budget.0,
        exceeded: false,
    };
    // Files of the chart, by their path under the chart's top directory.
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let result = (|| -> Result<(), ArchiveError> {
        let mut archive = tar::Archive::new(&mut bounded);
        let entries = archive
            .entries()
            .map_err(|e| ArchiveError::Malformed(format!("not a tar.gz archive: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| ArchiveError::Malformed(format!("a broken entry: {e}")))?;
            budget.1 = budget.1.checked_sub(1).ok_or_else(|| {
                too_large(format!(
                    "the chart package holds more than {MAX_ENTRIES} entries"
                ))
            })?;
            let Ok(path) = entry.path().map(|p| p.into_owned()) else {
                continue;
            };
            let Some(rel) = under_top(&path) else {
                continue;
            };
            if wanted(&rel) {
                let mut data = Vec::new();
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| ArchiveError::Malformed(format!("{rel}: {e}")))?;
                files.push((rel, data));
            }
        }
        Ok(())
    })();
    if bounded.exceeded {
        return Err(too_large(format!(
            "the chart package unpacks to more than {MAX_UNPACKED} bytes"
        )));
    }
    result?;
    budget.0 = bounded.left;
    let text = |name: &str| {
        files
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, d)| String::from_utf8_lossy(d).into_owned())
    };
    let chart_yaml = text("Chart.yaml")
        .ok_or_else(|| ArchiveError::Malformed("the package holds no Chart.yaml".into()))?;
    let mut chart = parse_chart(&chart_yaml, text("values.yaml"));
    for (dep, key) in dependencies(&chart_yaml) {
        let dir = format!("charts/{dep}/");
        let sub = if let Some(c) = text(&format!("{dir}Chart.yaml")) {
            Some(parse_chart(&c, text(&format!("{dir}values.yaml"))))
        } else if depth < MAX_NESTING
            && let Some((_, data)) = files.iter().find(|(p, _)| {
                p.strip_prefix("charts/")
                    .and_then(|f| f.strip_suffix(".tgz"))
                    .is_some_and(|f| f == dep || f.starts_with(&format!("{dep}-")))
            })
        {
            Some(read_nested(data, budget, depth + 1)?)
        } else {
            None
        };
        if let Some(sub) = sub {
            chart.subcharts.push((key, sub));
        }
    }
    Ok(chart)
}

/// A path below the archive's top directory (`podinfo/values.yaml` → `values.yaml`).
fn under_top(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in path.components().skip(1) {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?),
            _ => return None,
        }
    }
    Some(parts.join("/"))
}

fn wanted(rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["Chart.yaml" | "values.yaml"] => true,
        ["charts", f] => f.ends_with(".tgz"),
        ["charts", _, "Chart.yaml" | "values.yaml"] => true,
        _ => false,
    }
}

fn parse_chart(chart_yaml: &str, values: Option<String>) -> ChartFiles {
    let src = SourceFile::new("Chart.yaml".into(), chart_yaml);
    let parsed = yaml::parse(&src);
    let field = |k: &str| {
        let d = parsed.documents.first()?;
        d.get(d.root?, k)
            .and_then(|n| d.scalar(n))
            .map(str::to_string)
    };
    ChartFiles {
        name: field("name").unwrap_or_default(),
        version: field("version"),
        app_version: field("appVersion"),
        values,
        subcharts: Vec::new(),
    }
}

/// `Chart.yaml` dependencies: (name, key of its values in the parent).
fn dependencies(chart_yaml: &str) -> Vec<(String, String)> {
    let src = SourceFile::new("Chart.yaml".into(), chart_yaml);
    let parsed = yaml::parse(&src);
    let Some(d) = parsed.documents.first() else {
        return Vec::new();
    };
    let Some(list) = d.root.and_then(|r| d.get(r, "dependencies")) else {
        return Vec::new();
    };
    d.items(list)
        .iter()
        .filter_map(|&dep| {
            let name = d.get(dep, "name").and_then(|n| d.scalar(n))?.to_string();
            let key = d
                .get(dep, "alias")
                .and_then(|n| d.scalar(n))
                .unwrap_or(&name)
                .to_string();
            // Only the name is safe in a path.
            (!name.contains(['/', '\\']) && name != "..").then_some((name, key))
        })
        .collect()
}

/// Reads a chart directory of the repository (never outside it: the reader refuses).
pub fn read_dir(reader: &dyn Reader, dir: &Path) -> Option<ChartFiles> {
    let text = |p: &Path| {
        reader
            .read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    };
    let chart_yaml = text(&dir.join("Chart.yaml"))?;
    let mut chart = parse_chart(&chart_yaml, text(&dir.join("values.yaml")));
    for (dep, key) in dependencies(&chart_yaml) {
        let sub = dir.join("charts").join(&dep);
        if let Some(c) = text(&sub.join("Chart.yaml")) {
            let sub = parse_chart(&c, text(&sub.join("values.yaml")));
            chart.subcharts.push((key, sub));
        }
    }
    Some(chart)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(files: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, path, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn a_package_with_a_packaged_subchart() {
        let sub = package(&[
            (
                "redis/Chart.yaml",
                b"name: redis\nversion: 1.0.0\nappVersion: '7.2'\n",
            ),
            ("redis/values.yaml", b"image:\n  repository: redis\n"),
        ]);
        let chart = package(&[
            (
                "web/Chart.yaml",
                b"name: web\nversion: 0.1.0\nappVersion: 1.0.0\ndependencies:\n- name: redis\n  alias: cache\n",
            ),
            ("web/values.yaml", b"image:\n  repository: acme/web\n"),
            ("web/templates/x.yaml", b"kind: X\n"),
            ("web/charts/redis-1.0.0.tgz", &sub),
        ]);
        let c = read_package(&chart).unwrap();
        assert_eq!(c.app_version.as_deref(), Some("1.0.0"));
        assert_eq!(c.subcharts.len(), 1);
        assert_eq!(c.subcharts[0].0, "cache");
        assert_eq!(c.subcharts[0].1.app_version.as_deref(), Some("7.2"));
    }

    #[test]
    fn a_gzip_bomb_is_too_large_not_an_allocation() {
        let zeros = vec![0u8; (MAX_UNPACKED as usize) + (1 << 20)];
        let big = package(&[("x/Chart.yaml", b"name: x\n"), ("x/big", &zeros)]);
        assert!(big.len() < MAX_PACKAGE, "{}", big.len());
        assert!(matches!(read_package(&big), Err(ArchiveError::TooLarge(_))));
        assert!(matches!(
            read_package(b"not gzip"),
            Err(ArchiveError::Malformed(_))
        ));
    }
}
