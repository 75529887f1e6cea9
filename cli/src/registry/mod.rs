//! The command line's side of the registry library (`cerro_registry`): the `--creds`,
//! `--authfile`, `--tls-verify`, `--cert-dir` flags as its options, and per-blob progress lines
//! drawn for its transfers. Registry errors become exit codes in `exit.rs`.

pub mod progress;

pub use cerro_registry::RegistryOptions;

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
