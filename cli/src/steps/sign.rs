//! Signing: unlock the signing keys a command names (each refused outside its validity window
//! before its passphrase is asked for), and write a signed bundle file all or nothing.

use super::validity::check_signing;
use crate::ctx::Ctx;
use crate::exit::{CmdResult, Failure};
use crate::output::Progress;
use crate::passphrase;
use cerro_core::bundle::{write_bundle, BlobSource, BundleContents};
use cerro_core::policy::parse_date;
use cerro_core::sign::Signer;
use cerro_core::window::KeyWindow;
use cerro_core::KeyId;
use std::io::{BufWriter, Write};
use std::path::Path;

/// A signing key, unlocked, with its validity window.
pub struct SigningKey {
    pub signer: Signer,
    pub window: KeyWindow,
}

/// Refuse to sign a manifest with a key outside its window, or one created outside it (the
/// signature would be refused by verifiers).
pub fn check_windows(keys: &[SigningKey], created: &str) -> CmdResult {
    let created = parse_date(created);
    for k in keys {
        check_signing(&k.signer.key_id, &k.window, chrono::Utc::now(), created)?;
    }
    Ok(())
}

/// Unlock the signing keys named by `-k` (or the default key). A key whose validity window has
/// ended (or not begun) is refused before its passphrase is asked for.
pub fn signers(
    ctx: &Ctx,
    names: &[String],
    pass_file: Option<&Path>,
) -> CmdResult<Vec<SigningKey>> {
    let names: Vec<String> = if names.is_empty() {
        vec![ctx.cfg.file.default_key.clone().ok_or_else(|| {
            Failure::usage("no signing key: pass -k KEY, or set a default key")
                .hint("create one with `ct keygen --id NAME` (the first key becomes the default)")
        })?]
    } else {
        names.to_vec()
    };
    let mut out: Vec<SigningKey> = Vec::new();
    for n in names {
        let id = KeyId::new(&n).map_err(|e| Failure::usage(e.to_string()))?;
        if out.iter().any(|s| s.signer.key_id == id) {
            continue;
        }
        let sk = ctx.cfg.read_secret_key(&id)?;
        let window = sk.window();
        check_signing(&id, &window, chrono::Utc::now(), None)?;
        let pass = passphrase::obtain(pass_file, &format!("key {id}"), false)?;
        out.push(SigningKey {
            signer: sk.unlock(&pass)?,
            window,
        });
    }
    Ok(out)
}

/// Write a bundle to a temporary file beside `output` and rename it into place once all of it
/// is written and synced; on any failure `output` is untouched. Returns the bundle's size.
pub fn write_bundle_file(
    ctx: &Ctx,
    output: &Path,
    contents: &BundleContents<'_>,
    src: &mut dyn BlobSource,
    label: &str,
) -> CmdResult<u64> {
    // Bundles are not secrets: readable like any file the user creates.
    crate::config::write_file_atomic(output, 0o644, |f| {
        let mut progress = Progress::new(&ctx.out, label, contents.manifest.image_size());
        let w = BufWriter::with_capacity(1 << 20, f);
        let mut w = write_bundle(w, contents, src, &mut |n| progress.update(n))?;
        progress.finish();
        w.flush()
            .map_err(|e| Failure::io(format!("writing {}", output.display()), e))
    })
}
