//! The OCI distribution API, for `ct push`, `ct fetch` and `ct pack docker://…`: references,
//! authentication, an HTTP client with retries (`client`), blob uploads and downloads, manifests
//! and referrers, the Cerro artifact that carries a bundle's own files, and a registry image
//! source. HTTP lives here, in the binary, never in `core`.

pub mod artifact;
pub mod auth;
pub mod client;
pub mod download;
#[cfg(test)]
pub mod fake;
pub mod manifests;
pub mod progress;
pub mod reference;
pub mod source;
pub mod transport;
pub mod upload;

pub use client::{Client, RegistryOptions};
pub use reference::Reference;

impl From<&crate::app::RegistryArgs> for RegistryOptions {
    fn from(a: &crate::app::RegistryArgs) -> Self {
        Self {
            creds: a.creds.clone(),
            authfile: a.authfile.clone(),
            tls_verify: a.tls_verify,
            cert_dir: a.cert_dir.clone(),
        }
    }
}
