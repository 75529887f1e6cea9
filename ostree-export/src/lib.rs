//! Writes OSTree repositories from a verified tree (`ct export --format ostree`). Not written
//! yet; it exports nothing until it works.
