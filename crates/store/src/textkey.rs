//! A reversible text encoding for function names and uniques stored in
//! text columns (PostgreSQL `VARCHAR`/`TEXT`, SQLite `TEXT`, MySQL tables
//! that gearmand created with `VARCHAR`).
//!
//! Text columns cannot hold every byte string: PostgreSQL rejects NUL and
//! invalid UTF-8, and gearmand reads SQLite keys as text. Gearman names are
//! arbitrary bytes, so names that are not "plain" are escaped:
//!
//! * a plain name — valid UTF-8, no NUL, not starting with [`MARKER`] — is
//!   stored verbatim, so operators' SQL (`WHERE function_name = 'resize'`)
//!   keeps working for every ordinary name;
//! * any other name is stored as [`MARKER`] followed by the name with every
//!   NUL, `%` and byte of an invalid UTF-8 sequence written as `%XX`.
//!
//! Decoding strips the marker and undoes the escapes; a value without the
//! marker is taken as raw bytes (so rows written by gearmand, which may even
//! hold invalid UTF-8 in SQLite, are read as they are).

/// Prefix of an escaped value. Chosen to be short and unlikely at the start
/// of a real function name or unique.
pub const MARKER: &str = "%~";

/// True when `name` can be stored verbatim.
fn is_plain(name: &[u8]) -> bool {
    match std::str::from_utf8(name) {
        Ok(s) => !s.contains('\0') && !s.starts_with(MARKER),
        Err(_) => false,
    }
}

/// Encodes bytes for a text column (see the module docs).
pub fn encode(name: &[u8]) -> String {
    if is_plain(name) {
        // `is_plain` checked UTF-8 validity.
        return String::from_utf8_lossy(name).into_owned();
    }
    let mut out = String::with_capacity(MARKER.len() + name.len() * 2);
    out.push_str(MARKER);
    let mut rest = name;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_escaped_text(&mut out, valid);
                rest = &[];
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                push_escaped_text(&mut out, std::str::from_utf8(good).unwrap_or_default());
                // The invalid sequence is at least one byte long.
                let bad_len = e.error_len().unwrap_or(bad.len()).max(1);
                for b in &bad[..bad_len] {
                    push_byte_escape(&mut out, *b);
                }
                rest = &bad[bad_len..];
            }
        }
    }
    out
}

fn push_escaped_text(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '%' | '\0' => push_byte_escape(out, ch as u8),
            _ => out.push(ch),
        }
    }
}

fn push_byte_escape(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(HEX[(b >> 4) as usize] as char);
    out.push(HEX[(b & 15) as usize] as char);
}

/// Decodes a stored value. Malformed escapes are kept literally rather than
/// failing, so a hand-edited row never blocks replay.
pub fn decode(stored: &[u8]) -> Vec<u8> {
    let Some(body) = stored.strip_prefix(MARKER.as_bytes()) else {
        return stored.to_vec();
    };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'%' && i + 2 < body.len() {
            if let (Some(h), Some(l)) = (body.get(i + 1).and_then(hex_val), body.get(i + 2).and_then(hex_val)) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

fn hex_val(c: &u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Vec<u8>> {
        vec![
            b"".to_vec(),
            b"plain".to_vec(),
            b"my-func".to_vec(),
            b"it's \"quoted\"; DROP TABLE x;--".to_vec(),
            "emoji \u{1F600} and \u{10FFFF}".as_bytes().to_vec(),
            b"nul\0inside".to_vec(),
            vec![0xff, 0xfe, 0x00, 0x80, b'%', b'~'],
            b"%~looks escaped".to_vec(),
            b"%41 percent".to_vec(),
            b"%".to_vec(),
            b"%~".to_vec(),
            (0u8..=255).collect(),
        ]
    }

    #[test]
    fn round_trips_every_sample() {
        for s in samples() {
            let e = encode(&s);
            assert_eq!(decode(e.as_bytes()), s, "encoded as {e:?}");
        }
    }

    #[test]
    fn plain_names_are_verbatim() {
        assert_eq!(encode(b"resize-image"), "resize-image");
        assert_eq!(encode("ünïcode \u{1F600}".as_bytes()), "ünïcode \u{1F600}");
        assert_eq!(encode(b"100%"), "100%");
        assert_eq!(encode(b"a\0b"), "%~a%00b");
    }

    #[test]
    fn encoding_is_injective_on_neighbours() {
        let all = samples();
        let enc: Vec<String> = all.iter().map(|s| encode(s)).collect();
        for i in 0..enc.len() {
            for j in 0..enc.len() {
                if i != j {
                    assert_ne!(enc[i], enc[j]);
                }
            }
        }
    }
}
