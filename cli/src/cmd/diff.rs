//! `ct diff OLD NEW [--layers|--config|--signers|--files] [--json]`: both bundles opened verified
//! from the store (`steps::stored`), then core's `diff` — layers, the image config's settings,
//! signers, and the file-level difference of the two Merkle DAGs — shown as sections or JSON.

use super::Ctx;
use crate::app::{BundleSource, DiffArgs};
use crate::exit::{CmdResult, Failure, HASH_MISMATCH};
use crate::steps::stored::{open_bundle, Checks, Opened};
use cerro_core::diff::{self, ConfigChange, FileChange, LayerDiff, SignerDiff, TreeDiff};
use cerro_core::rootfs::VerifiedTree;
use cerro_core::source::config::RunDefaults;
use cerro_core::source::JSON_BLOB_MAX_BYTES;
use cerro_core::Sha256Digest;
use serde::Serialize;
use std::io::Read;

#[derive(Serialize, Default)]
struct Report {
    ok: bool,
    old: String,
    new: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    layers: Option<LayerDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<Vec<ConfigChange>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signers: Option<SignerDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<TreeDiff>,
}

pub fn run(ctx: &Ctx, a: DiffArgs) -> CmdResult<u8> {
    let all = !(a.layers || a.config || a.signers || a.files);
    let checks = Checks::load(ctx, a.policy.as_deref(), false)?;
    let open = |arg: &str| {
        let src = BundleSource {
            bundle: arg.to_string(),
            name: None,
            policy: a.policy.clone(),
        };
        open_bundle(ctx, &src, &checks, "diff", "compared")
    };
    let (old, new) = (open(&a.old)?, open(&a.new)?);
    let (mo, mn) = (old.bundle.manifest(), new.bundle.manifest());
    let mut r = Report {
        ok: true,
        old: format!(
            "{} {} ({})",
            old.label(),
            mo.package.version,
            old.bundle.digest()
        ),
        new: format!(
            "{} {} ({})",
            new.label(),
            mn.package.version,
            new.bundle.digest()
        ),
        ..Default::default()
    };
    if all || a.layers {
        r.layers = Some(diff::layers(mo, mn));
    }
    if all || a.config {
        r.config = Some(diff::config(&run_defaults(&old)?, &run_defaults(&new)?));
    }
    if all || a.signers {
        r.signers = Some(diff::signers(&signers_of(&old), &signers_of(&new)));
    }
    if all || a.files {
        let t = diff::trees(
            (
                &VerifiedTree::new(old.store.clone()),
                &old.bundle.subject().root,
            ),
            (
                &VerifiedTree::new(new.store.clone()),
                &new.bundle.subject().root,
            ),
        )
        .map_err(|e| {
            Failure::new(HASH_MISMATCH, format!("bundle {}: {e}", new.label()))
                .hint("run `ct store fsck`, then import the damaged bundle again")
        })?;
        r.files = Some(t);
    }
    if ctx.out.json {
        ctx.out.json_doc(&r);
    } else {
        print(ctx, &r);
    }
    Ok(0)
}

/// The image config's run settings, read from the store and checked against the signed digest.
fn run_defaults(o: &Opened) -> CmdResult<RunDefaults> {
    let d = &o.bundle.manifest().config;
    let mut bytes = Vec::new();
    o.store
        .open_blob(&d.digest, d.size)
        .and_then(|f| f.take(JSON_BLOB_MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| Failure::io(format!("reading the image config {}", d.digest), e))?;
    if bytes.len() as u64 != d.size || Sha256Digest::of(&bytes) != d.digest {
        return Err(Failure::new(
            HASH_MISMATCH,
            format!(
                "bundle {}: the stored image config is not {} ({} bytes)",
                o.label(),
                d.digest,
                bytes.len()
            ),
        )
        .hint("run `ct store fsck`, then import the bundle again"));
    }
    RunDefaults::parse(&bytes)
        .map_err(|e| Failure::malformed(format!("bundle {}: image config: {e}", o.label())))
}

/// The valid, trusted signers: trust-store name and fingerprint.
fn signers_of(o: &Opened) -> Vec<String> {
    o.bundle
        .report()
        .signatures
        .iter()
        .filter(|s| s.valid && s.trusted)
        .map(|s| {
            let name = s
                .trusted_as
                .as_ref()
                .map_or(s.key_id.clone(), |k| k.to_string());
            match &s.fingerprint {
                Some(f) => format!("{name} ({f})"),
                None => name,
            }
        })
        .collect()
}

fn print(ctx: &Ctx, r: &Report) {
    let o = &ctx.out;
    o.line(format!("--- {}\n+++ {}", r.old, r.new));
    if let Some(l) = &r.layers {
        o.line(format!("layers: {} kept", l.kept));
        for d in &l.removed {
            o.line(format!("  - {} ({} bytes)", d.digest, d.size));
        }
        for d in &l.added {
            o.line(format!("  + {} ({} bytes)", d.digest, d.size));
        }
    }
    if let Some(c) = &r.config {
        o.line(if c.is_empty() {
            "config: the same".to_string()
        } else {
            "config:".to_string()
        });
        let show = |v: &Option<String>| {
            v.as_deref().map_or("(none)".to_string(), |s| {
                cerro_core::text::show_text(s, 200)
            })
        };
        for ch in c {
            o.line(format!(
                "  {}: {} → {}",
                ch.field,
                show(&ch.old),
                show(&ch.new)
            ));
        }
    }
    if let Some(s) = &r.signers {
        o.line(format!("signers: {} kept", s.kept.len()));
        for k in &s.removed {
            o.line(format!("  - {k}"));
        }
        for k in &s.added {
            o.line(format!("  + {k}"));
        }
    }
    if let Some(t) = &r.files {
        o.line(format!(
            "files: {} changes ({} directory pairs read)",
            t.changes.len(),
            t.dirs_compared
        ));
        for ch in &t.changes {
            o.line(match ch {
                FileChange::Added { path, kind } => format!("  + {path} ({kind})"),
                FileChange::Removed { path, kind } => format!("  - {path} ({kind})"),
                FileChange::Changed { path, what } => format!("  ~ {path} ({})", what.join(", ")),
            });
        }
    }
}
