//! Cerro Torre core: formats and crypto (digests, canonical manifest, bundle reader/writer,
//! keys, signatures, trust policy). No I/O frameworks; callers pass readers and writers.

pub mod archive;
pub mod bundle;
pub mod diff;
pub mod digest;
pub mod export;
pub mod ids;
pub mod index;
pub mod keys;
pub mod manifest;
pub mod mldsa;
pub mod pack;
pub mod policy;
pub mod provenance;
pub mod registry;
pub mod rootfs;
pub mod runtime;
pub mod sbom;
pub mod sign;
pub mod signature_set;
pub mod source;
pub mod text;
pub mod verified;
pub mod verify;
pub mod window;

pub use digest::Sha256Digest;
pub use ids::{Fingerprint, KeyId};
pub use signature_set::SignatureSet;
