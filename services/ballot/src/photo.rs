//! Candidates' photos: an upload (JPEG or PNG) is decoded, shrunk and re-encoded as a fresh
//! JPEG, so what is served is never the file as uploaded.
//!
//! Each guard, in the order it runs, and why:
//! - the size of the upload (`MAX_UPLOAD_BYTES`): the JPEG decoder copies the whole file, and
//!   a big file is a lot of work before any pixel is read;
//! - the magic bytes (JPEG `FF D8 FF`, PNG's 8-byte signature), never the file name or the
//!   content type the browser sent: an HTML or SVG page, a GIF or anything else is refused
//!   before a decoder sees it;
//! - the canvas, read from the header before any pixel is decoded: a 100-byte PNG can claim
//!   100000×100000 pixels (a decompression bomb, 40 GB once decoded), so more than 40
//!   megapixels or 12000 pixels a side is refused, and so is less than 32 pixels a side
//!   (nothing a voter could recognise) or a long side more than 4 short ones (a strip);
//! - a JPEG must reach its end marker: the decoder would fill a cut-off file with grey;
//! - `image::Limits` on the decoder (12000 pixels a side, 256 MiB of buffers), a second guard
//!   should the header check ever be wrong;
//! - any decode error is a damaged file, never a panic.
//!
//! Then the photo is flattened onto white (a JPEG has no transparency), shrunk to at most
//! `MAX_SIDE` a side, turned as its EXIF orientation says (a phone photo taken sideways shows
//! upright) and encoded afresh: the output carries no EXIF (GPS position, camera serial), ICC
//! profile or text chunk. It is deterministic: the same upload gives the same bytes and hash.
//! The work is CPU-bound; the caller runs it in `spawn_blocking`, at most two at a time.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbaImage};
use sha2::{Digest, Sha256};
use turnout_core::domain::hex;

/// The largest upload accepted: 5 MB.
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;
/// The longest side of a processed photo, in pixels (never upscaled to it).
pub const MAX_SIDE: u32 = 600;
/// The content type of every processed photo.
pub const CONTENT_TYPE: &str = "image/jpeg";

/// The most pixels an upload may have (40 megapixels).
const MAX_PIXELS: u64 = 40_000_000;
/// The longest side an upload may have.
const MAX_CANVAS_SIDE: u32 = 12_000;
/// The shortest side an upload may have.
const MIN_SIDE: u32 = 32;
/// The most the long side may be, in short sides (a panorama is not a portrait).
const MAX_ASPECT: u32 = 4;
/// The most the decoder may allocate.
const MAX_ALLOC: u64 = 256 * 1024 * 1024;
/// The JPEG quality of the output.
const JPEG_QUALITY: u8 = 85;
const JPEG_MAGIC: &[u8] = &[0xFF, 0xD8, 0xFF];
const PNG_MAGIC: &[u8] = &[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

/// A processed photo: a fresh JPEG, ready to store and serve as `CONTENT_TYPE`.
#[derive(Debug, Clone)]
pub struct Photo {
    /// The JPEG bytes.
    pub bytes: Vec<u8>,
    /// The SHA-256 of `bytes`, lower-case hex.
    pub hash: String,
    /// The width in pixels.
    pub width: u32,
    /// The height in pixels.
    pub height: u32,
}

/// Why an upload was refused; the message is shown next to the photo field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PhotoError {
    /// The upload has no bytes.
    #[error("the photo is empty")]
    Empty,
    /// The upload is larger than `MAX_UPLOAD_BYTES`.
    #[error("the photo is larger than 5 MB")]
    TooLarge,
    /// The upload does not start like a JPEG or a PNG.
    #[error("the photo must be a JPEG or PNG image")]
    NotAnImage,
    /// The upload starts like an image but cannot be decoded.
    #[error("the photo could not be read: the file is damaged or incomplete")]
    Broken,
    /// The canvas is more than 40 megapixels or 12000 pixels a side.
    #[error("the photo is {width}×{height} pixels, too big: at most 40 megapixels and 12000 pixels a side")]
    CanvasTooLarge {
        /// The width the file claims.
        width: u32,
        /// The height the file claims.
        height: u32,
    },
    /// A side is shorter than 32 pixels.
    #[error("the photo is too small: at least 32 pixels a side")]
    TooSmall,
    /// The long side is more than `MAX_ASPECT` times the short one (a banner or a strip,
    /// which would show as a sliver beside the manifesto).
    #[error("the photo is {width}×{height} pixels, too narrow: its long side may be at most 4 times its short side")]
    TooNarrow {
        /// The width the file claims.
        width: u32,
        /// The height the file claims.
        height: u32,
    },
}

/// Checks an upload, then decodes, orients, shrinks and re-encodes it as a JPEG without
/// metadata.
pub fn process(upload: &[u8]) -> Result<Photo, PhotoError> {
    let format = sniff(upload)?;
    let (image, orientation) = decode(upload, format)?;
    let mut image = shrink(flatten(image));
    image.apply_orientation(orientation);
    let (width, height) = (image.width(), image.height());
    let bytes = encode(&image.into_rgb8())?;
    Ok(Photo { hash: sha256_hex(&bytes), bytes, width, height })
}

/// The upload's format, from its size and magic bytes.
fn sniff(upload: &[u8]) -> Result<ImageFormat, PhotoError> {
    if upload.is_empty() {
        Err(PhotoError::Empty)
    } else if upload.len() > MAX_UPLOAD_BYTES {
        Err(PhotoError::TooLarge)
    } else if upload.starts_with(JPEG_MAGIC) {
        Ok(ImageFormat::Jpeg)
    } else if upload.starts_with(PNG_MAGIC) {
        Ok(ImageFormat::Png)
    } else {
        Err(PhotoError::NotAnImage)
    }
}

/// Decodes the pixels once the header's canvas is checked; also returns the EXIF orientation.
fn decode(upload: &[u8], format: ImageFormat) -> Result<(DynamicImage, Orientation), PhotoError> {
    let mut reader = ImageReader::with_format(Cursor::new(upload), format);
    reader.limits(header_limits());
    let mut decoder = reader.into_decoder().map_err(|e| from_image_error(e, None))?;
    let dimensions = decoder.dimensions();
    check_canvas(dimensions)?;
    if format == ImageFormat::Jpeg && !jpeg_is_complete(upload) {
        return Err(PhotoError::Broken);
    }
    let mut limits = decoder_limits();
    decoder.set_limits(limits.clone()).map_err(|e| from_image_error(e, Some(dimensions)))?;
    limits.reserve(decoder.total_bytes()).map_err(|e| from_image_error(e, Some(dimensions)))?;
    // A damaged EXIF block is no reason to refuse the photo: it is shown as stored.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(|e| from_image_error(e, Some(dimensions)))?;
    Ok((image, orientation))
}

/// Whether a JPEG's segments and scans run to its end-of-image marker.
///
/// The JPEG decoder is lenient: it fills the missing part of a truncated file with grey
/// rather than fail, so an interrupted upload would show as half a photo. Segments are
/// skipped by their length (an EXIF thumbnail's own end marker is not mistaken for the
/// file's); anything after the end marker (a phone's trailer) is ignored.
fn jpeg_is_complete(jpeg: &[u8]) -> bool {
    let mut at = 2;
    while let Some(marker_at) = next_marker(jpeg, at) {
        match jpeg.get(marker_at + 1) {
            Some(0xD9) => return true,
            _ => match jpeg.get(marker_at + 2..marker_at + 4) {
                Some(&[high, low]) => at = marker_at + 2 + usize::from(u16::from_be_bytes([high, low])),
                _ => return false,
            },
        }
    }
    false
}

/// The offset of the next JPEG marker from `from`: `FF` then a byte that is not a stuffed
/// `00`, a fill `FF`, or a standalone marker inside a scan (TEM, RST0–RST7).
fn next_marker(jpeg: &[u8], from: usize) -> Option<usize> {
    let rest = jpeg.get(from..)?;
    rest.windows(2)
        .position(|pair| pair[0] == 0xFF && !matches!(pair[1], 0x00 | 0x01 | 0xFF | 0xD0..=0xD7))
        .map(|offset| from + offset)
}

/// The limits while the header is read: buffers only, the canvas is checked by hand next.
fn header_limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    limits
}

/// The limits while the pixels are decoded: the second guard behind `check_canvas`.
fn decoder_limits() -> Limits {
    let mut limits = header_limits();
    limits.max_image_width = Some(MAX_CANVAS_SIDE);
    limits.max_image_height = Some(MAX_CANVAS_SIDE);
    limits
}

/// Refuses a canvas too large to decode safely or too small to show.
fn check_canvas((width, height): (u32, u32)) -> Result<(), PhotoError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS || width.max(height) > MAX_CANVAS_SIDE {
        Err(PhotoError::CanvasTooLarge { width, height })
    } else if width.min(height) < MIN_SIDE {
        Err(PhotoError::TooSmall)
    } else if u64::from(width.max(height)) > u64::from(MAX_ASPECT) * u64::from(width.min(height)) {
        Err(PhotoError::TooNarrow { width, height })
    } else {
        Ok(())
    }
}

/// A limits error is a canvas too large (when its size is known); anything else is damage.
fn from_image_error(error: ImageError, dimensions: Option<(u32, u32)>) -> PhotoError {
    match (error, dimensions) {
        (ImageError::Limits(_), Some((width, height))) => PhotoError::CanvasTooLarge { width, height },
        _ => PhotoError::Broken,
    }
}

/// Blends any transparency onto white, so transparent pixels do not turn black in the JPEG.
///
/// Done before resizing, so the colour hidden under transparent pixels cannot bleed in.
fn flatten(image: DynamicImage) -> DynamicImage {
    if !image.color().has_alpha() {
        return image;
    }
    let mut rgba: RgbaImage = image.into_rgba8();
    for pixel in rgba.pixels_mut() {
        let alpha = u16::from(pixel[3]);
        for channel in &mut pixel.0[..3] {
            *channel = blend_on_white(*channel, alpha);
        }
        pixel[3] = u8::MAX;
    }
    DynamicImage::ImageRgba8(rgba)
}

/// One channel of a pixel with opacity `alpha` (0–255) over white, rounded.
fn blend_on_white(channel: u8, alpha: u16) -> u8 {
    let blended = (u16::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255;
    u8::try_from(blended).unwrap_or(u8::MAX)
}

/// Shrinks so the longest side is at most `MAX_SIDE`, keeping the aspect ratio; never enlarges.
///
/// Done before the orientation is applied: rotating the small image is cheaper, and the box is
/// square, so the result is the same size either way.
fn shrink(image: DynamicImage) -> DynamicImage {
    if image.width().max(image.height()) <= MAX_SIDE {
        return image;
    }
    image.resize(MAX_SIDE, MAX_SIDE, FilterType::Lanczos3)
}

/// A fresh baseline JPEG: the encoder writes a JFIF header and no other metadata.
fn encode(rgb: &image::RgbImage) -> Result<Vec<u8>, PhotoError> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY).encode_image(rgb).map_err(|_| PhotoError::Broken)?;
    Ok(bytes)
}

/// Lower-case hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::png::PngEncoder;
    use image::{ImageEncoder, Rgb, RgbImage, Rgba};

    // ---- fixtures ----

    /// A colourful RGB image, so the JPEG encoder has something to compress.
    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]))
    }

    fn jpeg(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90).encode_image(image).unwrap();
        out
    }

    fn png_rgba(image: &RgbaImage) -> Vec<u8> {
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgba8)
            .unwrap();
        out
    }

    fn png_rgb(image: &RgbImage) -> Vec<u8> {
        let mut out = Vec::new();
        PngEncoder::new(&mut out)
            .write_image(image.as_raw(), image.width(), image.height(), image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    /// CRC-32 (IEEE, as PNG uses it), bit by bit.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
            }
        }
        !crc
    }

    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
        out
    }

    /// A PNG that claims `width`×`height` RGBA pixels, with a tiny (empty) IDAT.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
        let mut out = PNG_MAGIC.to_vec();
        out.extend(png_chunk(b"IHDR", &ihdr));
        out.extend(png_chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]));
        out.extend(png_chunk(b"IEND", &[]));
        out
    }

    /// The JPEG's segments before the scan: (marker, offset of the marker).
    fn jpeg_segments(bytes: &[u8]) -> Vec<(u8, usize)> {
        let mut segments = Vec::new();
        let mut at = 2;
        while at + 4 <= bytes.len() && bytes[at] == 0xFF {
            let marker = bytes[at + 1];
            segments.push((marker, at));
            if marker == 0xDA {
                break;
            }
            at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        }
        segments
    }

    /// A generated JPEG whose SOF0 claims `width`×`height`.
    fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
        let mut bytes = jpeg(&gradient(64, 64));
        let (_, sof) = jpeg_segments(&bytes).into_iter().find(|(m, _)| *m == 0xC0).unwrap();
        bytes[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
        bytes
    }

    /// A little-endian TIFF with Orientation = 6 and an ImageDescription holding `secret`.
    fn exif_tiff(secret: &[u8]) -> Vec<u8> {
        let mut text = secret.to_vec();
        text.push(0);
        let text_offset = 8 + 2 + 2 * 12 + 4;
        let mut tiff = b"II\x2A\x00".to_vec();
        tiff.extend_from_slice(&8u32.to_le_bytes());
        tiff.extend_from_slice(&2u16.to_le_bytes());
        // Tag 0x010E ImageDescription, ASCII, count, offset.
        tiff.extend_from_slice(&[0x0E, 0x01, 2, 0]);
        tiff.extend_from_slice(&(text.len() as u32).to_le_bytes());
        tiff.extend_from_slice(&(text_offset as u32).to_le_bytes());
        // Tag 0x0112 Orientation, SHORT, 1, value 6 (rotate 90° clockwise to show).
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        tiff.extend_from_slice(&0u32.to_le_bytes());
        tiff.extend_from_slice(&text);
        tiff
    }

    /// `jpeg` with an APP1 Exif segment spliced in right after SOI.
    fn with_exif(jpeg: &[u8], secret: &[u8]) -> Vec<u8> {
        let mut payload = b"Exif\0\0".to_vec();
        payload.extend(exif_tiff(secret));
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        out.extend(payload);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    fn decoded(photo: &Photo) -> DynamicImage {
        image::load_from_memory_with_format(&photo.bytes, ImageFormat::Jpeg).unwrap()
    }

    /// The output is a JPEG whose only segment before the tables is the JFIF APP0: no EXIF,
    /// ICC, XMP or comment.
    fn assert_bare_jpeg(photo: &Photo) {
        assert!(photo.bytes.starts_with(JPEG_MAGIC));
        assert!(!contains(&photo.bytes, b"Exif"));
        assert!(!contains(&photo.bytes, b"ICC_PROFILE"));
        let markers: Vec<u8> = jpeg_segments(&photo.bytes).into_iter().map(|(m, _)| m).collect();
        assert_eq!(markers.iter().filter(|m| (0xE0..=0xEF).contains(*m) || **m == 0xFE).count(), 1, "{markers:x?}");
        assert_eq!(markers[0], 0xE0);
    }

    // ---- resizing ----

    #[test]
    fn a_large_jpeg_is_shrunk_to_the_longest_side() {
        let photo = process(&jpeg(&gradient(1200, 800))).unwrap();
        assert_eq!((photo.width, photo.height), (600, 400));
        assert_eq!(decoded(&photo).to_rgb8().dimensions(), (600, 400));
        assert_bare_jpeg(&photo);
    }

    #[test]
    fn a_small_photo_is_not_enlarged() {
        let photo = process(&jpeg(&gradient(300, 200))).unwrap();
        assert_eq!((photo.width, photo.height), (300, 200));
        assert_eq!(decoded(&photo).to_rgb8().dimensions(), (300, 200));
    }

    #[test]
    fn a_tall_png_keeps_its_aspect_ratio() {
        let photo = process(&png_rgb(&gradient(500, 1000))).unwrap();
        assert_eq!((photo.width, photo.height), (300, 600));
    }

    // ---- transparency ----

    #[test]
    fn a_png_with_alpha_becomes_a_jpeg_on_white() {
        // Left half transparent (black underneath), right half opaque red.
        let image =
            RgbaImage::from_fn(200, 100, |x, _| if x < 100 { Rgba([0, 0, 0, 0]) } else { Rgba([255, 0, 0, 255]) });
        let photo = process(&png_rgba(&image)).unwrap();
        assert_bare_jpeg(&photo);
        let out = decoded(&photo).to_rgb8();
        assert_eq!(out.dimensions(), (200, 100));
        assert!(out.get_pixel(20, 50).0.iter().all(|&c| c >= 245), "{:?}", out.get_pixel(20, 50));
        let red = out.get_pixel(180, 50).0;
        assert!(red[0] >= 235 && red[1] <= 20 && red[2] <= 20, "{red:?}");
    }

    #[test]
    fn half_transparent_blends_halfway_to_white() {
        assert_eq!(blend_on_white(0, 0), 255);
        assert_eq!(blend_on_white(0, 255), 0);
        assert_eq!(blend_on_white(0, 128), 127);
        assert_eq!(blend_on_white(200, 255), 200);
    }

    // ---- metadata ----

    #[test]
    fn exif_is_applied_then_stripped() {
        // Left half red, right half blue, stored sideways: shown upright, red is on top.
        let stored = RgbImage::from_fn(400, 200, |x, _| if x < 200 { Rgb([255, 0, 0]) } else { Rgb([0, 0, 255]) });
        let upload = with_exif(&jpeg(&stored), b"SECRET-GPS-TAG");
        assert!(contains(&upload, b"SECRET-GPS-TAG"));
        let photo = process(&upload).unwrap();
        assert!(!contains(&photo.bytes, b"SECRET-GPS-TAG"));
        assert_bare_jpeg(&photo);
        assert_eq!((photo.width, photo.height), (200, 400));
        let out = decoded(&photo).to_rgb8();
        assert!(out.get_pixel(100, 50)[0] > 200 && out.get_pixel(100, 50)[2] < 60, "{:?}", out.get_pixel(100, 50));
        assert!(out.get_pixel(100, 350)[2] > 200 && out.get_pixel(100, 350)[0] < 60, "{:?}", out.get_pixel(100, 350));
    }

    #[test]
    fn png_text_chunks_are_stripped() {
        let png = png_rgb(&gradient(100, 80));
        // Right after the signature and IHDR (8 + 25 bytes).
        let mut upload = png[..33].to_vec();
        upload.extend(png_chunk(b"tEXt", b"Comment\0SECRET-PNG-TEXT"));
        upload.extend_from_slice(&png[33..]);
        assert!(contains(&upload, b"SECRET-PNG-TEXT"));
        let photo = process(&upload).unwrap();
        assert!(!contains(&photo.bytes, b"SECRET-PNG-TEXT"));
        assert_bare_jpeg(&photo);
    }

    // ---- fakes and damage ----

    #[test]
    fn files_that_are_not_jpeg_or_png_are_refused_by_their_bytes() {
        let mut noise = Vec::with_capacity(4096);
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..4096 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.push((state >> 32) as u8);
        }
        let fakes: [&[u8]; 6] = [
            b"just some notes, renamed photo.jpg\n",
            b"<!DOCTYPE html><html><script>alert(1)</script></html>",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>",
            b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,",
            &noise,
            b"\xFF\xD8", // a JPEG start cut too short to be one
        ];
        for fake in fakes {
            assert_eq!(process(fake).unwrap_err(), PhotoError::NotAnImage, "{:?}", &fake[..fake.len().min(12)]);
        }
    }

    #[test]
    fn a_truncated_jpeg_is_broken() {
        let whole = jpeg(&gradient(400, 300));
        assert_eq!(process(&whole[..whole.len() / 2]).unwrap_err(), PhotoError::Broken);
    }

    #[test]
    fn a_jpeg_is_complete_only_up_to_its_end_marker() {
        let whole = jpeg(&gradient(64, 48));
        assert!(jpeg_is_complete(&whole));
        assert!(!jpeg_is_complete(&whole[..whole.len() - 1]));
        // A trailer after the end marker is fine; an end marker inside EXIF does not count.
        let mut trailer = whole.clone();
        trailer.extend_from_slice(b"trailing bytes");
        assert!(jpeg_is_complete(&trailer));
        let with_thumbnail = with_exif(&whole, b"\xFF\xD9");
        let cut = with_thumbnail.len() - 10;
        assert!(!jpeg_is_complete(&with_thumbnail[..cut]));
        assert!(!jpeg_is_complete(JPEG_MAGIC));
    }

    #[test]
    fn a_truncated_png_is_broken() {
        let whole = png_rgb(&gradient(400, 300));
        assert_eq!(process(&whole[..whole.len() / 2]).unwrap_err(), PhotoError::Broken);
    }

    #[test]
    fn a_bare_signature_is_broken() {
        assert_eq!(process(PNG_MAGIC).unwrap_err(), PhotoError::Broken);
        assert_eq!(process(JPEG_MAGIC).unwrap_err(), PhotoError::Broken);
    }

    // ---- canvas ----

    #[test]
    fn a_png_bomb_is_refused_from_its_header() {
        let bomb = png_claiming(100_000, 100_000);
        assert!(bomb.len() < 100);
        assert_eq!(process(&bomb).unwrap_err(), PhotoError::CanvasTooLarge { width: 100_000, height: 100_000 });
    }

    #[test]
    fn a_jpeg_bomb_is_refused_from_its_header() {
        let bomb = jpeg_claiming(60_000, 60_000);
        assert_eq!(process(&bomb).unwrap_err(), PhotoError::CanvasTooLarge { width: 60_000, height: 60_000 });
    }

    #[test]
    fn too_many_pixels_or_too_long_a_side_is_too_large() {
        // 48 megapixels, each side under 12000.
        assert_eq!(
            process(&png_claiming(8000, 6000)).unwrap_err(),
            PhotoError::CanvasTooLarge { width: 8000, height: 6000 }
        );
        // Few pixels, but a side over 12000.
        assert_eq!(
            process(&png_claiming(12_001, 40)).unwrap_err(),
            PhotoError::CanvasTooLarge { width: 12_001, height: 40 }
        );
        assert_eq!(
            process(&jpeg_claiming(100, 12_001)).unwrap_err(),
            PhotoError::CanvasTooLarge { width: 100, height: 12_001 }
        );
    }

    #[test]
    fn the_canvas_check_has_inclusive_bounds() {
        assert_eq!(check_canvas((12_000, 3_333)), Ok(()));
        assert_eq!(check_canvas((8_000, 5_000)), Ok(()));
        assert_eq!(check_canvas((32, 32)), Ok(()));
        assert_eq!(check_canvas((31, 600)), Err(PhotoError::TooSmall));
        assert_eq!(check_canvas((12_000, 3_000)), Ok(()), "4:1 exactly");
        assert_eq!(check_canvas((400, 1_600)), Ok(()));
        assert_eq!(check_canvas((401, 100)), Err(PhotoError::TooNarrow { width: 401, height: 100 }));
        assert_eq!(check_canvas((32, 129)), Err(PhotoError::TooNarrow { width: 32, height: 129 }));
    }

    #[test]
    fn a_tiny_photo_is_too_small() {
        assert_eq!(process(&png_rgb(&gradient(10, 10))).unwrap_err(), PhotoError::TooSmall);
        assert_eq!(process(&jpeg(&gradient(600, 20))).unwrap_err(), PhotoError::TooSmall);
    }

    #[test]
    fn the_decoder_limits_are_a_second_guard() {
        let limits = decoder_limits();
        assert_eq!((limits.max_image_width, limits.max_image_height), (Some(12_000), Some(12_000)));
        let error = limits.check_dimensions(12_001, 100).unwrap_err();
        assert_eq!(
            from_image_error(error, Some((12_001, 100))),
            PhotoError::CanvasTooLarge { width: 12_001, height: 100 }
        );
        let error = limits.check_dimensions(12_001, 100).unwrap_err();
        assert_eq!(from_image_error(error, None), PhotoError::Broken);
    }

    // ---- size ----

    #[test]
    fn an_empty_upload_is_empty() {
        assert_eq!(process(&[]).unwrap_err(), PhotoError::Empty);
    }

    #[test]
    fn an_upload_over_5_mb_is_too_large() {
        let mut upload = vec![0u8; MAX_UPLOAD_BYTES + 1];
        upload[..3].copy_from_slice(JPEG_MAGIC);
        assert_eq!(process(&upload).unwrap_err(), PhotoError::TooLarge);
        assert_ne!(process(&upload[..MAX_UPLOAD_BYTES]).unwrap_err(), PhotoError::TooLarge);
    }

    // ---- output ----

    #[test]
    fn the_output_is_deterministic_and_hashed() {
        let upload = with_exif(&jpeg(&gradient(900, 700)), b"x");
        let first = process(&upload).unwrap();
        let second = process(&upload).unwrap();
        assert_eq!(first.bytes, second.bytes);
        assert_eq!(first.hash, second.hash);
        assert_eq!(first.hash, sha256_hex(&first.bytes));
        assert_eq!(first.hash.len(), 64);
        assert!(first.hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    }

    #[test]
    fn the_hash_is_lower_case_sha256_hex() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn messages_are_plain_words() {
        assert_eq!(PhotoError::TooLarge.to_string(), "the photo is larger than 5 MB");
        assert_eq!(
            PhotoError::CanvasTooLarge { width: 100_000, height: 100_000 }.to_string(),
            "the photo is 100000×100000 pixels, too big: at most 40 megapixels and 12000 pixels a side"
        );
        assert_eq!(CONTENT_TYPE, "image/jpeg");
    }
}
