//! Files: safetensors and images, as host arrays.

use std::collections::HashMap;
use std::path::Path;

use napi::bindgen_prelude::Float32Array;
use napi::Result;
use napi_derive::napi;
use spikeir_core as core;

use crate::js_err;
use crate::tensor::to_shape;

/// A named f32 array.
#[napi(object)]
pub struct NamedArray {
    pub name: String,
    pub shape: Vec<u32>,
    pub data: Float32Array,
}

/// The tensors and string metadata of a safetensors file.
#[napi(object)]
pub struct SafetensorsFile {
    pub tensors: Vec<NamedArray>,
    pub metadata: HashMap<String, String>,
}

/// Reads a safetensors file: every tensor as f32 (F16, BF16 and F64 are
/// converted; other dtypes, NaN and infinities are refused).
#[napi(catch_unwind)]
pub fn read_safetensors(path: String) -> Result<SafetensorsFile> {
    let (arrays, metadata) = core::io::read_safetensors(Path::new(&path)).map_err(js_err)?;
    Ok(SafetensorsFile {
        tensors: arrays
            .into_iter()
            .map(|a| NamedArray {
                name: a.name,
                shape: a.shape.iter().map(|&d| d as u32).collect(),
                data: Float32Array::new(a.data),
            })
            .collect(),
        metadata,
    })
}

/// Writes a safetensors file atomically; refuses NaN or infinite values.
#[napi(catch_unwind)]
pub fn write_safetensors(
    path: String,
    tensors: Vec<NamedArray>,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let arrays = tensors
        .into_iter()
        .map(|t| {
            let shape: Vec<f64> = t.shape.iter().map(|&d| d as f64).collect();
            Ok(core::io::NamedArray {
                name: t.name,
                shape: to_shape("writeSafetensors", &shape)?,
                data: t.data.to_vec(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    core::io::write_safetensors(Path::new(&path), &arrays, metadata.unwrap_or_default())
        .map_err(js_err)
}

/// A planar image in [0, 1]: `data` is [channels, height, width].
#[napi(object)]
pub struct ImageData {
    pub channels: u32,
    pub height: u32,
    pub width: u32,
    pub data: Float32Array,
}

/// Reads PNG/JPEG/BMP/TIFF as 1 (grey) or 3 (RGB) channels; by default as
/// stored. Images with transparent pixels and sizes over the decode limits
/// are refused (see `spikeir_core::io::decode_image`).
#[napi(catch_unwind)]
pub fn read_image(path: String, channels: Option<u32>) -> Result<ImageData> {
    let img =
        core::io::read_image(Path::new(&path), channels.map(|c| c as usize)).map_err(js_err)?;
    Ok(ImageData {
        channels: img.channels as u32,
        height: img.height as u32,
        width: img.width as u32,
        data: Float32Array::new(img.data),
    })
}

fn host_image(image: ImageData) -> core::io::Image {
    core::io::Image {
        channels: image.channels as usize,
        height: image.height as usize,
        width: image.width as usize,
        data: image.data.to_vec(),
    }
}

/// Writes an 8-bit PNG (clipped to [0, 1]) atomically.
#[napi(catch_unwind)]
pub fn write_png(path: String, image: ImageData) -> Result<()> {
    core::io::write_png(Path::new(&path), &host_image(image)).map_err(js_err)
}

/// Writes an 8-bit image (clipped to [0, 1]) atomically, in the format of the
/// extension: png, jpg/jpeg, bmp, tif/tiff.
#[napi(catch_unwind)]
pub fn write_image(path: String, image: ImageData) -> Result<()> {
    core::io::write_image(Path::new(&path), &host_image(image)).map_err(js_err)
}

/// The image files of a folder, sorted; other files are ignored.
#[napi(catch_unwind)]
pub fn list_images(dir: String) -> Result<Vec<String>> {
    core::io::list_images(Path::new(&dir))
        .map(|v| {
            v.into_iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect()
        })
        .map_err(js_err)
}
