//! The source store: file text with its line starts. It is the only place where a byte
//! offset becomes a line and column, so every renderer agrees on positions.

use std::path::PathBuf;
use std::sync::Arc;

/// Every how many characters a byte offset is remembered in non-ASCII text.
const CHECKPOINT: usize = 256;

/// One file's text, as read, with the tables that turn offsets into positions.
#[derive(Debug)]
pub struct SourceFile {
    /// Path as shown to the user (relative to the working directory where possible).
    pub path: PathBuf,
    /// The text, including any byte order mark.
    pub text: Arc<str>,
    /// Byte offset of each line's start (u32: a file is at most 64 MiB).
    line_starts: Vec<u32>,
    /// Byte offset of every `CHECKPOINT`-th character; empty for ASCII text.
    char_checkpoints: Vec<usize>,
}

/// A 1-based line and column. Columns count characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: impl Into<Arc<str>>) -> SourceFile {
        let text: Arc<str> = text.into();
        let bytes = text.as_bytes();
        // A byte order mark is not a column anyone sees: line 1 starts after it.
        let first = if text.starts_with('\u{feff}') { 3 } else { 0 };
        let mut line_starts = vec![first as u32];
        for i in memchr::memchr2_iter(b'\n', b'\r', &bytes[first..]) {
            let i = first + i;
            // A lone CR is a line break in YAML too; CRLF counts once, at the LF.
            if bytes[i] == b'\n' || bytes.get(i + 1) != Some(&b'\n') {
                line_starts.push((i + 1) as u32);
            }
        }
        let char_checkpoints = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices()
                .step_by(CHECKPOINT)
                .map(|(b, _)| b)
                .collect()
        };
        SourceFile {
            path,
            text,
            line_starts,
            char_checkpoints,
        }
    }

    /// Byte offset of the character with the given index (as YAML parsers count).
    pub fn byte_of_char(&self, char_index: usize) -> usize {
        if self.char_checkpoints.is_empty() {
            return char_index.min(self.text.len());
        }
        let slot = (char_index / CHECKPOINT).min(self.char_checkpoints.len() - 1);
        let start = self.char_checkpoints[slot];
        let skip = char_index - slot * CHECKPOINT;
        self.text[start..]
            .char_indices()
            .nth(skip)
            .map_or(self.text.len(), |(b, _)| start + b)
    }

    /// 1-based line and character column of a byte offset.
    pub fn position(&self, byte: usize) -> Position {
        let byte = byte.min(self.text.len());
        let line = self
            .line_starts
            .partition_point(|&s| s as usize <= byte)
            .max(1);
        let start = (self.line_starts[line - 1] as usize).min(byte);
        let column = self
            .text
            .get(start..byte)
            .map_or(byte - start, |s| s.chars().count())
            + 1;
        Position { line, column }
    }

    /// `path:line:column` of a byte offset, as messages name a place.
    pub fn place(&self, byte: usize) -> String {
        let p = self.position(byte);
        format!("{}:{}:{}", self.path.display(), p.line, p.column)
    }

    /// Byte offset where a 1-based line starts.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        line.checked_sub(1)
            .and_then(|i| self.line_starts.get(i).map(|&s| s as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let f = SourceFile::new("a.yaml".into(), "ab\r\nçd: x\n");
        assert_eq!(f.position(0), Position { line: 1, column: 1 });
        assert_eq!(f.position(4), Position { line: 2, column: 1 });
        // `d` is after the two-byte `ç`.
        assert_eq!(f.position(6), Position { line: 2, column: 2 });
        assert_eq!(f.byte_of_char(5), 6);
    }

    #[test]
    fn bom_is_not_a_column() {
        let f = SourceFile::new("a.yaml".into(), "\u{feff}image: x\n");
        assert_eq!(f.position(3), Position { line: 1, column: 1 });
        assert_eq!(f.position(10), Position { line: 1, column: 8 });
    }

    #[test]
    fn char_offsets_far_into_non_ascii_text() {
        let text = "é".repeat(1000) + "x";
        let f = SourceFile::new("a".into(), text.as_str());
        assert_eq!(f.byte_of_char(1000), 2000);
        assert_eq!(&f.text[f.byte_of_char(1000)..], "x");
    }

    #[test]
    fn lone_cr_breaks_lines() {
        let f = SourceFile::new("a".into(), "a\rb");
        assert_eq!(f.position(2), Position { line: 2, column: 1 });
    }
}
