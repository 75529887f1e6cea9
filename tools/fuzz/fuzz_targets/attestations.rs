//! Fuzz target: the supply-chain documents ct reads from untrusted places (the first byte picks
//! the decoder): 0 a provenance DSSE envelope from a bundle (`provenance::open`, then what
//! `ct explain`/`ct diff` read of it), 1 an SBOM from a bundle (`sbom::summary`,
//! `package_versions`), 2 a referrers index a registry holds at the tag schema's tag, merged with
//! one referrer (`merge_referrers_index`), 3 an index file (`index::Index::parse`, then a search).
//! Invariant: errors are fine, panics are bugs; a merged referrers index is an OCI image index
//! that lists the added referrer (once, unless the registry's index listed it already).
#![no_main]

use cerro_core::index::{search, Index, Query};
use cerro_core::registry::artifact::{merge_referrers_index, Referrer, OCI_INDEX};
use cerro_core::{provenance, sbom, Sha256Digest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok(p) = provenance::open(body) {
                assert!(!p.signatures.is_empty());
                let _ = p.summary();
                let _ = p.is_about(&Sha256Digest::of(b"image"));
            }
        }
        1 => {
            let _ = sbom::summary(body);
            let _ = sbom::package_versions(body);
        }
        2 => {
            let added = Referrer {
                digest: Sha256Digest::of(b"referrer"),
                size: 8,
                artifact_type: "application/spdx+json".into(),
                annotations: Default::default(),
            };
            let merged = merge_referrers_index(Some(body), std::slice::from_ref(&added));
            let v: serde_json::Value = serde_json::from_slice(&merged).expect("the index is JSON");
            assert_eq!(v["mediaType"], OCI_INDEX);
            let want = added.digest.to_string();
            let listed = v["manifests"]
                .as_array()
                .expect("a manifests list")
                .iter()
                .filter(|m| m["digest"].as_str() == Some(want.as_str()))
                .count();
            assert!(listed >= 1, "the added referrer is listed");
        }
        _ => {
            if let Ok(i) = Index::parse(body) {
                let _ = search(std::slice::from_ref(&i), &Query::default());
            }
        }
    }
});
