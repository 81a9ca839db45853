//! Lone surrogate escapes, mended as JSON passes: `"\ud83d"` (half of an emoji, as an
//! exporter that cut a string between the two halves writes it, and as Python's `json` writes
//! a string holding one) is valid JSON text but no Unicode, and serde_json refuses the whole
//! file for it. Each escape of a surrogate without its other half becomes `\ufffd` (the
//! replacement character) in place (the same six bytes); a pair, and everything else, passes
//! unchanged.

use std::borrow::Cow;
use std::io::{self, Read};

/// The longest escape that may have to wait for more text before it is settled: a high
/// surrogate's and the low one's that may follow it (`\ud83d\ude00`).
const PAIR: usize = 12;
/// How much is read at a time.
const CHUNK: usize = 64 << 10;

/// `inner`'s bytes, lone surrogate escapes mended.
pub(crate) struct MendLoneSurrogates<R> {
    inner: R,
    buf: Vec<u8>,
    /// How much to read at a time.
    chunk: u64,
    /// The next byte to hand out.
    start: usize,
    /// `buf[..settled]` is mended; the rest waits for the bytes after it.
    settled: usize,
    eof: bool,
}

impl<R: Read> MendLoneSurrogates<R> {
    pub fn new(inner: R) -> Self {
        Self::reading(inner, CHUNK)
    }

    fn reading(inner: R, chunk: usize) -> Self {
        MendLoneSurrogates {
            inner,
            buf: Vec::new(),
            chunk: chunk as u64,
            start: 0,
            settled: 0,
            eof: false,
        }
    }
}

impl<R: Read> Read for MendLoneSurrogates<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.start == self.settled {
            if self.eof {
                return Ok(0);
            }
            self.buf.drain(..self.start);
            self.settled -= self.start;
            self.start = 0;
            let n = (&mut self.inner)
                .take(self.chunk)
                .read_to_end(&mut self.buf)?;
            self.eof = n == 0;
            self.settled += mend(&mut self.buf[self.settled..], self.eof);
        }
        let n = out.len().min(self.settled - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// `text` with its lone surrogate escapes mended: itself when it has no surrogate escape.
pub(crate) fn mended(text: &[u8]) -> Cow<'_, [u8]> {
    let surrogate_escape = |w: &[u8]| w[0] == b'\\' && w[1] == b'u' && matches!(w[2], b'd' | b'D');
    if !text.windows(3).any(surrogate_escape) {
        return Cow::Borrowed(text);
    }
    let mut owned = text.to_vec();
    mend(&mut owned, true);
    Cow::Owned(owned)
}

/// Mend the lone surrogate escapes of `text`, which starts outside any escape: how many of
/// its bytes are settled. The rest (less than [`PAIR`] bytes, an escape that may go on) waits
/// for what follows, unless `last` says nothing does.
fn mend(text: &mut [u8], last: bool) -> usize {
    let mut at = 0;
    while let Some(found) = text[at..].iter().position(|&b| b == b'\\') {
        let escape = at + found;
        let rest = &text[escape..];
        let whole = |len: usize| rest.len() >= len || last;
        if !whole(2) {
            return escape;
        }
        if rest.get(1) != Some(&b'u') {
            at = (escape + 2).min(text.len());
            continue;
        }
        if !whole(6) {
            return escape;
        }
        let unit = unit_at(rest, 2);
        match unit {
            Some(0xDC00..=0xDFFF) => replace(&mut text[escape..]),
            Some(0xD800..=0xDBFF) => {
                if !whole(PAIR) {
                    return escape;
                }
                let paired = rest.get(6..8) == Some(b"\\u")
                    && matches!(unit_at(rest, 8), Some(0xDC00..=0xDFFF));
                if paired {
                    at = escape + 12;
                    continue;
                }
                replace(&mut text[escape..]);
            }
            // Not a surrogate, or not an escape at all (serde_json says what is wrong).
            _ => {}
        }
        at = (escape + 6).min(text.len());
    }
    text.len()
}

/// The UTF-16 unit of the four hex digits at `text[at..at + 4]`.
fn unit_at(text: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(text.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

/// `\uXXXX` at the start of `text` becomes `\ufffd`.
fn replace(text: &mut [u8]) {
    text[2..6].copy_from_slice(b"fffd");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` mended as a whole, and read a few bytes at a time (1 to 13: every boundary falls
    /// inside some escape), which must give the same.
    fn mended(text: &str) -> String {
        let read = |chunk: usize| {
            let mut out = Vec::new();
            MendLoneSurrogates::reading(text.as_bytes(), chunk)
                .read_to_end(&mut out)
                .unwrap();
            out
        };
        let whole = read(CHUNK);
        for chunk in 1..=PAIR + 1 {
            let start: String = text.chars().take(60).collect();
            assert!(
                read(chunk) == whole,
                "{start:?} read {chunk} bytes at a time"
            );
        }
        String::from_utf8(whole).unwrap()
    }

    #[test]
    fn lone_halves_become_the_replacement_character_and_pairs_stay() {
        let cases = [
            (r#""\ud83d""#, r#""\ufffd""#),
            (r#""\uDE00 and""#, r#""\ufffd and""#),
            (r#""\ud83d\ude00""#, r#""\ud83d\ude00""#),
            (r#""\ud83d\u0041""#, r#""\ufffd\u0041""#),
            (r#""\ud83d\ud83d\ude00""#, r#""\ufffd\ud83d\ude00""#),
            (r#""\ude00\ud83d""#, r#""\ufffd\ufffd""#),
            // An escaped backslash before `ud83d` is text, not an escape.
            (r#""\\ud83d""#, r#""\\ud83d""#),
            (r#""\\\ud83d""#, r#""\\\ufffd""#),
            (r#""\"\ud83d\n""#, r#""\"\ufffd\n""#),
            // Cut short, as the last bytes of a file: nothing to pair with.
            (r#""\ud83d"#, r#""\ufffd"#),
            (r#""\ud83d\u"#, r#""\ufffd\u"#),
            (r#"\u12"#, r#"\u12"#),
            (r#"\"#, r#"\"#),
            ("plain ✓ text", "plain ✓ text"),
        ];
        for (text, expected) in cases {
            assert_eq!(mended(text), expected, "{text}");
        }
    }

    #[test]
    fn mended_text_is_read_by_serde_json() {
        let text = r#"[{"title":"cut \ud83d","body":"\ud83d\ude00 \udc00"}]"#;
        assert!(serde_json::from_str::<serde_json::Value>(text).is_err());
        let value: serde_json::Value = serde_json::from_str(&mended(text)).unwrap();
        assert_eq!(value[0]["title"], "cut \u{fffd}");
        assert_eq!(value[0]["body"], "😀 \u{fffd}");
    }

    #[test]
    fn a_long_text_passes_whole_across_its_chunks() {
        let piece = r#"{"t":"\ud83d\ude00 \ud83d x"},"#;
        let text = format!("[{}{{}}]", piece.repeat(20_000));
        let out = mended(&text);
        assert_eq!(out.len(), text.len());
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value[19_999]["t"], "😀 \u{fffd} x");
    }
}
