//! The data pipeline: a prefetching patch loader and whole-image evaluation
//! pairs. Options arrive as plain objects; unknown values throw, naming the option.

use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::Float32Array;
use napi::Result;
use napi_derive::napi;
use spikeir_core as core;
use spikeir_core::data::{Degradation, PatchSampler, Prefetcher, SamplerConfig, Source};

use crate::files::ImageData;
use crate::tensor::to_usize;
use crate::{invalid, js_err};

/// Where images come from.
#[napi(object)]
pub struct DataSourceOptions {
    /// `folder`, `paired` or `deadLeaves`.
    pub kind: String,
    /// Folder of clean images (`folder`).
    pub dir: Option<String>,
    /// Folders of inputs and targets with matching file names (`paired`).
    pub input_dir: Option<String>,
    pub target_dir: Option<String>,
    /// 1 (grey), 3 (RGB); by default as stored (`folder`, `paired`).
    pub channels: Option<f64>,
    /// Number and side of synthetic images (`deadLeaves`).
    pub count: Option<f64>,
    pub size: Option<f64>,
    /// Seed of the synthetic images (`deadLeaves`), default 0.
    pub seed: Option<f64>,
}

/// How inputs are made from clean images.
#[napi(object)]
pub struct DegradationOptions {
    /// `none`, `awgn`, `blur` or `jpeg`.
    pub kind: String,
    /// AWGN: fixed σ (0–255 scale); blur: Gaussian σ in pixels.
    pub sigma: Option<f64>,
    /// AWGN: σ drawn uniformly from [sigmaMin, sigmaMax] per patch/image.
    pub sigma_min: Option<f64>,
    pub sigma_max: Option<f64>,
    /// JPEG quality, 1–100.
    pub quality: Option<f64>,
}

/// Settings of [`NativeDataLoader`].
#[napi(object)]
pub struct DataLoaderOptions {
    pub source: DataSourceOptions,
    pub patch: f64,
    pub batch: f64,
    pub augment: Option<bool>,
    pub degradation: Option<DegradationOptions>,
    pub seed: Option<f64>,
    /// First step produced (to resume a run); default 0.
    pub start_step: Option<f64>,
    /// Batches made ahead on the background thread (1–16, default 3).
    pub prefetch: Option<f64>,
}

/// A batch: `input` and `target` are `shape` = [batch, channels, patch, patch].
#[napi(object)]
pub struct NativeBatch {
    pub input: Float32Array,
    pub target: Float32Array,
    pub shape: Vec<u32>,
    pub step: f64,
}

/// Settings of [`eval_pairs`].
#[napi(object)]
pub struct EvalPairsOptions {
    pub source: DataSourceOptions,
    pub degradation: Option<DegradationOptions>,
    pub seed: Option<f64>,
}

/// A whole evaluation image: its file name, degraded input and clean target.
#[napi(object)]
pub struct EvalPair {
    pub name: String,
    pub input: ImageData,
    pub target: ImageData,
}

fn to_u64(what: &str, v: f64) -> Result<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9007199254740991.0 {
        Ok(v as u64)
    } else {
        Err(invalid(format!(
            "{what} must be a non-negative safe integer, got {v}"
        )))
    }
}

fn need<T>(what: &str, kind: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| invalid(format!("{what} is required for kind '{kind}'")))
}

fn source(o: &DataSourceOptions) -> Result<Source> {
    let channels = o
        .channels
        .map(|c| match c {
            1.0 => Ok(1),
            3.0 => Ok(3),
            _ => Err(invalid(format!("source.channels must be 1 or 3, got {c}"))),
        })
        .transpose()?;
    Ok(match o.kind.as_str() {
        "folder" => Source::Folder {
            dir: PathBuf::from(need("source.dir", "folder", o.dir.clone())?),
            channels,
        },
        "paired" => Source::Paired {
            input_dir: PathBuf::from(need("source.inputDir", "paired", o.input_dir.clone())?),
            target_dir: PathBuf::from(need("source.targetDir", "paired", o.target_dir.clone())?),
            channels,
        },
        "deadLeaves" => Source::DeadLeaves {
            count: to_usize(
                "source",
                "count",
                need("source.count", "deadLeaves", o.count)?,
            )?,
            size: to_usize("source", "size", need("source.size", "deadLeaves", o.size)?)?,
            seed: to_u64("source.seed", o.seed.unwrap_or(0.0))?,
        },
        other => {
            return Err(invalid(format!(
                "source.kind: unknown value '{other}' (folder, paired, deadLeaves)"
            )))
        }
    })
}

fn degradation(o: Option<&DegradationOptions>) -> Result<Degradation> {
    let Some(o) = o else {
        return Ok(Degradation::Identity);
    };
    let d = match o.kind.as_str() {
        "none" => Degradation::Identity,
        "awgn" => {
            let (lo, hi) = match (o.sigma, o.sigma_min, o.sigma_max) {
                (Some(s), None, None) => (s, s),
                (None, Some(a), Some(b)) => (a, b),
                _ => {
                    return Err(invalid(
                        "degradation.sigma, or both degradation.sigmaMin and sigmaMax, are required for kind 'awgn'".into(),
                    ))
                }
            };
            Degradation::Awgn {
                sigma_min: lo as f32,
                sigma_max: hi as f32,
            }
        }
        "blur" => Degradation::GaussianBlur {
            sigma: need("degradation.sigma", "blur", o.sigma)? as f32,
        },
        "jpeg" => {
            let q = need("degradation.quality", "jpeg", o.quality)?;
            if !(q.fract() == 0.0 && (1.0..=100.0).contains(&q)) {
                return Err(invalid(format!(
                    "degradation.quality must be an integer in 1..100, got {q}"
                )));
            }
            Degradation::Jpeg { quality: q as u8 }
        }
        other => {
            return Err(invalid(format!(
                "degradation.kind: unknown value '{other}' (none, awgn, blur, jpeg)"
            )))
        }
    };
    d.validate().map_err(js_err)?;
    Ok(d)
}

/// Random training patches made on a background thread, batch `step`
/// depending only on (seed, step).
#[napi]
pub struct NativeDataLoader {
    inner: Option<Prefetcher>,
}

#[napi]
impl NativeDataLoader {
    /// Loads the source (decoding images in parallel) and starts the prefetch thread.
    #[napi(factory, catch_unwind)]
    pub fn create(options: DataLoaderOptions) -> Result<NativeDataLoader> {
        let cfg = SamplerConfig {
            patch: to_usize("dataLoader", "patch", options.patch)?,
            batch: to_usize("dataLoader", "batch", options.batch)?,
            augment: options.augment.unwrap_or(true),
            degradation: degradation(options.degradation.as_ref())?,
            seed: to_u64("seed", options.seed.unwrap_or(0.0))?,
        };
        let start = to_u64("startStep", options.start_step.unwrap_or(0.0))?;
        let depth = to_usize("dataLoader", "prefetch", options.prefetch.unwrap_or(3.0))?;
        let sampler = PatchSampler::new(&source(&options.source)?, cfg).map_err(js_err)?;
        Ok(NativeDataLoader {
            inner: Some(Prefetcher::new(Arc::new(sampler), start, depth)),
        })
    }

    /// The next batch; throws after `dispose()`.
    #[napi(catch_unwind)]
    pub fn next(&mut self) -> Result<NativeBatch> {
        let p = self.inner.as_mut().ok_or_else(|| {
            js_err(core::Error::Disposed(
                "dataLoader.next: this loader was disposed".into(),
            ))
        })?;
        let step = p.step();
        let b = p.next().map_err(js_err)?;
        Ok(NativeBatch {
            input: Float32Array::new(b.input),
            target: Float32Array::new(b.target),
            shape: b.shape.iter().map(|&d| d as u32).collect(),
            step: step as f64,
        })
    }

    /// Stops the background thread and frees the images. Idempotent.
    #[napi]
    pub fn dispose(&mut self) {
        self.inner = None;
    }
}

fn image_data(img: core::io::Image) -> ImageData {
    ImageData {
        channels: img.channels as u32,
        height: img.height as u32,
        width: img.width as u32,
        data: Float32Array::new(img.data),
    }
}

/// Whole-image evaluation pairs, image i degraded with a fixed seed derived from (seed, i).
#[napi(catch_unwind)]
pub fn eval_pairs(options: EvalPairsOptions) -> Result<Vec<EvalPair>> {
    let src = source(&options.source)?;
    let d = degradation(options.degradation.as_ref())?;
    let seed = to_u64("seed", options.seed.unwrap_or(0.0))?;
    Ok(core::data::eval_pairs(&src, &d, seed)
        .map_err(js_err)?
        .into_iter()
        .map(|(name, input, target)| EvalPair {
            name,
            input: image_data(input),
            target: image_data(target),
        })
        .collect())
}
