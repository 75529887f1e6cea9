//! `ct policy show|add-signer|add-registry|deny|pin|remove`: read policy.json, change one rule,
//! write it back in canonical form (spec/policy.md §11) — atomically, and only when the result
//! is a policy `ct policy check` accepts. Signers named by a trust-store key go in by
//! fingerprint, the key's identity; every command prints the rule it wrote and its name.

use super::Ctx;
use crate::app::{AddRegistryArgs, AddSignerArgs, DenyArgs, PinArgs, RemoveArgs};
use crate::config::write_atomic;
use crate::exit::{CmdResult, Failure};
use cerro_core::keys::PublicKeyFile;
use cerro_core::policy::{parse_date, EditError, PolicyDocument, RuleItem};
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where `ct policy init` writes by default, and where the helpers look last.
const DEFAULT_FILE: &str = "policy.json";

/// The policy file a helper works on: `--policy`, else `default_policy`, else ./policy.json.
fn policy_path(ctx: &Ctx, arg: Option<&Path>) -> CmdResult<PathBuf> {
    if let Some(p) = arg
        .map(Path::to_path_buf)
        .or(ctx.cfg.file.default_policy.clone())
    {
        return Ok(p);
    }
    let p = PathBuf::from(DEFAULT_FILE);
    if p.exists() {
        return Ok(p);
    }
    Err(
        Failure::usage("no policy file: pass --policy FILE, or set default_policy in config.toml")
            .hint("`ct policy init -o policy.json` writes a starter policy"),
    )
}

/// The policy file, read and checked.
struct Opened {
    path: PathBuf,
    doc: PolicyDocument,
    /// The file's bytes as read, to tell whether anything changed.
    before: String,
    mode: u32,
}

fn open(ctx: &Ctx, arg: Option<&Path>) -> CmdResult<Opened> {
    let path = policy_path(ctx, arg)?;
    let bytes = std::fs::read(&path)
        .map_err(|e| Failure::io(format!("reading policy {}", path.display()), e))?;
    let doc = PolicyDocument::parse(&bytes).map_err(|e| {
        Failure::malformed(format!("policy {}: {e}", path.display())).hint(
            "fix it first (`ct policy check FILE` explains); the helpers only edit valid policies",
        )
    })?;
    let mode = std::fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    Ok(Opened {
        path,
        doc,
        before: String::from_utf8_lossy(&bytes).into_owned(),
        mode,
    })
}

/// Write the document back if it differs from the file; returns whether it was written.
fn save(o: &Opened) -> CmdResult<bool> {
    let text = o.doc.encode();
    if text == o.before {
        return Ok(false);
    }
    // The document checked itself after every edit; check the bytes once more before writing.
    cerro_core::policy::Policy::parse(text.as_bytes()).map_err(|e| {
        Failure::malformed(format!("internal: the edited policy does not parse: {e}"))
    })?;
    write_atomic(&o.path, text.as_bytes(), o.mode)?;
    Ok(true)
}

fn edit_failure(o: &Opened, e: EditError) -> Failure {
    match e {
        EditError::Invalid(inner) => Failure::usage(format!(
            "{}: not changed: the result would be a policy `ct policy check` rejects: {inner}",
            o.path.display()
        )),
        EditError::NoSuchRule(m) => Failure::usage(format!("{}: {m}", o.path.display()))
            .hint("`ct policy show` lists every rule by name"),
    }
}

/// Report an edit: JSON and a line per rule.
fn report(ctx: &Ctx, o: &Opened, action: &str, rules: &[RuleItem], notes: &[String]) -> CmdResult {
    let changed = save(o)?;
    ctx.out.json_doc(&json!({
        "ok": true, "path": o.path, "changed": changed, "action": action,
        "rules": rules, "notes": notes, "policy": o.doc.to_value(),
    }));
    let verb = if changed {
        ctx.out.good(action)
    } else {
        "unchanged:".to_string()
    };
    for r in rules {
        ctx.out.line(format!(
            "{verb} {} = {}  ({})",
            r.rule,
            r.value,
            o.path.display()
        ));
    }
    for n in notes {
        ctx.out.line(format!("  note: {n}"));
    }
    Ok(())
}

/// What SIGNER names.
enum SignerRef {
    /// A key in the trust store (or one whose secret half is here): its fingerprint.
    Key {
        name: KeyId,
        fingerprint: Fingerprint,
    },
    Fingerprint(Fingerprint),
    /// A key-id glob (or exact key id).
    Glob(String),
}

fn find_key(ctx: &Ctx, name: &str) -> CmdResult<Option<PublicKeyFile>> {
    let Ok(id) = KeyId::new(name) else {
        return Ok(None);
    };
    let p = ctx.cfg.public_key_path(&id);
    if let Ok(bytes) = std::fs::read(&p) {
        return PublicKeyFile::parse(&bytes)
            .map(Some)
            .map_err(|e| Failure::from(e).context(p.display()));
    }
    if ctx.cfg.secret_key_path(&id).exists() {
        return Ok(Some(ctx.cfg.read_secret_key(&id)?.public()));
    }
    Ok(None)
}

fn resolve(ctx: &Ctx, s: &str, force_key_id: bool) -> CmdResult<SignerRef> {
    if s.is_empty() {
        return Err(Failure::usage("SIGNER is empty"));
    }
    if force_key_id {
        return Ok(SignerRef::Glob(s.to_string()));
    }
    if let Ok(fp) = Fingerprint::parse(s) {
        return Ok(SignerRef::Fingerprint(fp));
    }
    if let Some(pk) = find_key(ctx, s)? {
        return Ok(SignerRef::Key {
            name: pk.key_id,
            fingerprint: pk.fingerprint,
        });
    }
    Ok(SignerRef::Glob(s.to_string()))
}

/// Whether a glob has pattern characters (else it names one key id exactly).
fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The entry naming a signer, and a note on what it matches.
fn signer_entry(r: &SignerRef) -> (serde_json::Map<String, Value>, Option<String>) {
    let mut m = serde_json::Map::new();
    let note = match r {
        SignerRef::Key { name, fingerprint } => {
            m.insert("fingerprint".into(), json!(fingerprint.to_string()));
            Some(format!("{fingerprint} is key {name} in your trust store; the entry names its fingerprint, so only that key matches, whatever key id it signs under"))
        }
        SignerRef::Fingerprint(fp) => {
            m.insert("fingerprint".into(), json!(fp.to_string()));
            None
        }
        SignerRef::Glob(g) => {
            m.insert("key_id".into(), json!(g));
            Some(if is_pattern(g) {
                format!("{g:?} matches the key ids signatures carry, which their signers chose; only keys in the trust store count")
            } else {
                format!("no key named {g:?} is in your trust store; the entry matches any signature whose key id is {g:?} — the signer's own label — and only keys in the trust store count")
            })
        }
    };
    (m, note)
}

/// `ct policy show`.
pub fn show(ctx: &Ctx, arg: Option<&Path>) -> CmdResult {
    let o = open(ctx, arg)?;
    let policy = o
        .doc
        .policy()
        .map_err(|e| Failure::malformed(e.to_string()))?;
    let rules = o.doc.rules();
    let trusted = ctx.cfg.trusted_keys().unwrap_or_default();
    // A fingerprint in a rule, annotated with the trust-store key it is.
    let annotate = |v: &str| -> String {
        let names: Vec<String> = trusted
            .iter()
            .filter(|k| v.contains(&k.fingerprint.to_string()) || v.contains(&k.fingerprint.hex()))
            .map(|k| format!("trusted as {}", k.key_id))
            .collect();
        if names.is_empty() {
            String::new()
        } else {
            format!("  ({})", names.join(", "))
        }
    };
    ctx.out.json_doc(&json!({
        "ok": true, "path": o.path, "canonical": o.doc.encode() == o.before,
        "summary": policy.summary(), "rules": rules, "policy": o.doc.to_value(),
    }));
    ctx.out.line(format!(
        "{} (valid, version 1{})",
        ctx.out.bold(&o.path.display().to_string()),
        if o.doc.encode() == o.before {
            ""
        } else {
            "; not in canonical form — any helper rewrites it so"
        }
    ));
    ctx.out.line("What it says, in evaluation order:");
    for l in policy.summary() {
        ctx.out.line(format!("  {l}"));
    }
    ctx.out.line("Rules, by the name `ct policy remove` takes:");
    let width = rules.iter().map(|r| r.rule.len()).max().unwrap_or(0);
    for r in &rules {
        ctx.out.line(format!(
            "  {:<width$}  {}{}",
            r.rule,
            r.value,
            annotate(&r.value)
        ));
    }
    Ok(())
}

/// `ct policy add-signer SIGNER [--suite S]… [--required]`.
pub fn add_signer(ctx: &Ctx, a: AddSignerArgs) -> CmdResult {
    let mut o = open(ctx, a.file.policy.as_deref())?;
    let r = resolve(ctx, &a.signer, a.key_id)?;
    let (mut entry, note) = signer_entry(&r);
    if !a.suite.is_empty() {
        let mut ids: Vec<&str> = a.suite.iter().map(|s| s.id()).collect();
        ids.sort();
        ids.dedup();
        entry.insert("suites".into(), json!(ids));
    }
    if a.required {
        entry.insert("required".into(), json!(true));
    }
    let (name, _) = o
        .doc
        .append(&["signers", "allowed"], Value::Object(entry))
        .map_err(|e| edit_failure(&o, e))?;
    let mut notes: Vec<String> = note.into_iter().collect();
    if !a.suite.is_empty() {
        notes.push(
            "the entry matches only signatures in the listed suites; suites.allowed and suites.minimum still apply to every signature".into(),
        );
    }
    report(ctx, &o, "added", &[rule_item(&o, &name)], &notes)
}

/// The rule `name` as the document shows it (it is there: an edit just named it).
fn rule_item(o: &Opened, name: &str) -> RuleItem {
    o.doc.rule(name).unwrap_or_else(|| RuleItem {
        rule: name.to_string(),
        value: String::new(),
    })
}

/// The glob `add-registry` writes for HOST, HOST/REPO, or a glob (see its help).
fn registry_glob(s: &str) -> String {
    let has_scheme = ["docker://", "oci:", "docker-archive:"]
        .iter()
        .any(|p| s.starts_with(p));
    if has_scheme || is_pattern(s) {
        s.to_string()
    } else if s.trim_end_matches('/').contains('/') {
        format!("docker://{}[:@]*", s.trim_end_matches('/'))
    } else {
        format!("docker://{}/*", s.trim_end_matches('/'))
    }
}

/// `ct policy add-registry HOST[/REPO] [--block]`.
pub fn add_registry(ctx: &Ctx, a: AddRegistryArgs) -> CmdResult {
    let mut o = open(ctx, a.file.policy.as_deref())?;
    if a.registry.is_empty() {
        return Err(Failure::usage("HOST[/REPO] is empty"));
    }
    let glob = registry_glob(&a.registry);
    let list = if a.block { "blocked" } else { "allowed" };
    let had_allowed = o.doc.has(&["registries", "allowed"]);
    let (name, _) = o
        .doc
        .append(&["registries", list], json!(glob))
        .map_err(|e| edit_failure(&o, e))?;
    let mut notes = Vec::new();
    if glob != a.registry {
        notes.push(format!(
            "the glob matches the source references ct pack records for {} (docker://HOST/REPO:TAG or @DIGEST)",
            a.registry
        ));
    }
    if !a.block && !had_allowed {
        notes.push("registries.allowed was absent, so any source was allowed; now only sources matching its entries are".into());
    }
    let action = if a.block { "blocked" } else { "added" };
    report(ctx, &o, action, &[rule_item(&o, &name)], &notes)
}

/// A date option, checked, as written.
fn date_arg(s: Option<&str>, what: &str) -> CmdResult<Option<String>> {
    match s {
        None => Ok(None),
        Some(d) if parse_date(d).is_some() => Ok(Some(d.to_string())),
        Some(d) => Err(Failure::usage(format!(
            "{what} {d:?} is not a date: use YYYY-MM-DD or an RFC 3339 date-time (2026-06-01T00:00:00Z)"
        ))),
    }
}

/// `ct policy deny SIGNER [--after DATE] [--before DATE] [--reason TEXT]`.
pub fn deny(ctx: &Ctx, a: DenyArgs) -> CmdResult {
    let mut o = open(ctx, a.file.policy.as_deref())?;
    let r = resolve(ctx, &a.signer, a.key_id)?;
    let (mut entry, note) = signer_entry(&r);
    if let Some(d) = date_arg(a.after.as_deref(), "--after")? {
        entry.insert("after".into(), json!(d));
    }
    if let Some(d) = date_arg(a.before.as_deref(), "--before")? {
        entry.insert("before".into(), json!(d));
    }
    if let Some(why) = &a.reason {
        entry.insert("reason".into(), json!(why));
    }
    let (name, _) = o
        .doc
        .append(&["signers", "denied"], Value::Object(entry))
        .map_err(|e| edit_failure(&o, e))?;
    let mut notes: Vec<String> = note.into_iter().collect();
    notes.push(match (&a.after, &a.before) {
        (None, None) => "a signature by this key now rejects any bundle (exit 4), even one other trusted keys signed too".into(),
        (Some(d), None) => format!("bundles created at or after {d} carrying its signature are rejected; earlier ones are not"),
        (None, Some(d)) => format!("bundles created before {d} carrying its signature are rejected"),
        (Some(x), Some(y)) => format!("bundles created from {x} until {y} carrying its signature are rejected"),
    });
    report(ctx, &o, "denied", &[rule_item(&o, &name)], &notes)
}

/// The image digest to pin: a digest, or the one a bundle file's signed manifest names.
fn pin_digest(ctx: &Ctx, s: &str) -> CmdResult<Sha256Digest> {
    if let Ok(d) = Sha256Digest::parse(s) {
        return Ok(d);
    }
    let p = Path::new(s);
    if !p.is_file() {
        return Err(Failure::usage(format!(
            "{s:?} is neither an image digest (sha256: and 64 lowercase hex digits) nor a bundle file"
        )));
    }
    let raw = crate::steps::verify::scan(ctx, p, "reading")?;
    let m = raw
        .manifest
        .as_deref()
        .ok_or_else(|| Failure::malformed(format!("{s}: the bundle has no manifest")))?;
    let m = cerro_core::manifest::Manifest::parse(m)
        .map_err(|e| Failure::malformed(format!("{s}: cerro/manifest.toml: {e}")))?;
    Ok(m.image.digest)
}

/// `ct policy pin NAME [DIGEST|BUNDLE.ctp] [--signer SIGNER]…`.
pub fn pin(ctx: &Ctx, a: PinArgs) -> CmdResult {
    let mut o = open(ctx, a.file.policy.as_deref())?;
    if a.digest.is_none() && a.signer.is_empty() {
        return Err(Failure::usage(
            "a pin needs an image digest, --signer, or both",
        ));
    }
    let mut pin = serde_json::Map::new();
    let mut notes = Vec::new();
    if let Some(d) = &a.digest {
        let digest = pin_digest(ctx, d)?;
        if digest.to_string() != *d {
            notes.push(format!("{d}'s signed manifest names image digest {digest}"));
        }
        pin.insert("digest".into(), json!(digest.to_string()));
    }
    if !a.signer.is_empty() {
        let mut signers = Vec::new();
        for s in &a.signer {
            signers.push(match resolve(ctx, s, false)? {
                SignerRef::Key { name, fingerprint } => {
                    notes.push(format!("{name} is pinned by its fingerprint {fingerprint}"));
                    fingerprint.to_string()
                }
                SignerRef::Fingerprint(fp) => fp.to_string(),
                SignerRef::Glob(g) if is_pattern(&g) => {
                    return Err(Failure::usage(format!(
                        "pin signers are fingerprints or exact key ids, not globs ({g:?})"
                    )))
                }
                SignerRef::Glob(g) => g,
            });
        }
        pin.insert("signers".into(), json!(signers));
    }
    let old = o
        .doc
        .set_pin(&a.name, Value::Object(pin))
        .map_err(|e| edit_failure(&o, e))?;
    let rule = format!("pin[{}]", json!(a.name));
    let now = rule_item(&o, &rule);
    if let Some(old) = old.filter(|old| *old != now.value) {
        notes.push(format!("it replaces {old}"));
    }
    report(ctx, &o, "pinned", &[now], &notes)
}

/// `ct policy remove RULE | --signer S | --deny S | --registry R | --pin NAME`.
pub fn remove(ctx: &Ctx, a: RemoveArgs) -> CmdResult {
    let mut o = open(ctx, a.file.policy.as_deref())?;
    let mut removed = Vec::new();
    if let Some(rule) = &a.rule {
        let v = o.doc.remove(rule).map_err(|e| edit_failure(&o, e))?;
        removed.push(RuleItem {
            rule: rule.clone(),
            value: v,
        });
    }
    for (list, who) in [("allowed", &a.signer), ("denied", &a.deny)] {
        let Some(s) = who else { continue };
        let target = resolve(ctx, s, false)?;
        let hits = o
            .doc
            .remove_where(&["signers", list], |e| names_signer(e, s, &target))
            .map_err(|e| edit_failure(&o, e))?;
        if hits.is_empty() {
            return Err(Failure::usage(format!(
                "{}: no signers.{list} entry names {s:?}",
                o.path.display()
            ))
            .hint("`ct policy show` lists every rule by name"));
        }
        removed.extend(hits);
    }
    if let Some(r) = &a.registry {
        let glob = registry_glob(r);
        for list in ["allowed", "blocked"] {
            removed.extend(
                o.doc
                    .remove_where(&["registries", list], |e| {
                        e.as_str().is_some_and(|v| v == glob || v == r)
                    })
                    .map_err(|e| edit_failure(&o, e))?,
            );
        }
        if removed.is_empty() {
            return Err(Failure::usage(format!(
                "{}: no registries entry is {r:?} or {glob:?}",
                o.path.display()
            ))
            .hint("`ct policy show` lists every rule by name"));
        }
    }
    if let Some(name) = &a.pin {
        let rule = format!("pin[{}]", json!(name));
        let v = o.doc.remove(&rule).map_err(|e| edit_failure(&o, e))?;
        removed.push(RuleItem { rule, value: v });
    }
    report(ctx, &o, "removed", &removed, &[])
}

/// Whether a signers entry names SIGNER: its key_id is the string given, or its fingerprint is
/// the one SIGNER resolves to.
fn names_signer(entry: &Value, given: &str, target: &SignerRef) -> bool {
    let fp = match target {
        SignerRef::Key { fingerprint, .. } | SignerRef::Fingerprint(fingerprint) => {
            Some(*fingerprint)
        }
        SignerRef::Glob(_) => None,
    };
    let by_id = entry["key_id"].as_str() == Some(given);
    let by_fp = fp.is_some_and(|fp| {
        entry["fingerprint"]
            .as_str()
            .and_then(|s| Fingerprint::parse(s).ok())
            == Some(fp)
    });
    by_id || by_fp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_globs() {
        assert_eq!(
            registry_glob("registry.example.com"),
            "docker://registry.example.com/*"
        );
        assert_eq!(
            registry_glob("127.0.0.1:5000/team/app"),
            "docker://127.0.0.1:5000/team/app[:@]*"
        );
        assert_eq!(registry_glob("oci:img:*"), "oci:img:*");
        assert_eq!(registry_glob("docker://x/y:1"), "docker://x/y:1");
        assert_eq!(registry_glob("*.example.com/*"), "*.example.com/*");
    }
}
