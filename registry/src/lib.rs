//! Cerro Torre's registry library: the OCI distribution API (references, authentication, an HTTP
//! client with retries, blob uploads and downloads, manifests and referrers), the Cerro artifact
//! that carries a bundle's own files, and the operations built on them — [`push::push`] a signed
//! bundle, [`fetch::RemoteBundle`] to find and download one, [`source::RegistrySource`] to pull a
//! plain image for `ct pack`. HTTP lives here, never in `core` (the dependency points one way:
//! this crate uses core's formats). Errors are typed ([`Error`], [`ErrorKind`]); progress goes
//! through the [`Progress`] trait, so the caller decides what is drawn.

pub mod artifact;
pub mod auth;
pub mod client;
pub mod download;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod fetch;
pub mod manifests;
pub mod progress;
pub mod push;
pub mod reference;
pub mod source;
pub mod transport;
pub mod upload;

#[cfg(test)]
mod tests;

pub use client::{Client, RegistryOptions};
pub use error::{Error, ErrorKind, Result};
pub use progress::{Bar, NoProgress, Progress};
pub use reference::Reference;
