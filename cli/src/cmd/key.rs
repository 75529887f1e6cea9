//! `ct keygen` and `ct key list|import|export|default|remove|rotate`: the secret keys you hold
//! and the public keys you trust, in every suite, with their validity windows. Nothing is
//! written when a command fails.

use super::Ctx;
use crate::app::{KeyCmd, KeygenArgs, RotateArgs};
use crate::config::{ensure_dir, write_atomic, KEYS_DIR, TRUST_DIR};
use crate::exit::{CmdResult, Failure};
use crate::passphrase;
use crate::steps::validity::{parse_when, window_from_args, window_words};
use cerro_core::keys::{self, PublicKeyFile, SecretKeyFile};
use cerro_core::sign::Suite;
use cerro_core::window::KeyWindow;
use cerro_core::KeyId;
use serde::Serialize;
use std::path::{Path, PathBuf};

fn key_id(s: &str) -> CmdResult<KeyId> {
    KeyId::new(s).map_err(|e| Failure::usage(e.to_string()))
}

pub fn keygen(ctx: &Ctx, a: KeygenArgs) -> CmdResult {
    let id = key_id(&a.id)?;
    let now = chrono::Utc::now();
    let window = window_from_args(a.not_before.as_deref(), a.expires.as_deref(), now)?;
    let made = create_key(
        ctx,
        &id,
        a.suite,
        window,
        a.passphrase.passphrase_file.as_deref(),
    )?;
    let mut cfg_changed = false;
    if ctx.cfg.file.default_key.is_none() {
        set_default_key(ctx, Some(&id))?;
        cfg_changed = true;
    }
    ctx.out.json_doc(&KeyOut::new(&made, cfg_changed));
    print_created(ctx, &made, now);
    if cfg_changed {
        ctx.out.line("  it is now the default signing key");
    }
    ctx.out.line(format!(
        "Share the public key with `ct key export {id} --public -o {id}.pub`."
    ));
    Ok(())
}

/// A key just written: its files and public half.
struct Created {
    public: PublicKeyFile,
    secret_path: PathBuf,
    public_path: PathBuf,
}

/// What `ct keygen --json` and `ct key rotate --json` say about a new key.
#[derive(Serialize)]
struct KeyOut {
    ok: bool,
    key_id: KeyId,
    suite: String,
    algorithm: &'static str,
    fingerprint: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    secret_key: String,
    public_key: String,
    default: bool,
}

impl KeyOut {
    fn new(c: &Created, default: bool) -> Self {
        Self {
            ok: true,
            key_id: c.public.key_id.clone(),
            suite: c.public.suite.clone(),
            algorithm: c.public.suite().map_or("?", Suite::description),
            fingerprint: c.public.fingerprint.to_string(),
            not_before: c.public.not_before.clone(),
            expires: c.public.expires.clone(),
            secret_key: c.secret_path.display().to_string(),
            public_key: c.public_path.display().to_string(),
            default,
        }
    }
}

fn print_created(ctx: &Ctx, c: &Created, now: chrono::DateTime<chrono::Utc>) {
    let pk = &c.public;
    ctx.out.line(format!(
        "{} key {} ({}, {})",
        ctx.out.good("created"),
        ctx.out.bold(pk.key_id.as_str()),
        pk.suite,
        pk.suite().map_or("?", Suite::description)
    ));
    ctx.out.line(format!("  fingerprint  {}", pk.fingerprint));
    ctx.out.line(format!(
        "  secret key   {} (0600, passphrase-encrypted)",
        c.secret_path.display()
    ));
    ctx.out.line(format!(
        "  public key   {} (trusted)",
        c.public_path.display()
    ));
    let w = pk.window();
    if !w.is_unlimited() {
        ctx.out.line(format!(
            "  validity     {} — its signatures count {w}",
            window_words(&w, now)
        ));
    }
}

/// Make a key pair of `suite` named `id`, write both halves (the secret 0600), trust it.
fn create_key(
    ctx: &Ctx,
    id: &KeyId,
    suite: Suite,
    window: KeyWindow,
    pass_file: Option<&Path>,
) -> CmdResult<Created> {
    let (sk_path, pk_path) = (ctx.cfg.secret_key_path(id), ctx.cfg.public_key_path(id));
    for p in [&sk_path, &pk_path] {
        if p.exists() {
            return Err(Failure::usage(format!(
                "a key named {:?} already exists ({})",
                id.as_str(),
                p.display()
            ))
            .hint(
                "choose another --id, or remove it first with `ct key remove NAME --delete-secret`",
            ));
        }
    }
    let pass = passphrase::obtain(pass_file, &format!("new key {id}"), true)?;
    if pass.is_empty() {
        return Err(Failure::usage(
            "the passphrase is empty; a secret key is never stored unencrypted",
        ));
    }
    let (sk, pk) = keys::generate_key(id.clone(), suite, window, &pass)?;
    ensure_dir(&ctx.cfg.dir, 0o700)?;
    ensure_dir(&ctx.cfg.dir.join(KEYS_DIR), 0o700)?;
    ensure_dir(&ctx.cfg.dir.join(TRUST_DIR), 0o755)?;
    write_atomic(&sk_path, &sk.encode(), 0o600)?;
    if let Err(e) = write_atomic(&pk_path, &pk.encode(), 0o644) {
        let _ = std::fs::remove_file(&sk_path);
        return Err(e);
    }
    Ok(Created {
        public: pk,
        secret_path: sk_path,
        public_path: pk_path,
    })
}

/// Set (or clear) `default_key` in config.toml.
fn set_default_key(ctx: &Ctx, id: Option<&KeyId>) -> CmdResult {
    let mut cfg = crate::config::Config {
        dir: ctx.cfg.dir.clone(),
        file: ctx.cfg.file.clone(),
    };
    cfg.file.default_key = id.map(|i| i.to_string());
    cfg.save()
}

#[derive(Serialize)]
struct KeyRow {
    key_id: String,
    fingerprint: String,
    suite: String,
    algorithm: &'static str,
    trusted: bool,
    secret: bool,
    default: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    not_before: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<String>,
    /// The key's window has ended: ct no longer signs with it, and its signatures count only
    /// for bundles created before the expiry.
    expired: bool,
}

impl KeyRow {
    fn new(
        ctx: &Ctx,
        key_id: &str,
        fingerprint: String,
        suite: &str,
        w: KeyWindow,
        (trusted, secret): (bool, bool),
    ) -> Self {
        let (not_before, expires) = keys::window_fields(&w);
        Self {
            key_id: key_id.to_string(),
            fingerprint,
            suite: suite.to_string(),
            algorithm: Suite::from_id(suite).map_or("?", Suite::description),
            trusted,
            secret,
            default: ctx.cfg.file.default_key.as_deref() == Some(key_id),
            not_before,
            expires,
            expired: w.expires.is_some_and(|e| e <= chrono::Utc::now()),
        }
    }
}

pub fn run(ctx: &Ctx, cmd: KeyCmd) -> CmdResult {
    match cmd {
        KeyCmd::List => list(ctx),
        KeyCmd::Import { file, id } => import(ctx, &file, id.as_deref()),
        KeyCmd::Export {
            name,
            public,
            output,
        } => export(ctx, &name, public, output.as_deref()),
        KeyCmd::Default { name } => set_default(ctx, &name),
        KeyCmd::Rotate(a) => rotate(ctx, a),
        KeyCmd::Remove {
            name,
            delete_secret,
        } => remove(ctx, &name, delete_secret),
    }
}

fn list(ctx: &Ctx) -> CmdResult {
    let trusted = ctx.cfg.trusted_keys()?;
    let mut rows: Vec<KeyRow> = trusted
        .iter()
        .map(|k| {
            let secret = ctx.cfg.secret_key_path(&k.key_id).exists();
            KeyRow::new(
                ctx,
                k.key_id.as_str(),
                k.fingerprint.to_string(),
                &k.suite,
                k.window(),
                (true, secret),
            )
        })
        .collect();
    // Secret keys whose public half is not trusted (removed from the trust store) still show.
    let kd = ctx.cfg.dir.join(KEYS_DIR);
    if let Ok(rd) = std::fs::read_dir(&kd) {
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".key"))
                    .map(str::to_string)
            })
            .collect();
        names.sort();
        for n in names {
            if rows.iter().any(|r| r.key_id == n) {
                continue;
            }
            if let Ok(id) = KeyId::new(&n) {
                let sk = ctx.cfg.read_secret_key(&id)?;
                rows.push(KeyRow::new(
                    ctx,
                    &n,
                    sk.fingerprint.to_string(),
                    &sk.suite,
                    sk.window(),
                    (false, true),
                ));
            }
        }
    }
    ctx.out
        .json_doc(&serde_json::json!({ "ok": true, "config_dir": ctx.cfg.dir, "keys": rows }));
    if rows.is_empty() {
        ctx.out.line(format!(
            "no keys in {} — create one with `ct keygen --id NAME`",
            ctx.cfg.dir.display()
        ));
        return Ok(());
    }
    let now = chrono::Utc::now();
    for r in &rows {
        let mut flags = vec![];
        if r.trusted {
            flags.push("trusted");
        }
        if r.secret {
            flags.push("secret");
        }
        if r.default {
            flags.push("default");
        }
        let w = KeyWindow {
            not_before: r
                .not_before
                .as_deref()
                .and_then(cerro_core::policy::parse_date),
            expires: r
                .expires
                .as_deref()
                .and_then(cerro_core::policy::parse_date),
        };
        ctx.out.line(format!(
            "{:<20} {}  {} ({})  [{}]  {}",
            r.key_id,
            r.fingerprint,
            r.suite,
            r.algorithm,
            flags.join(", "),
            window_words(&w, now)
        ));
    }
    Ok(())
}

fn import(ctx: &Ctx, file: &Path, as_id: Option<&str>) -> CmdResult {
    let bytes =
        std::fs::read(file).map_err(|e| Failure::io(format!("reading {}", file.display()), e))?;
    let mut pk = PublicKeyFile::parse(&bytes).map_err(|e| {
        Failure::from(e)
            .context(file.display())
            .hint("import a public key file written by `ct key export NAME --public`")
    })?;
    if let Some(n) = as_id {
        pk.key_id = key_id(n)?;
    }
    let dest = ctx.cfg.public_key_path(&pk.key_id);
    if let Ok(existing) = std::fs::read(&dest) {
        let existing = PublicKeyFile::parse(&existing)
            .map_err(|e| Failure::from(e).context(dest.display()))?;
        if existing.fingerprint != pk.fingerprint {
            return Err(Failure::usage(format!(
                "a different key is already trusted as {:?} ({})",
                pk.key_id.as_str(),
                existing.fingerprint
            ))
            .hint("import it under another name with --id NAME"));
        }
    }
    if let Some(other) = ctx
        .cfg
        .trusted_keys()?
        .into_iter()
        .find(|k| k.fingerprint == pk.fingerprint && k.key_id != pk.key_id)
    {
        return Err(Failure::usage(format!(
            "this key ({}) is already trusted as {:?}",
            pk.fingerprint,
            other.key_id.as_str()
        )));
    }
    ensure_dir(&ctx.cfg.dir.join(TRUST_DIR), 0o755)?;
    write_atomic(&dest, &pk.encode(), 0o644)?;
    let w = pk.window();
    ctx.out.json_doc(
        &serde_json::json!({"ok": true, "key_id": pk.key_id, "suite": pk.suite,
        "algorithm": pk.suite().map_or("?", Suite::description), "fingerprint": pk.fingerprint,
        "not_before": pk.not_before, "expires": pk.expires, "path": dest}),
    );
    ctx.out.line(format!(
        "{} key {} ({}, {}) — fingerprint {}",
        ctx.out.good("trusted"),
        ctx.out.bold(pk.key_id.as_str()),
        pk.suite,
        pk.suite().map_or("?", Suite::description),
        pk.fingerprint
    ));
    if !w.is_unlimited() {
        ctx.out.line(format!(
            "  its signatures count {w} ({})",
            window_words(&w, chrono::Utc::now())
        ));
    }
    ctx.out.line(
        "Check this fingerprint (and validity) with the key's owner over a channel you trust.",
    );
    Ok(())
}

fn find_public(ctx: &Ctx, id: &KeyId) -> CmdResult<PublicKeyFile> {
    let p = ctx.cfg.public_key_path(id);
    match std::fs::read(&p) {
        Ok(b) => PublicKeyFile::parse(&b).map_err(|e| Failure::from(e).context(p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(ctx.cfg.read_secret_key(id)?.public())
        }
        Err(e) => Err(Failure::io(format!("reading {}", p.display()), e)),
    }
}

fn export(ctx: &Ctx, name: &str, public: bool, output: Option<&Path>) -> CmdResult {
    if !public {
        return Err(Failure::usage(
            "only public keys can be exported; pass --public",
        ));
    }
    let pk = find_public(ctx, &key_id(name)?)?;
    match output {
        Some(p) => {
            write_atomic(p, &pk.encode(), 0o644)?;
            ctx.out.json_doc(
                &serde_json::json!({"ok": true, "key_id": pk.key_id, "suite": pk.suite,
                "fingerprint": pk.fingerprint, "not_before": pk.not_before, "expires": pk.expires,
                "path": p}),
            );
            ctx.out.line(format!(
                "wrote public key {} ({}, {}) to {}",
                pk.key_id,
                pk.suite,
                pk.fingerprint,
                p.display()
            ));
        }
        None => {
            use std::io::Write;
            if ctx.out.json {
                ctx.out.json_doc(&pk);
            } else {
                let _ = std::io::stdout().write_all(&pk.encode());
            }
        }
    }
    Ok(())
}

fn set_default(ctx: &Ctx, name: &str) -> CmdResult {
    let id = key_id(name)?;
    let sk = ctx.cfg.read_secret_key(&id)?;
    set_default_key(ctx, Some(&id))?;
    ctx.out.json_doc(
        &serde_json::json!({"ok": true, "default_key": id, "fingerprint": sk.fingerprint}),
    );
    ctx.out.line(format!(
        "default signing key is now {id} ({})",
        sk.fingerprint
    ));
    Ok(())
}

fn remove(ctx: &Ctx, name: &str, delete_secret: bool) -> CmdResult {
    let id = key_id(name)?;
    let pk_path = ctx.cfg.public_key_path(&id);
    let sk_path = ctx.cfg.secret_key_path(&id);
    let (has_pk, has_sk) = (pk_path.exists(), sk_path.exists());
    if !(has_pk || has_sk && delete_secret) {
        return Err(
            Failure::usage(format!("no trusted key named {:?}", id.as_str()))
                .hint("see `ct key list`"),
        );
    }
    if has_pk {
        std::fs::remove_file(&pk_path)
            .map_err(|e| Failure::io(format!("removing {}", pk_path.display()), e))?;
    }
    let mut removed_secret = false;
    if has_sk && delete_secret {
        std::fs::remove_file(&sk_path)
            .map_err(|e| Failure::io(format!("removing {}", sk_path.display()), e))?;
        removed_secret = true;
        if ctx.cfg.file.default_key.as_deref() == Some(id.as_str()) {
            set_default_key(ctx, None)?;
        }
    }
    ctx.out.json_doc(&serde_json::json!({"ok": true, "key_id": id, "untrusted": has_pk, "secret_deleted": removed_secret}));
    if has_pk {
        ctx.out.line(format!("{id} is no longer trusted"));
    }
    if removed_secret {
        ctx.out
            .line(format!("deleted secret key {}", sk_path.display()));
    } else if has_sk {
        ctx.out.line(format!(
            "the secret key {} was kept; add --delete-secret to delete it",
            sk_path.display()
        ));
    }
    Ok(())
}

/// The successor's name: NAME with its trailing number raised (`rel-1` → `rel-2`, `alice` →
/// `alice-2`), skipping names already in use.
fn successor_name(ctx: &Ctx, name: &KeyId) -> CmdResult<KeyId> {
    let s = name.as_str();
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, mut n) = match s[s.len() - digits..].parse::<u64>() {
        Ok(n) if digits > 0 && digits < s.len() => (s[..s.len() - digits].to_string(), n + 1),
        _ => (format!("{s}-"), 2),
    };
    for _ in 0..1000 {
        let candidate = key_id(&format!("{stem}{n}"))?;
        if !ctx.cfg.secret_key_path(&candidate).exists()
            && !ctx.cfg.public_key_path(&candidate).exists()
        {
            return Ok(candidate);
        }
        n += 1;
    }
    Err(Failure::usage(format!("no free successor name for {name}")).hint("name it with --id NEW"))
}

/// `ct key rotate NAME`.
fn rotate(ctx: &Ctx, a: RotateArgs) -> CmdResult {
    let old_id = key_id(&a.name)?;
    let old = ctx.cfg.read_secret_key(&old_id)?;
    let old_fp = old.fingerprint;
    let now = chrono::Utc::now();
    let new_id = match &a.id {
        Some(n) => key_id(n)?,
        None => successor_name(ctx, &old_id)?,
    };
    let suite = match a.suite {
        Some(s) => s,
        None => old.suite().ok_or_else(|| {
            Failure::malformed(format!("key {old_id} has an unknown suite {:?}", old.suite))
        })?,
    };
    let window = window_from_args(None, a.expires.as_deref(), now)?;
    // Check the old key's new expiry before anything is written.
    let old_window = match &a.expire_old {
        Some(w) => {
            let at = parse_when(w, now, "--expire-old")?;
            let mut ow = old.window();
            ow.expires = Some(ow.expires.map_or(at, |e| e.min(at)));
            ow.validate().map_err(|e| {
                Failure::usage(format!("--expire-old would leave {old_id} no window: {e}"))
            })?;
            Some(ow)
        }
        None => None,
    };
    let made = create_key(
        ctx,
        &new_id,
        suite,
        window,
        a.passphrase.passphrase_file.as_deref(),
    )?;
    let was_default = ctx.cfg.file.default_key.as_deref() == Some(old_id.as_str());
    if was_default || ctx.cfg.file.default_key.is_none() {
        set_default_key(ctx, Some(&new_id))?;
    }
    if let Some(ow) = &old_window {
        retire(ctx, &old_id, old, ow)?;
    }
    let mut out = serde_json::to_value(KeyOut::new(&made, was_default)).expect("serializes");
    out["replaces"] = serde_json::json!({
        "key_id": old_id, "fingerprint": old_fp,
        "expires": old_window.and_then(|w| keys::window_fields(&w).1),
    });
    ctx.out.json_doc(&out);
    print_created(ctx, &made, now);
    ctx.out.line(format!("  succeeds     {old_id} ({old_fp})"));
    if was_default {
        ctx.out.line("  it is now the default signing key");
    }
    if let Some(ow) = &old_window {
        ctx.out.line(format!(
            "  {old_id} now counts only {ow} here (secret key and trust store updated)"
        ));
    }
    ctx.out.line("Next:");
    let steps = [
        (
            format!("ct key export {new_id} --public -o {new_id}.pub"),
            "give it to every verifier".to_string(),
        ),
        (
            format!("ct re-sign BUNDLE -k {new_id} --add-signature"),
            format!("co-sign what {old_id} signed; no digest changes"),
        ),
        (
            format!("ct policy add-signer {new_id}"),
            format!("where policies name {old_id}"),
        ),
        (
            format!("ct policy deny {old_id} --after DATE"),
            format!("when {old_id} must stop counting"),
        ),
    ];
    let width = steps.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    for (cmd, why) in steps {
        ctx.out.line(format!("  {cmd:<width$}  # {why}"));
    }
    Ok(())
}

/// Close `id`'s validity window in this configuration: its secret key file and its trust-store
/// entry (the window is not sealed, so no passphrase is needed).
fn retire(ctx: &Ctx, id: &KeyId, mut sk: SecretKeyFile, w: &KeyWindow) -> CmdResult {
    sk.set_window(w);
    write_atomic(&ctx.cfg.secret_key_path(id), &sk.encode(), 0o600)?;
    let pk_path = ctx.cfg.public_key_path(id);
    if let Ok(bytes) = std::fs::read(&pk_path) {
        let mut pk = PublicKeyFile::parse(&bytes)
            .map_err(|e| Failure::from(e).context(pk_path.display()))?;
        if pk.fingerprint == sk.fingerprint {
            pk.set_window(w);
            write_atomic(&pk_path, &pk.encode(), 0o644)?;
        }
    }
    Ok(())
}
