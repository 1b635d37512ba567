//! Files: safetensors (checkpoints, published weights) and images.
//!
//! Writes go to a temporary file in the same folder that is then renamed over
//! the target, so an interrupted write never corrupts the last good file.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A named host-side f32 array with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedArray {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

fn io_err(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File(format!("{what} '{}': {e}", path.display()))
}

/// Tensor dtypes that are read, widened or narrowed to f32; anything else
/// (integers, booleans, 8-bit floats) is refused rather than reinterpreted.
const FLOAT_DTYPES: &str = "F32, F16, BF16, F64";

/// Parses safetensors bytes: every tensor as f32 (F16, BF16 and F64 are
/// converted), sorted by name, and the string metadata. The error says what
/// is wrong without naming a file, for [`read_safetensors`] to prefix.
pub fn parse_safetensors(
    bytes: &[u8],
) -> std::result::Result<(Vec<NamedArray>, HashMap<String, String>), String> {
    if bytes.len() < 8 {
        return Err(format!(
            "{} bytes is too short for a safetensors file (an 8-byte header length, then a JSON header)",
            bytes.len()
        ));
    }
    let declared = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let rest = (bytes.len() - 8) as u64;
    if declared > rest {
        return Err(format!(
            "the header claims {declared} bytes but only {rest} follow the length field (truncated, or not a safetensors file)"
        ));
    }
    let header = &bytes[8..8 + declared as usize];
    if header.first() != Some(&b'{') {
        return Err(format!(
            "the header does not start with '{{' (it begins {}); not a safetensors file",
            preview(header)
        ));
    }
    let (n, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(describe_st)?;
    // `read_metadata` checked that the offsets tile the data section exactly.
    let data = &bytes[8 + n..];
    let mut out = Vec::new();
    for (name, info) in meta.tensors() {
        let (a, b) = info.data_offsets;
        let values = to_f32(info.dtype, &data[a..b]).ok_or_else(|| {
            format!(
                "tensor '{name}' has dtype {:?}; only floating-point tensors ({FLOAT_DTYPES}) are read",
                info.dtype
            )
        })?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(format!("tensor '{name}' holds NaN or infinite values"));
        }
        out.push(NamedArray {
            name,
            shape: info.shape.clone(),
            data: values,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}

fn describe_st(e: safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::InvalidHeaderDeserialization(m) => format!("the JSON header is malformed: {m}"),
        E::HeaderTooLarge => "the header is larger than the 100 MB safetensors allows".into(),
        E::InvalidOffset(n) => format!(
            "tensor '{n}' has data offsets that overlap, leave gaps or run past the data (a corrupt or truncated file)"
        ),
        E::TensorInvalidInfo => {
            "a tensor's shape and dtype do not match the size of its data".into()
        }
        E::MetadataIncompleteBuffer => {
            "the header's tensors do not cover the data section exactly (a truncated or padded file)"
                .into()
        }
        E::InvalidHeader(_) => "the header is not UTF-8 text".into(),
        E::ValidationOverflow => "a tensor's declared size overflows".into(),
        other => other.to_string(),
    }
}

/// Little-endian tensor bytes as f32, for the floating-point dtypes; `None` otherwise.
fn to_f32(dtype: safetensors::Dtype, b: &[u8]) -> Option<Vec<f32>> {
    use safetensors::Dtype;
    Some(match dtype {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        // bf16 is the top half of an f32.
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        _ => return None,
    })
}

/// IEEE 754 binary16 to f32 (exact: every half value is an f32 value).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        // Subnormal: frac × 2⁻²⁴, exact in f32.
        0 => {
            let v = frac as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

/// The first bytes of a buffer, as text when printable, else in hex.
fn preview(b: &[u8]) -> String {
    let head = &b[..b.len().min(12)];
    if !head.is_empty() && head.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        format!("'{}'", String::from_utf8_lossy(head))
    } else {
        let hex: Vec<String> = head.iter().map(|c| format!("{c:02x}")).collect();
        format!("with bytes {}", hex.join(" "))
    }
}

/// Reads every tensor of a safetensors file as f32 (F16, BF16 and F64 are
/// converted; other dtypes are refused) and its metadata.
pub fn read_safetensors(path: &Path) -> Result<(Vec<NamedArray>, HashMap<String, String>)> {
    let bytes = read_file(path, "safetensors file", MAX_SAFETENSORS_BYTES)?;
    parse_safetensors(&bytes)
        .map_err(|e| Error::File(format!("safetensors file '{}': {e}", path.display())))
}

/// Checkpoints and weights larger than this are refused before they are read.
const MAX_SAFETENSORS_BYTES: u64 = 8 << 30;

/// Reads a whole file, refusing folders, empty files and files over `max` bytes.
fn read_file(path: &Path, what: &str, max: u64) -> Result<Vec<u8>> {
    let meta = fs::metadata(path).map_err(|e| io_err(&format!("cannot read {what}"), path, e))?;
    if meta.is_dir() {
        return Err(Error::File(format!(
            "{what} '{}' is a folder",
            path.display()
        )));
    }
    if meta.len() == 0 {
        return Err(Error::File(format!(
            "{what} '{}' is empty (0 bytes)",
            path.display()
        )));
    }
    if meta.len() > max {
        return Err(Error::File(format!(
            "{what} '{}' is {} bytes, more than the {max} read",
            path.display(),
            meta.len()
        )));
    }
    fs::read(path).map_err(|e| io_err(&format!("cannot read {what}"), path, e))
}

/// A sibling temporary path, unique to this process.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` atomically and durably: a temporary file in the
/// same folder, flushed to disk before it is renamed over `path`, then the
/// folder flushed so that the rename itself survives a power loss. Without the
/// first flush a crash after the rename can leave an empty or partial file
/// under the final name; without the second, the old file can come back.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        fs::create_dir_all(dir).map_err(|e| io_err("cannot create folder for", path, e))?;
    }
    let tmp = temp_path(path);
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err("cannot write", path, e)
    })?;
    // Only Unix lets a folder be opened and flushed like a file.
    #[cfg(unix)]
    fs::File::open(dir.unwrap_or(Path::new(".")))
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("cannot flush the folder of", path, e))?;
    Ok(())
}

/// Writes tensors (and string metadata) as a safetensors file, atomically.
pub fn write_safetensors(
    path: &Path,
    arrays: &[NamedArray],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let mut bufs = Vec::with_capacity(arrays.len());
    for a in arrays {
        let n: usize = a.shape.iter().product();
        if n != a.data.len() {
            return Err(Error::Shape(format!(
                "saveSafetensors: '{}' has shape {:?} ({n} values) but {} values",
                a.name,
                a.shape,
                a.data.len()
            )));
        }
        if a.data.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "saveSafetensors: '{}' holds NaN or infinite values; refusing to overwrite '{}'",
                a.name,
                path.display()
            )));
        }
        bufs.push(
            a.data
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
    }
    let views = arrays
        .iter()
        .zip(&bufs)
        .map(|(a, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, a.shape.clone(), b)
                .map(|v| (a.name.clone(), v))
                .map_err(|e| Error::InvalidArgument(format!("saveSafetensors: '{}': {e}", a.name)))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = if metadata.is_empty() {
        None
    } else {
        Some(metadata)
    };
    let bytes = safetensors::serialize(views, meta)
        .map_err(|e| Error::InvalidArgument(format!("saveSafetensors: {e}")))?;
    write_atomic(path, &bytes)
}

/// An image as planar f32 in [0, 1]: `data` is `[channels, height, width]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// What a decoder may be asked to produce. A file's header can declare any
/// size; these bounds are checked before pixel memory is allocated, so a
/// corrupt or hostile header costs an error, not the machine's memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageLimits {
    /// Longest side, in pixels.
    pub max_side: u32,
    /// Width × height.
    pub max_pixels: u64,
    /// Bytes of the file plus what the decoder allocates (pixels and scratch).
    pub max_bytes: u64,
}

impl Default for ImageLimits {
    /// 64 megapixels (e.g. 8192 × 8192) and 1 GiB: larger than any
    /// restoration benchmark image, small enough that the f32 copy fits.
    fn default() -> Self {
        ImageLimits {
            max_side: 32768,
            max_pixels: 1 << 26,
            max_bytes: 1 << 30,
        }
    }
}

/// Decodes PNG, JPEG, BMP or TIFF bytes (the content decides the format, not
/// a file name). `channels`: 1 (grey, the luma of colour images), 3 (RGB) or
/// `None` (1 for grey files, 3 otherwise). Conversions, by rule: 16-bit
/// samples keep their precision, palettes are expanded, CMYK becomes RGB, an
/// alpha channel that is fully opaque is dropped; an image with transparent
/// pixels is refused (what lies under them is undefined). The error says what
/// is wrong without naming a file, for [`read_image`] to prefix.
pub fn decode_image(
    bytes: &[u8],
    channels: Option<usize>,
    limits: &ImageLimits,
) -> std::result::Result<Image, String> {
    // The checks below keep known decoder panics away (see `png_chunks_fit`);
    // this turns any other one into an error about the file, not a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_checked(bytes, channels, limits)
    }))
    .unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("unknown");
        Err(format!("the decoder failed on corrupt data ({why})"))
    })
}

fn decode_checked(
    bytes: &[u8],
    channels: Option<usize>,
    limits: &ImageLimits,
) -> std::result::Result<Image, String> {
    if let Some(c) = channels.filter(|c| !matches!(c, 1 | 3)) {
        return Err(format!("channels must be 1 or 3, got {c}"));
    }
    if bytes.is_empty() {
        return Err("the file is empty (0 bytes)".into());
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(format!(
            "the file is {} bytes, more than the {} allowed",
            bytes.len(),
            limits.max_bytes
        ));
    }
    let format = image::guess_format(bytes).map_err(|_| {
        format!(
            "not a PNG, JPEG, BMP or TIFF file (it begins {})",
            preview(bytes)
        )
    })?;
    let name = match format {
        image::ImageFormat::Png => "PNG",
        image::ImageFormat::Jpeg => "JPEG",
        image::ImageFormat::Bmp => "BMP",
        image::ImageFormat::Tiff => "TIFF",
        other => {
            return Err(format!(
                "the file holds {} data; spikeir reads PNG, JPEG, BMP and TIFF",
                other
                    .extensions_str()
                    .first()
                    .unwrap_or(&"unknown")
                    .to_uppercase()
            ))
        }
    };
    if format == image::ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        // zune-jpeg would fill a cut-off scan with grey and report success.
        return Err(
            "the JPEG data is truncated (no end-of-image marker after the last scan)".into(),
        );
    }
    if format == image::ImageFormat::Tiff {
        tiff_entries_fit(bytes)?;
    }
    if format == image::ImageFormat::Png {
        png_chunks_fit(bytes)?;
    }
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(limits.max_side);
    lim.max_image_height = Some(limits.max_side);
    lim.max_alloc = Some(limits.max_bytes.saturating_sub(bytes.len() as u64));
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    reader.limits(lim.clone());
    let decoder = reader.into_decoder().map_err(|e| describe_image(name, e))?;
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    if w == 0 || h == 0 {
        return Err(format!(
            "the {name} header declares a {w}×{h} image (no pixels)"
        ));
    }
    if w as u64 * h as u64 > limits.max_pixels {
        return Err(format!(
            "the {name} header declares {w}×{h} pixels, more than the {} allowed",
            limits.max_pixels
        ));
    }
    lim.reserve(image::ImageDecoder::total_bytes(&decoder))
        .map_err(|e| describe_image(name, e))?;
    let img = image::DynamicImage::from_decoder(decoder).map_err(|e| describe_image(name, e))?;
    if img.color().has_alpha() {
        let transparent = transparent_pixels(&img);
        if transparent > 0 {
            return Err(format!(
                "{transparent} of {} pixels are transparent (alpha < 1); flatten the image onto a background first",
                w as u64 * h as u64
            ));
        }
    }
    let channels = match channels {
        Some(c) => c,
        None if img.color().has_color() => 3,
        None => 1,
    };
    let (width, height) = (w as usize, h as usize);
    let data = if channels == 1 {
        let g = img.to_luma16();
        g.pixels().map(|p| p.0[0] as f32 / 65535.0).collect()
    } else {
        let rgb = img.to_rgb16();
        let mut planar = vec![0.0; 3 * width * height];
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                planar[c * width * height + i] = p.0[c] as f32 / 65535.0;
            }
        }
        planar
    };
    Ok(Image {
        channels,
        height,
        width,
        data,
    })
}

/// A decoder's error in words a user can act on.
fn describe_image(name: &str, e: image::ImageError) -> String {
    use image::ImageError as E;
    match e {
        E::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            format!("the {name} data is truncated (the file ends early)")
        }
        E::Limits(l) => format!("the {name} image is too large to decode: {l}"),
        E::Unsupported(u) => format!("unsupported {name} variant: {u}"),
        E::Decoding(d) => {
            let m = d.to_string();
            if m.contains("Not enough bytes") || m.to_lowercase().contains("eof") {
                format!("the {name} data is truncated (the file ends early)")
            } else {
                format!("corrupt {name} data: {m}")
            }
        }
        other => format!("corrupt {name} data: {other}"),
    }
}

/// Whether a JPEG has an end-of-image marker (FF D9) after its last
/// start-of-scan (FF DA). Entropy-coded data escapes FF as FF 00, so neither
/// marker can occur inside a scan; thumbnails in APP segments come before it.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let last_sos = b.windows(2).rposition(|w| w == [0xff, 0xda]);
    match last_sos {
        Some(i) => b[i..].windows(2).any(|w| w == [0xff, 0xd9]),
        None => false,
    }
}

/// Checks the PNG chunks that the `png` crate trusts: a palette (PLTE) must
/// hold whole RGB entries, at most 256 (png 0.18 indexes past the end of one
/// whose length is not a multiple of 3, and panics).
fn png_chunks_fit(b: &[u8]) -> std::result::Result<(), String> {
    let mut at = 8;
    while let Some(head) = b.get(at..at + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if &head[4..8] == b"PLTE" && (len == 0 || !len.is_multiple_of(3) || len > 768) {
            return Err(format!(
                "the PNG palette (PLTE) has {len} bytes; it must hold 1 to 256 RGB entries (a multiple of 3 bytes)"
            ));
        }
        if &head[4..8] == b"IEND" {
            break;
        }
        at = match at.checked_add(12 + len) {
            Some(next) => next,
            None => break,
        };
    }
    Ok(())
}

/// Checks that no entry of a TIFF's first directory claims more bytes than
/// the whole file holds. The `tiff` crate reads that directory before the
/// image crate passes it any limit and reserves 32 bytes a claimed value
/// (up to 256 MiB), so a 400-byte file could otherwise cost that much memory;
/// in a real file every value is stored in it, so a claim larger than the
/// file is corrupt.
fn tiff_entries_fit(b: &[u8]) -> std::result::Result<(), String> {
    let le = match b.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Ok(()),
    };
    let at = |i: usize, n: usize| -> Option<u64> {
        let s = b.get(i..i.checked_add(n)?)?;
        let mut v = 0u64;
        for k in 0..n {
            let byte = if le { s[n - 1 - k] } else { s[k] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    };
    let big = at(2, 2) == Some(43);
    let (first, count_len, entry_len, field_len) = if big {
        (at(8, 8), 8, 20, 8)
    } else {
        (at(4, 4), 2, 12, 4)
    };
    // A directory that cannot be found or read is the decoder's to report.
    let Some(ifd) = first.and_then(|o| usize::try_from(o).ok()) else {
        return Ok(());
    };
    let Some(entries) = at(ifd, count_len) else {
        return Ok(());
    };
    for e in 0..entries.min(u16::MAX as u64) as usize {
        let base = ifd + count_len + e * entry_len;
        let (Some(tag), Some(kind), Some(count)) =
            (at(base, 2), at(base + 2, 2), at(base + 4, field_len))
        else {
            return Ok(());
        };
        let size: u64 = match kind {
            3 | 8 => 2,
            4 | 9 | 11 | 13 => 4,
            5 | 10 | 12 | 16 | 17 | 18 => 8,
            _ => 1,
        };
        let claimed = count.saturating_mul(size);
        if claimed > b.len() as u64 {
            return Err(format!(
                "the TIFF directory's tag {tag} claims {count} values ({claimed} bytes), more than the whole file ({} bytes)",
                b.len()
            ));
        }
    }
    Ok(())
}

/// Pixels whose alpha is below the maximum.
fn transparent_pixels(img: &image::DynamicImage) -> u64 {
    use image::DynamicImage as D;
    let count = |it: &mut dyn Iterator<Item = bool>| it.filter(|&t| t).count() as u64;
    match img {
        D::ImageLumaA8(i) => count(&mut i.pixels().map(|p| p.0[1] < u8::MAX)),
        D::ImageRgba8(i) => count(&mut i.pixels().map(|p| p.0[3] < u8::MAX)),
        D::ImageLumaA16(i) => count(&mut i.pixels().map(|p| p.0[1] < u16::MAX)),
        D::ImageRgba16(i) => count(&mut i.pixels().map(|p| p.0[3] < u16::MAX)),
        D::ImageRgba32F(i) => count(&mut i.pixels().map(|p| p.0[3] < 1.0)),
        _ => 0,
    }
}

/// Reads a PNG, JPEG, BMP or TIFF file within the default [`ImageLimits`];
/// see [`decode_image`] for the channel rule and the conversions.
pub fn read_image(path: &Path, channels: Option<usize>) -> Result<Image> {
    let limits = ImageLimits::default();
    let bytes = read_file(path, "image", limits.max_bytes)?;
    decode_image(&bytes, channels, &limits)
        .map_err(|e| Error::File(format!("image '{}': {e}", path.display())))
}

/// Interleaved 8-bit pixels of a planar image (values clipped to [0, 1],
/// then rounded), and its colour type.
fn to_8bit(img: &Image, what: &str) -> Result<(Vec<u8>, image::ExtendedColorType)> {
    let n = img.width * img.height;
    if img.data.len() != img.channels * n
        || !(img.channels == 1 || img.channels == 3)
        || img.width == 0
        || img.height == 0
        || img.width > u32::MAX as usize
        || img.height > u32::MAX as usize
    {
        return Err(Error::Shape(format!(
            "{what}: {} values do not make a {}×{}×{} image (1 or 3 channels, at least 1×1)",
            img.data.len(),
            img.channels,
            img.height,
            img.width
        )));
    }
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let pixels: Vec<u8> = if img.channels == 1 {
        img.data.iter().map(|&v| q(v)).collect()
    } else {
        (0..n)
            .flat_map(|i| (0..3).map(move |c| (c, i)))
            .map(|(c, i)| q(img.data[c * n + i]))
            .collect()
    };
    let color = if img.channels == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    Ok((pixels, color))
}

/// Writes an 8-bit PNG (values clipped to [0, 1], then rounded), atomically.
pub fn write_png(path: &Path, img: &Image) -> Result<()> {
    let (pixels, color) = to_8bit(img, "writeImage")?;
    let mut buf = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut buf);
    image::ImageEncoder::write_image(encoder, &pixels, img.width as u32, img.height as u32, color)
        .map_err(|e| io_err("cannot encode PNG", path, e))?;
    write_atomic(path, &buf)
}

/// Writes an 8-bit image (clipped to [0, 1]) atomically, in the format its
/// extension names: `.png`, `.jpg`/`.jpeg` (quality 95), `.bmp`, `.tif`/`.tiff`.
pub fn write_image(path: &Path, img: &Image) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|x| x.to_str())
        .map(|x| x.to_ascii_lowercase())
        .unwrap_or_default();
    let (pixels, color) = to_8bit(img, "writeImage")?;
    let (w, h) = (img.width as u32, img.height as u32);
    let mut buf = Vec::new();
    let written = match ext.as_str() {
        "png" => image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut buf),
            &pixels,
            w,
            h,
            color,
        ),
        "jpg" | "jpeg" => image::ImageEncoder::write_image(
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 95),
            &pixels,
            w,
            h,
            color,
        ),
        "bmp" => image::ImageEncoder::write_image(
            image::codecs::bmp::BmpEncoder::new(&mut buf),
            &pixels,
            w,
            h,
            color,
        ),
        "tif" | "tiff" => image::ImageEncoder::write_image(
            image::codecs::tiff::TiffEncoder::new(std::io::Cursor::new(&mut buf)),
            &pixels,
            w,
            h,
            color,
        ),
        _ => {
            return Err(Error::File(format!(
                "cannot write image '{}': unknown extension '.{ext}' (png, jpg, bmp, tif)",
                path.display()
            )))
        }
    };
    written.map_err(|e| io_err("cannot encode image", path, e))?;
    write_atomic(path, &buf)
}

/// Image files of a folder, sorted by name: files with an image extension
/// (png, jpg, jpeg, bmp, tif, tiff, any case) that are not hidden (a leading
/// '.', such as macOS `._name.png` resource forks). Everything else — a
/// `MANIFEST.tsv`, sub-folders — is ignored; a folder with no image is an
/// error that says what it holds.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        let why = if dir.exists() {
            "is a file, not a folder"
        } else {
            "does not exist"
        };
        return Err(Error::File(format!(
            "image folder '{}' {why}",
            dir.display()
        )));
    }
    let entries = fs::read_dir(dir).map_err(|e| io_err("cannot list folder", dir, e))?;
    let mut others = Vec::new();
    let mut files = Vec::new();
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let is_image = !name.starts_with('.')
            && p.is_file()
            && p.extension()
                .and_then(|x| x.to_str())
                .map(|x| {
                    matches!(
                        x.to_ascii_lowercase().as_str(),
                        "png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff"
                    )
                })
                .unwrap_or(false);
        if is_image {
            files.push(p);
        } else {
            others.push(name);
        }
    }
    files.sort();
    if files.is_empty() {
        others.sort();
        let held = match others.len() {
            0 => "it is empty".to_string(),
            n => format!(
                "it holds {n} other entr{} ({}{})",
                if n == 1 { "y" } else { "ies" },
                others[..n.min(5)].join(", "),
                if n > 5 { ", …" } else { "" }
            ),
        };
        return Err(Error::File(format!(
            "no images (png, jpg, bmp, tif) in '{}': {held}",
            dir.display()
        )));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safetensors_round_trip_and_refuses_non_finite_values() {
        let dir = std::env::temp_dir().join(format!("spikeir-io-{}", std::process::id()));
        let path = dir.join("a.safetensors");
        let arrays = vec![
            NamedArray {
                name: "b".into(),
                shape: vec![2],
                data: vec![1.5, -2.0],
            },
            NamedArray {
                name: "a.weight".into(),
                shape: vec![1, 2, 1],
                data: vec![3.0, 4.0],
            },
        ];
        let meta = HashMap::from([("step".to_string(), "7".to_string())]);
        write_safetensors(&path, &arrays, meta.clone()).unwrap();
        let (back, m) = read_safetensors(&path).unwrap();
        assert_eq!(back, vec![arrays[1].clone(), arrays[0].clone()]);
        assert_eq!(m, meta);
        // A NaN is refused and the good file is left as it was.
        let bad = vec![NamedArray {
            name: "x".into(),
            shape: vec![1],
            data: vec![f32::NAN],
        }];
        assert!(write_safetensors(&path, &bad, HashMap::new())
            .unwrap_err()
            .to_string()
            .contains("NaN"));
        assert_eq!(read_safetensors(&path).unwrap().0.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error_that_names_it() {
        let dir = std::env::temp_dir().join(format!("spikeir-io-bad-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("bad.png");
        fs::write(&p, b"not an image at all").unwrap();
        let e = read_image(&p, None).unwrap_err().to_string();
        assert!(e.contains("bad.png"), "{e}");
        let s = dir.join("bad.safetensors");
        fs::write(&s, b"\x05\x00\x00\x00\x00\x00\x00\x00{oops").unwrap();
        assert!(read_safetensors(&s)
            .unwrap_err()
            .to_string()
            .contains("bad.safetensors"));
        fs::remove_dir_all(&dir).unwrap();
    }

    fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, format).unwrap();
        buf.into_inner()
    }

    #[test]
    fn sixteen_bit_samples_keep_their_precision() {
        // 1000 / 65535 is not on the 8-bit grid; an 8-bit detour would move it by up to 1/510.
        let g = image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![1000u16, 65535])
            .unwrap();
        let bytes = encode(image::DynamicImage::ImageLuma16(g), image::ImageFormat::Png);
        let img = decode_image(&bytes, None, &ImageLimits::default()).unwrap();
        assert_eq!((img.channels, img.height, img.width), (1, 1, 2));
        assert_eq!(img.data, vec![1000.0 / 65535.0, 1.0]);
    }

    #[test]
    fn opaque_alpha_is_dropped_and_transparency_is_refused() {
        let px =
            |a: u8| image::RgbaImage::from_raw(2, 1, vec![255, 0, 0, 255, 0, 0, 255, a]).unwrap();
        let opaque = encode(
            image::DynamicImage::ImageRgba8(px(255)),
            image::ImageFormat::Png,
        );
        let img = decode_image(&opaque, None, &ImageLimits::default()).unwrap();
        assert_eq!(img.channels, 3);
        // Planar RGB: red plane, green plane, blue plane.
        assert_eq!(img.data, vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        let clear = encode(
            image::DynamicImage::ImageRgba8(px(10)),
            image::ImageFormat::Png,
        );
        let e = decode_image(&clear, None, &ImageLimits::default()).unwrap_err();
        assert!(e.contains("1 of 2 pixels are transparent"), "{e}");
    }

    #[test]
    fn declared_sizes_over_the_limits_are_refused_before_decoding() {
        let bytes = encode(
            image::DynamicImage::new_luma8(64, 64),
            image::ImageFormat::Png,
        );
        let small = ImageLimits {
            max_side: 32768,
            max_pixels: 1000,
            max_bytes: 1 << 20,
        };
        let e = decode_image(&bytes, None, &small).unwrap_err();
        assert!(
            e.contains("declares 64×64 pixels, more than the 1000 allowed"),
            "{e}"
        );
        let narrow = ImageLimits {
            max_side: 32,
            ..ImageLimits::default()
        };
        let e = decode_image(&bytes, None, &narrow).unwrap_err();
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn a_cut_off_jpeg_is_refused_though_the_decoder_would_fill_it() {
        let rgb =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, 7]));
        let bytes = encode(
            image::DynamicImage::ImageRgb8(rgb),
            image::ImageFormat::Jpeg,
        );
        assert!(decode_image(&bytes, Some(3), &ImageLimits::default()).is_ok());
        let cut = &bytes[..bytes.len() * 9 / 10];
        let e = decode_image(cut, Some(3), &ImageLimits::default()).unwrap_err();
        assert!(e.contains("JPEG data is truncated"), "{e}");
    }

    #[test]
    fn every_written_format_reads_back() {
        let dir = std::env::temp_dir().join(format!("spikeir-io-fmt-{}", std::process::id()));
        let data: Vec<f32> = (0..48).map(|i| (i * 5 % 256) as f32 / 255.0).collect();
        let img = Image {
            channels: 3,
            height: 4,
            width: 4,
            data,
        };
        for ext in ["png", "bmp", "tif", "jpg"] {
            let p = dir.join(format!("x.{ext}"));
            write_image(&p, &img).unwrap();
            let back = read_image(&p, Some(3)).unwrap();
            assert_eq!((back.channels, back.height, back.width), (3, 4, 4), "{ext}");
            // Lossless formats give the 8-bit values back exactly; JPEG within its error.
            let tol = if ext == "jpg" { 0.1 } else { 1e-6 };
            for (a, b) in back.data.iter().zip(&img.data) {
                assert!((a - b).abs() <= tol, "{ext}: {a} vs {b}");
            }
        }
        let e = write_image(&dir.join("x.gif"), &img)
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown extension '.gif'"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn half_and_double_tensors_are_converted_and_integers_refused() {
        let tensor = |dtype: &str, bytes: &[u8]| -> Vec<u8> {
            let header = format!(
                r#"{{"t":{{"dtype":"{dtype}","shape":[2],"data_offsets":[0,{}]}}}}"#,
                bytes.len()
            );
            let mut out = (header.len() as u64).to_le_bytes().to_vec();
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(bytes);
            out
        };
        // F16 1.5 = 0x3e00, -2 = 0xc000; BF16 1.5 = 0x3fc0, -2 = 0xc000.
        for (dtype, raw) in [
            ("F16", vec![0x00, 0x3e, 0x00, 0xc0]),
            ("BF16", vec![0xc0, 0x3f, 0x00, 0xc0]),
            (
                "F64",
                [1.5f64.to_le_bytes(), (-2f64).to_le_bytes()].concat(),
            ),
        ] {
            let (t, _) = parse_safetensors(&tensor(dtype, &raw)).unwrap();
            assert_eq!(t[0].data, vec![1.5, -2.0], "{dtype}");
        }
        // The smallest F16 subnormal is 2^-24.
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        let e = parse_safetensors(&tensor("I32", &[0; 8])).unwrap_err();
        assert!(e.contains("dtype I32"), "{e}");
    }

    #[test]
    fn png_round_trip_is_exact_on_the_8_bit_grid() {
        let dir = std::env::temp_dir().join(format!("spikeir-io-png-{}", std::process::id()));
        let p = dir.join("x.png");
        // 3×2 RGB with values on k/255, so 8-bit storage is lossless.
        let data: Vec<f32> = (0..18).map(|i| (i * 13 % 256) as f32 / 255.0).collect();
        let img = Image {
            channels: 3,
            height: 2,
            width: 3,
            data,
        };
        write_png(&p, &img).unwrap();
        let back = read_image(&p, Some(3)).unwrap();
        assert_eq!((back.channels, back.height, back.width), (3, 2, 3));
        for (a, b) in back.data.iter().zip(&img.data) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        assert_eq!(list_images(&dir).unwrap(), vec![p.clone()]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
