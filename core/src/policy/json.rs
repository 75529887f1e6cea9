//! A strict JSON tree for the policy parser: duplicate object keys are refused (two parsers
//! must never read two different policies from one file), object member order is kept, and
//! every accessor reports the JSON path of a value that has the wrong type.

use super::PolicyError;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeSet;
use std::fmt;

/// One JSON value. Objects keep their members in file order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Json {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parse a complete JSON text (serde_json bounds nesting depth, so this cannot overflow the
    /// stack). Duplicate keys in any object are a syntax error.
    pub(super) fn parse(bytes: &[u8]) -> Result<Json, PolicyError> {
        serde_json::from_slice(bytes).map_err(|e| PolicyError::Syntax(e.to_string()))
    }

    /// What kind of value this is, with a short preview for scalars, for error messages.
    pub(super) fn describe(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(b) => format!("boolean {b}"),
            Json::Number(n) => format!("number {n}"),
            Json::String(s) => format!("string {}", quote(s)),
            Json::Array(_) => "an array".into(),
            Json::Object(_) => "an object".into(),
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut seen = BTreeSet::new();
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {}", quote(&key))));
            }
            let value = map.next_value()?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}

/// Longest string quoted verbatim in an error message; longer ones are cut with `…`.
const QUOTE_MAX_CHARS: usize = 100;

/// `"value"` with JSON escapes, cut to a readable length.
pub(super) fn quote(s: &str) -> String {
    let cut: String = s.chars().take(QUOTE_MAX_CHARS).collect();
    let mut q = serde_json::to_string(&cut).unwrap_or_else(|_| "\"?\"".into());
    if cut.len() < s.len() {
        q.insert(q.len() - 1, '…');
    }
    q
}

/// A validation error at `path` (the root is called `policy`).
pub(super) fn invalid(path: &str, message: impl Into<String>) -> PolicyError {
    let path = if path.is_empty() { "policy" } else { path };
    PolicyError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

fn type_error(path: &str, expected: &str, found: &Json) -> PolicyError {
    invalid(
        path,
        format!("expected {expected}, found {}", found.describe()),
    )
}

/// The path of member `name` inside the object at `parent`: `a.b`, or `a["odd name"]` when the
/// name is not a plain identifier.
pub(super) fn member_path(parent: &str, name: &str) -> String {
    let plain = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match (parent.is_empty(), plain) {
        (true, true) => name.to_string(),
        (false, true) => format!("{parent}.{name}"),
        (_, false) => format!("{parent}[{}]", quote(name)),
    }
}

/// An object being read, with its path. Reading a member hands back the member's path too.
pub(super) struct Object<'a> {
    pub(super) path: String,
    pub(super) members: &'a [(String, Json)],
}

impl<'a> Object<'a> {
    pub(super) fn new(value: &'a Json, path: &str) -> Result<Self, PolicyError> {
        match value {
            Json::Object(members) => Ok(Self {
                path: path.to_string(),
                members,
            }),
            other => Err(type_error(path, "an object", other)),
        }
    }

    /// Refuse the first member (in file order) whose name is not in `known`.
    pub(super) fn deny_unknown(&self, known: &[&str]) -> Result<(), PolicyError> {
        match self
            .members
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            None => Ok(()),
            Some((k, _)) => Err(invalid(
                &member_path(&self.path, k),
                format!("unknown field; expected one of: {}", known.join(", ")),
            )),
        }
    }

    /// A member and its path, if present.
    pub(super) fn get(&self, name: &str) -> Option<(&'a Json, String)> {
        self.members
            .iter()
            .find(|(k, _)| k == name)
            .map(|(k, v)| (v, member_path(&self.path, k)))
    }
}

pub(super) fn string<'a>(value: &'a Json, path: &str) -> Result<&'a str, PolicyError> {
    match value {
        Json::String(s) => Ok(s),
        other => Err(type_error(path, "a string", other)),
    }
}

pub(super) fn boolean(value: &Json, path: &str) -> Result<bool, PolicyError> {
    match value {
        Json::Bool(b) => Ok(*b),
        other => Err(type_error(path, "true or false", other)),
    }
}

/// A non-negative integer no larger than `max`.
pub(super) fn integer(value: &Json, path: &str, max: u64) -> Result<u64, PolicyError> {
    match value {
        Json::Number(n) => match n.as_u64() {
            Some(v) if v <= max => Ok(v),
            Some(v) => Err(invalid(
                path,
                format!("{v} is too large; the largest allowed is {max}"),
            )),
            None => Err(type_error(path, "a whole number, 0 or more", value)),
        },
        other => Err(type_error(path, "a whole number, 0 or more", other)),
    }
}

pub(super) fn array<'a>(value: &'a Json, path: &str) -> Result<&'a [Json], PolicyError> {
    match value {
        Json::Array(items) => Ok(items),
        other => Err(type_error(path, "an array", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_refuses_duplicate_keys() {
        let v = Json::parse(br#"{"b": 1, "a": [true, null, "x", -2, 1.5]}"#).unwrap();
        let Json::Object(m) = &v else { panic!() };
        assert_eq!(m[0].0, "b");
        assert_eq!(m[1].0, "a");
        let err = Json::parse(br#"{"a": {"x": 1, "x": 2}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate key \"x\""), "{err}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(Json::parse(deep.as_bytes()).is_err());
        let deep = r#"{"a":"#.repeat(50_000) + "1" + &"}".repeat(50_000);
        assert!(Json::parse(deep.as_bytes()).is_err());
    }

    #[test]
    fn paths_and_type_errors() {
        assert_eq!(member_path("", "signers"), "signers");
        assert_eq!(member_path("signers", "allowed"), "signers.allowed");
        assert_eq!(member_path("pin", "nginx"), "pin.nginx");
        assert_eq!(member_path("pin", "my app"), "pin[\"my app\"]");
        assert_eq!(member_path("", ""), "[\"\"]");
        let v = Json::parse(br#"{"n": 2.5, "m": -1, "s": "x"}"#).unwrap();
        let o = Object::new(&v, "time").unwrap();
        let (n, p) = o.get("n").unwrap();
        assert_eq!(p, "time.n");
        assert_eq!(
            integer(n, &p, 10).unwrap_err().to_string(),
            "time.n: expected a whole number, 0 or more, found number 2.5"
        );
        let (m, p) = o.get("m").unwrap();
        assert!(integer(m, &p, 10).is_err());
        let (s, p) = o.get("s").unwrap();
        assert_eq!(
            boolean(s, &p).unwrap_err().to_string(),
            "time.s: expected true or false, found string \"x\""
        );
        let err = o.deny_unknown(&["n", "m"]).unwrap_err().to_string();
        assert_eq!(err, "time.s: unknown field; expected one of: n, m");
        assert_eq!(
            Object::new(&Json::Null, "").err().unwrap().to_string(),
            "policy: expected an object, found null"
        );
    }

    #[test]
    fn quote_cuts_long_values() {
        assert_eq!(quote("a\"b"), r#""a\"b""#);
        let q = quote(&"x".repeat(500));
        assert!(q.chars().count() < 110 && q.ends_with("…\""), "{q}");
    }
}
