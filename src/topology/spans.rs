//! Where each field of a YAML document stands, so that problems found after
//! deserialisation can still point at file:line:column.
//!
//! serde gives locations only for its own errors; this index walks the same
//! text once with an event parser and records, for every path such as
//! `sites[1].pools[0].name`, the position of its value (and of its key).

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Default)]
pub struct SpanIndex {
    values: HashMap<String, Pos>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

impl SpanIndex {
    /// Build the index; a document the parser rejects gives an empty index
    /// (serde reports the syntax error itself, with its position).
    pub fn build(text: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut parser = Parser::new_from_str(text);
        while let Some(Ok((event, span))) = parser.next_event() {
            let pos = Pos {
                line: span.start.line(),
                column: span.start.col() + 1,
            };
            match event {
                Event::Scalar(value, ..) => {
                    if let Some(Frame::Map {
                        key: key @ None, ..
                    }) = stack.last_mut()
                    {
                        *key = Some(value.into_owned());
                        continue;
                    }
                    let path = child_path(&mut stack);
                    index.values.insert(path, pos);
                }
                Event::Alias(_) => {
                    let path = child_path(&mut stack);
                    index.values.insert(path, pos);
                }
                Event::MappingStart(..) => {
                    let path = child_path(&mut stack);
                    index.values.insert(path.clone(), pos);
                    stack.push(Frame::Map { path, key: None });
                }
                Event::SequenceStart(..) => {
                    let path = child_path(&mut stack);
                    index.values.insert(path.clone(), pos);
                    stack.push(Frame::Seq { path, next: 0 });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    stack.pop();
                }
                _ => {}
            }
        }
        index
    }

    /// The position of the value at `path`, or of the nearest enclosing value
    /// that exists (a missing field points at its parent mapping).
    pub fn find(&self, path: &str) -> Pos {
        let mut path = path.to_string();
        loop {
            if let Some(pos) = self.values.get(&path) {
                return *pos;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path.truncate(cut),
                None => return self.values.get("").copied().unwrap_or_default(),
            }
        }
    }
}

/// The path of the node that starts now, consuming the pending key.
fn child_path(stack: &mut [Frame]) -> String {
    match stack.last_mut() {
        None => String::new(),
        Some(Frame::Map { path, key }) => {
            let key = key.take().unwrap_or_default();
            if path.is_empty() {
                key
            } else {
                format!("{path}.{key}")
            }
        }
        Some(Frame::Seq { path, next }) => {
            let p = format!("{path}[{next}]");
            *next += 1;
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_paths() {
        let text = "a: 1\nsites:\n  - name: S1\n    pools:\n      - name: P1\n";
        let idx = SpanIndex::build(text);
        assert_eq!(idx.find("a"), Pos { line: 1, column: 4 });
        assert_eq!(
            idx.find("sites[0].name"),
            Pos {
                line: 3,
                column: 11
            }
        );
        assert_eq!(
            idx.find("sites[0].pools[0].name"),
            Pos {
                line: 5,
                column: 15
            }
        );
        // Missing: falls back to the enclosing mapping.
        assert_eq!(idx.find("sites[0].pools[0].fqdn").line, 5);
    }
}
