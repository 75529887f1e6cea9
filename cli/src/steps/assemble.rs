//! Reassemble a bundle into a temporary file and verify it in the same pass
//! (`cerro_core::bundle::assemble`: the writer and a reader of the very bytes written), with
//! progress; the caller renames the file into place only when the verdict is good.

use crate::exit::{CmdResult, Failure};
use crate::output::{Output, Progress};
use cerro_core::bundle::assemble::{write_and_scan, AssembleError, CHUNK};
use cerro_core::bundle::{BlobSource, BundleContents, BundleError};
use cerro_core::verify::{verify, VerifyContext, VerifyReport};
use cerro_core::Sha256Digest;
use std::io::BufWriter;
use std::path::Path;

/// A bundle written to a temporary file and the verdict on its bytes.
pub struct Assembled {
    pub file: tempfile::NamedTempFile,
    pub report: VerifyReport,
    pub size: u64,
    /// SHA-256 of the whole bundle file (what `sha256sum` prints for it), when asked for.
    pub file_digest: Option<Sha256Digest>,
}

/// Write the bundle for `contents` (blobs from `src`) into a temporary file in `dir`, verifying
/// it as `ct verify` would with `vctx`; with `file_digest`, also hash the whole file (one more
/// SHA-256 pass, on the verifier's thread). An `Err` means the bundle could not be written at
/// all (the blob source failed, or a blob did not match its digest: exit 1).
pub fn write_verified(
    out: &Output,
    dir: &Path,
    contents: &BundleContents<'_>,
    src: &mut dyn BlobSource,
    vctx: &VerifyContext<'_>,
    label: &str,
    file_digest: bool,
) -> Result<Assembled, WriteError> {
    let tmp = tempfile::Builder::new()
        .prefix(".ct-bundle-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| {
            WriteError::Failure(Failure::io(
                format!("creating a temporary file in {}", dir.display()),
                e,
            ))
        })?;
    let mut progress = Progress::new(out, label, contents.manifest.image_size());
    let scanned = write_and_scan(
        BufWriter::with_capacity(CHUNK, tmp.as_file()),
        contents,
        src,
        &mut |n| progress.update(n),
        file_digest,
    );
    progress.finish();
    let (raw, file_digest) = scanned.map_err(|e| match e {
        AssembleError::Write(e) => WriteError::Bundle(e),
        AssembleError::Rescan(e) => {
            WriteError::Failure(Failure::from(e).context("re-reading the bundle just written"))
        }
    })?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| WriteError::Failure(Failure::io("writing the bundle", e)))?;
    let size = tmp.as_file().metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Assembled {
        file: tmp,
        report: verify(&raw, vctx),
        size,
        file_digest,
    })
}

/// Why a bundle could not be written: the writer's own error (the caller may know better what
/// caused it, e.g. a network failure behind an I/O error), or another failure.
pub enum WriteError {
    Bundle(BundleError),
    Failure(Failure),
}

/// Move a verified bundle into place (readable like any file the user creates).
pub fn persist(a: Assembled, output: &Path) -> CmdResult<()> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(a.file.path(), std::fs::Permissions::from_mode(0o644));
    a.file
        .persist(output)
        .map_err(|e| Failure::io(format!("writing {}", output.display()), e.error))?;
    Ok(())
}
