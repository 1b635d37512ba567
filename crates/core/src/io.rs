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
    Error::InvalidArgument(format!("{what} '{}': {e}", path.display()))
}

/// Reads every tensor of a safetensors file (F32 only) and its metadata.
pub fn read_safetensors(path: &Path) -> Result<(Vec<NamedArray>, HashMap<String, String>)> {
    let bytes = fs::read(path).map_err(|e| io_err("cannot read", path, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| io_err("not a valid safetensors file", path, e))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| io_err("not a valid safetensors file", path, e))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(io_err(
                &format!(
                    "tensor '{name}' has dtype {:?}, only F32 is supported, in",
                    view.dtype()
                ),
                path,
                "unsupported dtype",
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        out.push(NamedArray {
            name,
            shape: view.shape().to_vec(),
            data,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((out, meta.metadata().clone().unwrap_or_default()))
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

/// Reads PNG, JPEG, BMP or TIFF. `channels`: 1 (grey, luma of colour
/// images), 3 (RGB) or `None` (1 for grey files, 3 otherwise).
pub fn read_image(path: &Path, channels: Option<usize>) -> Result<Image> {
    let img = image::ImageReader::open(path)
        .map_err(|e| io_err("cannot open image", path, e))?
        .with_guessed_format()
        .map_err(|e| io_err("cannot read image", path, e))?
        .decode()
        .map_err(|e| io_err("cannot decode image", path, e))?;
    let channels = match channels {
        Some(c @ (1 | 3)) => c,
        Some(c) => {
            return Err(Error::InvalidArgument(format!(
                "readImage: channels must be 1 or 3, got {c}"
            )))
        }
        None if img.color().has_color() => 3,
        None => 1,
    };
    let (width, height) = (img.width() as usize, img.height() as usize);
    let data = if channels == 1 {
        // 16-bit files keep their precision.
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

/// Writes an 8-bit PNG (values clipped to [0, 1], then rounded), atomically.
pub fn write_png(path: &Path, img: &Image) -> Result<()> {
    let n = img.width * img.height;
    if img.data.len() != img.channels * n || !(img.channels == 1 || img.channels == 3) {
        return Err(Error::Shape(format!(
            "writeImage: {} values do not make a {}×{}×{} image (1 or 3 channels)",
            img.data.len(),
            img.channels,
            img.height,
            img.width
        )));
    }
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let mut buf = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new(&mut buf);
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
    image::ImageEncoder::write_image(encoder, &pixels, img.width as u32, img.height as u32, color)
        .map_err(|e| io_err("cannot encode PNG", path, e))?;
    write_atomic(path, &buf)
}

/// Image files of a folder (by extension; anything else is ignored), sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = fs::read_dir(dir).map_err(|e| io_err("cannot list folder", dir, e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|x| x.to_str())
                .map(|x| {
                    matches!(
                        x.to_ascii_lowercase().as_str(),
                        "png" | "jpg" | "jpeg" | "bmp" | "tif" | "tiff"
                    )
                })
                .unwrap_or(false)
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no images (png, jpg, bmp, tif) in '{}'",
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
