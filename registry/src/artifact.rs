//! The Cerro artifact (spec/registry.md §2): its encoding and its parser live in core
//! (`cerro_core::registry::artifact`), with the other decoders of registry answers, so they are
//! fuzzed with core's decoders.

pub use cerro_core::registry::artifact::*;
