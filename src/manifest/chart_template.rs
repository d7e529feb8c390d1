//! Images written literally in a Helm chart's templates. A template is not YAML until Helm
//! renders it, so it is read line by line: an `image:` key whose value holds no `{{` is what
//! Helm prints, at that line and column (microservices-demo's `helm-chart/templates/
//! loadgenerator.yaml` pulls `busybox` so; podinfo's `templates/tests/` pull `curlimages/curl`).
//! Images a template composes from values are the chart's values' business (`values.rs`).

use std::path::{Component, Path};

use super::{ImageValue, Occurrence};
use crate::finding::Location;
use crate::source::SourceFile;

/// The literal images of a chart template, in file order.
pub fn literal_images(source: &SourceFile, path: &Path, file: usize) -> Vec<Occurrence> {
    let template = template_path(path);
    let text = &*source.text;
    let lines = line_spans(text);
    let mut out = Vec::new();
    let mut in_comment = false;
    for (i, &(start, end)) in lines.iter().enumerate() {
        let line = &text[start..end];
        // `{{/* … */}}` comments render nothing, over as many lines as they take.
        let was_in_comment = in_comment;
        in_comment = comment_state(line, in_comment);
        if was_in_comment || line.contains("{{/*") || line.contains("{{- /*") {
            continue;
        }
        let Some((key_column, value_offset, value)) = image_value(line) else {
            continue;
        };
        let container = container_name(text, &lines, i, key_column);
        let context = match container {
            Some(name) => {
                format!("Helm template {template} containers[{name}] (written literally)")
            }
            None => format!("Helm template {template} (written literally)"),
        };
        out.push(Occurrence {
            location: Location {
                file,
                start: start + value_offset,
                end: start + value_offset + value.written_len,
            },
            value: ImageValue::Text(value.text),
            context,
            previous: None,
        });
    }
    out
}

/// The path from the template's `templates` directory on (`templates/web.yaml`).
fn template_path(path: &Path) -> String {
    let parts: Vec<_> = path.components().collect();
    let from = parts
        .iter()
        .rposition(|c| matches!(c, Component::Normal(n) if *n == "templates"))
        .unwrap_or(0);
    parts[from..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Byte spans of the lines, without their line breaks.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.bytes().enumerate() {
        if b == b'\n' {
            let end = if i > start && text.as_bytes()[i - 1] == b'\r' {
                i - 1
            } else {
                i
            };
            out.push((start, end));
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// Whether a template comment (`{{/* … */}}`, `{{- /* … */ -}}`) is still open after this
/// line.
fn comment_state(line: &str, mut open: bool) -> bool {
    let mut rest = line;
    loop {
        let next = if open {
            ["*/}}", "*/ -}}"]
                .iter()
                .filter_map(|c| rest.find(c).map(|i| i + c.len()))
                .min()
        } else {
            ["{{/*", "{{- /*"]
                .iter()
                .filter_map(|c| rest.find(c).map(|i| i + c.len()))
                .min()
        };
        match next {
            Some(i) => {
                open = !open;
                rest = &rest[i..];
            }
            None => return open,
        }
    }
}

struct Literal {
    /// The value as YAML reads it.
    text: String,
    /// Its length as written, quotes included.
    written_len: usize,
}

/// `image: value` on one line (after any `- ` item markers), with no template action in the
/// value: the key's column, the value's byte offset in the line, and the value.
fn image_value(line: &str) -> Option<(usize, usize, Literal)> {
    let mut at = line.len() - line.trim_start_matches(' ').len();
    while line[at..].starts_with("- ") {
        at += 2;
        at += line[at..].len() - line[at..].trim_start_matches(' ').len();
    }
    let key_column = at;
    let rest = line[at..].strip_prefix("image:")?;
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    let value_at = line.len() - rest.trim_start_matches([' ', '\t']).len();
    let value = &line[value_at..];
    if value.contains("{{") || value.is_empty() {
        return None;
    }
    let literal = match value.as_bytes()[0] {
        b'"' => double_quoted(value)?,
        b'\'' => single_quoted(value)?,
        // Block scalars, flow collections, comments, aliases, tags: not a plain image.
        b'|' | b'>' | b'{' | b'[' | b'#' | b'*' | b'&' | b'!' => return None,
        _ => {
            let end = value.find(" #").unwrap_or(value.len());
            let text = value[..end].trim_end_matches([' ', '\t']);
            Literal {
                text: text.to_string(),
                written_len: text.len(),
            }
        }
    };
    (!literal.text.is_empty()).then_some((key_column, value_at, literal))
}

fn double_quoted(value: &str) -> Option<Literal> {
    let mut text = String::new();
    let mut chars = value.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                return Some(Literal {
                    text,
                    written_len: i + 1,
                });
            }
            '\\' => match chars.next()?.1 {
                c @ ('"' | '\\' | '/') => text.push(c),
                // Other escapes are not part of an image reference; leave such a value alone.
                _ => return None,
            },
            c => text.push(c),
        }
    }
    None
}

fn single_quoted(value: &str) -> Option<Literal> {
    let mut text = String::new();
    let bytes = value.as_bytes();
    let mut i = 1;
    while i < value.len() {
        if bytes[i] == b'\'' {
            if bytes.get(i + 1) == Some(&b'\'') {
                text.push('\'');
                i += 2;
                continue;
            }
            return Some(Literal {
                text,
                written_len: i + 1,
            });
        }
        let c = value[i..].chars().next()?;
        text.push(c);
        i += c.len_utf8();
    }
    None
}

/// The `name` of the list item the image key at `column` belongs to: a `name:` key at the same
/// column above it in the item (up to the item's `- `), or below it when the image comes first.
fn container_name(
    text: &str,
    lines: &[(usize, usize)],
    at: usize,
    column: usize,
) -> Option<String> {
    let key = |line: &str| -> Option<(usize, bool, Option<String>)> {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = &line[indent..];
        if body.is_empty() || body.starts_with('#') || body.starts_with("{{") {
            return None;
        }
        let (column, item, body) = match body.strip_prefix("- ") {
            Some(b) => (
                indent + 2 + (b.len() - b.trim_start().len()),
                true,
                b.trim_start(),
            ),
            None => (indent, false, body),
        };
        let name = body
            .strip_prefix("name:")
            .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
            .filter(|v| !v.is_empty() && !v.contains("{{"));
        Some((column, item, name))
    };
    let line_at = |i: usize| &text[lines[i].0..lines[i].1];
    // This line itself starts the item (`- image: …`): look below.
    let (_, starts_item, _) = key(line_at(at))?;
    if !starts_item {
        for i in (0..at).rev() {
            let Some((c, item, name)) = key(line_at(i)) else {
                continue;
            };
            if c < column {
                return None;
            }
            if c == column {
                if name.is_some() {
                    return name;
                }
                if item {
                    break;
                }
            }
        }
    }
    for i in at + 1..lines.len() {
        let Some((c, item, name)) = key(line_at(i)) else {
            continue;
        };
        if c < column || (c == column && item) {
            return None;
        }
        if c == column && name.is_some() {
            return name;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        let f = SourceFile::new("chart/templates/web.yaml".into(), text);
        literal_images(&f, Path::new("chart/templates/web.yaml"), 0)
            .iter()
            .map(|o| {
                let p = f.position(o.location.start);
                let e = f.position(o.location.end);
                let ImageValue::Text(v) = &o.value else {
                    unreachable!()
                };
                format!("{}:{}-{} {v} | {}", p.line, p.column, e.column, o.context)
            })
            .collect()
    }

    // Issue 16: GoogleCloudPlatform/microservices-demo helm-chart/templates/loadgenerator.yaml:95
    // and cartservice.yaml:255 write images literally beside templated ones.
    #[test]
    fn literal_values_only_at_their_columns() {
        let t = "spec:\n  initContainers:\n  - name: wait\n    image: busybox:1.38.0 # pinned\n  containers:\n  - name: server\n    image: {{ .Values.images.repository }}/web:{{ .Values.tag }}\n  - image: \"redis:alpine\"\n    name: cache\n  - name: '{{ .Values.x }}'\n    image: 'quay.io/a/b:1'\n{{/*\n  - image: old:1\n*/}}\n  # image: commented:1\n  - name: blocky\n    image: |\n      x\n";
        assert_eq!(
            found(t),
            [
                "4:12-26 busybox:1.38.0 | Helm template templates/web.yaml containers[wait] (written literally)",
                "8:12-26 redis:alpine | Helm template templates/web.yaml containers[cache] (written literally)",
                "11:12-27 quay.io/a/b:1 | Helm template templates/web.yaml (written literally)",
            ]
        );
    }
}
