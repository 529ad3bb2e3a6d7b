//! Reading JSON and YAML documents into JSON values, with a map from field paths
//! (`rules[2].models[0]`, the engine's own notation) back to line and column.

use std::collections::HashMap;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use policies::canonical::{self, CanonicalError, MAX_SAFE_INTEGER};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// A problem at a position (when one is known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub(crate) pos: Option<Pos>,
    pub(crate) message: String,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    pos: Pos,
    /// Byte span in the source (JSON only; YAML entries have an empty span).
    start: usize,
    end: usize,
}

/// Field path -> position in the source.
#[derive(Debug, Clone, Default)]
pub(crate) struct SourceMap {
    entries: Vec<Entry>,
    by_path: HashMap<String, usize>,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceMap {
    fn push(&mut self, path: String, pos: Pos, start: usize, end: usize) {
        self.by_path
            .entry(path.clone())
            .or_insert(self.entries.len());
        self.entries.push(Entry {
            path,
            pos,
            start,
            end,
        });
    }

    /// Where `path` is written: the member's name for an object member, the element for an
    /// array element. A path that is not in the source (a missing field) falls back to its
    /// nearest ancestor that is.
    pub(crate) fn position(&self, path: &str) -> Option<Pos> {
        let mut current = path;
        loop {
            if let Some(entry) = self.by_path.get(current).and_then(|&i| self.entries.get(i)) {
                return Some(entry.pos);
            }
            current = parent_path(current)?;
        }
    }

    /// The innermost path whose source span contains the 1-based `line` and `column`.
    pub(crate) fn path_at(&self, line: usize, column: usize) -> Option<&str> {
        let line_start = *self.line_starts.get(line.checked_sub(1)?)?;
        let offset = line_start.saturating_add(column.saturating_sub(1));
        self.entries
            .iter()
            .filter(|e| e.start <= offset && offset <= e.end && !e.path.is_empty())
            .min_by_key(|e| e.end.saturating_sub(e.start))
            .map(|e| e.path.as_str())
    }
}

/// `rules[2].models` for `rules[2].models[0]`, `rules[2]` for `rules[2].models`, `""` for a
/// top-level name, `None` for the root.
pub(crate) fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        return path.rfind('[').map(|i| path.get(..i).unwrap_or_default());
    }
    Some(
        path.rfind('.')
            .map_or("", |i| path.get(..i).unwrap_or_default()),
    )
}

pub(crate) fn child_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

pub(crate) fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

// ---- JSON ------------------------------------------------------------------------------------

/// Parse JSON strictly (duplicate names and non-integers refused, with their position) and map
/// its paths.
pub(crate) fn load_json(text: &[u8]) -> Result<(Value, SourceMap), Located> {
    let value = canonical::parse_strict(text).map_err(|e| match e {
        CanonicalError::Json {
            line,
            column,
            message,
        } => Located {
            pos: Some(Pos { line, column }),
            message,
        },
        CanonicalError::Value { .. } => Located {
            pos: None,
            message: e.to_string(),
        },
    })?;
    Ok((value, map_json(text)))
}

/// Map the paths of a JSON text that is known to parse.
pub(crate) fn map_json(text: &[u8]) -> SourceMap {
    let mut walker = JsonWalker {
        s: text,
        i: 0,
        line: 1,
        line_start: 0,
        map: SourceMap::default(),
        depth: 0,
    };
    walker.map.line_starts = line_starts(text);
    walker.ws();
    let pos = walker.pos();
    walker.value("");
    let end = walker.i;
    walker.map.push(String::new(), pos, 0, end);
    walker.map
}

fn line_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        text.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts
}

/// A lenient walker over JSON that records every member's and element's position. It runs only
/// on text that already parsed, so it never needs to report errors; on anything unexpected it
/// stops early.
struct JsonWalker<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    line_start: usize,
    map: SourceMap,
    depth: usize,
}

impl JsonWalker<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.i.saturating_sub(self.line_start) + 1,
        }
    }

    fn ws(&mut self) {
        while let Some(b) = self.peek() {
            match b {
                b'\n' => {
                    self.i += 1;
                    self.line += 1;
                    self.line_start = self.i;
                }
                b' ' | b'\t' | b'\r' => self.i += 1,
                _ => break,
            }
        }
    }

    fn value(&mut self, path: &str) {
        if self.depth > 256 {
            return;
        }
        self.depth += 1;
        match self.peek() {
            Some(b'{') => self.object(path),
            Some(b'[') => self.array(path),
            Some(b'"') => {
                self.string();
            }
            Some(_) => {
                while let Some(b) = self.peek() {
                    if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.i += 1;
                }
            }
            None => {}
        }
        self.depth -= 1;
    }

    fn object(&mut self, path: &str) {
        self.i += 1;
        loop {
            self.ws();
            match self.peek() {
                Some(b'}') => {
                    self.i += 1;
                    return;
                }
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                Some(b'"') => {}
                _ => return,
            }
            let (start, pos) = (self.i, self.pos());
            let key = self.string();
            self.ws();
            if self.peek() != Some(b':') {
                return;
            }
            self.i += 1;
            self.ws();
            let child = child_key(path, &key);
            self.value(&child);
            let end = self.i;
            self.map.push(child, pos, start, end);
        }
    }

    fn array(&mut self, path: &str) {
        self.i += 1;
        let mut index = 0;
        loop {
            self.ws();
            match self.peek() {
                Some(b']') => {
                    self.i += 1;
                    return;
                }
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                None => return,
                Some(_) => {}
            }
            let (start, pos) = (self.i, self.pos());
            let child = child_index(path, index);
            let before = self.i;
            self.value(&child);
            if self.i == before {
                return;
            }
            let end = self.i;
            self.map.push(child, pos, start, end);
            index += 1;
        }
    }

    /// Consume a string literal and return its decoded text.
    fn string(&mut self) -> String {
        let start = self.i;
        self.i += 1;
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'\\' => self.i += 1,
                b'"' => break,
                _ => {}
            }
        }
        self.s
            .get(start..self.i)
            .and_then(|raw| serde_json::from_slice::<String>(raw).ok())
            .unwrap_or_default()
    }
}

// ---- YAML ------------------------------------------------------------------------------------

/// Deepest nesting accepted (as serde_json's default recursion limit).
const MAX_DEPTH: usize = 128;
/// Most nodes a document may expand to (aliases included).
const MAX_NODES: usize = 1_000_000;

enum Frame {
    Seq {
        items: Vec<Value>,
        path: String,
        anchor: usize,
    },
    Map {
        members: Map<String, Value>,
        path: String,
        anchor: usize,
        key: Option<String>,
    },
}

fn yaml_pos(mark: &Marker) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

fn at(mark: &Marker, message: impl Into<String>) -> Located {
    Located {
        pos: Some(yaml_pos(mark)),
        message: message.into(),
    }
}

/// Load one YAML document as a JSON value (YAML 1.2 core schema), mapping its paths. Refused:
/// several documents, duplicate keys, non-scalar keys, keys written with backslash escapes
/// (`"m\x6fde"`: as for JSON, what a reviewer reads is what runs) or holding a character JSON
/// would have to escape (`"`, `\`, control characters), numbers that are not
/// integers, tags other than the core `!!str`, `!!int`, `!!bool`, `!!null`. (A `null`, such as
/// a key whose list entries are all commented out, is read as `null` and refused later, under
/// its path, by `canonical`.)
pub(crate) fn load_yaml(text: &str) -> Result<(Value, SourceMap), Located> {
    let text_src = text;
    let mut offsets = CharOffsets {
        text,
        chars: 0,
        byte: 0,
    };
    let mut parser = Parser::new_from_str(text);
    let mut map = SourceMap::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Value> = HashMap::new();
    let mut root: Option<Value> = None;
    let mut documents = 0usize;
    let mut nodes = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| Located {
            pos: Some(yaml_pos(e.marker())),
            message: e.info().to_string(),
        })?;
        match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(at(
                        &mark,
                        "more than one YAML document; a bundle is one document",
                    ));
                }
            }
            Event::Alias(id) => {
                let value = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| at(&mark, "alias to an unknown anchor"))?;
                if is_key_slot(&stack) {
                    return Err(at(&mark, "an alias cannot be a mapping key"));
                }
                nodes = nodes.saturating_add(count_nodes(&value));
                if nodes > MAX_NODES {
                    return Err(at(&mark, "the document expands to too many nodes"));
                }
                next_path(&stack, &mut map, &mark);
                attach(&mut stack, &mut root, value, &mark)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                nodes = nodes.saturating_add(1);
                if let Some(Frame::Map {
                    members,
                    key: key @ None,
                    path,
                    ..
                }) = stack.last_mut()
                {
                    let child = child_key(path, &text);
                    if style == TScalarStyle::DoubleQuoted
                        && written_with_escape(text_src, offsets.byte_of(mark.index()))
                    {
                        return Err(at(&mark, format!("{child}: {ESCAPED_NAME}")));
                    }
                    if text
                        .chars()
                        .any(|c| matches!(c, '"' | '\\' | '\0'..='\u{1f}'))
                    {
                        return Err(at(&mark, format!("{child}: {UNWRITABLE_NAME}")));
                    }
                    if members.contains_key(&text) {
                        return Err(at(&mark, format!("duplicate key {text:?}")));
                    }
                    map.push(child, yaml_pos(&mark), mark.index(), mark.index());
                    *key = Some(text);
                    continue;
                }
                let value = scalar(&text, style, tag.as_ref()).map_err(|m| at(&mark, m))?;
                next_path(&stack, &mut map, &mark);
                if anchor > 0 {
                    anchors.insert(anchor, value.clone());
                }
                attach(&mut stack, &mut root, value, &mark)?;
            }
            Event::SequenceStart(anchor, ref tag) | Event::MappingStart(anchor, ref tag) => {
                nodes = nodes.saturating_add(1);
                if is_key_slot(&stack) {
                    return Err(at(&mark, "mapping keys must be plain scalars"));
                }
                if let Some(tag) = tag {
                    return Err(at(
                        &mark,
                        format!("unsupported tag {}{}", tag.handle, tag.suffix),
                    ));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(at(&mark, "nesting is too deep"));
                }
                let path = next_path(&stack, &mut map, &mark);
                let is_seq = matches!(event, Event::SequenceStart(..));
                stack.push(if is_seq {
                    Frame::Seq {
                        items: Vec::new(),
                        path,
                        anchor,
                    }
                } else {
                    Frame::Map {
                        members: Map::new(),
                        path,
                        anchor,
                        key: None,
                    }
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map {
                        members, anchor, ..
                    }) => (Value::Object(members), anchor),
                    None => return Err(at(&mark, "unbalanced collection")),
                };
                if anchor > 0 {
                    anchors.insert(anchor, value.clone());
                }
                attach(&mut stack, &mut root, value, &mark)?;
            }
        }
        if nodes > MAX_NODES {
            return Err(at(&mark, "the document has too many nodes"));
        }
    }
    let value = root.ok_or(Located {
        pos: None,
        message: "the document is empty".to_string(),
    })?;
    map.line_starts = line_starts(text.as_bytes());
    Ok((value, map))
}

const ESCAPED_NAME: &str =
    "the member name is written with a backslash escape; write member names as plain text";
/// A name the JSON form of the bundle (what is signed and what the filter reads) could only
/// write with an escape, which the filter refuses.
const UNWRITABLE_NAME: &str = "the member name contains a quote, a backslash or a control \
     character, which JSON can only write escaped; write member names as plain text";

/// Byte offsets of yaml_rust2's marks, which count characters. Marks arrive mostly in
/// increasing order, so the cursor only moves forward (it restarts when one does not).
struct CharOffsets<'a> {
    text: &'a str,
    chars: usize,
    byte: usize,
}

impl CharOffsets<'_> {
    /// The byte offset of the character at `index` (the end of the text when beyond it).
    fn byte_of(&mut self, index: usize) -> usize {
        if index < self.chars {
            self.chars = 0;
            self.byte = 0;
        }
        while self.chars < index {
            let Some(c) = self
                .text
                .get(self.byte..)
                .and_then(|rest| rest.chars().next())
            else {
                break;
            };
            self.byte += c.len_utf8();
            self.chars += 1;
        }
        self.byte
    }
}

/// Does the double-quoted scalar that starts at (or, past a BOM, just after) byte `start` of
/// `text` contain a backslash escape? Unreadable positions count as escaped (refused).
fn written_with_escape(text: &str, start: usize) -> bool {
    let Some(rest) = text.as_bytes().get(start..) else {
        return true;
    };
    let Some(open) = rest.iter().position(|&b| b == b'"') else {
        return true;
    };
    for &b in rest.iter().skip(open + 1) {
        match b {
            b'\\' => return true,
            b'"' => return false,
            _ => {}
        }
    }
    true
}

fn is_key_slot(stack: &[Frame]) -> bool {
    matches!(stack.last(), Some(Frame::Map { key: None, .. }))
}

/// The path of the node that starts now; records an array element's position (a member's
/// position was recorded at its key).
fn next_path(stack: &[Frame], map: &mut SourceMap, mark: &Marker) -> String {
    match stack.last() {
        None => {
            map.push(String::new(), yaml_pos(mark), mark.index(), mark.index());
            String::new()
        }
        Some(Frame::Seq { items, path, .. }) => {
            let child = child_index(path, items.len());
            map.push(child.clone(), yaml_pos(mark), mark.index(), mark.index());
            child
        }
        Some(Frame::Map { path, key, .. }) => child_key(path, key.as_deref().unwrap_or_default()),
    }
}

fn attach(
    stack: &mut [Frame],
    root: &mut Option<Value>,
    value: Value,
    mark: &Marker,
) -> Result<(), Located> {
    match stack.last_mut() {
        None => {
            *root = Some(value);
            Ok(())
        }
        Some(Frame::Seq { items, .. }) => {
            items.push(value);
            Ok(())
        }
        Some(Frame::Map { members, key, .. }) => match key.take() {
            Some(k) => {
                members.insert(k, value);
                Ok(())
            }
            None => Err(at(mark, "mapping keys must be plain scalars")),
        },
    }
}

fn count_nodes(value: &Value) -> usize {
    match value {
        Value::Array(items) => items
            .iter()
            .map(count_nodes)
            .sum::<usize>()
            .saturating_add(1),
        Value::Object(m) => m.values().map(count_nodes).sum::<usize>().saturating_add(1),
        _ => 1,
    }
}

fn is_core_tag(tag: &Tag, name: &str) -> bool {
    (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:") && tag.suffix == name
}

/// Resolve a scalar with the YAML 1.2 core schema.
fn scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag {
        return if is_core_tag(tag, "str") {
            Ok(Value::String(text.to_string()))
        } else if is_core_tag(tag, "int") {
            integer(text)?.ok_or_else(|| format!("{text:?} is not an integer"))
        } else if is_core_tag(tag, "bool") || is_core_tag(tag, "null") {
            match plain(text)? {
                v @ (Value::Bool(_) | Value::Null) => Ok(v),
                _ => Err(format!("{text:?} does not match its tag")),
            }
        } else {
            Err(format!(
                "unsupported tag {}{} (only !!str, !!int, !!bool and !!null)",
                tag.handle, tag.suffix
            ))
        };
    }
    match style {
        TScalarStyle::Plain => plain(text),
        _ => Ok(Value::String(text.to_string())),
    }
}

fn plain(text: &str) -> Result<Value, String> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(v) = integer(text)? {
        return Ok(v);
    }
    if is_float(text) {
        return Err(format!(
            "number {text} is not an integer: bundles use plain integers only (quote it if it is a string)"
        ));
    }
    Ok(Value::String(text.to_string()))
}

/// A core-schema integer (`123`, `-4`, `0x1f`, `0o17`), or `None` if `text` is not one.
fn integer(text: &str) -> Result<Option<Value>, String> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    let parsed = if let Some(hex) = text.strip_prefix("0x") {
        (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(hex, 16).ok())
    } else if let Some(oct) = text.strip_prefix("0o") {
        (!oct.is_empty() && oct.bytes().all(|b| (b'0'..=b'7').contains(&b)))
            .then(|| u64::from_str_radix(oct, 8).ok())
    } else {
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
    };
    let Some(magnitude) = parsed else {
        return Ok(None);
    };
    match magnitude.filter(|m| *m <= MAX_SAFE_INTEGER) {
        Some(m) => {
            let value = if negative {
                i64::try_from(m).map(|v| Value::from(-v)).ok()
            } else {
                Some(Value::from(m))
            };
            value
                .map(Some)
                .ok_or_else(|| format!("integer {text} is out of range"))
        }
        None => Err(format!(
            "integer {text} is outside ±{MAX_SAFE_INTEGER}, which has no exact canonical form"
        )),
    }
}

/// A core-schema float (`1.5`, `-2e3`, `.5`, `.inf`, `.nan`).
fn is_float(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let body = lower.trim_start_matches(['-', '+']);
    if body == ".inf" || body == ".nan" {
        return true;
    }
    let (mantissa, exponent) = match body.split_once('e') {
        Some((m, e)) => (m, Some(e.trim_start_matches(['-', '+']))),
        None => (body, None),
    };
    let (int_part, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int_part) && digits(f) && !(int_part.is_empty() && f.is_empty()),
        None => !int_part.is_empty() && digits(int_part),
    };
    let exponent_ok = exponent.is_none_or(|e| !e.is_empty() && digits(e));
    mantissa_ok && exponent_ok && (frac.is_some() || exponent.is_some())
}

// ---- documents -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
}

/// Pick the format: by extension, else JSON when the text starts with `{` or `[`.
pub(crate) fn detect_format(name: &str, text: &[u8]) -> Format {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".json") {
        return Format::Json;
    }
    if lower.ends_with(".yaml") || lower.ends_with(".yml") {
        return Format::Yaml;
    }
    let first = text
        .iter()
        .copied()
        .find(|b| !b.is_ascii_whitespace() && *b != 0xef && *b != 0xbb && *b != 0xbf);
    if matches!(first, Some(b'{' | b'[')) {
        Format::Json
    } else {
        Format::Yaml
    }
}

/// Parse a document of either format.
pub(crate) fn load_document(format: Format, text: &[u8]) -> Result<(Value, SourceMap), Located> {
    match format {
        Format::Json => load_json(text),
        Format::Yaml => {
            let text = std::str::from_utf8(text).map_err(|e| Located {
                pos: None,
                message: format!("not UTF-8 text: {e}"),
            })?;
            load_yaml(text)
        }
    }
}

/// Read a file (`-` for stdin).
pub(crate) fn read_input(name: &str) -> Result<Vec<u8>, String> {
    if name == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        return Ok(buf);
    }
    std::fs::read(name).map_err(|e| format!("cannot read {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_have_positions() {
        let text = b"{\n  \"a\": [1,\n    {\"b\": 2}]\n}";
        let map = map_json(text);
        assert_eq!(map.position("a"), Some(Pos { line: 2, column: 3 }));
        assert_eq!(map.position("a[1].b"), Some(Pos { line: 3, column: 6 }));
        assert_eq!(map.position("a[1].c"), Some(Pos { line: 3, column: 5 }));
        assert_eq!(map.path_at(3, 11), Some("a[1].b"));
    }

    #[test]
    fn yaml_resolves_the_core_schema() {
        let (v, map) = load_yaml("a: 1\nb: '1'\nc: [true, null, x]\nd: 0x10\n").unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": "1", "c": [true, null, "x"], "d": 16})
        );
        assert_eq!(
            map.position("c[2]"),
            Some(Pos {
                line: 3,
                column: 17
            })
        );
        assert_eq!(map.position("d"), Some(Pos { line: 4, column: 1 }));
    }

    #[test]
    fn yaml_refuses_duplicates_and_floats() {
        assert!(load_yaml("a: 1\na: 2\n").is_err());
        assert!(load_yaml("a: 1.5\n").is_err());
        assert!(load_yaml("a: '1.5'\n").is_ok());
        assert!(load_yaml("--- 1\n--- 2\n").is_err());
    }

    #[test]
    fn yaml_refuses_escaped_keys_only() {
        let e = load_yaml("a:\n  \"m\\x6fde\": x\n").err();
        assert_eq!(
            e.as_ref().and_then(|e| e.pos),
            Some(Pos { line: 2, column: 3 })
        );
        assert!(e
            .map(|e| e.message)
            .unwrap_or_default()
            .starts_with("a.mode: the member name is written with a backslash escape"));
        assert!(load_yaml("{\"b\\u0062\": 1}").is_err());
        assert!(load_yaml("\u{e9}t\u{e9}: 1\n\"mode\": \"dry-\\x72un\"\n'k\\x': 2\n").is_err());
        assert!(load_yaml("'a\"b': 2\n").is_err());
        assert!(load_yaml("\u{e9}t\u{e9}: 1\n\"mode\": \"dry-\\x72un\"\n'k/x': 2\n").is_ok());
    }

    #[test]
    fn yaml_aliases_expand() {
        let (v, _) = load_yaml("x: &m [a, b]\ny: *m\n").unwrap();
        assert_eq!(v, serde_json::json!({"x": ["a", "b"], "y": ["a", "b"]}));
    }

    #[test]
    fn parent_paths() {
        assert_eq!(parent_path("rules[2].models[0]"), Some("rules[2].models"));
        assert_eq!(parent_path("rules[2].models"), Some("rules[2]"));
        assert_eq!(parent_path("rules[2]"), Some("rules"));
        assert_eq!(parent_path("rules"), Some(""));
        assert_eq!(parent_path(""), None);
    }
}
