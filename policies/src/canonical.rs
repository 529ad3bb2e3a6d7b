//! The canonical form of a bundle and its digest.
//!
//! A bundle is identified by the SHA-256 of its canonical JSON serialisation (RFC 8785, JSON
//! Canonicalization Scheme), computed from the parsed value: key order, whitespace and the
//! source format (JSON or the CLI's YAML) do not change the digest. The plugin shows the digest
//! in audit records and stats; signatures are made over the canonical bytes.
//!
//! What the canonical form is, exactly:
//! * object members sorted by their names' UTF-16 code units, no whitespace anywhere;
//! * strings with the minimal escaping of RFC 8785 (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`,
//!   other control characters as `\u00xx`; everything else, non-ASCII included, literal);
//! * integers in plain decimal. Bundles contain only integers, so a number with a fraction or
//!   an exponent, or an integer beyond ±(2^53 − 1) (where JavaScript numbers, and so RFC 8785,
//!   stop being exact), is refused rather than formatted.
//!
//! Input is parsed strictly: a duplicate member name anywhere is refused (two parsers could
//! otherwise disagree about which value a signed bundle holds), and so is a member name written
//! with a backslash escape (`"m\u006fde"`): what a reviewer reads, or greps for, is what runs.
//! A bundle holds no `null` either: `to_canonical` refuses one under its path, since a reader
//! could take it for "omitted" (the widest meaning) or for "none".

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

/// Largest integer magnitude the canonical form accepts: 2^53 − 1.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The prefix of every digest.
pub const DIGEST_PREFIX: &str = "sha256:";

/// Why a document has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// Not JSON, or a duplicate member name, or a number the canonical form refuses (with
    /// the position of the problem).
    #[error("line {line}, column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// A value (already parsed) that has no canonical form, under its path (`limits.x`).
    #[error("{}: {message}", display_path(.path))]
    Value { path: String, message: String },
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "(document)"
    } else {
        path
    }
}

/// Parse JSON strictly: duplicate member names, member names written with escapes and
/// non-integer numbers are refused, with their line and column.
pub fn parse_strict(json: &[u8]) -> Result<Value, CanonicalError> {
    // A slice reader lends unescaped strings straight from the input (`visit_borrowed_str`) and
    // hands over only escaped ones decoded (`visit_str`): that is how escapes are seen.
    let mut de = serde_json::Deserializer::from_slice(json);
    let value = StrictValue { at: &Step::Root }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(json_error)?;
    Ok(value)
}

fn json_error(e: serde_json::Error) -> CanonicalError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    CanonicalError::Json {
        line,
        column,
        message,
    }
}

/// The message for a `null` at `path`.
fn null_message(path: &str) -> String {
    if path.is_empty() {
        "the document is null; a bundle is a JSON object".to_string()
    } else if path.ends_with(']') {
        "null is not allowed; remove the element or give a value".to_string()
    } else {
        "null is not allowed; omit the field or give a value".to_string()
    }
}

/// Every `null` in a value (members in the value's key order), each as a `Value` error under
/// its path (`network.profile_geographies: null is not allowed; omit the field or give a
/// value`).
pub fn nulls(value: &Value) -> Vec<CanonicalError> {
    fn walk(value: &Value, path: &mut String, out: &mut Vec<CanonicalError>) {
        match value {
            Value::Null => out.push(CanonicalError::Value {
                path: path.clone(),
                message: null_message(path),
            }),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Object(members) => {
                for (key, item) in members {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(key);
                    walk(item, path, out);
                    path.truncate(len);
                }
            }
            Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    out
}

/// The canonical bytes of a parsed value (a `null` anywhere is refused under its path).
pub fn to_canonical(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(1024);
    let mut path = Vec::new();
    write_value(value, &mut out, &mut path).map_err(|message| CanonicalError::Value {
        path: render_path(&path),
        message,
    })?;
    Ok(out)
}

/// Parse `json` strictly and return its canonical bytes.
pub fn canonicalize(json: &[u8]) -> Result<Vec<u8>, CanonicalError> {
    to_canonical(&parse_strict(json)?)
}

/// `sha256:<hex>` of the canonical form of the JSON document `json`.
pub fn digest(json: &[u8]) -> Result<String, CanonicalError> {
    Ok(digest_canonical(&canonicalize(json)?))
}

/// `sha256:<hex>` of the canonical form of an already parsed value.
pub fn digest_value(value: &Value) -> Result<String, CanonicalError> {
    Ok(digest_canonical(&to_canonical(value)?))
}

/// `sha256:<hex>` of bytes that are already canonical.
pub fn digest_canonical(canonical: &[u8]) -> String {
    let hash = Sha256::digest(canonical);
    let mut out = String::with_capacity(DIGEST_PREFIX.len() + 64);
    out.push_str(DIGEST_PREFIX);
    for byte in hash {
        out.push(char::from(hex_digit(byte >> 4)));
        out.push(char::from(hex_digit(byte & 0x0f)));
    }
    out
}

/// The lowercase hex digit of the low four bits of `nibble`.
fn hex_digit(nibble: u8) -> u8 {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    HEX.get(usize::from(nibble & 0x0f)).copied().unwrap_or(b'0')
}

/// One step of a path, kept only to name where a problem is.
enum PathStep<'a> {
    Key(&'a str),
    Index(usize),
}

fn render_path(path: &[PathStep<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        push_step(&mut out, step);
    }
    out
}

fn push_step(out: &mut String, step: &PathStep<'_>) {
    match step {
        PathStep::Key(k) => {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(k);
        }
        PathStep::Index(i) => {
            out.push('[');
            out.push_str(&i.to_string());
            out.push(']');
        }
    }
}

/// Where the parser is, as a chain of steps back to the root (built on the stack while
/// parsing, rendered only when a problem is reported).
enum Step<'a> {
    Root,
    Key(&'a Step<'a>, &'a str),
    Index(&'a Step<'a>, usize),
}

impl Step<'_> {
    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut at = self;
        loop {
            match at {
                Step::Root => break,
                Step::Key(parent, key) => {
                    steps.push(PathStep::Key(key));
                    at = parent;
                }
                Step::Index(parent, i) => {
                    steps.push(PathStep::Index(*i));
                    at = parent;
                }
            }
        }
        steps.reverse();
        render_path(&steps)
    }
}

fn write_value<'v>(
    value: &'v Value,
    out: &mut Vec<u8>,
    path: &mut Vec<PathStep<'v>>,
) -> Result<(), String> {
    match value {
        Value::Null => return Err(null_message(&render_path(path))),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                path.push(PathStep::Index(i));
                write_value(item, out, path)?;
                path.pop();
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (key, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(key, out);
                out.push(b':');
                path.push(PathStep::Key(key));
                write_value(item, out, path)?;
                path.pop();
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), String> {
    let text = if let Some(i) = n.as_i64() {
        check_integer(i.unsigned_abs())?;
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        check_integer(u)?;
        u.to_string()
    } else {
        return Err(non_integer_message(&n.to_string()));
    };
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn check_integer(magnitude: u64) -> Result<(), String> {
    if magnitude > MAX_SAFE_INTEGER {
        Err(format!(
            "integer {magnitude} is outside ±{MAX_SAFE_INTEGER}, which has no exact canonical form"
        ))
    } else {
        Ok(())
    }
}

fn non_integer_message(text: &str) -> String {
    format!(
        "number {text} is written with a fraction or an exponent: bundles use plain integers only (quote it if it is a string)"
    )
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let mut buf = [0u8; 4];
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if c < '\u{20}' => {
                let code = u8::try_from(u32::from(c)).unwrap_or(0);
                out.extend_from_slice(b"\\u00");
                out.push(hex_digit(code >> 4));
                out.push(hex_digit(code));
            }
            c => out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes()),
        }
    }
    out.push(b'"');
}

/// Builds a `Value`, refusing duplicate member names, member names written with escapes, and
/// numbers without a canonical form. serde_json's own recursion limit bounds the nesting depth.
struct StrictValue<'p> {
    /// Where the value being read sits (for messages).
    at: &'p Step<'p>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        check_integer(v.unsigned_abs()).map_err(E::custom)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        check_integer(v).map_err(E::custom)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Err(E::custom(non_integer_message(&v.to_string())))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let at = Step::Index(self.at, items.len());
            match seq.next_element_seed(StrictValue { at: &at })? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(MemberName { name, escaped }) = map.next_key_seed(MemberNameSeed)? {
            let at = Step::Key(self.at, &name);
            if escaped {
                return Err(de::Error::custom(format_args!(
                    "{}: the member name is written with a backslash escape; write member names as plain text",
                    at.render()
                )));
            }
            if members.contains_key(&name) {
                let within = self.at.render();
                return Err(if within.is_empty() {
                    de::Error::custom(format_args!("duplicate member name {name:?}"))
                } else {
                    de::Error::custom(format_args!("duplicate member name {name:?} in {within}"))
                });
            }
            let value = map.next_value_seed(StrictValue { at: &at })?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// A member name and whether its source text had escapes.
struct MemberName {
    name: String,
    escaped: bool,
}

/// Reads a member name. serde_json's slice reader passes a name without escapes as a borrowed
/// slice of the input and a name with escapes decoded into a scratch buffer.
struct MemberNameSeed;

impl<'de> DeserializeSeed<'de> for MemberNameSeed {
    type Value = MemberName;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<MemberName, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberNameSeed {
    type Value = MemberName;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<MemberName, E> {
        Ok(MemberName {
            name: v.to_owned(),
            escaped: false,
        })
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<MemberName, E> {
        Ok(MemberName {
            name: v.to_owned(),
            escaped: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_by_utf16_code_units() {
        // U+10000 is D800 DC00 in UTF-16, which sorts before U+FB01 (FB01), unlike in UTF-8.
        let canonical = canonicalize("{\"\u{fb01}\":1,\"\u{10000}\":2,\"a\":3}".as_bytes());
        assert_eq!(
            canonical.ok(),
            Some(
                "{\"a\":3,\"\u{10000}\":2,\"\u{fb01}\":1}"
                    .as_bytes()
                    .to_vec()
            )
        );
    }

    #[test]
    fn escapes_minimally() {
        let canonical = canonicalize(br#"["\u0001\u001f\n\"\\/\u00e9\u2028\u007f"]"#);
        assert_eq!(
            canonical.ok(),
            Some(
                "[\"\\u0001\\u001f\\n\\\"\\\\/\u{e9}\u{2028}\u{7f}\"]"
                    .as_bytes()
                    .to_vec()
            )
        );
    }

    #[test]
    fn refuses_escaped_member_names_with_their_path() {
        let e = parse_strict(br#"{"rules":[{"id":"a","m\u006fde":"dry-run"}]}"#);
        let message = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("rules[0].mode: the member name is written with a backslash escape"),
            "{message}"
        );
        assert!(parse_strict(br#"{"a\\b":1}"#).is_err());
        assert!(parse_strict(br#"{"a":"v\u0061lue"}"#).is_ok());
        assert!(parse_strict("{\"caf\u{e9}\":1}".as_bytes()).is_ok());
    }

    #[test]
    fn refuses_null_under_its_path() {
        let value = serde_json::json!({"a": [1, null], "b": {"c": null}});
        let paths: Vec<String> = nulls(&value).iter().map(ToString::to_string).collect();
        assert_eq!(
            paths,
            [
                "a[1]: null is not allowed; remove the element or give a value",
                "b.c: null is not allowed; omit the field or give a value"
            ]
        );
        assert_eq!(
            to_canonical(&value).err().map(|e| e.to_string()).as_deref(),
            Some("a[1]: null is not allowed; remove the element or give a value")
        );
    }

    #[test]
    fn refuses_duplicate_names_and_fractions() {
        assert!(canonicalize(br#"{"a":1,"a":1}"#).is_err());
        assert!(canonicalize(br#"{"a":1.5}"#).is_err());
        assert!(canonicalize(br#"{"a":9007199254740992}"#).is_err());
        assert!(canonicalize(br#"{"a":-9007199254740991}"#).is_ok());
    }
}
