//! Escaping of text taken from a capture (domain names, xenstore values, the
//! receiver's error output) so that it can never drive a terminal.
//!
//! Every string the decoder puts in a summary, a detail tree or a config field
//! has passed through [`escape_bytes`]: printable characters stay, backslash
//! becomes `\\`, common whitespace becomes `\n` `\r` `\t`, and every other
//! control or formatting character (C0, DEL, C1, bidi overrides, zero-width
//! characters) becomes `\xNN` or `\u{NNNN}`. Invalid UTF-8 bytes become `\xNN`.

use std::fmt::Write;

/// Escapes `bytes` for display; see the module docs for the rules.
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Escapes a string already known to be UTF-8.
pub fn escape_str(s: &str) -> String {
    escape_bytes(s.as_bytes())
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 && !c.is_ascii_control() => out.push(c),
        c if (c as u32) < 0x100 && c.is_control() => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if c.is_control() || is_format(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Invisible formatting characters that can reorder or hide text.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2069 | 0xFEFF | 0xFFF9..=0xFFFB)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_unchanged() {
        assert_eq!(escape_bytes(b"guest-01.example"), "guest-01.example");
        assert_eq!(escape_str("caf\u{e9}"), "caf\u{e9}");
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape_bytes(b"a\x1b[31mb"), "a\\x1b[31mb");
        assert_eq!(escape_bytes(b"x\0y\x7f"), "x\\x00y\\x7f");
        assert_eq!(escape_bytes(b"l1\nl2\t\\"), "l1\\nl2\\t\\\\");
        assert_eq!(escape_str("\u{9b}2J"), "\\x9b2J");
        assert_eq!(escape_str("a\u{202e}b"), "a\\u{202e}b");
        assert_eq!(escape_bytes(&[0xff, b'a']), "\\xffa");
    }

    #[test]
    fn output_has_no_control_characters() {
        let all: Vec<u8> = (0..=255u8).collect();
        let s = escape_bytes(&all);
        assert!(!s.chars().any(|c| c.is_control()));
    }
}
