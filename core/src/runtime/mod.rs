//! What a container runtime is given: the OCI runtime spec for runc and crun, and the
//! container's capability set. Pure functions of their inputs; `ct run` supplies this host's
//! limits and capabilities and writes the result.

pub mod caps;
pub mod spec;
