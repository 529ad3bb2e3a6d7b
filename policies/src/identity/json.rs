//! JSON parsing that refuses duplicate object members at any depth.
//!
//! `serde_json` into a `Value` or map keeps the last of two equal members, so a token carrying
//! `"sub":"alice","sub":"admin"` would read differently here and in another parser. Member names
//! are compared after unescaping (`"e\u0078p"` is `exp`).

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON, not UTF-8, trailing data, or nested too deeply (serde_json's recursion limit).
    Syntax,
    /// An object has the same member twice.
    DuplicateMember,
}

/// Parses one JSON document (surrounding whitespace allowed) into a `Value`.
pub(crate) fn parse_strict(bytes: &[u8]) -> Result<Value, JsonError> {
    let duplicate = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = StrictSeed {
        duplicate: &duplicate,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match parsed {
        Ok(value) => Ok(value),
        Err(_) if duplicate.get() => Err(JsonError::DuplicateMember),
        Err(_) => Err(JsonError::Syntax),
    }
}

#[derive(Clone, Copy)]
struct StrictSeed<'a> {
    duplicate: &'a Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                self.duplicate.set(true);
                return Err(A::Error::custom("duplicate member"));
            }
            let value = map.next_value_seed(self)?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_duplicates_at_any_depth_and_after_unescaping() {
        assert_eq!(
            parse_strict(br#"{"a":1,"a":2}"#),
            Err(JsonError::DuplicateMember)
        );
        assert_eq!(
            parse_strict(br#"{"x":[{"b":1,"b":1}]}"#),
            Err(JsonError::DuplicateMember)
        );
        assert_eq!(
            parse_strict(br#"{"exp":1,"e\u0078p":2}"#),
            Err(JsonError::DuplicateMember)
        );
    }

    #[test]
    fn parses_ordinary_documents_and_refuses_trailing_data() {
        let v = parse_strict(br#" {"a":[1,-2,3.5,"s",null,true,{}]} "#);
        assert_eq!(v, Ok(serde_json::json!({"a":[1,-2,3.5,"s",null,true,{}]})));
        assert_eq!(parse_strict(br#"{"a":1} x"#), Err(JsonError::Syntax));
        assert_eq!(parse_strict(b"{\"a\":\xff}"), Err(JsonError::Syntax));
        assert_eq!(parse_strict(b""), Err(JsonError::Syntax));
    }

    #[test]
    fn deep_nesting_is_a_syntax_error_not_a_crash() {
        let mut doc = Vec::new();
        doc.extend(std::iter::repeat_n(b'[', 10_000));
        doc.extend(std::iter::repeat_n(b']', 10_000));
        assert_eq!(parse_strict(&doc), Err(JsonError::Syntax));
    }
}
