//! Strict JSON reading of body-carried model ids.
//!
//! A general-purpose JSON library answers "what does this document mean" with its own map
//! semantics (last duplicate wins, escapes folded into keys). Bedrock's front ends may answer
//! differently, so this module refuses every document on which parsers could disagree about
//! the model: duplicate keys at any depth, escaped or case-variant spellings of model keys, and
//! anything that is not exactly one RFC 8259 object. It is a single pass over the complete
//! buffer with an explicit stack (no recursion), and it allocates only for the keys of the
//! objects currently open (borrowed from the buffer unless they contain escapes) and for the
//! model values it returns.

use std::borrow::Cow;
use std::collections::BTreeSet;

use crate::decision::Reason;
use crate::request::route::{ModelLocation, ResourceFields, ResourceKind};

/// Deepest accepted nesting of objects and arrays (the top-level object is depth 1).
pub const MAX_DEPTH: usize = 64;

/// Most model values one body may carry (bounds what the engine has to evaluate).
pub const MAX_MODELS: usize = 256;

/// The canonical spellings of keys that carry a model reference somewhere in the Bedrock APIs.
/// Any other spelling that folds to one of these is refused, wherever it appears.
const MODEL_KEYS: &[&str] = &[
    "model",
    "modelId",
    "modelArn",
    "foundationModel",
    "targetModelId",
];

/// Objects with more keys than this switch from a linear scan to an ordered set, so duplicate
/// detection stays `O(n log n)` for hostile bodies.
const SMALL_OBJECT_KEYS: usize = 16;

/// Why a body was refused (always `body_unparseable`). Fixed texts: they never echo body
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// No bytes (or only whitespace).
    #[error("body is empty")]
    Empty,
    /// A JSON value other than an object (a byte order mark included).
    #[error("body is not a JSON object")]
    NotAnObject,
    /// Not JSON: a bad token, number or structure.
    #[error("body is not valid JSON")]
    Syntax,
    /// The body ends before the value does.
    #[error("body ends inside the JSON value")]
    Truncated,
    /// Anything but whitespace after the object.
    #[error("body has data after the JSON value")]
    TrailingData,
    /// Objects and arrays nested deeper than [`MAX_DEPTH`].
    #[error("body nests deeper than 64 levels")]
    TooDeep,
    /// A string with bytes that are not UTF-8.
    #[error("body string is not valid UTF-8")]
    InvalidUtf8,
    /// A backslash escape JSON does not define.
    #[error("body string has an invalid escape")]
    InvalidEscape,
    /// A `\u` escape of half a surrogate pair.
    #[error("body string has an unpaired surrogate escape")]
    LoneSurrogate,
    /// An unescaped control character inside a string.
    #[error("body string contains a raw control character")]
    ControlCharacter,
    /// An object with the same key twice, at any depth (keys compared after unescaping).
    #[error("body has a duplicate key")]
    DuplicateKey,
    /// A model or resource key written with an escape or in another case (`"m\u006fdel"`,
    /// `"Model"`).
    #[error("body has an escaped or case-variant spelling of a model key")]
    AmbiguousModelKey,
    /// The operation's required top-level model member is absent.
    #[error("body has no model member")]
    ModelMissing,
    /// A model or resource member whose value is not a string.
    #[error("body model member is not a string")]
    ModelNotString,
    /// More than [`MAX_MODELS`] model members.
    #[error("body carries too many model members")]
    TooManyModels,
}

impl BodyError {
    /// `body_unparseable`.
    pub fn reason(&self) -> Reason {
        Reason::BodyUnparseable
    }
}

/// Read the model-carrying string members of a complete JSON body, strictly.
/// Returns the JSON-unescaped string values in document order.
///
/// * `BodyField(name)`: the top-level member `name` must exist (once) and be a string.
/// * `BodyAnywhere(keys)`: every member named in `keys`, at any depth, must be a string; zero
///   such members is fine.
/// * `Path` / `None`: the body is not read; the result is empty.
///
/// The values are returned as written (unescaped): validate them with
/// [`crate::request::parse_body_model_id`].
pub fn extract_body_models(body: &[u8], location: ModelLocation) -> Result<Vec<String>, BodyError> {
    extract_body_values(body, location, ResourceFields::None).map(|v| v.models)
}

/// The model and resource values a body names (see [`extract_body_values`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BodyValues {
    /// Model references, in document order.
    pub(crate) models: Vec<String>,
    /// Other resources that receive customer data (S3 output locations, Lambda functions,
    /// knowledge bases, guardrails, KMS keys) and account ids, in document order.
    pub(crate) resources: Vec<(ResourceKind, String)>,
}

/// Read the model-carrying members (as [`extract_body_models`]) and, in the same single pass,
/// the members `resources` names. Every captured member must be a string; an escaped or
/// case-variant spelling of a captured key is refused like one of a model key.
pub(crate) fn extract_body_values(
    body: &[u8],
    location: ModelLocation,
    resources: ResourceFields,
) -> Result<BodyValues, BodyError> {
    let target = match location {
        ModelLocation::Path | ModelLocation::None => return Ok(BodyValues::default()),
        ModelLocation::BodyField(name) => Target::TopLevel(name),
        ModelLocation::BodyAnywhere(keys) => Target::Anywhere(keys),
    };
    let mut parser = Parser {
        buf: body,
        pos: 0,
        target,
        resources,
        frames: Vec::new(),
        keys: Vec::new(),
        names: Vec::new(),
        pending: None,
        role: Role::Ignore,
        values: BodyValues::default(),
    };
    parser.document()?;
    if let Target::TopLevel(_) = target {
        if parser.values.models.is_empty() {
            return Err(BodyError::ModelMissing);
        }
    }
    Ok(parser.values)
}

#[derive(Clone, Copy)]
enum Target {
    TopLevel(&'static str),
    Anywhere(&'static [&'static str]),
}

/// What the value being read means to the caller.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Ignore,
    Capture,
    Resource(ResourceKind),
}

enum Frame<'a> {
    Array,
    Object {
        /// Where this object's keys start in `Parser::keys` (while it is small).
        key_start: usize,
        /// This object's keys once it outgrew `SMALL_OBJECT_KEYS`.
        big: Option<BTreeSet<Cow<'a, [u8]>>>,
    },
}

#[derive(Clone, Copy)]
enum State {
    Value,
    FirstKeyOrEnd,
    Key,
    AfterValue,
}

/// A validated JSON string: its raw text between the quotes and whether it has escapes.
#[derive(Clone, Copy)]
struct RawStr<'a> {
    text: &'a str,
    escaped: bool,
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    target: Target,
    resources: ResourceFields,
    frames: Vec<Frame<'a>>,
    /// Keys of the open small objects, stacked; each object owns the tail from its `key_start`.
    keys: Vec<Cow<'a, [u8]>>,
    /// For `ResourceFields::Paths` only: the member name each open container was reached by
    /// (`None` for the root and for array elements), one entry per frame.
    names: Vec<Option<Cow<'a, str>>>,
    /// For `ResourceFields::Paths` only: the member name just read.
    pending: Option<Cow<'a, str>>,
    /// Role of the next value (set by the key just read).
    role: Role,
    values: BodyValues,
}

impl<'a> Parser<'a> {
    fn document(&mut self) -> Result<(), BodyError> {
        self.skip_ws();
        match self.peek() {
            None => return Err(BodyError::Empty),
            Some(b'{') => {}
            Some(_) => return Err(BodyError::NotAnObject),
        }
        let mut state = State::Value;
        loop {
            state = match state {
                State::Value => self.value()?,
                State::FirstKeyOrEnd => {
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        self.close();
                        State::AfterValue
                    } else {
                        State::Key
                    }
                }
                State::Key => {
                    self.key()?;
                    State::Value
                }
                State::AfterValue => {
                    let in_object = match self.frames.last() {
                        None => break,
                        Some(Frame::Object { .. }) => true,
                        Some(Frame::Array) => false,
                    };
                    self.skip_ws();
                    let b = self.next_byte()?;
                    match (in_object, b) {
                        (true, b',') => State::Key,
                        (false, b',') => State::Value,
                        (true, b'}') | (false, b']') => {
                            self.close();
                            State::AfterValue
                        }
                        _ => return Err(BodyError::Syntax),
                    }
                }
            };
        }
        self.skip_ws();
        if self.pos != self.buf.len() {
            return Err(BodyError::TrailingData);
        }
        Ok(())
    }

    /// One value (or the opening of a container); returns the next state.
    fn value(&mut self) -> Result<State, BodyError> {
        self.skip_ws();
        let role = std::mem::replace(&mut self.role, Role::Ignore);
        let b = self.peek().ok_or(BodyError::Truncated)?;
        if role != Role::Ignore && b != b'"' {
            return Err(BodyError::ModelNotString);
        }
        match b {
            b'{' => {
                self.open(Frame::Object {
                    key_start: self.keys.len(),
                    big: None,
                })?;
                self.pos += 1;
                Ok(State::FirstKeyOrEnd)
            }
            b'[' => {
                self.open(Frame::Array)?;
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    self.close();
                    Ok(State::AfterValue)
                } else {
                    Ok(State::Value)
                }
            }
            b'"' => {
                let s = self.string()?;
                if role != Role::Ignore {
                    let count = self.values.models.len() + self.values.resources.len();
                    if count >= MAX_MODELS {
                        return Err(BodyError::TooManyModels);
                    }
                    let value = unescape(s)?.into_owned();
                    match role {
                        Role::Resource(kind) => self.values.resources.push((kind, value)),
                        _ => self.values.models.push(value),
                    }
                }
                Ok(State::AfterValue)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                self.number()?;
                Ok(State::AfterValue)
            }
            _ => Err(BodyError::Syntax),
        }
    }

    /// A member name and its `:`; sets the role of the value that follows.
    fn key(&mut self) -> Result<(), BodyError> {
        self.skip_ws();
        match self.peek() {
            Some(b'"') => {}
            Some(_) => return Err(BodyError::Syntax),
            None => return Err(BodyError::Truncated),
        }
        let raw = self.string()?;
        let decoded = unescape(raw)?;
        if is_ambiguous_model_key(&decoded, raw.escaped, self.target)
            || is_ambiguous_resource_key(&decoded, raw.escaped, self.resources)
        {
            return Err(BodyError::AmbiguousModelKey);
        }
        let depth = self.frames.len();
        self.role = match self.target {
            Target::TopLevel(name) if depth == 1 && decoded == name => Role::Capture,
            Target::Anywhere(names) if names.iter().any(|n| *n == decoded) => Role::Capture,
            _ => self.resource_role(&decoded),
        };
        if let ResourceFields::Paths(_) = self.resources {
            self.pending = Some(decoded.clone());
        }
        self.insert_key(match decoded {
            Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
            Cow::Owned(s) => Cow::Owned(s.into_bytes()),
        })?;
        self.skip_ws();
        match self.next_byte()? {
            b':' => Ok(()),
            _ => Err(BodyError::Syntax),
        }
    }

    fn insert_key(&mut self, key: Cow<'a, [u8]>) -> Result<(), BodyError> {
        let Some(Frame::Object { key_start, big }) = self.frames.last_mut() else {
            return Err(BodyError::Syntax);
        };
        if let Some(set) = big {
            return if set.insert(key) {
                Ok(())
            } else {
                Err(BodyError::DuplicateKey)
            };
        }
        let open = self.keys.get(*key_start..).unwrap_or_default();
        if open.contains(&key) {
            return Err(BodyError::DuplicateKey);
        }
        if open.len() >= SMALL_OBJECT_KEYS {
            let mut set: BTreeSet<Cow<'a, [u8]>> = self.keys.drain(*key_start..).collect();
            set.insert(key);
            *big = Some(set);
        } else {
            self.keys.push(key);
        }
        Ok(())
    }

    /// The role of the value of member `key` under `self.resources`.
    fn resource_role(&self, key: &str) -> Role {
        match self.resources {
            ResourceFields::None => Role::Ignore,
            ResourceFields::Anywhere(fields) => fields
                .iter()
                .find(|(name, _)| *name == key)
                .map_or(Role::Ignore, |(_, kind)| Role::Resource(*kind)),
            ResourceFields::Paths(fields) => {
                // names[0] is the root; names[1..] name the containers below it, which must
                // all be objects reached by the path's members, in order.
                let below_root = self.names.get(1..).unwrap_or_default();
                fields
                    .iter()
                    .find(|(path, _)| {
                        path.split_last().is_some_and(|(last, init)| {
                            *last == key
                                && init.len() == below_root.len()
                                && below_root
                                    .iter()
                                    .zip(init.iter())
                                    .all(|(have, want)| have.as_deref() == Some(*want))
                        })
                    })
                    .map_or(Role::Ignore, |(_, kind)| Role::Resource(*kind))
            }
        }
    }

    fn open(&mut self, frame: Frame<'a>) -> Result<(), BodyError> {
        if self.frames.len() >= MAX_DEPTH {
            return Err(BodyError::TooDeep);
        }
        if let ResourceFields::Paths(_) = self.resources {
            let name = match self.frames.last() {
                Some(Frame::Object { .. }) => self.pending.take(),
                _ => None,
            };
            self.names.push(name);
        }
        self.frames.push(frame);
        Ok(())
    }

    fn close(&mut self) {
        if let ResourceFields::Paths(_) = self.resources {
            self.names.pop();
        }
        if let Some(Frame::Object { key_start, big }) = self.frames.pop() {
            if big.is_none() {
                self.keys.truncate(key_start);
            }
        }
    }

    /// Scan and validate a string starting at its opening quote: escapes (with surrogate
    /// pairing), no raw control characters, UTF-8. Decoding is left to `unescape`.
    fn string(&mut self) -> Result<RawStr<'a>, BodyError> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            let b = *self.buf.get(i).ok_or(BodyError::Truncated)?;
            match b {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    match self.buf.get(i + 1).ok_or(BodyError::Truncated)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                        b'u' => {
                            let unit = hex4(self.buf, i + 2)?;
                            i += 6;
                            if (0xD800..=0xDBFF).contains(&unit) {
                                if self.buf.get(i..i + 2) != Some(b"\\u".as_slice()) {
                                    return Err(BodyError::LoneSurrogate);
                                }
                                let low = hex4(self.buf, i + 2)?;
                                if !(0xDC00..=0xDFFF).contains(&low) {
                                    return Err(BodyError::LoneSurrogate);
                                }
                                i += 6;
                            } else if (0xDC00..=0xDFFF).contains(&unit) {
                                return Err(BodyError::LoneSurrogate);
                            }
                        }
                        _ => return Err(BodyError::InvalidEscape),
                    }
                }
                0x00..=0x1f => return Err(BodyError::ControlCharacter),
                _ => i += 1,
            }
        }
        let span = self.buf.get(start..i).ok_or(BodyError::Truncated)?;
        let text = std::str::from_utf8(span).map_err(|_| BodyError::InvalidUtf8)?;
        self.pos = i + 1;
        Ok(RawStr { text, escaped })
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<State, BodyError> {
        let end = self.pos + word.len();
        match self.buf.get(self.pos..end) {
            Some(found) if found == word => {
                self.pos = end;
                Ok(State::AfterValue)
            }
            Some(_) => Err(BodyError::Syntax),
            None => {
                let tail = self.buf.get(self.pos..).unwrap_or_default();
                if word.starts_with(tail) {
                    Err(BodyError::Truncated)
                } else {
                    Err(BodyError::Syntax)
                }
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; the value itself is not needed.
    fn number(&mut self) -> Result<(), BodyError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            Some(_) => return Err(BodyError::Syntax),
            None => return Err(BodyError::Truncated),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok(())
    }

    fn required_digits(&mut self) -> Result<(), BodyError> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            Some(_) => Err(BodyError::Syntax),
            None => Err(BodyError::Truncated),
        }
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn next_byte(&mut self) -> Result<u8, BodyError> {
        let b = self.peek().ok_or(BodyError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }
}

/// Four hex digits at `at` as a UTF-16 code unit.
fn hex4(buf: &[u8], at: usize) -> Result<u32, BodyError> {
    let digits = buf.get(at..at + 4).ok_or(BodyError::Truncated)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(BodyError::InvalidEscape),
        };
        Ok((acc << 4) | u32::from(v))
    })
}

/// The decoded text of a string already validated by `Parser::string`. Borrowed when it has
/// no escapes.
fn unescape(raw: RawStr<'_>) -> Result<Cow<'_, str>, BodyError> {
    if !raw.escaped {
        return Ok(Cow::Borrowed(raw.text));
    }
    let bytes = raw.text.as_bytes();
    let mut out = String::with_capacity(raw.text.len());
    let mut rest = raw.text;
    while let Some(at) = rest.find('\\') {
        let (plain, tail) = rest.split_at_checked(at).ok_or(BodyError::InvalidEscape)?;
        out.push_str(plain);
        let consumed_before = raw.text.len() - tail.len();
        let escape = tail
            .as_bytes()
            .get(1)
            .copied()
            .ok_or(BodyError::InvalidEscape)?;
        let mut advance = 2;
        match escape {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let unit = hex4(bytes, consumed_before + 2)?;
                advance = 6;
                let code = if (0xD800..=0xDBFF).contains(&unit) {
                    let low = hex4(bytes, consumed_before + 8)?;
                    advance = 12;
                    0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                } else {
                    unit
                };
                out.push(char::from_u32(code).ok_or(BodyError::LoneSurrogate)?);
            }
            _ => return Err(BodyError::InvalidEscape),
        }
        rest = tail.get(advance..).ok_or(BodyError::InvalidEscape)?;
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// Would some parser read this key as one of the model keys although it is not spelled
/// exactly that way? Escapes anywhere in such a key, any ASCII case difference, and the few
/// non-ASCII letters whose case mapping lands on ASCII (`ı`, `İ`, `ſ`, the Kelvin sign) count.
fn is_ambiguous_model_key(decoded: &str, escaped: bool, target: Target) -> bool {
    let top_level;
    let located: &[&str] = match target {
        Target::TopLevel(name) => {
            top_level = [name];
            top_level.as_slice()
        }
        Target::Anywhere(names) => names,
    };
    MODEL_KEYS
        .iter()
        .chain(located)
        .any(|name| folds_to(decoded, name) && (escaped || decoded != *name))
}

/// The same for the keys `resources` captures.
fn is_ambiguous_resource_key(decoded: &str, escaped: bool, resources: ResourceFields) -> bool {
    let matches = |name: &str| folds_to(decoded, name) && (escaped || decoded != name);
    match resources {
        ResourceFields::None => false,
        ResourceFields::Anywhere(fields) => fields.iter().any(|(name, _)| matches(name)),
        ResourceFields::Paths(fields) => fields
            .iter()
            .filter_map(|(path, _)| path.last())
            .any(|name| matches(name)),
    }
}

/// Case-insensitive equality with the ASCII `name`, folding the non-ASCII letters whose
/// upper- or lower-case form is an ASCII letter.
fn folds_to(text: &str, name: &str) -> bool {
    let mut chars = text.chars().map(|c| match c {
        '\u{131}' | '\u{130}' => 'i',
        '\u{17f}' => 's',
        '\u{212a}' => 'k',
        c => c.to_ascii_lowercase(),
    });
    let mut expected = name.chars().map(|c| c.to_ascii_lowercase());
    loop {
        match (chars.next(), expected.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}
