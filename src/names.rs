//! File names as the container wrote them: any bytes but `/` and NUL. [`shown`] turns
//! one into text a terminal prints as one harmless line, whatever the bytes: a newline
//! or an ESC in a name cannot forge a line of a summary or move the cursor. [`lossy`]
//! is the name as the engine's JSON reports it.

use std::fmt::Write;

/// `name` for a terminal: printable UTF-8 as it is; control characters, backslashes and
/// bytes that are not UTF-8 as `\n`, `\t`, `\\`, `\e` or `\xNN`, so that two different
/// names never look the same.
pub fn shown(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\u{1b}' => out.push_str("\\e"),
                c if c.is_control() => {
                    write!(out, "\\u{{{:x}}}", c as u32).expect("a String takes every write")
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            write!(out, "\\x{byte:02x}").expect("a String takes every write");
        }
    }
    out
}

/// `name` as the engine's JSON gives it: each byte that is not part of valid UTF-8
/// becomes one U+FFFD, as Go's encoder does.
pub fn lossy(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    push_lossy(&mut out, name);
    out
}

/// [`lossy`], written at the end of `out`.
pub fn push_lossy(out: &mut String, name: &[u8]) {
    for chunk in name.utf8_chunks() {
        out.push_str(chunk.valid());
        out.extend(chunk.invalid().iter().map(|_| '\u{FFFD}'));
    }
}

/// Lower-case hex, two digits a byte: a digest per file, so no `format!`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_shown_as_they_are() {
        assert_eq!(shown(b"/opt/work/model.ckpt"), "/opt/work/model.ckpt");
        assert_eq!(shown("/données/é".as_bytes()), "/données/é");
    }

    #[test]
    fn control_characters_cannot_forge_a_line_or_move_the_cursor() {
        assert_eq!(shown(b"a\nretired x"), "a\\nretired x");
        assert_eq!(shown(b"\x1b[2Kok"), "\\e[2Kok");
        assert_eq!(shown(b"a\rb\tc\x7f"), "a\\rb\\tc\\u{7f}");
        assert_eq!(shown("\u{85}".as_bytes()), "\\u{85}");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_escaped_and_never_collide() {
        assert_eq!(shown(b"/opt/\xff\xfe.bin"), "/opt/\\xff\\xfe.bin");
        assert_ne!(shown(b"\xff"), shown(b"\\xff"));
        assert_eq!(shown(b"\\xff"), "\\\\xff");
    }

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    }
}
