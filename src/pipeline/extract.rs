//! Step 2, extract: every file read and parsed (in parallel), its image occurrences and
//! file findings; in a diff, the merge base's version of each changed file too.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::collect::Input;
use crate::finding::{Code, Finding, Location};
use crate::manifest::{self, FileScan, ImageValue, ScanOptions};
use crate::reader::{MAX_FILE_BYTES, Reader};
use crate::source::SourceFile;

/// Every file's scan at head, at the merge base (changed files in a diff), and its path in
/// the repository; one index per file.
pub struct Scans {
    pub heads: Vec<FileScan>,
    pub olds: Vec<Option<FileScan>>,
    pub repo_paths: Vec<PathBuf>,
}

/// Reads and scans every input, in parallel. `head` answers whether a file sits in a chart
/// (a `Chart.yaml` beside a `templates/` directory above it), by its repository path, so
/// nothing outside the repository counts.
pub fn scan(inputs: Vec<Input>, heuristic: bool, head: &dyn Reader) -> Scans {
    let options = |repo_path: &Path| ScanOptions {
        chart_template: manifest::chart_template(repo_path, &|p| head.read(p).is_some()),
        heuristic,
    };
    let scanned: Vec<(FileScan, Option<FileScan>, PathBuf)> = inputs
        .into_par_iter()
        .enumerate()
        .map(|(id, input)| match input {
            Input::OnDisk { path, repo_path } => {
                let options = options(&repo_path);
                (read_and_scan(id, &path, options), None, repo_path)
            }
            Input::Changed {
                display,
                repo_path,
                new,
                old,
            } => {
                let options = options(&repo_path);
                let scan = |bytes| manifest::scan_with(id, &display, bytes, options);
                (scan(new), old.map(scan), repo_path)
            }
        })
        .collect();
    let mut out = Scans {
        heads: Vec::with_capacity(scanned.len()),
        olds: Vec::with_capacity(scanned.len()),
        repo_paths: Vec::with_capacity(scanned.len()),
    };
    for (head, old, path) in scanned {
        out.heads.push(head);
        out.olds.push(old);
        out.repo_paths.push(path);
    }
    out
}

/// Keeps only the occurrences whose value is new in this file: an untouched reference, or
/// one that only moved, is not checked.
/// Each kept occurrence remembers what the same field held at the merge base.
pub fn keep_changed(scan: &mut FileScan, before: &FileScan) {
    let seen: HashSet<&ImageValue> = before.occurrences.iter().map(|o| &o.value).collect();
    let was: HashMap<&str, &ImageValue> = before
        .occurrences
        .iter()
        .map(|o| (o.context.as_str(), &o.value))
        .collect();
    scan.occurrences.retain(|o| !seen.contains(&o.value));
    for o in &mut scan.occurrences {
        if let Some(ImageValue::Text(previous)) = was.get(o.context.as_str()) {
            o.previous = Some(previous.clone());
        }
    }
}

fn read_and_scan(id: usize, path: &Path, options: ScanOptions) -> FileScan {
    // Opened once: its size comes from the open file, not from a second lookup by path.
    let read = std::fs::File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        if len > MAX_FILE_BYTES {
            return Err(std::io::Error::other(format!(
                "file is {} MiB, larger than the {} MiB a manifest may be",
                len >> 20,
                MAX_FILE_BYTES >> 20
            )));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        std::io::Read::read_to_end(&mut f, &mut bytes)?;
        Ok(bytes)
    });
    match read {
        Ok(bytes) => manifest::scan_with(id, path, bytes, options),
        Err(e) => FileScan::failed(
            SourceFile::new(path.to_path_buf(), ""),
            unreadable(id, e.to_string()),
        ),
    }
}

pub fn unreadable(file: usize, message: String) -> Finding {
    Finding {
        code: Code::UnreadableFile,
        message: format!("cannot read the file: {message}"),
        hint: Some("fix its permissions, or exclude it with --exclude".into()),
        location: Some(Location {
            file,
            start: 0,
            end: 0,
        }),
        image: None,
    }
}
