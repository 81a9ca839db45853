//! COPY's binary format for the rows the seed sends in it (PostgreSQL's "Binary Format" of
//! COPY, and each type's `send` function: `uuid_send`, `timestamptz_send`, `tsvectorsend`).

use chrono::{DateTime, TimeZone, Utc};

/// What opens binary COPY data: the signature, no flags, no header extension.
pub(super) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// What ends it: a field count of -1.
pub(super) const TRAILER: &[u8] = &(-1i16).to_be_bytes();

/// One row: its field count, then each field's length and bytes (a NULL: the length -1).
pub(super) fn row(out: &mut Vec<u8>, fields: &[Option<&[u8]>]) {
    out.extend_from_slice(&(fields.len() as i16).to_be_bytes());
    for field in fields {
        match field {
            Some(field) => {
                out.extend_from_slice(&(field.len() as i32).to_be_bytes());
                out.extend_from_slice(field);
            }
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
}

/// A `timestamptz`: microseconds since 2000-01-01 00:00 UTC.
pub(super) fn timestamp(at: DateTime<Utc>) -> [u8; 8] {
    let postgres_epoch = Utc
        .with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date");
    let micros = (at - postgres_epoch).num_microseconds().unwrap_or(i64::MAX);
    micros.to_be_bytes()
}

/// `to_tsvector('simple', text)` for the dataset's text, lower-case ASCII words between
/// single spaces (each one a lexeme as it is, at its position from 1), as a binary `tsvector`:
/// the number of lexemes, then each in byte order with a NUL, its number of positions and the
/// positions (weight D, the top two bits, is 0). Messages have some 45 words, so PostgreSQL's
/// limits (256 positions a lexeme, positions up to 16,383) never apply. The seed's test
/// compares every row with PostgreSQL's own `to_tsvector`.
pub(super) fn words(text: &str) -> Vec<u8> {
    let mut words: Vec<(&str, u16)> = text
        .split(' ')
        .filter(|w| !w.is_empty())
        .zip(1u16..)
        .collect();
    words.sort_unstable();
    let mut out = Vec::with_capacity(4 + text.len() + words.len() * 5);
    out.extend_from_slice(&0i32.to_be_bytes());
    let mut lexemes = 0i32;
    for group in words.chunk_by(|a, b| a.0 == b.0) {
        out.extend_from_slice(group[0].0.as_bytes());
        out.push(0);
        out.extend_from_slice(&(group.len() as u16).to_be_bytes());
        for (_, position) in group {
            out.extend_from_slice(&position.to_be_bytes());
        }
        lexemes += 1;
    }
    out[..4].copy_from_slice(&lexemes.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_sorted_lexemes_with_their_positions() {
        let bytes = words("plan code plan a");
        let mut expected = 3i32.to_be_bytes().to_vec();
        for (lexeme, positions) in [("a", &[4u16][..]), ("code", &[2]), ("plan", &[1, 3])] {
            expected.extend_from_slice(lexeme.as_bytes());
            expected.push(0);
            expected.extend_from_slice(&(positions.len() as u16).to_be_bytes());
            for p in positions {
                expected.extend_from_slice(&p.to_be_bytes());
            }
        }
        assert_eq!(bytes, expected);
    }

    #[test]
    fn timestamps_count_microseconds_from_2000() {
        let at = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 1).single().unwrap();
        assert_eq!(timestamp(at), 1_000_000i64.to_be_bytes());
    }
}
