//! Where a passphrase comes from: `--passphrase-file`, then `CT_PASSPHRASE`, then a prompt on a
//! terminal. Never from a command-line argument (it would show in `ps`).

use crate::exit::{CmdResult, Failure};
use std::io::IsTerminal;
use std::path::Path;
use zeroize::Zeroizing;

pub const ENV: &str = "CT_PASSPHRASE";

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
    if let Some(p) = std::env::var_os(ENV) {
        return Ok(Zeroizing::new(p.into_encoded_bytes()));
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
