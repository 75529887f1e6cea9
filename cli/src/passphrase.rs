//! Where a passphrase comes from: `--passphrase-file`, then `CT_PASSPHRASE`, then a prompt on a
//! terminal. Never from a command-line argument (it would show in `ps`). `CT_PASSPHRASE` is
//! taken out of ct's environment as the process starts ([`take_from_env`]), so no child ct
//! starts — the mount daemon, container runtimes, tools — inherits it.

use crate::exit::{CmdResult, Failure};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::OnceLock;
use zeroize::Zeroizing;

pub const ENV: &str = "CT_PASSPHRASE";

/// `CT_PASSPHRASE` as it was when ct started.
static FROM_ENV: OnceLock<Option<Zeroizing<Vec<u8>>>> = OnceLock::new();

/// Move `CT_PASSPHRASE` from the environment into this process's memory. Called first thing in
/// `main`, while ct is still single-threaded (changing the environment is only sound then).
pub fn take_from_env() {
    let v = std::env::var_os(ENV).map(|p| Zeroizing::new(p.into_encoded_bytes()));
    if v.is_some() {
        std::env::remove_var(ENV);
    }
    let _ = FROM_ENV.set(v);
}

/// Get a passphrase; `confirm` asks twice on a terminal (for new keys).
pub fn obtain(file: Option<&Path>, purpose: &str, confirm: bool) -> CmdResult<Zeroizing<Vec<u8>>> {
    if let Some(f) = file {
        let mut v = std::fs::read(f)
            .map_err(|e| Failure::io(format!("reading passphrase file {}", f.display()), e))?;
        if v.last() == Some(&b'\n') {
            v.pop();
            if v.last() == Some(&b'\r') {
                v.pop();
            }
        }
        return Ok(Zeroizing::new(v));
    }
    if let Some(Some(p)) = FROM_ENV.get() {
        return Ok(p.clone());
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("Passphrase for {purpose}: "))
            .map_err(|e| Failure::io("reading the passphrase", e))?;
        if confirm {
            let again = rpassword::prompt_password("Repeat passphrase: ")
                .map_err(|e| Failure::io("reading the passphrase", e))?;
            if again != p {
                return Err(Failure::usage(
                    "the passphrases differ; nothing was written",
                ));
            }
        }
        return Ok(Zeroizing::new(p.into_bytes()));
    }
    Err(Failure::usage(format!(
        "a passphrase is needed for {purpose}, and there is no terminal to ask on"
    ))
    .hint(format!("pass --passphrase-file FILE or set {ENV}")))
}
