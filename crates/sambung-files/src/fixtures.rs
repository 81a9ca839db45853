//! Files for tests (here and in the server's) and benchmarks: real images made by the image
//! crate, and hostile ones made by hand.

use std::io::Cursor;

use image::ImageFormat;

/// A PNG of `width` × `height` pixels of noise: as large as a photo of that size, for it
/// compresses no better.
pub fn noisy_png(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x2545_f491_u32;
    let image = image::RgbImage::from_fn(width, height, |_, _| {
        // xorshift: noise without a random-number crate.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, ImageFormat::Png)
        .expect("a PNG is written to memory");
    png.into_inner()
}

/// A real PNG of `width` × `height` pixels, made by the image crate.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A PNG that is only a header claiming `width` × `height` pixels (and an empty end).
pub fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut header = Vec::new();
    header.extend_from_slice(&width.to_be_bytes());
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &header);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

/// PNG's CRC-32 (ISO 3309), bit by bit: a test needs no table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A real PDF of one page per text in `pages` (Helvetica, with an exact cross-reference
/// table), as a word processor would write a simple one.
pub fn pdf(pages: &[&str]) -> Vec<u8> {
    let contents = pages
        .iter()
        .map(|text| {
            (
                String::new(),
                format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET").into_bytes(),
            )
        })
        .collect();
    pdf_of(contents)
}

/// A PDF of one page whose content stream is `gib` GiB of spaces, deflated into about a
/// megabyte a GiB: a reader that inflates whole streams (pdf-extract does) asks for all of it.
pub fn pdf_bomb(gib: u32) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    const MIB: usize = 1 << 20;
    let spaces = vec![b' '; MIB];
    // After a full flush the compressor starts afresh: every further MiB deflates to the
    // same bytes, so the stream is its first MiB and that block again and again.
    let mut deflate = Compress::new(Compression::best(), true);
    let block = |deflate: &mut Compress| {
        let mut out = Vec::with_capacity(MIB);
        deflate
            .compress_vec(&spaces, &mut out, FlushCompress::Full)
            .unwrap();
        out
    };
    let first = block(&mut deflate);
    let repeated = block(&mut deflate);
    assert_eq!(
        repeated,
        block(&mut deflate),
        "a full flush restarts the deflate"
    );
    let total = u64::from(gib) * 1024;
    let mut stream = first;
    for _ in 1..total {
        stream.extend_from_slice(&repeated);
    }
    // The last block (fixed Huffman, only its end), then the Adler-32 of all those spaces.
    stream.extend_from_slice(&[0x03, 0x00]);
    let n = total as u128 * MIB as u128;
    let a = (1 + 32 * n) % 65521;
    let b = (n + 32 * n * (n + 1) / 2) % 65521;
    stream.extend_from_slice(&(((b << 16) | a) as u32).to_be_bytes());
    pdf_of(vec![("/Filter /FlateDecode ".into(), stream)])
}

/// A PDF of one page for each content stream (its dictionary's extra entries and its bytes).
fn pdf_of(contents: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        Vec::new(), // the page tree, once the pages are numbered
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
            .to_vec(),
    ];
    let mut kids = Vec::new();
    for (extra, content) in &contents {
        let mut stream = format!("<< {extra}/Length {} >>\nstream\n", content.len()).into_bytes();
        stream.extend_from_slice(content);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
        let content_id = objects.len();
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
        ).into_bytes());
        kids.push(format!("{} 0 R", objects.len()));
    }
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        contents.len()
    )
    .into_bytes();
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(object);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A 16 × 8 JPEG carrying `exif` in an EXIF segment (where a phone writes the place and time
/// a photo was taken) and a comment "secret c".
pub fn jpeg_with_exif(exif: &str) -> Vec<u8> {
    let image = image::RgbImage::from_fn(16, 8, |x, _| image::Rgb([x as u8 * 8, 0, 0]));
    let mut plain = Cursor::new(Vec::new());
    image.write_to(&mut plain, ImageFormat::Jpeg).unwrap();
    let plain = plain.into_inner();
    let exif = [b"Exif\0\0".as_slice(), exif.as_bytes()].concat();
    let mut tagged = plain[..2].to_vec(); // SOI
    tagged.extend_from_slice(&[0xFF, 0xE1]);
    tagged.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    tagged.extend_from_slice(&exif);
    tagged.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x0B]);
    tagged.extend_from_slice(b"secret c\0m");
    tagged.extend_from_slice(&plain[2..]);
    tagged
}
