//! `ct diff OLD NEW [--layers|--config|--signers|--attestations|--files] [--json]`: both bundles
//! opened verified from the store (`steps::stored`), then core's `diff` — layers, the image
//! config's settings, signers, attestations with the SBOMs' package changes, and the file-level
//! difference of the two Merkle DAGs — shown as sections or JSON.

use super::Ctx;
use crate::app::{BundleSource, DiffArgs};
use crate::exit::{CmdResult, Failure, HASH_MISMATCH};
use crate::steps::stored::{open_bundle, Checks, Opened};
use cerro_core::diff::{
    self, AttestationDiff, ConfigChange, FileChange, LayerDiff, SignerDiff, TreeDiff,
};
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
    attestations: Option<AttestationDiff>,
    #[serde(skip_serializing_if = "Option::is_none")]
    files: Option<TreeDiff>,
}

pub fn run(ctx: &Ctx, a: DiffArgs) -> CmdResult<u8> {
    let all = !(a.layers || a.config || a.signers || a.files || a.attestations);
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
    if all || a.attestations {
        r.attestations = Some(attestations(&old, &new)?);
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

/// Attestation kinds added, removed and changed; the SBOMs' packages when both have one.
fn attestations(old: &Opened, new: &Opened) -> CmdResult<AttestationDiff> {
    let (ao, an) = (
        &old.bundle.manifest().attestations,
        &new.bundle.manifest().attestations,
    );
    let find = |list: &[cerro_core::manifest::Attestation], k: &str| {
        list.iter().find(|a| a.kind == k).cloned()
    };
    let mut d = AttestationDiff::default();
    for a in an {
        match find(ao, &a.kind) {
            None => d.added.push(a.kind.clone()),
            Some(o) if o.digest != a.digest => d.changed.push(a.kind.clone()),
            Some(_) => {}
        }
    }
    d.removed = ao
        .iter()
        .filter(|a| find(an, &a.kind).is_none())
        .map(|a| a.kind.clone())
        .collect();
    if let (Some(so), Some(sn)) = (find(ao, "sbom"), find(an, "sbom")) {
        let read = |o: &Opened, a: &cerro_core::manifest::Attestation| -> CmdResult<_> {
            let body = stored_blob(o, &a.digest, a.size, "SBOM")?;
            cerro_core::sbom::package_versions(&body)
                .map_err(|e| Failure::malformed(format!("bundle {}: SBOM: {e}", o.label())))
        };
        d.packages = Some(diff::packages(&read(old, &so)?, &read(new, &sn)?));
    }
    if let (Some(po), Some(pn)) = (find(ao, "provenance"), find(an, "provenance")) {
        let read = |o: &Opened, a: &cerro_core::manifest::Attestation| -> CmdResult<_> {
            let body = stored_blob(o, &a.digest, a.size, "provenance")?;
            cerro_core::provenance::open(&body)
                .map(|p| p.summary())
                .map_err(|e| Failure::malformed(format!("bundle {}: provenance: {e}", o.label())))
        };
        d.provenance = Some(diff::provenance(&read(old, &po)?, &read(new, &pn)?));
    }
    Ok(d)
}

/// A blob of the bundle from the store, checked against its signed digest and size.
fn stored_blob(o: &Opened, digest: &Sha256Digest, size: u64, what: &str) -> CmdResult<Vec<u8>> {
    let mut bytes = Vec::new();
    o.store
        .open_blob(digest, size)
        .and_then(|f| f.take(JSON_BLOB_MAX_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| Failure::io(format!("reading the {what} {digest}"), e))?;
    if bytes.len() as u64 != size || Sha256Digest::of(&bytes) != *digest {
        return Err(Failure::new(
            HASH_MISMATCH,
            format!(
                "bundle {}: the stored {what} is not {digest} ({} bytes)",
                o.label(),
                bytes.len()
            ),
        )
        .hint("run `ct store fsck`, then import the bundle again"));
    }
    Ok(bytes)
}

/// The image config's run settings, read from the store and checked against the signed digest.
fn run_defaults(o: &Opened) -> CmdResult<RunDefaults> {
    let d = &o.bundle.manifest().config;
    let bytes = stored_blob(o, &d.digest, d.size, "image config")?;
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
    if let Some(at) = &r.attestations {
        o.line(format!(
            "attestations: {}",
            if at.added.is_empty() && at.removed.is_empty() && at.changed.is_empty() {
                "the same kinds, the same documents".to_string()
            } else {
                format!(
                    "added [{}], removed [{}], changed [{}]",
                    at.added.join(", "),
                    at.removed.join(", "),
                    at.changed.join(", ")
                )
            }
        ));
        if let Some(p) = &at.packages {
            for x in &p.removed {
                o.line(format!(
                    "  - package {}",
                    cerro_core::text::show_text(x, 200)
                ));
            }
            for x in &p.added {
                o.line(format!(
                    "  + package {}",
                    cerro_core::text::show_text(x, 200)
                ));
            }
            for x in &p.changed {
                o.line(format!(
                    "  ~ package {}",
                    cerro_core::text::show_text(x, 200)
                ));
            }
        }
        for c in at.provenance.iter().flatten() {
            o.line(format!(
                "  ~ provenance {}: {} → {}",
                c.field,
                cerro_core::text::show_text(&c.old, 200),
                cerro_core::text::show_text(&c.new, 200)
            ));
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
