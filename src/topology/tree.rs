//! The topology text parsed once into a located node tree.
//!
//! This is the only place that reads YAML. It turns saphyr-parser's events
//! into nodes that each know their line and column, and it enforces the
//! limits that keep a hostile file cheap: the file's size is checked before
//! parsing, nesting depth as each collection opens, and the node count
//! (aliases counted as the nodes they stand for) as each node is added, so a
//! deep or alias-bomb file stops with one located error before anything is
//! built per node. Aliases share their anchor's node instead of copying it.
//!
//! [`Locator`] answers where a field path such as `sites[1].pools[0].name`
//! stands in the file.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// The largest topology file read, in bytes.
pub const MAX_BYTES: usize = 1 << 20;
/// The deepest nesting of sequences and mappings (a topology needs 7).
pub const MAX_DEPTH: usize = 64;
/// The most nodes a document may have, each alias counted as the nodes it
/// stands for.
pub const MAX_NODES: usize = 50_000;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    const START: Pos = Pos { line: 1, column: 1 };

    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

pub(super) type NodeId = usize;

#[derive(Debug, Clone)]
pub(super) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// `plain` is an untagged plain scalar, whose type (null, bool, number,
    /// string) follows from its text; every other scalar is a string.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<NodeId>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: NodeId,
}

/// One finding of the parse that does not stop it (a duplicate key).
#[derive(Debug, Clone)]
pub(super) struct Finding {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

/// A document's nodes; a node reached through an alias is the anchor's node.
#[derive(Debug, Clone, Default)]
pub(super) struct Tree {
    nodes: Vec<Node>,
    pub root: Option<NodeId>,
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        path: String,
        items: Vec<NodeId>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        path: String,
        entries: Vec<Entry>,
        seen: HashMap<String, Pos>,
        key: Option<(String, Pos)>,
    },
}

struct Builder {
    tree: Tree,
    /// Height (levels of collections) of each node.
    heights: Vec<usize>,
    /// Nodes each node stands for, aliases expanded.
    sizes: Vec<usize>,
    expanded: usize,
    anchors: HashMap<usize, NodeId>,
    stack: Vec<Frame>,
    findings: Vec<Finding>,
}

impl Tree {
    /// Parse `text`; the error is the one problem that stopped the parse.
    pub fn parse(text: &str) -> Result<(Tree, Vec<Finding>), Finding> {
        if text.len() > MAX_BYTES {
            return Err(too_large());
        }
        let mut b = Builder {
            tree: Tree::default(),
            heights: Vec::new(),
            sizes: Vec::new(),
            expanded: 0,
            anchors: HashMap::new(),
            stack: Vec::new(),
            findings: Vec::new(),
        };
        let mut parser = Parser::new_from_str(text);
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| Finding {
                pos: Pos {
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                path: String::new(),
                message: format!("YAML syntax: {}", e.info()),
            })?;
            let pos = Pos::of(&span);
            match event {
                Event::StreamEnd => break,
                Event::DocumentStart(_) if b.tree.root.is_some() => {
                    return Err(Finding {
                        pos,
                        path: String::new(),
                        message: "a second YAML document: a topology file holds one".into(),
                    });
                }
                Event::Scalar(value, style, anchor, tag) => {
                    let plain = style == ScalarStyle::Plain
                        && !tag.is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                    b.count(pos, 1, "")?;
                    let id = b.add(
                        Node {
                            pos,
                            kind: Kind::Scalar {
                                text: value.into_owned(),
                                plain,
                            },
                        },
                        0,
                        1,
                        anchor,
                    );
                    b.attach(id, pos)?;
                }
                Event::Alias(anchor) => {
                    let Some(&id) = b.anchors.get(&anchor) else {
                        return Err(Finding {
                            pos,
                            path: b.child_path(),
                            message: "this alias refers to a node that contains it".into(),
                        });
                    };
                    let height = b.heights.get(id).copied().unwrap_or(0);
                    if b.stack.len() + height > MAX_DEPTH {
                        return Err(depth_error(pos));
                    }
                    let size = b.sizes.get(id).copied().unwrap_or(1);
                    b.count(pos, size, "this alias")?;
                    b.attach(id, pos)?;
                }
                Event::SequenceStart(anchor, _) => {
                    b.open(pos)?;
                    let path = b.child_path();
                    b.stack.push(Frame::Seq {
                        pos,
                        anchor,
                        path,
                        items: Vec::new(),
                    });
                }
                Event::MappingStart(anchor, _) => {
                    b.open(pos)?;
                    let path = b.child_path();
                    b.stack.push(Frame::Map {
                        pos,
                        anchor,
                        path,
                        entries: Vec::new(),
                        seen: HashMap::new(),
                        key: None,
                    });
                }
                Event::SequenceEnd | Event::MappingEnd => b.close()?,
                Event::Nothing
                | Event::StreamStart
                | Event::DocumentStart(_)
                | Event::DocumentEnd => {}
            }
        }
        Ok((b.tree, b.findings))
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    pub fn pos(&self, id: NodeId) -> Pos {
        self.node(id).map(|n| n.pos).unwrap_or(Pos::START)
    }
}

/// The file is larger than [`MAX_BYTES`].
pub(super) fn too_large() -> Finding {
    Finding {
        pos: Pos::START,
        path: String::new(),
        message: format!(
            "the file is larger than {MAX_BYTES} bytes, the most a topology file may have"
        ),
    }
}

fn depth_error(pos: Pos) -> Finding {
    Finding {
        pos,
        path: String::new(),
        message: format!(
            "sequences and mappings nest deeper than {MAX_DEPTH} levels here; a topology needs 7"
        ),
    }
}

impl Builder {
    fn add(&mut self, node: Node, height: usize, size: usize, anchor: usize) -> NodeId {
        let id = self.tree.nodes.len();
        self.tree.nodes.push(node);
        self.heights.push(height);
        self.sizes.push(size);
        if anchor != 0 {
            self.anchors.insert(anchor, id);
        }
        id
    }

    /// Count `size` more nodes against [`MAX_NODES`].
    fn count(&mut self, pos: Pos, size: usize, what: &str) -> Result<(), Finding> {
        self.expanded = self.expanded.saturating_add(size);
        if self.expanded <= MAX_NODES {
            return Ok(());
        }
        let message = if what.is_empty() {
            format!("the document has more than {MAX_NODES} nodes; a topology is far smaller")
        } else {
            format!(
                "{what} stands for {size} nodes and takes the document past {MAX_NODES} (aliases must not multiply the document)"
            )
        };
        Err(Finding {
            pos,
            path: self.child_path(),
            message,
        })
    }

    /// A collection opens at `pos`: check depth and count it.
    fn open(&mut self, pos: Pos) -> Result<(), Finding> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(depth_error(pos));
        }
        self.count(pos, 1, "")
    }

    fn close(&mut self) -> Result<(), Finding> {
        let Some(frame) = self.stack.pop() else {
            return Ok(());
        };
        let (pos, anchor, kind) = match frame {
            Frame::Seq {
                pos, anchor, items, ..
            } => (pos, anchor, Kind::Seq(items)),
            Frame::Map {
                pos,
                anchor,
                entries,
                ..
            } => (pos, anchor, Kind::Map(entries)),
        };
        let children: Box<dyn Iterator<Item = NodeId> + '_> = match &kind {
            Kind::Seq(items) => Box::new(items.iter().copied()),
            Kind::Map(entries) => Box::new(entries.iter().map(|e| e.value)),
            Kind::Scalar { .. } => Box::new(std::iter::empty()),
        };
        // A mapping's keys count too.
        let keys = match &kind {
            Kind::Map(entries) => entries.len(),
            _ => 0,
        };
        let (mut height, mut size) = (1, keys.saturating_add(1));
        for child in children {
            height = height.max(1 + self.heights.get(child).copied().unwrap_or(0));
            size = size.saturating_add(self.sizes.get(child).copied().unwrap_or(1));
        }
        let id = self.add(Node { pos, kind }, height, size, anchor);
        self.attach(id, pos)
    }

    /// The path of the node that starts now (the pending key's value, or the
    /// next item of a sequence).
    fn child_path(&self) -> String {
        match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { path, items, .. }) => format!("{path}[{}]", items.len()),
            Some(Frame::Map { path, key, .. }) => match key {
                Some((key, _)) => join_key(path, key),
                None => path.clone(),
            },
        }
    }

    fn attach(&mut self, id: NodeId, pos: Pos) -> Result<(), Finding> {
        let scalar = match self.tree.nodes.get(id).map(|n| &n.kind) {
            Some(Kind::Scalar { text, .. }) => Some(text.clone()),
            _ => None,
        };
        match self.stack.last_mut() {
            None => {
                self.tree.root = Some(id);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(id);
                Ok(())
            }
            Some(Frame::Map {
                path,
                entries,
                seen,
                key,
                ..
            }) => match key.take() {
                None => match scalar {
                    Some(text) => {
                        *key = Some((text, pos));
                        Ok(())
                    }
                    None => Err(Finding {
                        pos,
                        path: path.clone(),
                        message: "a mapping key must be a plain value, not a sequence or mapping"
                            .into(),
                    }),
                },
                Some((key, key_pos)) => {
                    if let Some(first) = seen.get(&key) {
                        let finding = Finding {
                            pos: key_pos,
                            path: join_key(path, &key),
                            message: format!(
                                "duplicate key `{key}` (first at line {}); this one is ignored",
                                first.line
                            ),
                        };
                        self.findings.push(finding);
                    } else {
                        seen.insert(key.clone(), key_pos);
                        entries.push(Entry {
                            key,
                            key_pos,
                            value: id,
                        });
                    }
                    Ok(())
                }
            },
        }
    }
}

/// `parent.key`, or `key` at the top.
pub(super) fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Field paths of the file (original indexes) that did not deserialise and
/// are left out of the typed topology: a left-out sequence item shifts the
/// later items' indexes in the typed data, and [`Locator`] shifts them back.
pub(super) type Masked = HashSet<String>;

enum Seg<'p> {
    Key(&'p str),
    Index(usize),
}

fn segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        let mut indexes = Vec::new();
        while let Some(inner) = rest.strip_prefix('[')
            && let Some((digits, after)) = inner.split_once(']')
            && let Ok(i) = digits.parse::<usize>()
        {
            indexes.push(Seg::Index(i));
            rest = after;
        }
        if !rest.is_empty() {
            out.push(Seg::Key(part));
            continue;
        }
        if !name.is_empty() {
            out.push(Seg::Key(name));
        }
        out.extend(indexes);
    }
    out
}

/// Finds where a path of the typed topology stands in the file.
pub(super) struct Locator<'a> {
    pub tree: &'a Tree,
    pub masked: &'a Masked,
}

impl Locator<'_> {
    /// The path as the file numbers it, and the position of its value, or
    /// of the nearest enclosing value that exists (a missing field points at
    /// its mapping).
    pub fn resolve(&self, path: &str) -> (String, Pos) {
        let Some(mut at) = self.tree.root else {
            return (path.to_string(), Pos::START);
        };
        let mut original = String::new();
        let segs = segments(path);
        for (i, seg) in segs.iter().enumerate() {
            let next = match (seg, self.tree.node(at).map(|n| &n.kind)) {
                (Seg::Key(k), Some(Kind::Map(entries))) => entries
                    .iter()
                    .find(|e| e.key == *k)
                    .map(|e| (e.value, join_key(&original, k))),
                (Seg::Index(n), Some(Kind::Seq(items))) => items
                    .iter()
                    .enumerate()
                    .map(|(j, id)| (*id, format!("{original}[{j}]")))
                    .filter(|(_, p)| !self.masked.contains(p))
                    .nth(*n),
                _ => None,
            };
            match next {
                Some((id, p)) => {
                    at = id;
                    original = p;
                }
                None => {
                    for seg in segs.get(i..).unwrap_or_default() {
                        match seg {
                            Seg::Key(k) => original = join_key(&original, k),
                            Seg::Index(n) => original = format!("{original}[{n}]"),
                        }
                    }
                    return (original, self.tree.pos(at));
                }
            }
        }
        (original, self.tree.pos(at))
    }

    /// Nothing at or under `path` (typed numbering) was left out.
    pub fn intact(&self, path: &str) -> bool {
        let (original, _) = self.resolve(path);
        !self.masked.iter().any(|m| {
            m == &original
                || m.strip_prefix(original.as_str())
                    .is_some_and(|rest| original.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// The path (as the file numbers it) is at or under a left-out path.
    pub fn left_out(&self, original: &str) -> bool {
        self.masked.iter().any(|m| {
            original
                .strip_prefix(m.as_str())
                .is_some_and(|rest| rest.is_empty() || m.is_empty() || rest.starts_with(['.', '[']))
        })
    }

    /// A site, a site's pool list or a pool was left out: pools may be
    /// missing from the typed topology.
    pub fn lost_pools(&self) -> bool {
        self.masked.iter().any(|m| {
            let Some(rest) = m.strip_prefix("sites") else {
                return false;
            };
            let Some(rest) = skip_index(rest) else {
                return rest.is_empty();
            };
            match rest.strip_prefix(".pools") {
                Some("") => true,
                Some(after) => skip_index(after) == Some(""),
                None => rest.is_empty(),
            }
        })
    }
}

/// `[n]rest` -> `rest`.
fn skip_index(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('[')?;
    let (digits, rest) = inner.split_once(']')?;
    digits.parse::<usize>().ok()?;
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Tree {
        match Tree::parse(text) {
            Ok((t, _)) => t,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn finds_nested_paths() {
        let t = tree("a: 1\nsites:\n  - name: S1\n    pools:\n      - name: P1\n");
        let masked = Masked::new();
        let loc = Locator {
            tree: &t,
            masked: &masked,
        };
        assert_eq!(loc.resolve("a").1, Pos { line: 1, column: 4 });
        assert_eq!(
            loc.resolve("sites[0].name").1,
            Pos {
                line: 3,
                column: 11
            }
        );
        assert_eq!(
            loc.resolve("sites[0].pools[0].name").1,
            Pos {
                line: 5,
                column: 15
            }
        );
        // Missing: falls back to the enclosing mapping.
        let (path, pos) = loc.resolve("sites[0].pools[0].fqdn");
        assert_eq!(path, "sites[0].pools[0].fqdn");
        assert_eq!(pos.line, 5);
    }

    #[test]
    fn left_out_items_shift_indexes_back() {
        let t = tree("s:\n  - a\n  - b\n  - c\n");
        let masked: Masked = ["s[0]".to_string()].into();
        let loc = Locator {
            tree: &t,
            masked: &masked,
        };
        assert_eq!(
            loc.resolve("s[1]"),
            ("s[2]".into(), Pos { line: 4, column: 5 })
        );
        assert!(loc.intact("s[1]"));
        assert!(!loc.intact("s"));
        assert!(!loc.intact(""));
    }

    #[test]
    fn lost_pools_reads_only_site_and_pool_paths() {
        let t = Tree::default();
        for (path, lost) in [
            ("sites", true),
            ("sites[2]", true),
            ("sites[0].pools", true),
            ("sites[0].pools[3]", true),
            ("sites[0].pools[3].name", false),
            ("sites[0].name", false),
            ("dns", false),
        ] {
            let masked: Masked = [path.to_string()].into();
            let loc = Locator {
                tree: &t,
                masked: &masked,
            };
            assert_eq!(loc.lost_pools(), lost, "{path}");
        }
    }

    #[test]
    fn duplicate_keys_keep_the_first() {
        let (t, findings) = Tree::parse("a: 1\nb:\n  c: 2\n  c: 3\n").unwrap_or_default();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].path, "b.c");
        assert_eq!(findings[0].pos, Pos { line: 4, column: 3 });
        let masked = Masked::new();
        let loc = Locator {
            tree: &t,
            masked: &masked,
        };
        assert_eq!(loc.resolve("b.c").1, Pos { line: 3, column: 6 });
    }
}
