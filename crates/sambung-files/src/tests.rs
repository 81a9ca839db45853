use std::io::Cursor;

use super::fixtures::{png, png_claiming};
use super::*;

#[test]
fn the_bytes_decide_and_the_claim_must_agree() {
    let png = png(4, 3);
    assert_eq!(
        identify("a.png", &png, false, Some("image/png")),
        Ok(Kind::Png)
    );
    // A name means nothing: a PNG called notes.txt is a PNG.
    assert_eq!(identify("notes.txt", &png, false, None), Ok(Kind::Png));
    assert_eq!(
        identify("x.bin", &png, false, Some("application/octet-stream")),
        Ok(Kind::Png)
    );
    assert!(matches!(
        identify("a.png", &png, false, Some("application/pdf")),
        Err(FileError::Mismatch {
            found: "image/png",
            ..
        })
    ));
    assert!(matches!(
        identify("a.png", &png, false, Some("text/plain")),
        Err(FileError::Mismatch { .. })
    ));
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n";
    assert_eq!(
        identify("r.pdf", pdf, false, Some("application/pdf")),
        Ok(Kind::Pdf)
    );
    // Text claiming to be an image is refused; text's own claims vary (text/x-rust...).
    assert!(matches!(
        identify("fake.png", b"hello", true, Some("image/png")),
        Err(FileError::Mismatch {
            found: "text/plain",
            ..
        })
    ));
    assert_eq!(
        identify("main.rs", b"fn main() {}", true, Some("text/x-rust")),
        Ok(Kind::Text("text/plain"))
    );
    assert_eq!(
        identify("t.CSV", b"a,b\n1,2", true, None),
        Ok(Kind::Text("text/csv"))
    );
    assert_eq!(
        identify("r.md", b"# Hi", true, None),
        Ok(Kind::Text("text/markdown"))
    );
    assert_eq!(
        identify("d.json", b"{}", true, Some("application/json")),
        Ok(Kind::Text("application/json"))
    );
    // Binary that is none of ours.
    assert!(matches!(
        identify("a.zip", b"PK\x03\x04\x14\x00", false, None),
        Err(FileError::Unsupported { .. })
    ));
}

#[test]
fn svg_is_refused_whatever_it_is_called_or_claims() {
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>";
    assert!(matches!(
        identify("x.svg", svg, true, None),
        Err(FileError::Svg { .. })
    ));
    assert!(matches!(
        identify("x.txt", svg, true, Some("image/svg+xml")),
        Err(FileError::Svg { .. })
    ));
    // Called anything else, it is only text: kept and served as text/plain, never drawn.
    assert_eq!(
        identify("x.txt", svg, true, None),
        Ok(Kind::Text("text/plain"))
    );
}

#[test]
fn text_is_utf8_without_nul_even_split_between_pieces() {
    let mut scan = TextScan::default();
    let text = "Selamat pagi, dunia — ☕".as_bytes();
    let (a, b) = text.split_at(text.len() - 2); // inside the last character
    scan.feed(a);
    scan.feed(b);
    assert!(scan.is_text());
    let mut unfinished = TextScan::default();
    unfinished.feed(a);
    assert!(
        !unfinished.is_text(),
        "a character cut at the end is not text"
    );
    for binary in [&b"ab\0cd"[..], &b"\xff\xfe"[..], &b"caf\xc3\x28"[..]] {
        let mut scan = TextScan::default();
        scan.feed(binary);
        scan.feed(b"more");
        assert!(!scan.is_text(), "{binary:?}");
    }
}

#[test]
fn images_are_measured_and_thumbnailed() {
    let info = inspect_image("a.png", Kind::Png, Cursor::new(png(640, 320))).unwrap();
    assert_eq!((info.width, info.height), (640, 320));
    let thumbnail = image::load_from_memory(&info.thumbnail).unwrap();
    assert_eq!((thumbnail.width(), thumbnail.height()), (256, 128));
}

#[test]
fn a_decompression_bomb_is_refused_before_its_pixels_are_decoded() {
    // A PNG whose header says 60000 × 60000 pixels (3.6 gigapixels, 10 GB decoded), in a
    // few dozen bytes.
    let bomb = png_claiming(60_000, 60_000);
    assert_eq!(identify("bomb.png", &bomb, false, None), Ok(Kind::Png));
    assert!(matches!(
        inspect_image("bomb.png", Kind::Png, Cursor::new(bomb)),
        Err(FileError::ImageTooLarge {
            width: 60000,
            height: 60000,
            ..
        })
    ));
    // Bytes that only start like an image are refused with a reason.
    let mut broken = png(8, 8);
    broken.truncate(40);
    assert!(matches!(
        inspect_image("broken.png", Kind::Png, Cursor::new(broken)),
        Err(FileError::BadImage { .. })
    ));
}

#[test]
fn a_pdfs_text_is_read_page_by_page_and_a_broken_one_yields_none() {
    let text = pdf_text(&super::fixtures::pdf(&[
        "Laporan kuartal",
        "Penjualan naik",
    ]))
    .unwrap();
    assert!(text.starts_with("--- page 1 ---\n"), "{text}");
    assert!(text.contains("Laporan kuartal"), "{text}");
    assert!(text.contains("--- page 2 ---\nPenjualan naik"), "{text}");
    assert_eq!(pdf_text(b"%PDF-1.4\nnot really a pdf"), None);
    let mut cut = super::fixtures::pdf(&["x"]);
    cut.truncate(cut.len() / 2);
    assert_eq!(pdf_text(&cut), None);
}

#[test]
fn what_leaves_for_a_provider_carries_no_camera_place_or_time() {
    let tagged = super::fixtures::jpeg_with_exif("GPSLatitude -6.2088 GPSLongitude 106.8456");
    let sent = without_metadata(Kind::Jpeg, tagged.clone());
    assert!(tagged.windows(11).any(|w| w == b"GPSLatitude"));
    assert!(
        !sent.windows(11).any(|w| w == b"GPSLatitude"),
        "the place is gone"
    );
    assert!(
        !sent.windows(8).any(|w| w == b"secret c"),
        "the comment is gone"
    );
    let decoded = image::load_from_memory(&sent).unwrap();
    assert_eq!(
        (decoded.width(), decoded.height()),
        (16, 8),
        "the pixels stay"
    );
    // A PNG's text chunks go; bytes that do not parse come back as they were.
    let png = super::fixtures::png(4, 4);
    assert_eq!(without_metadata(Kind::Png, png.clone()).len(), png.len());
    assert_eq!(
        without_metadata(Kind::Jpeg, b"not a jpeg".to_vec()),
        b"not a jpeg"
    );
}
