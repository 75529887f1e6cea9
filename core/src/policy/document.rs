//! `policy.json` as an editable document (spec/policy.md §11): the file's own JSON tree — its
//! values kept as written — with edits for the `ct policy` helpers and one canonical encoding
//! (fixed member order, fixed layout), so a helper rewrites any valid policy into the same bytes
//! and never writes one that [`Policy::parse`] would refuse.

use super::json::{member_path, Json};
use super::parse::{pin_rule, TOP_FIELDS};
use super::{Policy, PolicyError};
use std::fmt::Write as _;

/// Member order of every object the schema defines, by the object's path pattern
/// (`signers.allowed[]` stands for any element). `pin` members are sorted by name instead.
const ORDER: &[(&str, &[&str])] = &[
    ("", TOP_FIELDS),
    (
        "signers",
        &["allowed", "denied", "threshold", "threshold_from"],
    ),
    (
        "signers.allowed[]",
        &["key_id", "fingerprint", "suites", "required"],
    ),
    (
        "signers.denied[]",
        &["key_id", "fingerprint", "after", "before", "reason"],
    ),
    ("registries", &["allowed", "blocked"]),
    ("suites", &["allowed", "minimum"]),
    (
        "require_attestations",
        &["provenance", "sbom", "transparency_log"],
    ),
    ("pin.*", &["digest", "signers"]),
    ("time", &["max_age_days", "clock_skew_tolerance_seconds"]),
];

/// Why an edit was not made. Nothing is changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The result would not be a valid policy (the check's own message).
    #[error("the result would not be a valid policy: {0}")]
    Invalid(PolicyError),
    /// The rule named is not in the policy, or the name is not a rule name.
    #[error("{0}")]
    NoSuchRule(String),
}

/// A valid policy file as a JSON tree in file order. Build it with [`PolicyDocument::parse`].
#[derive(Debug, Clone)]
pub struct PolicyDocument {
    root: Json,
}

/// One rule of a document, as `ct policy show` lists it: its name (what `remove` takes) and its
/// value as compact JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleItem {
    pub rule: String,
    pub value: String,
}

impl PolicyDocument {
    /// Read a policy file; it must be valid (`Policy::parse` accepts it).
    pub fn parse(bytes: &[u8]) -> Result<Self, PolicyError> {
        Policy::parse(bytes)?;
        Ok(Self {
            root: Json::parse(bytes)?,
        })
    }

    /// The canonical bytes (spec/policy.md §11).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, &self.root, "", 0);
        out.push('\n');
        out
    }

    /// The parsed policy this document encodes.
    pub fn policy(&self) -> Result<Policy, PolicyError> {
        Policy::parse(self.encode().as_bytes())
    }

    /// The document as a `serde_json` value (for `--json` output), in canonical member order.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.encode()).expect("the canonical encoding is JSON")
    }

    /// Apply `edit` to a copy; keep it only if the result is a valid policy.
    fn edited(
        &mut self,
        edit: impl FnOnce(&mut Json) -> Result<(), EditError>,
    ) -> Result<(), EditError> {
        let mut root = self.root.clone();
        edit(&mut root)?;
        let next = PolicyDocument { root };
        Policy::parse(next.encode().as_bytes()).map_err(EditError::Invalid)?;
        *self = next;
        Ok(())
    }

    /// Append `entry` (a JSON value) to the array at `path` (e.g. `["signers", "allowed"]`),
    /// creating the objects and the array on the way. Returns the element's rule name and
    /// whether it was added: an equal element already there is left alone (`false`).
    pub fn append(
        &mut self,
        path: &[&str],
        entry: serde_json::Value,
    ) -> Result<(String, bool), EditError> {
        let entry = from_serde(&entry);
        let mut at = None;
        self.edited(|root| {
            let list = array_at(root, path)?;
            at = Some(match list.iter().position(|e| same(e, &entry)) {
                Some(i) => (i, false),
                None => {
                    list.push(entry);
                    (list.len() - 1, true)
                }
            });
            Ok(())
        })?;
        let (i, added) = at.expect("the edit ran");
        let base = path.iter().fold(String::new(), |p, n| member_path(&p, n));
        Ok((format!("{base}[{i}]"), added))
    }

    /// The rule named `rule`, as [`PolicyDocument::rules`] lists it.
    pub fn rule(&self, rule: &str) -> Option<RuleItem> {
        self.rules().into_iter().find(|r| r.rule == rule)
    }

    /// Whether the array at `path` exists (e.g. to say that a first `registries.allowed` entry
    /// narrows "any source" to "only these").
    pub fn has(&self, path: &[&str]) -> bool {
        let mut v = &self.root;
        for name in path {
            match v {
                Json::Object(m) => match m.iter().find(|(k, _)| k == name) {
                    Some((_, x)) => v = x,
                    None => return false,
                },
                _ => return false,
            }
        }
        true
    }

    /// Set `pin[name]` to `pin` (a JSON object). Returns the previous pin, if any, as compact JSON.
    pub fn set_pin(
        &mut self,
        name: &str,
        pin: serde_json::Value,
    ) -> Result<Option<String>, EditError> {
        let pin = from_serde(&pin);
        let mut old = None;
        self.edited(|root| {
            let pins = object_at(root, &["pin"])?;
            match pins.iter_mut().find(|(k, _)| k == name) {
                Some((_, v)) => old = Some(std::mem::replace(v, pin)),
                None => pins.push((name.to_string(), pin)),
            }
            Ok(())
        })?;
        Ok(old.map(|v| compact(&v)))
    }

    /// Remove the rule named `rule` (`signers.allowed[1]`, `pin["nginx"]`, `pin.nginx`,
    /// `suites.minimum`, …). Returns the removed value as compact JSON.
    pub fn remove(&mut self, rule: &str) -> Result<String, EditError> {
        let path = parse_rule(rule)?;
        let mut removed = None;
        self.edited(|root| {
            removed = Some(remove_at(root, &path, rule)?);
            Ok(())
        })?;
        Ok(compact(&removed.expect("the edit ran")))
    }

    /// Remove every element of the array at `path` for which `pred` (given the element as a
    /// `serde_json` value) holds. Returns the rule names and values removed (names as they were
    /// before the removal), in order; empty when nothing matched (nothing changes then).
    pub fn remove_where(
        &mut self,
        path: &[&str],
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<Vec<RuleItem>, EditError> {
        if !self.has(path) {
            return Ok(Vec::new());
        }
        let base = path.iter().fold(String::new(), |p, n| member_path(&p, n));
        let mut gone = Vec::new();
        self.edited(|root| {
            let list = array_at(root, path)?;
            let mut i = 0;
            list.retain(|e| {
                let drop = pred(&to_serde(e));
                if drop {
                    gone.push(RuleItem {
                        rule: format!("{base}[{i}]"),
                        value: compact(e),
                    });
                }
                i += 1;
                !drop
            });
            Ok(())
        })?;
        Ok(gone)
    }

    /// Every rule, in canonical order: each element of the lists (so each can be removed on its
    /// own) and each other value, with its name.
    pub fn rules(&self) -> Vec<RuleItem> {
        let canonical = Json::parse(self.encode().as_bytes()).expect("canonical JSON parses");
        let mut out = Vec::new();
        let Json::Object(top) = &canonical else {
            return out;
        };
        for (name, v) in top {
            if name == "version" {
                continue;
            }
            match (name.as_str(), v) {
                ("pin", Json::Object(pins)) => {
                    for (n, p) in pins {
                        out.push(item(pin_rule(n), p));
                    }
                }
                (_, Json::Object(members)) => {
                    for (m, x) in members {
                        let path = member_path(name, m);
                        match x {
                            Json::Array(items) if !items.is_empty() => {
                                for (i, e) in items.iter().enumerate() {
                                    out.push(item(format!("{path}[{i}]"), e));
                                }
                            }
                            _ => out.push(item(path, x)),
                        }
                    }
                }
                _ => out.push(item(name.clone(), v)),
            }
        }
        out
    }
}

fn item(rule: String, v: &Json) -> RuleItem {
    RuleItem {
        rule,
        value: compact(v),
    }
}

/// Equal values, object members compared in any order.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(k2, _)| k2 == k)
                        .is_some_and(|(_, v2)| same(v, v2))
                })
        }
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        _ => a == b,
    }
}

fn from_serde(v: &serde_json::Value) -> Json {
    match v {
        serde_json::Value::Null => Json::Null,
        serde_json::Value::Bool(b) => Json::Bool(*b),
        serde_json::Value::Number(n) => Json::Number(n.clone()),
        serde_json::Value::String(s) => Json::String(s.clone()),
        serde_json::Value::Array(a) => Json::Array(a.iter().map(from_serde).collect()),
        serde_json::Value::Object(o) => {
            Json::Object(o.iter().map(|(k, v)| (k.clone(), from_serde(v))).collect())
        }
    }
}

fn to_serde(v: &Json) -> serde_json::Value {
    serde_json::from_str(&compact(v)).expect("compact JSON parses")
}

/// The object at `path` under `root`, created (empty) where missing.
fn object_at<'a>(
    root: &'a mut Json,
    path: &[&str],
) -> Result<&'a mut Vec<(String, Json)>, EditError> {
    let mut v = root;
    for name in path {
        let Json::Object(members) = v else {
            return Err(EditError::NoSuchRule(format!(
                "{name}: its parent is not an object"
            )));
        };
        let i = match members.iter().position(|(k, _)| k == name) {
            Some(i) => i,
            None => {
                members.push((name.to_string(), Json::Object(Vec::new())));
                members.len() - 1
            }
        };
        v = &mut members[i].1;
    }
    match v {
        Json::Object(m) => Ok(m),
        _ => Err(EditError::NoSuchRule(format!(
            "{} is not an object",
            path.join(".")
        ))),
    }
}

/// The array at `path` (the last name), its parents created where missing.
fn array_at<'a>(root: &'a mut Json, path: &[&str]) -> Result<&'a mut Vec<Json>, EditError> {
    let (last, parents) = path.split_last().expect("a path names something");
    let parent = object_at(root, parents)?;
    let i = match parent.iter().position(|(k, _)| k == last) {
        Some(i) => i,
        None => {
            parent.push((last.to_string(), Json::Array(Vec::new())));
            parent.len() - 1
        }
    };
    match &mut parent[i].1 {
        Json::Array(a) => Ok(a),
        _ => Err(EditError::NoSuchRule(format!(
            "{} is not a list",
            path.join(".")
        ))),
    }
}

/// One step of a rule name: a member, or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Member(String),
    Index(usize),
}

/// Parse a rule name: `a.b[3]`, `pin["my app"]`, `pin.nginx`.
fn parse_rule(rule: &str) -> Result<Vec<Step>, EditError> {
    let bad = || {
        EditError::NoSuchRule(format!(
            "{rule:?} is not a rule name; use the names `ct policy show` prints, such as signers.allowed[0] or pin[\"nginx\"]"
        ))
    };
    let mut steps = Vec::new();
    let mut rest = rule;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            if r.starts_with('"') {
                // A JSON string, then `]`.
                let mut de = serde_json::Deserializer::from_str(r).into_iter::<String>();
                let name = de.next().ok_or_else(bad)?.map_err(|_| bad())?;
                let used = de.byte_offset();
                rest = r[used..].strip_prefix(']').ok_or_else(bad)?;
                steps.push(Step::Member(name));
            } else {
                let end = r.find(']').ok_or_else(bad)?;
                let i: usize = r[..end].parse().map_err(|_| bad())?;
                steps.push(Step::Index(i));
                rest = &r[end + 1..];
            }
        } else {
            let r = if steps.is_empty() {
                rest
            } else {
                rest.strip_prefix('.').ok_or_else(bad)?
            };
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err(bad());
            }
            steps.push(Step::Member(r[..end].to_string()));
            rest = &r[end..];
        }
    }
    if steps.is_empty() {
        return Err(bad());
    }
    Ok(steps)
}

fn remove_at(root: &mut Json, path: &[Step], rule: &str) -> Result<Json, EditError> {
    let missing = || EditError::NoSuchRule(format!("the policy has no rule {rule}"));
    let (last, parents) = path
        .split_last()
        .expect("parse_rule gives at least one step");
    let mut v = root;
    for step in parents {
        v = match (step, v) {
            (Step::Member(n), Json::Object(m)) => {
                &mut m.iter_mut().find(|(k, _)| k == n).ok_or_else(missing)?.1
            }
            (Step::Index(i), Json::Array(a)) => a.get_mut(*i).ok_or_else(missing)?,
            _ => return Err(missing()),
        };
    }
    match (last, v) {
        (Step::Member(n), Json::Object(m)) => {
            let i = m.iter().position(|(k, _)| k == n).ok_or_else(missing)?;
            Ok(m.remove(i).1)
        }
        (Step::Index(i), Json::Array(a)) if *i < a.len() => Ok(a.remove(*i)),
        _ => Err(missing()),
    }
}

/// The members of `o` in canonical order for the object at `pattern`.
fn ordered<'a>(o: &'a [(String, Json)], pattern: &str) -> Vec<&'a (String, Json)> {
    let mut v: Vec<&(String, Json)> = o.iter().collect();
    if pattern == "pin" {
        v.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    } else if let Some((_, order)) = ORDER.iter().find(|(p, _)| *p == pattern) {
        v.sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(usize::MAX));
    }
    v
}

/// The pattern of a child of the object at `pattern`: `signers` → `signers.allowed`; array
/// elements add `[]`; any member of `pin` is `pin.*`.
fn child(pattern: &str, name: &str) -> String {
    match pattern {
        "" => name.to_string(),
        "pin" => "pin.*".into(),
        p => format!("{p}.{name}"),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("strings serialize"));
}

/// Canonical layout: the top-level object and its object members one member per line; arrays
/// of objects (the signers lists) one element per line, each element inline; everything else
/// inline, `{ "a": 1, "b": 2 }` and `["x", "y"]`.
fn write_value(out: &mut String, v: &Json, pattern: &str, depth: usize) {
    let pad = |n: usize| "  ".repeat(n);
    match v {
        Json::Object(m) if depth <= 1 && !m.is_empty() => {
            out.push_str("{\n");
            let members = ordered(m, pattern);
            for (i, (k, x)) in members.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_string(out, k);
                out.push_str(": ");
                write_value(out, x, &child(pattern, k), depth + 1);
                if i + 1 < members.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Json::Array(a) if a.iter().any(|e| matches!(e, Json::Object(_))) => {
            out.push_str("[\n");
            for (i, e) in a.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_inline(out, e, &format!("{pattern}[]"));
                if i + 1 < a.len() {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        other => write_inline(out, other, pattern),
    }
}

fn write_inline(out: &mut String, v: &Json, pattern: &str) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Json::String(s) => write_string(out, s),
        Json::Array(a) => {
            out.push('[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_inline(out, e, &format!("{pattern}[]"));
            }
            out.push(']');
        }
        Json::Object(m) if m.is_empty() => out.push_str("{}"),
        Json::Object(m) => {
            out.push_str("{ ");
            for (i, (k, x)) in ordered(m, pattern).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_inline(out, x, &child(pattern, k));
            }
            out.push_str(" }");
        }
    }
}

/// One line of JSON for messages: `{"key_id": "alice"}`.
fn compact(v: &Json) -> String {
    let mut s = String::new();
    write_inline(&mut s, v, "?");
    s.replace("{ ", "{").replace(" }", "}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(s: &str) -> PolicyDocument {
        PolicyDocument::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn the_starter_policy_is_canonical() {
        let s = super::super::starter_policy();
        assert_eq!(doc(&s).encode(), s);
    }

    #[test]
    fn any_member_order_and_layout_gives_the_same_bytes() {
        let a = r#"{"time":{"clock_skew_tolerance_seconds":60,"max_age_days":9},"pin":{"zz":{"signers":["k"],"digest":"sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"},"aa":{"signers":["x"]}},
            "signers":{"threshold":1,"denied":[{"reason":"r","key_id":"old"}],"allowed":[{"required":true,"key_id":"*"}]},"version":"1"}"#;
        let b = doc(a).encode();
        assert_eq!(doc(&b).encode(), b, "canonical is a fixed point");
        assert_eq!(
            b,
            r#"{
  "version": "1",
  "signers": {
    "allowed": [
      { "key_id": "*", "required": true }
    ],
    "denied": [
      { "key_id": "old", "reason": "r" }
    ],
    "threshold": 1
  },
  "pin": {
    "aa": { "signers": ["x"] },
    "zz": { "digest": "sha256:d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1", "signers": ["k"] }
  },
  "time": {
    "max_age_days": 9,
    "clock_skew_tolerance_seconds": 60
  }
}
"#
        );
    }

    #[test]
    fn append_creates_the_path_and_refuses_duplicates_silently() {
        let mut d = doc(r#"{"version": "1"}"#);
        let r = d
            .append(&["signers", "allowed"], json!({"key_id": "rel-*"}))
            .unwrap();
        assert_eq!(r, ("signers.allowed[0]".to_string(), true));
        let r = d
            .append(&["signers", "allowed"], json!({"key_id": "rel-*"}))
            .unwrap();
        assert_eq!(r, ("signers.allowed[0]".to_string(), false));
        // Member order does not make a different entry.
        let e = json!({"key_id": "x", "suites": ["CT-SIG-02"], "required": true});
        assert!(d.append(&["signers", "allowed"], e.clone()).unwrap().1);
        let mut d2 = PolicyDocument::parse(d.encode().as_bytes()).unwrap();
        assert!(!d2.append(&["signers", "allowed"], e).unwrap().1);
        let r = d
            .append(&["registries", "allowed"], json!("docker.io/*"))
            .unwrap();
        assert_eq!(r, ("registries.allowed[0]".to_string(), true));
        assert_eq!(
            d.rule("registries.allowed[0]").unwrap().value,
            "\"docker.io/*\""
        );
        // An invalid result is refused and nothing changes.
        let before = d.encode();
        let e = d
            .append(&["signers", "allowed"], json!({"key_id": "a**"}))
            .unwrap_err();
        assert!(e.to_string().contains("signers.allowed[2].key_id"), "{e}");
        assert_eq!(d.encode(), before);
    }

    #[test]
    fn remove_by_name_and_refuse_what_would_widen_or_break() {
        let mut d = doc(&super::super::starter_policy());
        assert_eq!(d.remove("suites.allowed[0]").unwrap(), "\"CT-SIG-01\"");
        assert_eq!(d.remove("suites.allowed[1]").unwrap(), "\"CT-SIG-03\"");
        let e = d.remove("suites.allowed[0]").unwrap_err();
        assert!(e.to_string().contains("suites.allowed: empty list"), "{e}");
        d.remove("suites.allowed").unwrap();
        assert!(matches!(
            d.remove("signers.allowed[5]"),
            Err(EditError::NoSuchRule(_))
        ));
        assert!(d.remove("version").is_err());
        d.set_pin("my app", json!({"signers": ["k"]})).unwrap();
        assert_eq!(
            d.remove("pin[\"my app\"]").unwrap(),
            r#"{"signers": ["k"]}"#
        );
        d.set_pin("nginx", json!({"signers": ["k"]})).unwrap();
        d.remove("pin.nginx").unwrap();
        for bad in [
            "",
            "signers..allowed",
            "signers.allowed[x]",
            "pin[\"a",
            "[0]",
            ".a",
        ] {
            assert!(
                matches!(d.remove(bad), Err(EditError::NoSuchRule(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn rules_name_every_element() {
        let d = doc(&super::super::starter_policy());
        let names: Vec<String> = d.rules().into_iter().map(|r| r.rule).collect();
        assert_eq!(
            names,
            [
                "default_action",
                "signers.allowed[0]",
                "signers.denied",
                "suites.allowed[0]",
                "suites.allowed[1]",
                "suites.allowed[2]",
                "require_attestations.provenance",
                "require_attestations.sbom",
                "require_attestations.transparency_log",
                "time.clock_skew_tolerance_seconds"
            ]
        );
        let mut d = d;
        let gone = d
            .remove_where(&["suites", "allowed"], |v| v == "CT-SIG-01")
            .unwrap();
        assert_eq!(gone[0].rule, "suites.allowed[0]");
    }

    /// Every valid vector policy: the canonical form is a fixed point, parses, and gives the
    /// same verdict on the vector's facts.
    #[test]
    fn canonical_form_keeps_every_vector_policy_and_its_verdict() {
        use super::super::vectors::{facts_from, policy_bytes, vector_files};
        let mut n = 0;
        for f in vector_files() {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
            let Ok(d) = PolicyDocument::parse(&policy_bytes(&v["policy"])) else {
                continue;
            };
            let text = d.encode();
            assert_eq!(doc(&text).encode(), text, "{}", f.display());
            let facts = facts_from(&v["facts"]).unwrap();
            let before = Policy::parse(&policy_bytes(&v["policy"])).unwrap();
            assert_eq!(
                d.policy().unwrap().evaluate(&facts),
                before.evaluate(&facts),
                "{}",
                f.display()
            );
            n += 1;
        }
        assert!(n > 50);
    }
}
