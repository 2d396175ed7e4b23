//! The typed topology deserialised from the located node tree, with every
//! structural problem found, not just the first.
//!
//! [`NodeDe`] is a small serde `Deserializer` over [`Tree`] nodes: each error
//! it returns carries the field path and line:column of the node it arose
//! at, and a struct's unknown keys are collected (and skipped) instead of
//! stopping it. [`Recovery::recover`] deserialises one part of the file; when
//! a node fails, its problem is recorded and the node is left out (masked)
//! for the next try. A broken optional field falls back to its default; a
//! broken or missing required field gets a placeholder (empty string, zero,
//! first variant) so that its struct survives for the other checks, which
//! ignore whatever was left out. A field no placeholder fits (a transport)
//! takes its enclosing struct out: up to the nearest sequence item (that
//! server) or to the part being recovered.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    Visitor,
};

use super::tree::{Entry, Kind, Masked, NodeId, Pos, Tree, join_key};

/// The most tries one file may take; each try leaves one more node out.
const MAX_TRIES: usize = 300;

/// A structural problem, located.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Problem {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

/// A deserialisation error, located at the innermost node that saw it.
#[derive(Debug)]
pub(super) struct DeError {
    message: String,
    missing: Option<&'static str>,
    unknown_field: Option<String>,
    at: Option<(String, Pos)>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            missing: None,
            unknown_field: None,
            at: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            missing: Some(field),
            ..Self::custom(format_args!("missing field `{field}`"))
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            unknown_field: Some(field.to_string()),
            ..Self::custom(unknown_field_message(field, expected))
        }
    }
}

pub(super) fn unknown_field_message(field: &str, expected: &'static [&'static str]) -> String {
    <de::value::Error as de::Error>::unknown_field(field, expected).to_string()
}

/// One part of the file deserialised at a time, sharing what was left out.
pub(super) struct Recovery<'t> {
    tree: &'t Tree,
    /// Every path left out; placeholders stand in for some of them.
    pub masked: Masked,
    /// Required fields a placeholder stands in for.
    filled: HashSet<String>,
    /// Required fields no placeholder fits.
    unfillable: HashSet<String>,
    problems: Vec<Problem>,
    seen: HashSet<Problem>,
    tries: usize,
}

impl<'t> Recovery<'t> {
    pub fn new(tree: &'t Tree) -> Self {
        Recovery {
            tree,
            masked: Masked::new(),
            filled: HashSet::new(),
            unfillable: HashSet::new(),
            problems: Vec::new(),
            seen: HashSet::new(),
            tries: 0,
        }
    }

    /// Record a problem once, however many tries meet it.
    pub fn report(&mut self, pos: Pos, path: String, message: String) {
        let problem = Problem { pos, path, message };
        if self.seen.insert(problem.clone()) {
            self.problems.push(problem);
        }
    }

    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Deserialise the node at `path`; `None` (its problems recorded, the
    /// node masked) when it cannot be.
    pub fn recover<T: DeserializeOwned>(&mut self, id: NodeId, path: &str) -> Option<T> {
        loop {
            if self.tries >= MAX_TRIES {
                // Said once, where it happened.
                if self.tries == MAX_TRIES {
                    let found = self.problems.len();
                    self.report(
                        self.tree.pos(id),
                        path.to_string(),
                        format!(
                            "checking stopped here after {found} structural problems; fix them and validate again"
                        ),
                    );
                    self.tries += 1;
                }
                self.masked.insert(path.to_string());
                return None;
            }
            self.tries += 1;
            let pass = Pass {
                tree: self.tree,
                masked: &self.masked,
                filled: &self.filled,
                unknown: RefCell::new(Vec::new()),
            };
            let result = T::deserialize(NodeDe {
                pass: &pass,
                id,
                path: path.to_string(),
            });
            for p in pass.unknown.into_inner() {
                self.report(p.pos, p.path, p.message);
            }
            let error = match result {
                Ok(value) => return Some(value),
                Err(e) => e,
            };
            let (at, pos) = error
                .at
                .unwrap_or_else(|| (path.to_string(), self.tree.pos(id)));
            let progress = match error.missing {
                Some(field) => {
                    let child = join_key(&at, field);
                    // Missing because it was left out: reported already.
                    if !self.masked.contains(&child) {
                        self.report(pos, at.clone(), error.message);
                    }
                    if self.filled.contains(&child) || self.unfillable.contains(&child) {
                        // The struct could not take a placeholder: out.
                        self.masked.insert(at.clone())
                    } else {
                        self.masked.insert(child.clone());
                        self.filled.insert(child)
                    }
                }
                // A placeholder that does not fit its type: its struct will
                // miss the field again, and go.
                None if self.filled.remove(&at) => self.unfillable.insert(at.clone()),
                None => {
                    self.report(pos, at.clone(), error.message);
                    self.masked.insert(at.clone())
                }
            };
            if !progress || self.masked.contains(path) {
                self.masked.insert(path.to_string());
                return None;
            }
        }
    }
}

/// One try: what is masked stays fixed; unknown keys are collected.
struct Pass<'t> {
    tree: &'t Tree,
    masked: &'t Masked,
    filled: &'t HashSet<String>,
    unknown: RefCell<Vec<Problem>>,
}

/// A serde `Deserializer` for one node of the tree.
///
/// Some values are deserialised after the node's own deserializer returned
/// (an internally tagged enum buffers the mapping, then reads its variant):
/// the sequence or mapping that handed the node out locates their errors.
#[derive(Clone)]
struct NodeDe<'p, 't> {
    pass: &'p Pass<'t>,
    id: NodeId,
    path: String,
}

enum Shape<'t> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'t str),
    Seq(&'t [NodeId]),
    Map(&'t [Entry]),
}

/// The YAML 1.2 core schema's reading of a scalar.
fn resolve(text: &str, plain: bool) -> Shape<'_> {
    if !plain {
        return Shape::Str(text);
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Shape::Null,
        "true" | "True" | "TRUE" => return Shape::Bool(true),
        "false" | "False" | "FALSE" => return Shape::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Shape::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Shape::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Shape::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Shape::Int(i);
    }
    let float_chars = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'));
    if float_chars
        && text.chars().any(|c| c.is_ascii_digit())
        && let Ok(f) = text.parse::<f64>()
    {
        return Shape::Float(f);
    }
    Shape::Str(text)
}

fn parse_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..)?),
        Some(b'+') => (false, text.get(1..)?),
        _ => (false, text),
    };
    let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let value = i128::from_str_radix(digits, radix).ok()?;
    Some(if negative { -value } else { value })
}

impl<'p, 't> NodeDe<'p, 't> {
    fn shape(&self) -> Shape<'t> {
        match self.pass.tree.node(self.id).map(|n| &n.kind) {
            Some(Kind::Scalar { text, plain }) => resolve(text, *plain),
            Some(Kind::Seq(items)) => Shape::Seq(items),
            Some(Kind::Map(entries)) => Shape::Map(entries),
            None => Shape::Null,
        }
    }

    fn unexpected(&self) -> Unexpected<'t> {
        match self.shape() {
            Shape::Null => Unexpected::Other("null"),
            Shape::Bool(b) => Unexpected::Bool(b),
            Shape::Int(i) => match (u64::try_from(i), i64::try_from(i)) {
                (Ok(u), _) => Unexpected::Unsigned(u),
                (_, Ok(s)) => Unexpected::Signed(s),
                _ => Unexpected::Other("integer"),
            },
            Shape::Float(f) => Unexpected::Float(f),
            Shape::Str(s) => Unexpected::Str(s),
            Shape::Seq(_) => Unexpected::Seq,
            Shape::Map(_) => Unexpected::Map,
        }
    }

    fn wrong_type<V: Visitor<'t>>(&self, visitor: &V) -> DeError {
        de::Error::invalid_type(self.unexpected(), visitor)
    }

    /// Locate an error that no inner node located: here, or at the key an
    /// unknown field names.
    fn locate(&self, mut error: DeError) -> DeError {
        if error.at.is_some() {
            return error;
        }
        let node = self.pass.tree.node(self.id);
        let mut at = (self.path.clone(), node.map(|n| n.pos).unwrap_or_default());
        if let (Some(field), Some(Kind::Map(entries))) =
            (&error.unknown_field, node.map(|n| &n.kind))
            && let Some(entry) = entries.iter().find(|e| &e.key == field)
        {
            at = (join_key(&self.path, field), entry.key_pos);
        }
        error.at = Some(at);
        error
    }

    fn int<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.shape() {
            Shape::Int(i) => visit_int(i, visitor),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn float<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.shape() {
            Shape::Float(f) => visitor.visit_f64(f),
            #[allow(clippy::cast_precision_loss)]
            Shape::Int(i) => visitor.visit_f64(i as f64),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn string<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match (self.shape(), self.pass.tree.node(self.id).map(|n| &n.kind)) {
            (Shape::Null | Shape::Seq(_) | Shape::Map(_), _) => Err(self.wrong_type(&visitor)),
            (_, Some(Kind::Scalar { text, .. })) => visitor.visit_str(text),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn seq<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.shape() {
            Shape::Seq(items) => visitor.visit_seq(Items {
                pass: self.pass,
                path: &self.path,
                items: items.iter().enumerate(),
            }),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn map<V: Visitor<'t>>(
        self,
        visitor: V,
        fields: Option<&'static [&'static str]>,
    ) -> Result<V::Value, DeError> {
        let result = match self.shape() {
            Shape::Map(entries) => visitor.visit_map(Entries {
                pass: self.pass,
                path: &self.path,
                entries: entries.iter(),
                fields,
                next_field: 0,
                value: None,
            }),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }
}

fn visit_int<'de, V: Visitor<'de>>(i: i128, visitor: V) -> Result<V::Value, DeError> {
    if let Ok(u) = u64::try_from(i) {
        visitor.visit_u64(u)
    } else if let Ok(s) = i64::try_from(i) {
        visitor.visit_i64(s)
    } else {
        Err(de::Error::invalid_value(
            Unexpected::Other("integer out of range"),
            &visitor,
        ))
    }
}

macro_rules! forward_int {
    ($($name:ident)*) => {$(
        fn $name<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.int(visitor)
        }
    )*};
}

impl<'p, 't> de::Deserializer<'t> for NodeDe<'p, 't> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.shape() {
            Shape::Null => visitor.visit_unit(),
            Shape::Bool(b) => visitor.visit_bool(b),
            Shape::Int(i) => visit_int(i, visitor),
            Shape::Float(f) => visitor.visit_f64(f),
            Shape::Str(s) => visitor.visit_str(s),
            Shape::Seq(_) => return self.seq(visitor),
            Shape::Map(_) => return self.map(visitor, None),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.shape() {
            Shape::Bool(b) => visitor.visit_bool(b),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    forward_int! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f32<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.float(visitor)
    }

    fn deserialize_f64<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.float(visitor)
    }

    fn deserialize_char<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_str<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_option<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.shape() {
            Shape::Null => visitor.visit_none().map_err(|e| self.locate(e)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.shape() {
            Shape::Null => visitor.visit_unit(),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_unit_struct<V: Visitor<'t>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'t>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'t>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'t>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map(visitor, None)
    }

    fn deserialize_struct<V: Visitor<'t>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.map(visitor, Some(fields))
    }

    /// Unit variants only: a topology's enums are plain words.
    fn deserialize_enum<V: Visitor<'t>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match (self.shape(), self.pass.tree.node(self.id).map(|n| &n.kind)) {
            (Shape::Null | Shape::Seq(_) | Shape::Map(_), _) => Err(self.wrong_type(&visitor)),
            (_, Some(Kind::Scalar { text, .. })) => visitor.visit_enum(
                IntoDeserializer::<DeError>::into_deserializer(text.as_str()),
            ),
            _ => Err(self.wrong_type(&visitor)),
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'t>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// A sequence's items; masked items are left out.
struct Items<'p, 't, I> {
    pass: &'p Pass<'t>,
    path: &'p str,
    items: I,
}

impl<'p, 't, I: Iterator<Item = (usize, &'t NodeId)>> SeqAccess<'t> for Items<'p, 't, I> {
    type Error = DeError;

    fn next_element_seed<S: DeserializeSeed<'t>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, DeError> {
        for (i, id) in self.items.by_ref() {
            let path = format!("{}[{i}]", self.path);
            if self.pass.masked.contains(&path) {
                continue;
            }
            let at = NodeDe {
                pass: self.pass,
                id: *id,
                path,
            };
            return seed
                .deserialize(at.clone())
                .map(Some)
                .map_err(|e| at.locate(e));
        }
        Ok(None)
    }
}

/// A mapping's entries; masked ones are left out, and with `fields` (a
/// struct), unknown keys are recorded and left out.
struct Entries<'p, 't, I> {
    pass: &'p Pass<'t>,
    path: &'p str,
    entries: I,
    fields: Option<&'static [&'static str]>,
    /// After the entries: the next of `fields` to check for a placeholder.
    next_field: usize,
    value: Option<Value>,
}

enum Value {
    Node(NodeId, String),
    Placeholder(String),
}

impl<'p, 't, I: Iterator<Item = &'t Entry>> MapAccess<'t> for Entries<'p, 't, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'t>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for entry in self.entries.by_ref() {
            let path = join_key(self.path, &entry.key);
            if self.pass.masked.contains(&path) {
                continue;
            }
            if let Some(fields) = self.fields
                && !fields.contains(&entry.key.as_str())
            {
                self.pass.unknown.borrow_mut().push(Problem {
                    pos: entry.key_pos,
                    path,
                    message: unknown_field_message(&entry.key, fields),
                });
                continue;
            }
            self.value = Some(Value::Node(entry.value, path));
            let key: de::value::StrDeserializer<'_, DeError> =
                entry.key.as_str().into_deserializer();
            return seed.deserialize(key).map(Some);
        }
        let fields = self.fields.unwrap_or_default();
        while let Some(field) = fields.get(self.next_field) {
            self.next_field += 1;
            let path = join_key(self.path, field);
            if self.pass.filled.contains(&path) {
                self.value = Some(Value::Placeholder(path));
                let key: de::value::StrDeserializer<'_, DeError> = field.into_deserializer();
                return seed.deserialize(key).map(Some);
            }
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'t>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(Value::Node(id, path)) => {
                let at = NodeDe {
                    pass: self.pass,
                    id,
                    path,
                };
                seed.deserialize(at.clone()).map_err(|e| at.locate(e))
            }
            Some(Value::Placeholder(path)) => {
                let pos = Pos::default();
                seed.deserialize(Placeholder { path: &path })
                    .map_err(|mut e| {
                        e.at = Some((path.clone(), pos));
                        e
                    })
            }
            None => Err(de::Error::custom("a value was asked for before its key")),
        }
    }
}

/// Stands in for a required field that is missing or broken: the emptiest
/// value of whatever type is asked for. Its errors are located at `path`.
struct Placeholder<'a> {
    path: &'a str,
}

macro_rules! placeholder_as {
    ($visit:ident($value:expr): $($name:ident)*) => {$(
        fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            visitor.$visit($value)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Placeholder<'_> {
    type Error = DeError;

    placeholder_as! { visit_str(""): deserialize_str deserialize_string deserialize_identifier
    deserialize_char deserialize_bytes deserialize_byte_buf }
    placeholder_as! { visit_u64(0): deserialize_u8 deserialize_u16 deserialize_u32
    deserialize_u64 deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 }
    placeholder_as! { visit_f64(0.0): deserialize_f32 deserialize_f64 }
    placeholder_as! { visit_bool(false): deserialize_bool }
    placeholder_as! { visit_seq(de::value::SeqDeserializer::new(std::iter::empty::<()>())):
    deserialize_seq }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom("no placeholder fits"))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_none()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_map(de::value::MapDeserializer::new(
            std::iter::empty::<((), ())>(),
        ))
    }

    /// Every field a placeholder too, so that the struct needs nothing.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(PlaceholderFields {
            path: self.path,
            fields: fields.iter(),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match variants.first() {
            Some(first) => {
                visitor.visit_enum(IntoDeserializer::<DeError>::into_deserializer(*first))
            }
            None => Err(de::Error::custom("no placeholder fits")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct PlaceholderFields<'a, I> {
    path: &'a str,
    fields: I,
}

impl<'de, I: Iterator<Item = &'static &'static str>> MapAccess<'de> for PlaceholderFields<'_, I> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.fields.next() {
            Some(field) => {
                let key: de::value::StrDeserializer<'_, DeError> = field.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        seed.deserialize(Placeholder { path: self.path })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        a: u16,
        #[serde(default)]
        b: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        items: Vec<Inner>,
        #[serde(default)]
        port: u16,
    }

    fn r_masked(text: &str) -> Masked {
        let (tree, _) = Tree::parse(text).unwrap_or_default();
        let mut r = Recovery::new(&tree);
        let _ = r.recover::<Outer>(tree.root.unwrap_or_default(), "");
        r.masked
    }

    /// A field no placeholder fits takes its sequence item out.
    #[test]
    fn an_unfillable_field_takes_its_item_out() {
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type")]
        enum Tagged {
            A { x: u8 },
        }
        #[derive(Debug, Deserialize)]
        struct Item {
            t: Tagged,
        }
        let text = "- t: {type: A, x: 1}\n- t: {type: B}\n- {}\n- t: {type: A, x: 3}\n";
        let (tree, _) = Tree::parse(text).unwrap_or_default();
        let mut r = Recovery::new(&tree);
        let out = r.recover::<Vec<Item>>(tree.root.unwrap_or_default(), "");
        let found: Vec<String> = r
            .into_problems()
            .iter()
            .map(|p| format!("{}:{} {}: {}", p.pos.line, p.pos.column, p.path, p.message))
            .collect();
        assert_eq!(
            found,
            [
                "2:13 [1].t.type: unknown variant `B`, expected `A`",
                "3:3 [2]: missing field `t`",
            ]
        );
        let xs: Vec<u8> = out
            .unwrap_or_default()
            .iter()
            .map(|i| match i.t {
                Tagged::A { x } => x,
            })
            .collect();
        assert_eq!(xs, [1, 3]);
    }

    fn run(text: &str) -> (Option<Outer>, Vec<Problem>) {
        let (tree, _) = Tree::parse(text).unwrap_or_default();
        let mut r = Recovery::new(&tree);
        let root = tree.root.unwrap_or_default();
        let out = r.recover::<Outer>(root, "");
        (out, r.into_problems())
    }

    #[test]
    fn every_structural_problem_is_found_once() {
        let text = "items:\n  - a: 1\n    zz: 2\n  - a: [1]\n  - b: x\n  - a: 3\nport: nope\n";
        let (out, problems) = run(text);
        let out = out.unwrap_or_else(|| panic!("{problems:?}"));
        let found: Vec<String> = problems
            .iter()
            .map(|p| format!("{}:{} {}: {}", p.pos.line, p.pos.column, p.path, p.message))
            .collect();
        assert_eq!(
            found,
            [
                "3:5 items[0].zz: unknown field `zz`, expected `a` or `b`",
                "4:8 items[1].a: invalid type: sequence, expected u16",
                "5:5 items[2]: missing field `a`",
                "7:7 port: invalid type: string \"nope\", expected u16",
            ]
        );
        // Broken or missing required fields get placeholders; a broken
        // optional field its default.
        let a: Vec<u16> = out.items.iter().map(|i| i.a).collect();
        assert_eq!(a, [1, 0, 0, 3]);
        assert_eq!(out.port, 0);
        assert!(r_masked(text).contains("items[1].a"));
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let (out, problems) = run("items: [{a: 0x10, b: 12}, {a: '5'}]\nport: 70000\n");
        let out = out.unwrap_or_else(|| panic!("{problems:?}"));
        assert_eq!(out.items.len(), 2);
        assert_eq!(out.items[0].a, 16);
        // A string field takes a plain scalar's text.
        assert_eq!(out.items[0].b.as_deref(), Some("12"));
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "invalid type: string \"5\", expected u16",
                "invalid value: integer `70000`, expected u16",
            ]
        );
    }
}
