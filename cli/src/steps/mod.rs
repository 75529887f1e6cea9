//! The steps commands are made of, each written once: open the store and a bundle in it
//! (`stored`), load the policy and verify a file (`verify`), import (`import`), assemble an OCI
//! image from verified parts (`assemble`), key validity windows (`validity`), sign (`sign`), and
//! mount-and-serve (`serve`) and keep a mount served across serving processes (`supervise`), the one-line report a background `ct` gives its starter
//! (`report`), and OSTree repository errors as exit codes (`ostree`). Commands in `cmd/` call these and never each other.

pub mod assemble;
pub mod import;
pub mod ostree;
pub mod report;
pub mod serve;
pub mod sign;
pub mod stored;
pub mod supervise;
pub mod validity;
pub mod verify;
