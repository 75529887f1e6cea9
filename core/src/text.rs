//! Showing untrusted bytes (names from images, bundles, registries, the store) to people:
//! control characters and invalid UTF-8 become `\xNN`, so nothing an attacker wrote can move the
//! cursor, recolour or retitle a terminal, or forge log lines; long names are cut to a readable
//! length with the full length said. One rule for every command and log. Also the one hint given
//! with a local I/O failure.

use std::fmt::Write as _;

/// Longest part of an untrusted name quoted in a message, in bytes of the original. A name may
/// be up to 4095 bytes (and a hostile one far longer); messages stay readable.
pub const SHOW_MAX_BYTES: usize = 200;

/// Bytes as text: valid UTF-8 is kept, except `\` (written `\\`), control characters and
/// Unicode bidirectional controls (each byte as `\xNN`); invalid UTF-8 bytes are `\xNN`. The
/// result is unambiguous (it can be turned back into the bytes) and safe on a terminal.
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                c if c.is_control() || is_bidi_control(c) => {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        let _ = write!(s, "\\x{byte:02x}");
                    }
                }
                c => s.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(s, "\\x{byte:02x}");
        }
    }
    s
}

/// Unicode's explicit bidirectional formatting characters (they reorder what a terminal shows,
/// so `abc\u{202e}txt.exe` could display as something else).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// An untrusted name for a message: escaped as [`escape_bytes`] says, in double quotes, and
/// cut after [`SHOW_MAX_BYTES`] bytes with the full length said (`"aaa…" (5000 bytes)`).
pub fn show_name(b: &[u8]) -> String {
    if b.len() <= SHOW_MAX_BYTES {
        return format!("\"{}\"", quoted(b));
    }
    // Cut on a character boundary when the name is UTF-8 there, so no stray `\xNN` appears.
    let mut cut = SHOW_MAX_BYTES;
    for back in 1..4 {
        if b[cut] & 0xc0 != 0x80 {
            break;
        }
        // A continuation byte: step back to the character's start (at most 3 bytes).
        if b[SHOW_MAX_BYTES - back] & 0xc0 != 0x80 {
            cut = SHOW_MAX_BYTES - back;
            break;
        }
    }
    format!("\"{}…\" ({} bytes)", quoted(&b[..cut]), b.len())
}

/// [`escape_bytes`] with `"` escaped too, for text inside double quotes.
fn quoted(b: &[u8]) -> String {
    escape_bytes(b).replace('"', "\\\"")
}

/// Free text from outside (a registry's error message, an image label) for one line of a
/// message: like [`escape_bytes`] but cut to `max` bytes with `…`. Newlines are escaped too, so
/// the text cannot start a line of its own.
pub fn show_text(s: &str, max: usize) -> String {
    let b = s.as_bytes();
    if b.len() <= max {
        return escape_bytes(b);
    }
    let mut cut = max;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", escape_bytes(&b[..cut]))
}

/// Text that ct itself composed around untrusted parts, for the terminal: control characters
/// other than newline and tab are escaped (a last line of defence for messages that quote
/// something unescaped).
pub fn terminal_safe(s: &str) -> String {
    if !s
        .chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c))
    {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c) {
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "\\x{byte:02x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The hint every command gives with a local I/O failure, for its common causes (None: no
/// general advice fits).
pub fn io_hint(e: &std::io::Error) -> Option<&'static str> {
    match e.kind() {
        std::io::ErrorKind::NotFound => Some("check the path"),
        std::io::ErrorKind::PermissionDenied => {
            Some("check the file's permissions, or run as a user who may read it")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_bytes(b"/bin/sh"), "/bin/sh");
        assert_eq!(escape_bytes("/caf\u{e9}".as_bytes()), "/caf\u{e9}");
        assert_eq!(escape_bytes(b"/a\xffb"), "/a\\xffb");
        assert_eq!(escape_bytes(b"/a\\xffb"), "/a\\\\xffb");
        assert_eq!(escape_bytes(b"/tab\there"), "/tab\\x09here");
        assert_eq!(escape_bytes(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape_bytes("\u{85}".as_bytes()), "\\xc2\\x85");
        assert_eq!(escape_bytes("a\u{202e}b".as_bytes()), "a\\xe2\\x80\\xaeb");
    }

    #[test]
    fn long_names_are_cut_with_their_length() {
        let long = vec![b'a'; 5000];
        let s = show_name(&long);
        assert_eq!(s, format!("\"{}…\" (5000 bytes)", "a".repeat(200)));
        assert_eq!(show_name(b"x\ny"), "\"x\\x0ay\"");
        assert_eq!(show_name(b"a\"b"), "\"a\\\"b\"");
        // A cut never splits a UTF-8 character.
        let mut v = vec![b'a'; 199];
        v.extend_from_slice("é".as_bytes());
        v.extend_from_slice(&[b'b'; 10]);
        assert_eq!(
            show_name(&v),
            format!("\"{}…\" (211 bytes)", "a".repeat(199))
        );
        assert_eq!(show_text("ab\u{1b}cdef", 4), "ab\\x1bc…");
    }

    #[test]
    fn terminal_safe_keeps_newlines_only() {
        assert_eq!(terminal_safe("a\nb\tc"), "a\nb\tc");
        assert_eq!(terminal_safe("a\x1b]0;t\x07"), "a\\x1b]0;t\\x07");
        assert_eq!(terminal_safe("a\rb"), "a\\x0db");
    }
}
