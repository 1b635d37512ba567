//! The data pipeline: a prefetching patch loader and whole-image evaluation
//! pairs. Options arrive as plain objects; unknown values throw, naming the option.

use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::{Either, Float32Array};
use napi::Result;
use napi_derive::napi;
use spikeir_core as core;
use spikeir_core::data::{
    Blend, Degradation, HazeOptions, PatchSampler, Prefetcher, RainOptions, SamplerConfig, Source,
    Span,
};

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
    /// File stems (names without extension) to leave out (`folder`).
    pub exclude: Option<Vec<String>>,
}

/// A value, or a range `[min, max]` drawn from uniformly per patch/image
/// (fields spell the `Option` out: the binding's type generator needs it).
type SpanOption = Option<Either<f64, Vec<f64>>>;

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
    /// Rain: streaks per 10 000 pixels.
    pub density: Option<Either<f64, Vec<f64>>>,
    /// Rain: mean streak length; motionBlur: kernel length (pixels).
    pub length: Option<Either<f64, Vec<f64>>>,
    /// Rain: fall direction in degrees from vertical; motionBlur: degrees
    /// counter-clockwise from horizontal (random when absent).
    pub angle: Option<Either<f64, Vec<f64>>>,
    /// Rain: per-streak angle jitter, ± degrees.
    pub angle_jitter: Option<f64>,
    /// Rain: streak width (full width at half maximum, pixels).
    pub width: Option<Either<f64, Vec<f64>>>,
    /// Rain: peak streak intensity, 0–1.
    pub brightness: Option<Either<f64, Vec<f64>>>,
    /// Rain: `add` (default) or `screen`.
    pub blend: Option<String>,
    /// Haze: scattering coefficient β (t = e^(−β·d), d in [0, 1]).
    pub beta: Option<Either<f64, Vec<f64>>>,
    /// Haze: airlight, 0–1.
    pub airlight: Option<Either<f64, Vec<f64>>>,
    /// Haze: per-channel airlight jitter, ±.
    pub airlight_jitter: Option<f64>,
    /// Haze: feature size of the depth map, pixels.
    pub depth_scale: Option<f64>,
    /// Defocus: disk radius, pixels.
    pub radius: Option<Either<f64, Vec<f64>>>,
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
            exclude: o.exclude.clone().unwrap_or_default(),
        },
        _ if o.exclude.is_some() && o.kind != "folder" => {
            return Err(invalid(format!(
                "source.exclude applies to kind 'folder' only, not '{}'",
                o.kind
            )))
        }
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

/// `degradation.<name>` as a [`Span`]: a number is a fixed value.
fn span(name: &str, v: &SpanOption) -> Result<Option<Span>> {
    match v {
        None => Ok(None),
        Some(Either::A(x)) => Ok(Some(Span::fixed(*x as f32))),
        Some(Either::B(r)) if r.len() == 2 => Ok(Some(Span::new(r[0] as f32, r[1] as f32))),
        Some(Either::B(r)) => Err(invalid(format!(
            "degradation.{name} must be a number or a range [min, max], got an array of {}",
            r.len()
        ))),
    }
}

/// The options each kind reads; any other option given is an error, so an
/// option meant for another kind is not silently ignored.
fn check_options(o: &DegradationOptions) -> Result<()> {
    let given = [
        ("sigma", o.sigma.is_some()),
        ("sigmaMin", o.sigma_min.is_some()),
        ("sigmaMax", o.sigma_max.is_some()),
        ("quality", o.quality.is_some()),
        ("density", o.density.is_some()),
        ("length", o.length.is_some()),
        ("angle", o.angle.is_some()),
        ("angleJitter", o.angle_jitter.is_some()),
        ("width", o.width.is_some()),
        ("brightness", o.brightness.is_some()),
        ("blend", o.blend.is_some()),
        ("beta", o.beta.is_some()),
        ("airlight", o.airlight.is_some()),
        ("airlightJitter", o.airlight_jitter.is_some()),
        ("depthScale", o.depth_scale.is_some()),
        ("radius", o.radius.is_some()),
    ];
    let allowed: &[&str] = match o.kind.as_str() {
        "awgn" => &["sigma", "sigmaMin", "sigmaMax"],
        "blur" => &["sigma"],
        "jpeg" => &["quality"],
        "rain" => &[
            "density",
            "length",
            "angle",
            "angleJitter",
            "width",
            "brightness",
            "blend",
        ],
        "haze" => &["beta", "airlight", "airlightJitter", "depthScale"],
        "motionBlur" => &["length", "angle"],
        "defocus" => &["radius"],
        _ => &[],
    };
    match given.iter().find(|(n, g)| *g && !allowed.contains(n)) {
        Some((n, _)) => Err(invalid(format!(
            "degradation.{n} is not an option of kind '{}' ({})",
            o.kind,
            if allowed.is_empty() {
                "it takes none".to_string()
            } else {
                format!("its options: {}", allowed.join(", "))
            }
        ))),
        None => Ok(()),
    }
}

fn degradation(o: Option<&DegradationOptions>) -> Result<Degradation> {
    let Some(o) = o else {
        return Ok(Degradation::Identity);
    };
    const KINDS: &str = "none, awgn, blur, jpeg, rain, haze, motionBlur, defocus";
    if !KINDS.split(", ").any(|k| k == o.kind) {
        return Err(invalid(format!(
            "degradation.kind: unknown value '{}' ({KINDS})",
            o.kind
        )));
    }
    check_options(o)?;
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
        "rain" => {
            let def = RainOptions::default();
            Degradation::Rain(RainOptions {
                density: span("density", &o.density)?.unwrap_or(def.density),
                length: span("length", &o.length)?.unwrap_or(def.length),
                angle: span("angle", &o.angle)?.unwrap_or(def.angle),
                angle_jitter: o.angle_jitter.map_or(def.angle_jitter, |v| v as f32),
                width: span("width", &o.width)?.unwrap_or(def.width),
                brightness: span("brightness", &o.brightness)?.unwrap_or(def.brightness),
                blend: match o.blend.as_deref() {
                    None | Some("add") => Blend::Add,
                    Some("screen") => Blend::Screen,
                    Some(other) => {
                        return Err(invalid(format!(
                            "degradation.blend: unknown value '{other}' (add, screen)"
                        )))
                    }
                },
            })
        }
        "haze" => {
            let def = HazeOptions::default();
            Degradation::Haze(HazeOptions {
                beta: span("beta", &o.beta)?.unwrap_or(def.beta),
                airlight: span("airlight", &o.airlight)?.unwrap_or(def.airlight),
                airlight_jitter: o.airlight_jitter.map_or(def.airlight_jitter, |v| v as f32),
                depth_scale: o.depth_scale.map_or(def.depth_scale, |v| v as f32),
            })
        }
        "motionBlur" => Degradation::MotionBlur {
            length: need(
                "degradation.length",
                "motionBlur",
                span("length", &o.length)?,
            )?,
            angle: span("angle", &o.angle)?,
        },
        "defocus" => Degradation::Defocus {
            radius: need("degradation.radius", "defocus", span("radius", &o.radius)?)?,
        },
        other => {
            return Err(invalid(format!(
                "degradation.kind: unknown value '{other}' ({KINDS})"
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
