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

use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

use crate::json::{self, check_safe_integer, non_integer_message, render_path, PathStep};

pub use crate::json::MAX_SAFE_INTEGER;

/// The prefix of every digest.
const DIGEST_PREFIX: &str = "sha256:";

/// Why a document has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CanonicalError {
    /// Not JSON, or a duplicate member name, or a number the canonical form refuses (with
    /// the position of the problem).
    #[error("line {line}, column {column}: {message}")]
    Json {
        /// Line of the problem, from 1.
        line: usize,
        /// Column of the problem on its line, from 1.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// A value (already parsed) that has no canonical form, under its path (`limits.x`).
    #[error("{}: {message}", display_path(.path))]
    Value {
        /// Where, as `rules[2].models[0]`; empty for the document itself.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "(document)"
    } else {
        path
    }
}

/// Parse JSON strictly: duplicate member names, member names written with escapes and
/// non-integer numbers are refused, with their line and column. This is the engine's one strict
/// reader (`json::parse`) with its canonical options.
pub fn parse_strict(json: &[u8]) -> Result<Value, CanonicalError> {
    json::parse(json, json::Options::CANONICAL).map_err(|e| CanonicalError::Json {
        line: e.line(),
        column: e.column(),
        message: e.message(),
    })
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
        check_safe_integer(i.unsigned_abs())?;
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        check_safe_integer(u)?;
        u.to_string()
    } else {
        return Err(non_integer_message(&n.to_string()));
    };
    out.extend_from_slice(text.as_bytes());
    Ok(())
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
