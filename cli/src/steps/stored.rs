//! Reading a bundle out of the store, the one way every command does it (`ct mount`, `ct run`,
//! `ct unpack`, `ct store tree`, the mount daemon): take a lease, resolve the bundle, and get
//! it through `Store::verified`, which re-verifies the record at that moment and yields the
//! `Verified<StoredBundle>` witness that serving code requires.
//!
//! A bundle *file* is served by its own digest, whatever any name says: it is verified as
//! `ct verify` does, imported when the store lacks it (or holds a damaged record of it), and
//! then read back by that digest. A *name* is resolved to a digest under the store lock, with
//! the lease taken in the same step, so `gc` cannot remove it in between.

use super::import::{import_verified, verify_file};
use super::verify::load_policy;
use crate::app::BundleSource;
use crate::cmd::Ctx;
use crate::exit::{CmdResult, Failure, HASH_MISMATCH, IO_ERROR};
use cerro_core::manifest::is_valid_name;
use cerro_core::policy::Policy;
use cerro_core::verified::{StoredBundle, Verified};
use cerro_core::verify::VerifyContext;
use cerro_core::{Fingerprint, KeyId, Sha256Digest};
use cerro_store::import::Downgrade;
use cerro_store::{Lease, RecordError, Store, Target};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Looks a signer's fingerprint up in the trust store.
type TrustLookup = Box<dyn Fn(&Fingerprint) -> Option<KeyId>>;

/// The trust store and policy a record is checked against, loaded once.
pub struct Checks {
    pub policy: Option<(PathBuf, Policy)>,
    trust: TrustLookup,
}

impl Checks {
    /// The trust store, and the policy (`--policy`, else `default_policy`) unless `skip_policy`.
    pub fn load(ctx: &Ctx, policy_arg: Option<&Path>, skip_policy: bool) -> CmdResult<Self> {
        let policy = if skip_policy {
            None
        } else {
            load_policy(ctx, policy_arg)?
        };
        Ok(Self {
            policy,
            trust: Box::new(ctx.cfg.trust_lookup()?),
        })
    }

    /// The verification context, as of now.
    pub fn ctx(&self) -> VerifyContext<'_> {
        VerifyContext {
            trust: &*self.trust,
            policy: self.policy.as_ref().map(|(_, p)| p),
            now: chrono::Utc::now(),
        }
    }
}

/// A verified bundle from the store, with the lease that keeps it there.
pub struct Opened {
    pub store: Arc<Store>,
    /// Held for as long as the bundle is read: `gc` keeps what it covers.
    _lease: Lease,
    pub bundle: Verified<StoredBundle>,
    /// The names that referred to it when it was opened (the one given, for a name).
    pub names: Vec<String>,
}

impl Opened {
    /// How to call it: the name it was reached by, else its package name.
    pub fn label(&self) -> String {
        self.names
            .first()
            .cloned()
            .unwrap_or_else(|| self.bundle.manifest().package.name.clone())
    }

    /// The store and the lease, for whoever serves the bundle from here on.
    pub fn into_store_and_lease(self) -> (Arc<Store>, Lease) {
        (self.store, self._lease)
    }
}

/// A record that cannot be served, as a failure with the verification's exit code.
pub fn record_failure(e: RecordError) -> Failure {
    match e {
        RecordError::Store(s) => s.into(),
        RecordError::Missing(d) => Failure::new(
            HASH_MISMATCH,
            format!("the store has no record of bundle {d}"),
        )
        .hint("import the bundle again (`ct import BUNDLE.ctp`); `ct store fsck` checks the store"),
        RecordError::Refused(rep) => match rep.failure {
            Some(f) => Failure::new(f.exit_code, f.message).hint(f.hint),
            None => Failure::new(IO_ERROR, "the store record was refused"),
        },
        e @ RecordError::NotLeased(_) => Failure::new(IO_ERROR, e.to_string()),
    }
}

/// Open the store (created when missing) holding its lock in `mode`.
pub fn open_store(ctx: &Ctx, mode: cerro_store::LockMode) -> CmdResult<Store> {
    Store::open(&ctx.store, mode).map_err(|e| store_failure(ctx, e))
}

/// Every valid name in the store and the bundle digest it points at, sorted by name (a name the
/// database holds in a form ct refuses is left out, with a warning). No store: none.
pub fn names(ctx: &Ctx) -> CmdResult<Vec<(String, Sha256Digest)>> {
    if !ctx.store.join("db").join("CURRENT").exists() {
        return Ok(vec![]);
    }
    let s = open_store(ctx, cerro_store::LockMode::Shared)?;
    let mut out = Vec::new();
    for (key, r) in s.names().map_err(|e| store_failure(ctx, e))? {
        match (cerro_store::db::names::valid_name(&key), r) {
            (Ok(n), Ok(r)) => out.push((n.to_string(), r.digest)),
            (_, Err(e)) | (Err(e), _) => eprintln!(
                "{} skipped {}: {e}",
                ctx.out.warn("warning:"),
                cerro_store::shown(&key)
            ),
        }
    }
    out.sort();
    Ok(out)
}

fn store_failure(ctx: &Ctx, e: cerro_store::StoreError) -> Failure {
    Failure::from(e).context(format!("store {}", ctx.store.display()))
}

/// What a BUNDLE|NAME argument means.
pub enum Source<'a> {
    File(&'a Path),
    Name(&'a str),
    Digest(Sha256Digest),
}

/// Classify `arg`: an existing file, a bundle digest (`sha256:HEX`), or a valid name.
pub fn classify(arg: &str) -> CmdResult<Source<'_>> {
    let p = Path::new(arg);
    if p.is_file() {
        return Ok(Source::File(p));
    }
    if arg.starts_with("sha256:") {
        return arg.parse().map(Source::Digest).map_err(|_| {
            Failure::usage(format!(
                "{arg:?} is not a bundle digest (sha256: and 64 hex digits)"
            ))
        });
    }
    if !is_valid_name(arg) {
        return Err(Failure::usage(format!(
            "{arg} is not a bundle file (and not a bundle name in the store)"
        ))
        .hint("check the path, or see `ct store ls` for the names in the store"));
    }
    Ok(Source::Name(arg))
}

/// Open the bundle `src` names for reading, verified against `checks` now. `purpose` labels
/// the lease (shown to whoever looks at the store); `nothing` ends the message when a file
/// does not verify ("nothing was mounted").
pub fn open_bundle(
    ctx: &Ctx,
    src: &BundleSource,
    checks: &Checks,
    purpose: &str,
    nothing: &str,
) -> CmdResult<Opened> {
    let source = classify(&src.bundle)?;
    if !matches!(source, Source::File(_)) && !ctx.store.join("db").join("CURRENT").exists() {
        return Err(Failure::usage(format!(
            "no bundle {:?}: there is no store at {}",
            src.bundle,
            ctx.store.display()
        ))
        .hint("import a bundle first (`ct import BUNDLE.ctp`), or point --store at your store"));
    }
    let (store, lease, target) = match source {
        Source::File(path) => {
            let (d, lease) = bring_in(ctx, path, src, checks, purpose, nothing)?;
            // A fresh view of the database, which now holds the record; the lease (taken
            // before the import) keeps it.
            let store = Store::open_unlocked(&ctx.store).map_err(|e| store_failure(ctx, e))?;
            (store, lease, Target::Digest(d))
        }
        Source::Name(n) => {
            let (s, l) = Store::open_leased(&ctx.store, purpose, Target::Name(n))
                .map_err(|e| store_failure(ctx, e))?;
            (s, l, Target::Name(n))
        }
        Source::Digest(d) => {
            let (s, l) = Store::open_leased(&ctx.store, purpose, Target::Digest(d))
                .map_err(|e| store_failure(ctx, e))?;
            (s, l, Target::Digest(d))
        }
    };
    let digest = match target {
        Target::Digest(d) => d,
        _ => lease.names()[0].1,
    };
    let bundle = store
        .verified(&lease, &digest, &checks.ctx())
        .map_err(|e| match target {
            Target::Name(n) => record_failure(e).context(format!("bundle {n} in the store")),
            _ => record_failure(e),
        })?;
    let names = match target {
        Target::Name(n) => vec![n.to_string()],
        _ => store.names_of(&digest).map_err(|e| store_failure(ctx, e))?,
    };
    Ok(Opened {
        store: Arc::new(store),
        _lease: lease,
        bundle,
        names,
    })
}

/// A bundle file: verify it, and import it unless the store already holds a record of it that
/// verifies. Answers its digest and a lease on it, taken before the import.
fn bring_in(
    ctx: &Ctx,
    path: &Path,
    src: &BundleSource,
    checks: &Checks,
    purpose: &str,
    nothing: &str,
) -> CmdResult<(Sha256Digest, Lease)> {
    // The file's report is only printed when it fails (stdout may belong to a container).
    let quiet = ctx.with_output(crate::output::Output {
        json: false,
        quiet: ctx.out.quiet || ctx.out.json,
        ..ctx.out.clone()
    });
    let v = match verify_file(&quiet, path, checks.policy.as_ref())? {
        Ok((_, v)) => v,
        Err(code) => {
            return Err(Failure::new(
                code,
                format!("{} did not verify; nothing was {nothing}", path.display()),
            )
            .hint(format!(
                "`ct verify {}` shows the full report",
                path.display()
            )))
        }
    };
    let d = v.digest();
    let (store, lease) = Store::open_leased(&ctx.store, purpose, Target::Digest(d))
        .map_err(|e| store_failure(ctx, e))?;
    let present = store.verified(&lease, &d, &checks.ctx()).is_ok();
    drop(store);
    if !present {
        import_verified(&quiet, path, &v, src.name.as_deref(), Downgrade::KeepName)?;
    }
    Ok((d, lease))
}
