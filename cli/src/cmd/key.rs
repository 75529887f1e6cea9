//! `ct keygen` and `ct key list|import|export|default|remove`: the secret keys you hold and the
//! public keys you trust. Nothing is written when a command fails.

use super::Ctx;
use crate::app::{KeyCmd, KeygenArgs};
use crate::config::{ensure_dir, write_atomic, KEYS_DIR, TRUST_DIR};
use crate::exit::{CmdResult, Failure};
use crate::passphrase;
use cerro_core::keys::{self, PublicKeyFile};
use cerro_core::KeyId;
use serde::Serialize;
use std::path::Path;

fn key_id(s: &str) -> CmdResult<KeyId> {
    KeyId::new(s).map_err(|e| Failure::usage(e.to_string()))
}

pub fn keygen(ctx: &Ctx, a: KeygenArgs) -> CmdResult {
    let id = key_id(&a.id)?;
    let (sk_path, pk_path) = (ctx.cfg.secret_key_path(&id), ctx.cfg.public_key_path(&id));
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
    let pass = passphrase::obtain(
        a.passphrase.passphrase_file.as_deref(),
        &format!("new key {id}"),
        true,
    )?;
    if pass.is_empty() {
        return Err(Failure::usage(
            "the passphrase is empty; a secret key is never stored unencrypted",
        ));
    }
    let (sk, pk) = keys::generate(id.clone(), &pass)?;
    ensure_dir(&ctx.cfg.dir, 0o700)?;
    ensure_dir(&ctx.cfg.dir.join(KEYS_DIR), 0o700)?;
    ensure_dir(&ctx.cfg.dir.join(TRUST_DIR), 0o755)?;
    write_atomic(&sk_path, &sk.encode(), 0o600)?;
    if let Err(e) = write_atomic(&pk_path, &pk.encode(), 0o644) {
        let _ = std::fs::remove_file(&sk_path);
        return Err(e);
    }
    let mut cfg_changed = false;
    if ctx.cfg.file.default_key.is_none() {
        let mut cfg = crate::config::Config {
            dir: ctx.cfg.dir.clone(),
            file: ctx.cfg.file.clone(),
        };
        cfg.file.default_key = Some(id.to_string());
        cfg.save()?;
        cfg_changed = true;
    }
    #[derive(Serialize)]
    struct Out<'a> {
        ok: bool,
        key_id: &'a KeyId,
        suite: &'a str,
        fingerprint: String,
        secret_key: String,
        public_key: String,
        default: bool,
    }
    let o = Out {
        ok: true,
        key_id: &id,
        suite: &pk.suite,
        fingerprint: pk.fingerprint.to_string(),
        secret_key: sk_path.display().to_string(),
        public_key: pk_path.display().to_string(),
        default: cfg_changed,
    };
    ctx.out.json_doc(&o);
    ctx.out.line(format!(
        "{} key {} ({}, Ed25519)",
        ctx.out.good("created"),
        ctx.out.bold(id.as_str()),
        pk.suite
    ));
    ctx.out.line(format!("  fingerprint  {}", pk.fingerprint));
    ctx.out.line(format!(
        "  secret key   {} (0600, passphrase-encrypted)",
        sk_path.display()
    ));
    ctx.out
        .line(format!("  public key   {} (trusted)", pk_path.display()));
    if cfg_changed {
        ctx.out.line("  it is now the default signing key");
    }
    ctx.out.line(format!(
        "Share the public key with `ct key export {id} --public -o {id}.pub`."
    ));
    Ok(())
}

#[derive(Serialize)]
struct KeyRow {
    key_id: String,
    fingerprint: String,
    suite: String,
    trusted: bool,
    secret: bool,
    default: bool,
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
        .map(|k| KeyRow {
            key_id: k.key_id.to_string(),
            fingerprint: k.fingerprint.to_string(),
            suite: k.suite.clone(),
            trusted: true,
            secret: ctx.cfg.secret_key_path(&k.key_id).exists(),
            default: ctx.cfg.file.default_key.as_deref() == Some(k.key_id.as_str()),
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
                rows.push(KeyRow {
                    key_id: n.clone(),
                    fingerprint: sk.fingerprint.to_string(),
                    suite: sk.suite,
                    trusted: false,
                    secret: true,
                    default: ctx.cfg.file.default_key.as_deref() == Some(n.as_str()),
                });
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
        ctx.out.line(format!(
            "{:<20} {}  {}  [{}]",
            r.key_id,
            r.fingerprint,
            r.suite,
            flags.join(", ")
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
    ctx.out.json_doc(&serde_json::json!({"ok": true, "key_id": pk.key_id, "fingerprint": pk.fingerprint, "path": dest}));
    ctx.out.line(format!(
        "{} key {} — fingerprint {}",
        ctx.out.good("trusted"),
        ctx.out.bold(pk.key_id.as_str()),
        pk.fingerprint
    ));
    ctx.out
        .line("Check this fingerprint with the key's owner over a channel you trust.");
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
            ctx.out.json_doc(&serde_json::json!({"ok": true, "key_id": pk.key_id, "fingerprint": pk.fingerprint, "path": p}));
            ctx.out.line(format!(
                "wrote public key {} ({}) to {}",
                pk.key_id,
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
    let mut cfg = crate::config::Config {
        dir: ctx.cfg.dir.clone(),
        file: ctx.cfg.file.clone(),
    };
    cfg.file.default_key = Some(id.to_string());
    cfg.save()?;
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
            let mut cfg = crate::config::Config {
                dir: ctx.cfg.dir.clone(),
                file: ctx.cfg.file.clone(),
            };
            cfg.file.default_key = None;
            cfg.save()?;
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
