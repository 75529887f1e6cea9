//! Cerro Torre's read-only, verifying FUSE filesystem (DESIGN §5). Not written yet: it arrives
//! with the mount issue, reading through the verified-tree trait that `core` will define. This
//! crate exports nothing until then, so nothing can mistake it for a working mount.
#![forbid(unsafe_code)]
