//! `bundle::assemble::write_and_scan` on the bundle vector: the bytes written are the vector's,
//! byte for byte, and what the second thread read back is the same bundle with the file's digest.

use cerro_core::bundle::assemble::{write_and_scan, AssembleError};
use cerro_core::bundle::file::BundleFile;
use cerro_core::bundle::BundleContents;
use cerro_core::digest::hash_reader;
use std::path::Path;

fn vector() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors/bundle/hello.ctp")
}

#[test]
fn the_vector_is_rewritten_byte_for_byte_and_read_back_with_its_digest() {
    let bf = BundleFile::open(&vector()).unwrap();
    let sigs = bf.signature_files().unwrap();
    let contents = BundleContents {
        manifest: bf.manifest(),
        manifest_bytes: bf.manifest_bytes(),
        signatures: &sigs,
    };
    let mut out = Vec::new();
    let mut seen = 0u64;
    let (raw, digest) =
        write_and_scan(&mut out, &contents, &mut &bf, &mut |n| seen += n, true).unwrap();
    let original = std::fs::read(vector()).unwrap();
    assert_eq!(out, original);
    let (want, _) = hash_reader(original.as_slice()).unwrap();
    assert_eq!(digest, Some(want));
    assert_eq!(raw.manifest.as_deref(), Some(bf.manifest_bytes()));
    assert!(seen > 0, "progress was reported");
}

#[test]
fn a_blob_source_that_lies_stops_the_writer_and_the_scanner_ends() {
    let bf = BundleFile::open(&vector()).unwrap();
    let sigs = bf.signature_files().unwrap();
    let contents = BundleContents {
        manifest: bf.manifest(),
        manifest_bytes: bf.manifest_bytes(),
        signatures: &sigs,
    };
    // Blobs from a source that holds nothing: the writer fails, and the call returns (the
    // scanner thread sees the end of the stream instead of waiting forever).
    struct Empty;
    impl cerro_core::bundle::BlobSource for Empty {
        fn open_blob(
            &mut self,
            d: &cerro_core::Sha256Digest,
            _size: u64,
        ) -> Result<Box<dyn std::io::Read + Send + '_>, cerro_core::bundle::BundleError> {
            Err(cerro_core::bundle::BundleError::io(
                format!("blob {d}"),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ))
        }
    }
    let r = write_and_scan(Vec::new(), &contents, &mut Empty, &mut |_| {}, false);
    assert!(matches!(r, Err(AssembleError::Write(_))), "{r:?}");
}
