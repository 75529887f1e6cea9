//! Tests against the normative vectors in `spec/vectors/policy/`, and a deterministic
//! mutation fuzz of `Policy::parse` (invariant: errors are fine, panics are bugs).

use super::values::parse_date_str;
use super::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The crate directory at run time (`cargo test` sets it), so a test binary reused from another
/// clone sharing the target directory reads this clone's spec.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
}

pub(super) fn vector_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(format!("{}/../spec/vectors/policy", manifest_dir()))
            .expect("spec/vectors/policy exists")
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
    files.sort();
    files
}

/// The policy bytes of a vector: a JSON string is the raw file text (for syntax errors and
/// duplicate keys); anything else is serialized as is.
pub(super) fn policy_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(raw) => raw.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap(),
    }
}

fn only_keys(v: &Value, what: &str, known: &[&str]) -> Result<(), String> {
    let obj = v.as_object().ok_or(format!("{what} is not an object"))?;
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(format!("{what} has unknown key {k:?}")),
        None => Ok(()),
    }
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or(format!("facts.{name} missing or not a string"))
}

fn date_field(v: &Value, name: &str) -> Result<chrono::DateTime<Utc>, String> {
    let s = str_field(v, name)?;
    parse_date_str(s).ok_or(format!("facts.{name}: bad date {s:?}"))
}

pub(super) fn facts_from(v: &Value) -> Result<PolicyFacts, String> {
    only_keys(
        v,
        "facts",
        &[
            "bundle_name",
            "source_reference",
            "image_digest",
            "created",
            "now",
            "signatures",
            "attestations",
        ],
    )?;
    let mut signatures = Vec::new();
    for s in v
        .get("signatures")
        .and_then(Value::as_array)
        .ok_or("facts.signatures missing")?
    {
        only_keys(
            s,
            "signature",
            &["key_id", "fingerprint", "suite", "trusted"],
        )?;
        signatures.push(SignerFacts {
            key_id: KeyId::new(str_field(s, "key_id")?).map_err(|e| e.to_string())?,
            fingerprint: Fingerprint::parse(str_field(s, "fingerprint")?)
                .map_err(|e| e.to_string())?,
            suite: str_field(s, "suite")?.to_string(),
            trusted: s
                .get("trusted")
                .and_then(Value::as_bool)
                .ok_or("signature.trusted missing")?,
        });
    }
    let attestations = v
        .get("attestations")
        .and_then(Value::as_array)
        .ok_or("facts.attestations missing")?
        .iter()
        .map(|a| {
            a.as_str()
                .map(str::to_string)
                .ok_or("attestation is not a string".to_string())
        })
        .collect::<Result<_, _>>()?;
    Ok(PolicyFacts {
        bundle_name: str_field(v, "bundle_name")?.to_string(),
        source_reference: str_field(v, "source_reference")?.to_string(),
        image_digest: Sha256Digest::parse(str_field(v, "image_digest")?)
            .map_err(|e| e.to_string())?,
        created: date_field(v, "created")?,
        now: date_field(v, "now")?,
        signatures,
        attestations,
    })
}

fn check_vector(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("vector is not JSON: {e}"))?;
    only_keys(&v, "vector", &["description", "policy", "facts", "expect"])?;
    v.get("description")
        .and_then(Value::as_str)
        .ok_or("description missing")?;
    let expect = v.get("expect").ok_or("expect missing")?;
    only_keys(
        expect,
        "expect",
        &["verdict", "rule", "kind", "reason_contains", "error"],
    )?;
    let parsed = Policy::parse(&policy_bytes(v.get("policy").ok_or("policy missing")?));

    if let Some(want) = expect.get("error") {
        let want = want.as_str().ok_or("expect.error is not a string")?;
        return match parsed {
            Ok(_) => Err(format!(
                "policy parsed, expected an error containing {want:?}"
            )),
            Err(e) if e.to_string().contains(want) => Ok(()),
            Err(e) => Err(format!(
                "error {:?} does not contain {want:?}",
                e.to_string()
            )),
        };
    }
    let policy = parsed.map_err(|e| format!("policy refused: {e}"))?;
    let mut facts = facts_from(v.get("facts").ok_or("facts missing")?)?;
    let verdict = policy.evaluate(&facts);
    facts.signatures.reverse();
    if policy.evaluate(&facts) != verdict {
        return Err("verdict depends on the order of signatures".into());
    }
    let shown = serde_json::to_string(&verdict).unwrap();
    match (expect.get("verdict").and_then(Value::as_str), &verdict) {
        (Some("accept"), Verdict::Accept { .. }) => {
            if expect.get("rule").is_some() || expect.get("kind").is_some() {
                return Err("an accept vector names no rule or kind".into());
            }
        }
        (Some("reject"), Verdict::Reject(r)) => {
            let rule = expect
                .get("rule")
                .and_then(Value::as_str)
                .ok_or("expect.rule missing")?;
            let kind = expect
                .get("kind")
                .and_then(Value::as_str)
                .ok_or("expect.kind missing")?;
            let got_kind = serde_json::to_value(r.kind).unwrap();
            if r.rule != rule || got_kind != kind {
                return Err(format!("expected rule {rule:?} kind {kind:?}, got {shown}"));
            }
        }
        (want, _) => return Err(format!("expected verdict {want:?}, got {shown}")),
    }
    let text_to_search = match &verdict {
        Verdict::Accept { notes } => notes.join("\n"),
        Verdict::Reject(r) => r.reason.clone(),
    };
    for needle in expect
        .get("reason_contains")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let needle = needle
            .as_str()
            .ok_or("reason_contains holds a non-string")?;
        if !text_to_search.contains(needle) {
            return Err(format!("{needle:?} not found in {shown}"));
        }
    }
    Ok(())
}

#[test]
fn spec_vectors() {
    let files = vector_files();
    assert!(
        files.len() >= 25,
        "only {} vectors in spec/vectors/policy",
        files.len()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            check_vector(f)
                .err()
                .map(|e| format!("{}: {e}", f.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} vector(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn vectors_cover_every_rule() {
    let mut rules = BTreeSet::new();
    for f in vector_files() {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        if let Some(rule) = v["expect"]["rule"].as_str() {
            // Entry indices and pin names do not matter here, only which rule fired.
            let base = rule.split('[').next().unwrap().to_string();
            rules.insert(base);
        }
    }
    for rule in [
        "suites.allowed",
        "suites.minimum",
        "signers.denied",
        "registries.blocked",
        "registries.allowed",
        "pin",
        "time.max_age_days",
        "time.clock_skew_tolerance_seconds",
        "signers.allowed",
        "default_action",
        "signers.threshold",
        "require_attestations.provenance",
        "require_attestations.sbom",
        "require_attestations.transparency_log",
    ] {
        assert!(rules.contains(rule), "no vector fires {rule}");
    }
}

#[test]
fn spec_examples_parse_and_starter_policy_matches_the_spec() {
    let spec = std::fs::read_to_string(format!("{}/../spec/policy.md", manifest_dir())).unwrap();
    let blocks: Vec<&str> = spec
        .split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .filter(|b| b.trim_start().starts_with("{\n"))
        .collect();
    assert!(
        blocks.len() >= 2,
        "policy examples not found in spec/policy.md"
    );
    for b in &blocks {
        Policy::parse(b.as_bytes())
            .unwrap_or_else(|e| panic!("spec example does not parse: {e}\n{b}"));
    }
    assert!(
        blocks.contains(&starter_policy().as_str()),
        "spec §9.1 differs from starter_policy()"
    );
}

/// SplitMix64: a small deterministic generator, so a failing case is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that steer mutations towards interesting parser paths.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e309",
    "4294967296",
    "18446744073709551616",
    "2.5",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "\"*\"",
    "\"**\"",
    "\"[\"",
    "\"[!]\"",
    "\"version\"",
    "\"1\"",
    "\"signers\"",
    "\"allowed\"",
    "\"denied\"",
    "\"key_id\"",
    "\"fingerprint\"",
    "\"after\"",
    "\"before\"",
    "\"2026-13-01\"",
    "\"2026-02-29T23:59:60Z\"",
    "\"9999-12-31T23:59:59-23:59\"",
    "\"0000-01-01T00:00:00+23:59\"",
    "\"threshold\"",
    "\"threshold_from\"",
    "\"pin\"",
    "\"digest\"",
    "\"suites\"",
    "\"minimum\"",
    "\"CT-SIG-03\"",
    "\"time\"",
    "\"max_age_days\"",
    "36500",
    "\"clock_skew_tolerance_seconds\"",
    "\"registries\"",
    "\"blocked\"",
    "\"require_attestations\"",
    "\u{feff}",
    "\u{1F600}",
    "\\",
    "\u{0}",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            2 => data.insert(at, rng.next() as u8),
            3 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                data.splice(at..at, t.iter().copied());
            }
            4 if !data.is_empty() => {
                let from = rng.below(data.len());
                let end = (from + rng.below(64)).min(data.len());
                let chunk = data[from..end].to_vec();
                data.splice(at..at, chunk);
            }
            5 => data.truncate(at),
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let end = (at + rng.below(12)).min(data.len());
                data.splice(at..end, t.iter().copied());
            }
        }
    }
    data
}

fn sample_facts() -> Vec<PolicyFacts> {
    let at = |s: &str| parse_date_str(s).unwrap();
    let sig = |id: &str, seed: &[u8], suite: &str, trusted: bool| SignerFacts {
        key_id: KeyId::new(id).unwrap(),
        fingerprint: Fingerprint::of_public_key(seed),
        suite: suite.into(),
        trusted,
    };
    let base = PolicyFacts {
        bundle_name: "nginx".into(),
        source_reference: "docker.io/library/nginx:1.25".into(),
        image_digest: Sha256Digest::of(b"image"),
        created: at("2026-01-10T00:00:00Z"),
        now: at("2026-02-01T00:00:00Z"),
        signatures: vec![
            sig("alice", b"a", "CT-SIG-01", true),
            sig("mallory", b"m", "CT-SIG-09", false),
        ],
        attestations: ["sbom".to_string()].into(),
    };
    let mut extreme = base.clone();
    extreme.created = chrono::DateTime::<Utc>::MIN_UTC;
    extreme.now = chrono::DateTime::<Utc>::MAX_UTC;
    extreme.signatures.clear();
    let mut future = base.clone();
    future.created = chrono::DateTime::<Utc>::MAX_UTC;
    future.now = chrono::DateTime::<Utc>::MIN_UTC;
    vec![base, extreme, future]
}

/// Leaves that keep a policy close to valid, so structured mutations reach the evaluator.
const LEAVES: &[&str] = &[
    r#""*""#,
    r#""release-*""#,
    r#""alice""#,
    r#""docker.io/*""#,
    r#""[a-""#,
    r#""CT-SIG-01""#,
    r#""CT-SIG-03""#,
    r#""2026-01-10""#,
    r#""2026-01-10T00:00:00.5+01:00""#,
    r#""allow""#,
    r#""deny""#,
    r#""sha256:0000000000000000000000000000000000000000000000000000000000000000""#,
    r#""a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1""#,
    "0",
    "1",
    "2",
    "90",
    "true",
    "false",
    "null",
    "[]",
    "{}",
    r#"[{"key_id": "*"}]"#,
    r#"{"nginx": {"signers": ["alice"]}}"#,
];

fn leaf(rng: &mut Rng) -> Value {
    serde_json::from_str(LEAVES[rng.below(LEAVES.len())]).unwrap()
}

/// Replace, delete or add a value somewhere below the top of a policy document (the top-level
/// `version` is left alone, or nearly every mutant would stop at the version check).
fn mutate_value(rng: &mut Rng, v: &mut Value, depth: usize) {
    const NAMES: [&str; 8] = [
        "threshold",
        "after",
        "before",
        "minimum",
        "blocked",
        "required",
        "signers",
        "x",
    ];
    match v {
        Value::Object(m) if depth == 0 || (!m.is_empty() && depth < 6 && rng.below(4) != 0) => {
            let keys: Vec<String> = m
                .keys()
                .filter(|k| depth > 0 || *k != "version")
                .cloned()
                .collect();
            if keys.is_empty() || rng.below(8) == 0 {
                let name = if depth == 0 {
                    super::parse::TOP_FIELDS[rng.below(8)]
                } else {
                    NAMES[rng.below(NAMES.len())]
                };
                m.insert(name.to_string(), leaf(rng));
                return;
            }
            let k = &keys[rng.below(keys.len())];
            if rng.below(8) == 0 {
                m.remove(k);
            } else {
                mutate_value(rng, m.get_mut(k).unwrap(), depth + 1);
            }
        }
        Value::Array(a) if !a.is_empty() && depth < 6 && rng.below(4) != 0 => {
            let i = rng.below(a.len());
            match rng.below(6) {
                0 => {
                    a.remove(i);
                }
                1 => {
                    let copy = a[i].clone();
                    a.push(copy);
                }
                _ => mutate_value(rng, &mut a[i], depth + 1),
            }
        }
        _ => *v = leaf(rng),
    }
}

#[test]
fn parse_never_panics_on_mutated_or_random_input() {
    let mut seeds: Vec<Value> = vec![serde_json::from_str(&starter_policy()).unwrap()];
    for f in vector_files() {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        seeds.push(v["policy"].clone());
    }
    // Structured mutations start from valid policies only.
    let valid: Vec<Value> = seeds
        .iter()
        .filter(|s| Policy::parse(&policy_bytes(s)).is_ok())
        .cloned()
        .collect();
    let facts = sample_facts();
    let mut rng = Rng(0x00C3_4470_2026);
    let (mut parsed, mut refused) = (0, 0);
    for round in 0..8000 {
        let seed = &seeds[rng.below(seeds.len())];
        let input: Vec<u8> = match round % 8 {
            0 => (0..rng.below(300)).map(|_| rng.next() as u8).collect(),
            1 | 2 => mutate(&mut rng, &policy_bytes(seed)),
            _ => {
                let mut v = valid[rng.below(valid.len())].clone();
                for _ in 0..1 + rng.below(2) {
                    mutate_value(&mut rng, &mut v, 0);
                }
                policy_bytes(&v)
            }
        };
        let outcome = std::panic::catch_unwind(|| {
            Policy::parse(&input).map(|p| facts.iter().map(|f| p.evaluate(f)).collect::<Vec<_>>())
        });
        match outcome {
            Ok(Ok(_)) => parsed += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!(
                "round {round}: panic on input {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    eprintln!("parse fuzz: {parsed} parsed, {refused} refused");
    // The mutations must reach both the evaluator and the error paths, or this proves little.
    assert!(
        parsed > 1000 && refused > 3000,
        "parsed {parsed}, refused {refused}"
    );
}
