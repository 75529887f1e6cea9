//! Formats a registry speaks, decoded without any HTTP: the Cerro artifact that carries a
//! bundle's own files (spec/registry.md §2) and the answers registries and token services give.
//! Every decoder here takes untrusted bytes and has a fuzz target (`tools/fuzz`).

pub mod answers;
pub mod artifact;
