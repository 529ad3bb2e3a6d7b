//! The engine's one strict JSON reader.
//!
//! `serde_json` into a `Value` or a map keeps the last of two equal members, so a document
//! carrying `"sub":"alice","sub":"admin"` (or a bundle with `"mode"` twice) would read one way
//! here and another way in a different parser. Every document the engine reads into a `Value`
//! (bundles, the plugin-configuration envelope, JWS headers, signing keys, anchors, JWT headers
//! and claims, JWKS documents) is read by [`parse`], which always refuses:
//!
//! * a duplicate member name in any object at any depth, names compared after unescaping
//!   (`"e\u0078p"` is `exp`);
//! * anything that is not exactly one JSON document in UTF-8 (surrounding whitespace aside):
//!   trailing data, invalid UTF-8, lone surrogate escapes;
//! * nesting deeper than 127 arrays and objects (`serde_json`'s recursion limit of 128), as an
//!   error, not a crash.
//!
//! What differs between callers is an explicit [`Options`] value:
//!
//! * [`MemberNames`]: whether a member name may be written with a backslash escape. Documents
//!   people write and review (bundles and what surrounds them) use [`MemberNames::Plain`]:
//!   what a reviewer reads, or greps for, is what runs. Documents other software writes
//!   (tokens, JWKS) use [`MemberNames::Escaped`], as RFC 8259 allows.
//! * [`Numbers`]: integers within ±(2^53 − 1) only ([`Numbers::SafeIntegers`], the numbers the
//!   canonical form can write exactly), or any finite number ([`Numbers::Finite`]: a
//!   NumericDate may be a float).
//!
//! The happy path allocates only the `Value` it returns (and its member names); where a value
//! sits is kept as a chain of steps on the stack and rendered only into an error message.
//! (Request bodies are not read here: `request::body` scans them for model ids in one pass
//! without building a `Value`, under rules of its own.)
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Largest integer magnitude the canonical form (and so a bundle) accepts: 2^53 − 1, where
/// JavaScript numbers, and so RFC 8785, stop being exact.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// How a document is read, where callers differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) member_names: MemberNames,
    pub(crate) numbers: Numbers,
}

impl Options {
    /// Bundles and everything that carries or signs them (the plugin-configuration envelope,
    /// JWS headers, signing keys, anchors): plain member names, safe integers only.
    pub(crate) const CANONICAL: Options = Options {
        member_names: MemberNames::Plain,
        numbers: Numbers::SafeIntegers,
    };

    /// JOSE documents from identity providers (JWT headers and claims, JWKS): escaped member
    /// names allowed (and unescaped before the duplicate check), any finite number.
    pub(crate) const JOSE: Options = Options {
        member_names: MemberNames::Escaped,
        numbers: Numbers::Finite,
    };
}

/// Whether member names may be written with backslash escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MemberNames {
    /// A member name with a backslash escape (`"m\u006fde"`, `"a\\b"`) is refused.
    Plain,
    /// Escapes are allowed; names are compared after unescaping.
    Escaped,
}

/// Which numbers are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Numbers {
    /// Integers within ±[`MAX_SAFE_INTEGER`] written without a fraction or an exponent.
    SafeIntegers,
    /// Any number `serde_json` reads as finite (integers of any size, fractions, exponents).
    Finite,
}

/// Which rule a document broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonErrorKind {
    /// Not JSON, not UTF-8, trailing data, or nested too deeply.
    Syntax,
    /// An object has the same member twice (after unescaping).
    DuplicateMember,
    /// A member name written with a backslash escape ([`MemberNames::Plain`] only).
    EscapedName,
    /// A number the [`Numbers`] option refuses.
    Number,
}

/// A refused document: which rule, and `serde_json`'s error (with the position and a message
/// naming the path). The message is rendered only on request ([`JsonError::message`]).
///
/// The message may quote the document (a member name, a number): callers whose errors must
/// not repeat their input (tokens) use [`JsonError::kind`] only.
#[derive(Debug)]
pub(crate) struct JsonError {
    kind: JsonErrorKind,
    error: serde_json::Error,
}

impl JsonError {
    pub(crate) fn kind(&self) -> JsonErrorKind {
        self.kind
    }

    /// 1-based line of the problem.
    pub(crate) fn line(&self) -> usize {
        self.error.line()
    }

    /// 1-based column of the problem.
    pub(crate) fn column(&self) -> usize {
        self.error.column()
    }

    /// What is wrong, without the position (`duplicate member name "a" in rules[0]`).
    pub(crate) fn message(&self) -> String {
        let full = self.error.to_string();
        let suffix = format!(" at line {} column {}", self.line(), self.column());
        match full.strip_suffix(&suffix) {
            Some(message) => message.to_owned(),
            None => full,
        }
    }
}

/// Reads one JSON document (surrounding whitespace allowed) into a `Value`, strictly: see the
/// module documentation.
pub(crate) fn parse(bytes: &[u8], options: Options) -> Result<Value, JsonError> {
    // A slice reader lends unescaped strings straight from the input (`visit_borrowed_str`) and
    // hands over only escaped ones decoded (`visit_str`): that is how escapes are seen.
    let refused = Cell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    StrictValue {
        options,
        refused: &refused,
        at: &Step::Root,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value))
    .map_err(|error| JsonError {
        kind: refused.get().unwrap_or(JsonErrorKind::Syntax),
        error,
    })
}

/// The message for an integer outside ±[`MAX_SAFE_INTEGER`], or `Ok`.
pub(crate) fn check_safe_integer(magnitude: u64) -> Result<(), String> {
    if magnitude > MAX_SAFE_INTEGER {
        Err(format!(
            "integer {magnitude} is outside ±{MAX_SAFE_INTEGER}, which has no exact canonical form"
        ))
    } else {
        Ok(())
    }
}

/// The message for a number written (or only representable) with a fraction or an exponent.
pub(crate) fn non_integer_message(text: &str) -> String {
    format!(
        "number {text} is written with a fraction or an exponent: bundles use plain integers only (quote it if it is a string)"
    )
}

/// One step of a path (`rules[0].mode`), kept only to name where a problem is.
pub(crate) enum PathStep<'a> {
    Key(&'a str),
    Index(usize),
}

/// `a.b[0].c` for the steps `a`, `b`, `0`, `c`; the empty string for the document itself.
pub(crate) fn render_path(path: &[PathStep<'_>]) -> String {
    let mut out = String::new();
    for step in path {
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
    out
}

/// Where the reader is, as a chain of steps back to the root (built on the stack while
/// reading, rendered only when a problem is reported).
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

/// Builds a `Value` under the rules of `options`. On a refusal it records which rule in
/// `refused` (so the caller need not read `serde_json`'s message) and returns the message.
#[derive(Clone, Copy)]
struct StrictValue<'p> {
    options: Options,
    refused: &'p Cell<Option<JsonErrorKind>>,
    /// Where the value being read sits (for messages).
    at: &'p Step<'p>,
}

impl StrictValue<'_> {
    fn refuse<E: de::Error>(&self, kind: JsonErrorKind, message: impl fmt::Display) -> E {
        self.refused.set(Some(kind));
        E::custom(message)
    }

    fn integer<E: de::Error>(&self, magnitude: u64, value: Number) -> Result<Value, E> {
        if self.options.numbers == Numbers::SafeIntegers {
            check_safe_integer(magnitude).map_err(|m| self.refuse(JsonErrorKind::Number, m))?;
        }
        Ok(Value::Number(value))
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.integer(v.unsigned_abs(), v.into())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.integer(v, v.into())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.options.numbers {
            Numbers::SafeIntegers => {
                Err(self.refuse(JsonErrorKind::Number, non_integer_message(&v.to_string())))
            }
            Numbers::Finite => Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| self.refuse(JsonErrorKind::Number, "non-finite number")),
        }
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
            match seq.next_element_seed(StrictValue { at: &at, ..self })? {
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
            if escaped && self.options.member_names == MemberNames::Plain {
                return Err(self.refuse(
                    JsonErrorKind::EscapedName,
                    format_args!(
                        "{}: the member name is written with a backslash escape; write member names as plain text",
                        at.render()
                    ),
                ));
            }
            if members.contains_key(&name) {
                let within = self.at.render();
                return Err(if within.is_empty() {
                    self.refuse(
                        JsonErrorKind::DuplicateMember,
                        format_args!("duplicate member name {name:?}"),
                    )
                } else {
                    self.refuse(
                        JsonErrorKind::DuplicateMember,
                        format_args!("duplicate member name {name:?} in {within}"),
                    )
                });
            }
            let value = map.next_value_seed(StrictValue { at: &at, ..self })?;
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

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

    const BOTH: [Options; 2] = [Options::CANONICAL, Options::JOSE];

    /// Deepest nesting of arrays and objects `serde_json`'s recursion limit (128) lets through.
    const MAX_DEPTH: usize = 127;

    fn kind(doc: &[u8], options: Options) -> Option<JsonErrorKind> {
        parse(doc, options).err().map(|e| e.kind())
    }

    fn message(doc: &[u8], options: Options) -> String {
        parse(doc, options)
            .err()
            .map(|e| e.message())
            .unwrap_or_default()
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth_in_both_modes() {
        for options in BOTH {
            for doc in [
                &br#"{"a":1,"a":2}"#[..],
                br#"{"a":1,"b":2,"a":1}"#,
                br#"{"x":[{"b":1,"b":1}]}"#,
                br#"[[[{"k":{"z":0,"y":{"d":[],"d":{}}}}]]]"#,
            ] {
                assert_eq!(
                    kind(doc, options),
                    Some(JsonErrorKind::DuplicateMember),
                    "{options:?}"
                );
            }
            assert!(parse(br#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#, options).is_ok());
        }
    }

    #[test]
    fn duplicate_member_message_names_the_object_and_the_line() {
        let e = parse(b"{\"a\": [{\"x\": 1,\n \"x\": 2}]}", Options::CANONICAL).err();
        let e = e.as_ref();
        assert_eq!(e.map(JsonError::line), Some(2));
        assert_eq!(
            e.map(JsonError::message).as_deref(),
            Some(r#"duplicate member name "x" in a[0]"#)
        );
        assert_eq!(
            message(br#"{"kind":1,"kind":2}"#, Options::CANONICAL),
            r#"duplicate member name "kind""#
        );
    }

    #[test]
    fn jose_mode_refuses_duplicates_that_differ_only_by_escape_form() {
        for doc in [
            &br#"{"exp":1,"e\u0078p":2}"#[..],
            br#"{"\u0061lg":"RS256","alg":"none"}"#,
            br#"{"a":{"b":[{"\u0062":1,"b":2}]}}"#,
            br#"{"a\/b":1,"a/b":2}"#,
            b"{\"\\u00e9\":1,\"\xc3\xa9\":2}",
        ] {
            assert_eq!(
                kind(doc, Options::JOSE),
                Some(JsonErrorKind::DuplicateMember),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn jose_mode_reads_escaped_member_names_unescaped() {
        let value = parse(br#"{"e\u0078p":1,"a\\b":{"\"q\"":true}}"#, Options::JOSE);
        assert_eq!(
            value.ok(),
            Some(serde_json::json!({"exp": 1, "a\\b": {"\"q\"": true}}))
        );
    }

    #[test]
    fn canonical_mode_refuses_escaped_member_names_with_their_path() {
        assert_eq!(
            message(
                br#"{"rules":[{"id":"a","m\u006fde":"dry-run"}]}"#,
                Options::CANONICAL
            ),
            "rules[0].mode: the member name is written with a backslash escape; write member names as plain text"
        );
        for doc in [
            &br#"{"a\\b":1}"#[..],
            br#"{"a\/b":1}"#,
            br#"{"\u0061":1,"a":2}"#,
        ] {
            assert_eq!(
                kind(doc, Options::CANONICAL),
                Some(JsonErrorKind::EscapedName)
            );
        }
    }

    #[test]
    fn escapes_in_string_values_and_non_ascii_names_are_accepted_in_both_modes() {
        for options in BOTH {
            assert_eq!(
                parse(br#"{"a":"v\u0061lue\n"}"#, options).ok(),
                Some(serde_json::json!({"a": "value\n"}))
            );
            assert!(parse("{\"caf\u{e9}\":1}".as_bytes(), options).is_ok());
        }
    }

    #[test]
    fn canonical_mode_accepts_safe_integers_only() {
        let ok = br#"[0,9007199254740991,-9007199254740991]"#;
        assert!(parse(ok, Options::CANONICAL).is_ok());
        for doc in [
            &b"[9007199254740992]"[..],
            b"[-9007199254740992]",
            b"[18446744073709551615]",
            b"[1.5]",
            b"[1e2]",
            b"[1.0]",
            // serde_json reads `-0` as the float -0.0.
            b"[-0]",
        ] {
            assert_eq!(
                kind(doc, Options::CANONICAL),
                Some(JsonErrorKind::Number),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        assert_eq!(
            message(b"{\"n\":1e6}", Options::CANONICAL),
            "number 1000000 is written with a fraction or an exponent: bundles use plain integers only (quote it if it is a string)"
        );
        assert_eq!(
            message(b"[9007199254740992]", Options::CANONICAL),
            "integer 9007199254740992 is outside ±9007199254740991, which has no exact canonical form"
        );
    }

    #[test]
    fn jose_mode_accepts_any_finite_number() {
        let value = parse(
            br#"{"exp":1700000000.5,"nbf":1e9,"big":18446744073709551615,"neg":-9223372036854775808,"huge":1e300}"#,
            Options::JOSE,
        );
        let value = value.ok().unwrap_or_default();
        assert_eq!(value["exp"].as_f64(), Some(1_700_000_000.5));
        assert_eq!(value["nbf"].as_f64(), Some(1e9));
        assert_eq!(value["big"].as_u64(), Some(u64::MAX));
        assert_eq!(value["neg"].as_i64(), Some(i64::MIN));
        assert_eq!(value["huge"].as_f64(), Some(1e300));
    }

    #[test]
    fn numbers_beyond_f64_are_a_syntax_error_in_both_modes() {
        for options in BOTH {
            assert_eq!(kind(b"[1e400]", options), Some(JsonErrorKind::Syntax));
            assert_eq!(kind(b"[-1e400]", options), Some(JsonErrorKind::Syntax));
        }
    }

    #[test]
    fn nesting_beyond_the_recursion_limit_is_a_syntax_error_not_a_crash() {
        let nested = |depth: usize| {
            let mut doc = Vec::new();
            doc.extend(std::iter::repeat_n(b'[', depth));
            doc.extend(std::iter::repeat_n(b']', depth));
            doc
        };
        let objects = |depth: usize| {
            let mut doc = Vec::new();
            for _ in 0..depth {
                doc.extend_from_slice(b"{\"a\":");
            }
            doc.push(b'1');
            doc.extend(std::iter::repeat_n(b'}', depth));
            doc
        };
        for options in BOTH {
            assert!(parse(&nested(MAX_DEPTH), options).is_ok());
            assert!(parse(&objects(MAX_DEPTH), options).is_ok());
            let too_deep = MAX_DEPTH + 1;
            assert_eq!(
                kind(&nested(too_deep), options),
                Some(JsonErrorKind::Syntax)
            );
            assert_eq!(
                kind(&objects(too_deep), options),
                Some(JsonErrorKind::Syntax)
            );
            assert_eq!(kind(&nested(10_000), options), Some(JsonErrorKind::Syntax));
        }
    }

    #[test]
    fn invalid_utf8_and_lone_surrogates_are_syntax_errors_in_both_modes() {
        for options in BOTH {
            for doc in [
                &b"{\"a\":\"\xff\"}"[..],
                b"{\"\xc3\":1}",
                b"{\"a\":\xff}",
                br#"{"a":"\ud800"}"#,
                br#"{"\udc00":1}"#,
            ] {
                assert_eq!(
                    kind(doc, options),
                    Some(JsonErrorKind::Syntax),
                    "{options:?} {}",
                    String::from_utf8_lossy(doc)
                );
            }
        }
    }

    #[test]
    fn exactly_one_document_surrounded_by_whitespace_is_read() {
        for options in BOTH {
            assert_eq!(
                parse(b" \n{\"a\":[1,-2,\"s\",null,true,{}]}\t ", options).ok(),
                Some(serde_json::json!({"a": [1, -2, "s", null, true, {}]}))
            );
            for doc in [
                &br#"{"a":1} x"#[..],
                br#"{"a":1}{}"#,
                br#"{"a":1},"#,
                b"",
                b"   ",
                br#"{"a":1"#,
                br#"{'a':1}"#,
                br#"{"a":1,}"#,
            ] {
                assert_eq!(
                    kind(doc, options),
                    Some(JsonErrorKind::Syntax),
                    "{options:?} {}",
                    String::from_utf8_lossy(doc)
                );
            }
        }
    }

    #[test]
    fn error_message_drops_the_position_that_line_and_column_carry() {
        let e = parse(b"{\"a\":1}\n  x", Options::JOSE).err();
        let e = e.as_ref();
        assert_eq!(e.map(|e| (e.line(), e.column())), Some((2, 3)));
        assert_eq!(
            e.map(JsonError::message).as_deref(),
            Some("trailing characters")
        );
    }
}
