//! go-yaml's tolerance of under-indented quoted scalars. YAML 1.2 wants the continuation lines
//! of a multi-line `'…'` or `"…"` scalar indented deeper than its key, and saphyr-parser holds
//! to that ("invalid indentation in quoted scalar"); libyaml and go-yaml (kubectl, kustomize,
//! Flux, Argo CD) check no indentation there at all, so a status dump such as argo-cd's
//! `resource_customizations/db.atlasgo.io/AtlasSchema/testdata/healthy.yaml:30` deploys. The
//! parser has no option for it, so the text is parsed again with those lines padded by spaces
//! (a quoted scalar drops a continuation line's leading blanks, so its value is unchanged), and
//! every offset is mapped back to the file as written.

use crate::source::SourceFile;

use super::Parsed;

/// The message saphyr-parser gives, at the scalar's opening quote.
pub(super) const MESSAGE: &str = "invalid indentation in quoted scalar";

/// At most this many scalars are padded in one file; each costs a parse of the whole file.
const MAX_ROUNDS: usize = 16;

/// Spaces inserted into the text as written: `(byte offset in the original, how many)`,
/// sorted by offset.
#[derive(Debug, Default)]
struct Padding {
    runs: Vec<(usize, usize)>,
}

impl Padding {
    fn apply(&self, text: &str) -> String {
        let extra: usize = self.runs.iter().map(|r| r.1).sum();
        let mut out = String::with_capacity(text.len() + extra);
        let mut at = 0;
        for &(offset, count) in &self.runs {
            out.push_str(&text[at..offset]);
            out.extend(std::iter::repeat_n(' ', count));
            at = offset;
        }
        out.push_str(&text[at..]);
        out
    }

    /// The original offset of an offset in the padded text; inside a run of inserted spaces,
    /// the line start they were inserted at.
    fn original(&self, padded: usize) -> usize {
        let mut shift = 0;
        for &(offset, count) in &self.runs {
            let run_start = offset + shift;
            if padded < run_start {
                break;
            }
            if padded < run_start + count {
                return offset;
            }
            shift += count;
        }
        padded - shift
    }

    fn add(&mut self, offset: usize, count: usize) {
        let at = self.runs.partition_point(|r| r.0 < offset);
        match self.runs.get_mut(at) {
            Some(r) if r.0 == offset => r.1 += count,
            _ => self.runs.insert(at, (offset, count)),
        }
    }
}

/// Parses `source` again while saphyr-parser stops at an under-indented quoted scalar that
/// go-yaml reads, padding one scalar per round; `first` is the parse that stopped. Offsets in
/// the result are the file's own.
pub(super) fn reparse(
    source: &SourceFile,
    first: Parsed,
    parse: fn(&SourceFile) -> Parsed,
) -> Parsed {
    let mut padding = Padding::default();
    let mut parsed = first;
    let mut text = source.text.to_string();
    for _ in 0..MAX_ROUNDS {
        let Some(error) = &parsed.error else { break };
        if error.message != MESSAGE {
            break;
        }
        let runs = continuation_padding(&text, error.offset);
        if runs.is_empty() {
            break;
        }
        for (at, count) in runs {
            padding.add(padding.original(at), count);
        }
        text = padding.apply(&source.text);
        parsed = parse(&SourceFile::new(source.path.clone(), text.as_str()));
    }
    for doc in &mut parsed.documents {
        for node in &mut doc.nodes {
            node.start = padding.original(node.start);
            node.end = padding.original(node.end);
        }
    }
    if let Some(error) = &mut parsed.error {
        error.offset = padding.original(error.offset);
    }
    parsed
}

/// Where spaces must go so that every continuation line of the quoted scalar opening at
/// `quote` starts no further left than the quote: `(line start, spaces)` in `text`. A line
/// that is blank, or that starts with a document marker (`---`, `...`, which ends a quoted
/// scalar in go-yaml too), is left alone.
fn continuation_padding(text: &str, quote: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let single = match bytes.get(quote) {
        Some(b'\'') => true,
        Some(b'"') => false,
        _ => return Vec::new(),
    };
    let line_start = text[..quote].rfind(['\n', '\r']).map_or(0, |i| i + 1);
    let column = text[line_start..quote].chars().count();
    let mut runs = Vec::new();
    let mut i = quote + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' if single && bytes.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' if single => break,
            b'"' if !single => break,
            // An escape: the next character is never the closing quote (an escaped line
            // break is a break like any other).
            b'\\' if !single && !matches!(bytes.get(i + 1), Some(b'\n' | b'\r')) => i += 2,
            b'\n' | b'\r' => {
                i += if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                let rest = &text[i..];
                let blanks = rest.len() - rest.trim_start_matches([' ', '\t']).len();
                let content = &rest[blanks..];
                let blank_line = content.is_empty() || content.starts_with(['\n', '\r']);
                let marker = (rest.starts_with("---") || rest.starts_with("..."))
                    && matches!(
                        rest.as_bytes().get(3),
                        None | Some(b' ' | b'\t' | b'\n' | b'\r')
                    );
                if !blank_line && !marker && blanks < column {
                    runs.push((i, column - blanks));
                }
                i += blanks;
            }
            _ => i += 1,
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use crate::source::SourceFile;

    fn value_at(text: &str, path: &[&str]) -> (String, usize, usize) {
        let f = SourceFile::new("t.yaml".into(), text);
        let p = parse(&f);
        assert!(p.error.is_none(), "{:?}", p.error);
        let d = &p.documents[0];
        let n = d.get_path(d.root.unwrap(), path).unwrap();
        let pos = f.position(d.node(n).start);
        (d.scalar(n).unwrap().to_string(), pos.line, pos.column)
    }

    // Issue 16, argoproj/argo-cd resource_customizations/db.atlasgo.io/AtlasSchema/testdata/
    // healthy.yaml:30: the values are what PyYAML (libyaml's rules) reads, and what follows the
    // scalar keeps its place in the file as written.
    #[test]
    fn continuation_at_the_keys_indent_reads_as_go_yaml_does() {
        let text = "data:\n  message: 'a ''b''\n  c'\n  next: x\nother:\n  - \"d \\\"e\\\"\n  f\\\n  g\n\n  h\"\n  - y\n";
        assert_eq!(
            value_at(text, &["data", "message"]),
            ("a 'b' c".into(), 2, 12)
        );
        assert_eq!(value_at(text, &["data", "next"]), ("x".into(), 4, 9));
        let f = SourceFile::new("t.yaml".into(), text);
        let p = parse(&f);
        let d = &p.documents[0];
        let list = d.get(d.root.unwrap(), "other").unwrap();
        let items = d.items(list);
        assert_eq!(d.scalar(items[0]), Some("d \"e\" fg\nh"));
        let y = f.position(d.node(items[1]).start);
        assert_eq!((d.scalar(items[1]), y.line, y.column), (Some("y"), 11, 5));
        let end = f.position(d.node(items[0]).end);
        assert_eq!(
            (end.line, end.column),
            (10, 5),
            "the scalar ends after its quote"
        );
    }

    #[test]
    fn continuation_at_column_zero_and_in_flow_reads_too() {
        let text = "a:\n  b: 'one\ntwo'\n  c: [\"three\nfour\"]\n";
        assert_eq!(value_at(text, &["a", "b"]).0, "one two");
        let f = SourceFile::new("t.yaml".into(), text);
        let p = parse(&f);
        assert!(p.error.is_none(), "{:?}", p.error);
    }

    #[test]
    fn a_document_marker_still_ends_the_file_in_error() {
        let text = "a:\n  b: 'one\n---\n  two'\n";
        let f = SourceFile::new("t.yaml".into(), text);
        let e = parse(&f)
            .error
            .expect("go-yaml refuses a document marker in a scalar too");
        assert_eq!(f.position(e.offset).line, 2);
    }

    #[test]
    fn other_errors_are_where_they_were() {
        let text = "a:\n  b: 'one\n  two'\n  c: [\n";
        let f = SourceFile::new("t.yaml".into(), text);
        let e = parse(&f).error.unwrap();
        assert!(f.position(e.offset).line >= 4, "{e:?}");
        assert!(e.offset <= text.len());
    }
}
