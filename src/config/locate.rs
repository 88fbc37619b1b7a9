//! Where a key is in the config file: the line `ipsec-server check` prints before each
//! finding (`FILE:LINE: key.path: …`).
//!
//! Validation names what it refuses by TOML key path (`ipsec_server.ike_config.ike_lifetime`,
//! `api.access_keys[1].access_key_id`), not by position: serde's raw model keeps no spans.
//! The text is parsed a second time by `toml_edit` (the parser `toml` itself runs on), whose
//! document keeps the span of every item, and each path is looked up there. A key the file
//! does not spell out (a default) is placed at the nearest enclosing item that is written,
//! usually its table's header; a path with no written part (a whole-file rule) gets no line.

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike};

use super::raw::line_col;
use super::Finding;

/// Sets the line of every finding that has none, from its key path in `text`.
pub(super) fn locate(text: &str, findings: &mut [Finding]) {
    if findings.iter().all(|f| f.line.is_some()) {
        return;
    }
    let Ok(doc) = ImDocument::parse(text) else {
        return;
    };
    for f in findings.iter_mut().filter(|f| f.line.is_none()) {
        f.line = span_of(doc.as_item(), &f.key)
            .and_then(|span| line_col(text, span.start))
            .map(|(line, _)| line);
    }
}

/// The key path of the deepest item written at byte `offset` of `text`: toml's errors for a
/// wrong type or an unknown key carry a span but no path. `None` when the text does not
/// parse (a syntax error) or no key is there.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let doc = ImDocument::parse(text).ok()?;
    let mut path = Vec::new();
    walk(doc.as_table(), offset, &mut path).then(|| path.join("."))
}

/// Pushes onto `path` the keys down to the deepest item of `table` whose key or value
/// (a table: its header) holds `offset`; whether one does.
fn walk(table: &dyn TableLike, offset: usize, path: &mut Vec<String>) -> bool {
    let holds = |span: Option<Range<usize>>| span.is_some_and(|s| s.contains(&offset));
    for (name, item) in table.iter() {
        path.push(name.to_owned());
        if let Some(tables) = item.as_array_of_tables() {
            for (i, t) in tables.iter().enumerate() {
                if let Some(last) = path.last_mut() {
                    *last = format!("{name}[{i}]");
                }
                if walk(t, offset, path) || holds(t.span()) {
                    return true;
                }
            }
            if let Some(last) = path.last_mut() {
                *last = name.to_owned();
            }
        } else if let Some(t) = item.as_table_like() {
            if walk(t, offset, path) {
                return true;
            }
        }
        if holds(table.key(name).and_then(|k| k.span())) || holds(item.span()) {
            return true;
        }
        path.pop();
    }
    false
}

/// The span of `path` in `root`, or of its deepest written ancestor.
fn span_of(root: &Item, path: &str) -> Option<Range<usize>> {
    let mut item = root;
    let mut best = None;
    for segment in segments(path) {
        let next = match segment {
            Segment::Key(key) => item.get(key),
            Segment::Index(i) => item.get(i),
        };
        let Some(next) = next else { break };
        item = next;
        best = item.span().or(best);
    }
    best
}

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[2].c` → `a`, `b`, `2`, `c` (our keys contain neither `.` nor `[`).
fn segments(path: &str) -> impl Iterator<Item = Segment<'_>> {
    path.split('.')
        .filter(|part| !part.is_empty())
        .flat_map(|part| {
            let (key, rest) = part.split_once('[').unwrap_or((part, ""));
            let index = rest
                .strip_suffix(']')
                .and_then(|i| i.parse().ok())
                .map(Segment::Index);
            std::iter::once(Segment::Key(key)).chain(index)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_indexes() {
        let got: Vec<_> = segments("api.access_keys[1].access_key_id").collect();
        assert_eq!(
            got,
            [
                Segment::Key("api"),
                Segment::Key("access_keys"),
                Segment::Index(1),
                Segment::Key("access_key_id"),
            ]
        );
        assert_eq!(segments("").count(), 0);
    }

    #[test]
    fn spans_fall_back_to_the_nearest_written_ancestor() {
        let text = "[gateway]\nregion_id = \"x\"\n\n[[api.access_keys]]\na = 1\n\n\
                    [[api.access_keys]]\naccess_key_id = \"k\"\n[ipsec_server.ike_config]\n\
                    ike_lifetime = 5\n";
        let doc = ImDocument::parse(text).expect("TOML");
        let line = |path: &str| {
            span_of(doc.as_item(), path)
                .and_then(|s| line_col(text, s.start))
                .map(|(l, _)| l)
        };
        assert_eq!(line("gateway.region_id"), Some(2));
        assert_eq!(line("gateway.tun_name"), Some(1), "a default: its table");
        assert_eq!(line("api.access_keys[1].access_key_id"), Some(8));
        assert_eq!(line("api.access_keys[1].access_key_secret"), Some(7));
        assert_eq!(line("ipsec_server.ike_config.ike_lifetime"), Some(10));
        assert_eq!(line("limits.ike_queue"), None, "nothing of it is written");

        let at = |needle: &str| key_at(text, text.find(needle).expect("in text"));
        assert_eq!(at("\"x\"").as_deref(), Some("gateway.region_id"));
        assert_eq!(at("a = 1").as_deref(), Some("api.access_keys[0].a"));
        assert_eq!(
            at("\"k\"").as_deref(),
            Some("api.access_keys[1].access_key_id")
        );
        assert_eq!(
            at("5\n").as_deref(),
            Some("ipsec_server.ike_config.ike_lifetime")
        );
        assert_eq!(at("[gateway]").as_deref(), Some("gateway"));
        assert_eq!(key_at("[gateway", 1), None, "a syntax error: no document");
    }
}
