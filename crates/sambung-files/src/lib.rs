//! What an attached file is (SPEC section 14), decided by its bytes: never by its name or by
//! the type the browser claims, which must agree with the bytes or the file is refused. Images
//! are decoded within limits (pixels and memory) into their size and a thumbnail, so that a
//! decompression bomb is refused before it is run. No HTTP, no database: the server streams an
//! upload through [`TextScan`] and [`identify`], and keeps what they accept.

use std::io::{BufRead, Cursor, Seek};

use image::{ImageFormat, ImageReader, Limits};

/// What a file is, as its bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Png,
    Jpeg,
    Webp,
    Gif,
    Pdf,
    /// UTF-8 text: plain, Markdown, CSV or JSON by its name's extension (source code is plain).
    Text(&'static str),
}

impl Kind {
    pub fn media_type(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Webp => "image/webp",
            Kind::Gif => "image/gif",
            Kind::Pdf => "application/pdf",
            Kind::Text(media_type) => media_type,
        }
    }

    /// The image kind of a media type this crate gave (`image/png`...).
    pub fn image(media_type: &str) -> Option<Kind> {
        [Kind::Png, Kind::Jpeg, Kind::Webp, Kind::Gif]
            .into_iter()
            .find(|kind| kind.media_type() == media_type)
    }

    pub fn is_image(self) -> bool {
        matches!(self, Kind::Png | Kind::Jpeg | Kind::Webp | Kind::Gif)
    }

    fn image_format(self) -> Option<ImageFormat> {
        match self {
            Kind::Png => Some(ImageFormat::Png),
            Kind::Jpeg => Some(ImageFormat::Jpeg),
            Kind::Webp => Some(ImageFormat::WebP),
            Kind::Gif => Some(ImageFormat::Gif),
            Kind::Pdf | Kind::Text(_) => None,
        }
    }
}

/// Why a file is refused, said for the person who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("{name} is not a kind of file SambungChat takes: images (PNG, JPEG, WebP, GIF), PDFs and text files are")]
    Unsupported { name: String },
    #[error("{name} is not taken: SVG images can carry scripts (send it as a PNG)")]
    Svg { name: String },
    #[error("{name} says it is {claimed}, but its bytes are {found}: the file is refused")]
    Mismatch {
        name: String,
        claimed: String,
        found: &'static str,
    },
    #[error(
        "{name} is an image of {width} × {height} pixels: at most {max} pixels a side are opened"
    )]
    ImageTooLarge {
        name: String,
        width: u32,
        height: u32,
        max: u32,
    },
    #[error("{name} cannot be read as an image: {reason}")]
    BadImage { name: String, reason: String },
}

/// The most pixels on either side of an image that is opened.
pub const MAX_IMAGE_SIDE: u32 = 10_000;
/// The most memory one image's decoding may take.
pub const MAX_IMAGE_ALLOC: u64 = 256 << 20;
/// A thumbnail's longest side.
pub const THUMBNAIL_SIDE: u32 = 256;

/// Whether a stream of bytes is text: UTF-8 throughout, with no NUL. Fed a piece at a time
/// (a character may be split between pieces).
#[derive(Debug, Default)]
pub struct TextScan {
    /// The start of a character the last piece ended in.
    pending: Vec<u8>,
    binary: bool,
}

impl TextScan {
    pub fn feed(&mut self, piece: &[u8]) {
        if self.binary {
            return;
        }
        let joined;
        let bytes = if self.pending.is_empty() {
            piece
        } else {
            joined = [self.pending.as_slice(), piece].concat();
            &joined
        };
        if bytes.contains(&0) {
            self.binary = true;
            return;
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => self.pending.clear(),
            // Cut in the middle of a character: keep its start for the next piece.
            Err(e) if e.error_len().is_none() => {
                self.pending = bytes[e.valid_up_to()..].to_vec();
            }
            Err(_) => self.binary = true,
        }
    }

    /// Whether everything fed was text (a character left unfinished at the end is not).
    pub fn is_text(&self) -> bool {
        !self.binary && self.pending.is_empty()
    }
}

/// What the file named `name` is, from its first bytes (`head`, a few kilobytes), whether all
/// its bytes were text (`text`), and the type the browser claimed. The claim may be absent or
/// generic (`application/octet-stream`); otherwise it must agree with the bytes.
pub fn identify(
    name: &str,
    head: &[u8],
    text: bool,
    claimed: Option<&str>,
) -> Result<Kind, FileError> {
    let claimed = claimed
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|c| !c.is_empty() && c != "application/octet-stream");
    let extension = name
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    if extension == "svg" || claimed.as_deref() == Some("image/svg+xml") {
        return Err(FileError::Svg { name: name.into() });
    }
    let found = match infer::get(head).map(|t| t.mime_type()) {
        Some("image/png") => Kind::Png,
        Some("image/jpeg") => Kind::Jpeg,
        Some("image/webp") => Kind::Webp,
        Some("image/gif") => Kind::Gif,
        Some("application/pdf") => Kind::Pdf,
        _ if text => Kind::Text(match extension.as_str() {
            "md" | "markdown" => "text/markdown",
            "csv" => "text/csv",
            "json" => "application/json",
            _ => "text/plain",
        }),
        _ => return Err(FileError::Unsupported { name: name.into() }),
    };
    if let Some(claimed) = claimed {
        let claimed = if claimed == "image/jpg" {
            "image/jpeg".to_owned()
        } else {
            claimed
        };
        let agrees = match found {
            Kind::Text(_) => !["image/", "audio/", "video/", "font/", "application/pdf"]
                .iter()
                .any(|binary| claimed.starts_with(binary)),
            binary => claimed == binary.media_type(),
        };
        if !agrees {
            return Err(FileError::Mismatch {
                name: name.into(),
                claimed,
                found: found.media_type(),
            });
        }
    }
    Ok(found)
}

/// An image's size and its thumbnail (a PNG, at most [`THUMBNAIL_SIDE`] a side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    pub width: u32,
    pub height: u32,
    pub thumbnail: Vec<u8>,
}

/// Open the image `kind` says `bytes` hold, within limits: its header is read first and an
/// image over [`MAX_IMAGE_SIDE`] a side refused before any pixel is decoded; decoding may
/// take at most [`MAX_IMAGE_ALLOC`] bytes. Slow work: run it on a blocking thread.
pub fn inspect_image(
    name: &str,
    kind: Kind,
    mut bytes: impl BufRead + Seek,
) -> Result<ImageInfo, FileError> {
    let bad = |reason: String| FileError::BadImage {
        name: name.into(),
        reason,
    };
    let format = kind
        .image_format()
        .ok_or_else(|| bad("not an image".into()))?;
    // The header first: its size decides whether the pixels are decoded at all.
    let (width, height) = ImageReader::with_format(&mut bytes, format)
        .into_dimensions()
        .map_err(|e| bad(e.to_string()))?;
    if width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(FileError::ImageTooLarge {
            name: name.into(),
            width,
            height,
            max: MAX_IMAGE_SIDE,
        });
    }
    bytes.rewind().map_err(|e| bad(e.to_string()))?;
    let mut reader = ImageReader::with_format(bytes, format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| bad(e.to_string()))?;
    let mut thumbnail = Cursor::new(Vec::new());
    image
        .thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
        .write_to(&mut thumbnail, ImageFormat::Png)
        .map_err(|e| bad(e.to_string()))?;
    Ok(ImageInfo {
        width: image.width(),
        height: image.height(),
        thumbnail: thumbnail.into_inner(),
    })
}

/// An image's bytes without what tells more than its pixels, for what leaves for a provider
/// (the owner keeps the original): in a JPEG its EXIF and XMP (APP1: camera, place, time),
/// IPTC (APP13) and comments; in a PNG its text, EXIF and time chunks; in a WebP its EXIF.
/// Nothing is decoded: the pixels and the colour profile are the same bytes. Bytes that do not
/// parse are given back as they are (they were opened once already, at upload).
pub fn without_metadata(kind: Kind, bytes: Vec<u8>) -> Vec<u8> {
    use img_parts::{Bytes, ImageEXIF as _};
    let original = Bytes::from(bytes);
    let cleaned = match kind {
        Kind::Jpeg => img_parts::jpeg::Jpeg::from_bytes(original.clone())
            .ok()
            .map(|mut jpeg| {
                use img_parts::jpeg::markers::{APP1, APP13, COM};
                for marker in [APP1, APP13, COM] {
                    jpeg.remove_segments_by_marker(marker);
                }
                jpeg.encoder().bytes()
            }),
        Kind::Png => img_parts::png::Png::from_bytes(original.clone())
            .ok()
            .map(|mut png| {
                for kind in [*b"tEXt", *b"zTXt", *b"iTXt", *b"eXIf", *b"tIME"] {
                    png.remove_chunks_by_type(kind);
                }
                png.encoder().bytes()
            }),
        Kind::Webp => img_parts::webp::WebP::from_bytes(original.clone())
            .ok()
            .map(|mut webp| {
                webp.set_exif(None);
                webp.encoder().bytes()
            }),
        Kind::Gif | Kind::Pdf | Kind::Text(_) => None,
    };
    cleaned.unwrap_or(original).to_vec()
}

/// The most text kept of one PDF (a model's context is smaller still).
pub const MAX_PDF_TEXT_BYTES: usize = 2 << 20;

/// A PDF's text, page by page, each page under a marker (`--- page 2 ---`), for models that
/// read no PDFs; none when it has no text to read (a scan) or cannot be read. Slow, and a
/// hostile PDF may make it slower still: run it on a blocking thread, bounded by the caller
/// in time and in how many run at once. A panic in the reader is a PDF that cannot be read.
pub fn pdf_text(bytes: &[u8]) -> Option<String> {
    let pages = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes))
        .ok()?
        .ok()?;
    let mut text = String::new();
    for (at, page) in pages.iter().enumerate() {
        let page = page.trim();
        if page.is_empty() {
            continue;
        }
        text.push_str(&format!("--- page {} ---\n{page}\n", at + 1));
        if text.len() > MAX_PDF_TEXT_BYTES {
            let mut end = MAX_PDF_TEXT_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push_str("\n[… the rest of the PDF is left out]");
            break;
        }
    }
    (!text.is_empty()).then_some(text)
}

#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
#[cfg(test)]
mod tests;
