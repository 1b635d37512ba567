//! Training and evaluation data (DESIGN §6): image sources, degradations,
//! a seeded patch sampler and a background prefetcher.
//!
//! Every random choice goes through the counter-based RNG of
//! [`crate::random`], so batch `step` of a sampler depends only on
//! `(seed, step)`: a resumed run sees exactly the batches it would have seen.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::io::{list_images, read_image, Image};
use crate::random::{draw, normal, unit};

pub mod degrade;

pub use degrade::{Blend, HazeOptions, RainOptions, Span};

/// A way of making a degraded input from a clean image.
#[derive(Debug, Clone, PartialEq)]
pub enum Degradation {
    /// The input is the clean image (for paired sources, the real input as is).
    Identity,
    /// Additive white Gaussian noise, σ on the 0–255 scale drawn uniformly
    /// from `[sigma_min, sigma_max]` per image (fixed when equal).
    /// noisy = clean + N(0, (σ/255)²), not clipped (the DnCNN protocol).
    Awgn { sigma_min: f32, sigma_max: f32 },
    /// Gaussian blur with standard deviation `sigma` pixels, reflected borders.
    GaussianBlur { sigma: f32 },
    /// JPEG encode + decode at `quality` (1–100) with the `image` crate's codec.
    Jpeg { quality: u8 },
    /// Rain streaks in one direction per image, added and clipped (Rain100L style).
    Rain(RainOptions),
    /// Haze by the atmospheric scattering model with a random smooth depth map.
    Haze(HazeOptions),
    /// Linear motion blur of `length` pixels at `angle` degrees counter-clockwise
    /// from horizontal (uniform over [0°, 180°) per patch when `None`), reflected borders.
    MotionBlur { length: Span, angle: Option<Span> },
    /// Defocus blur by a uniform disk of `radius` pixels, reflected borders.
    Defocus { radius: Span },
}

impl Degradation {
    /// Checks the parameters, so a bad value fails at construction, not mid-run.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        match *self {
            Degradation::Identity => Ok(()),
            Degradation::Awgn {
                sigma_min,
                sigma_max,
            } => {
                if !(sigma_min.is_finite() && sigma_max.is_finite())
                    || sigma_min < 0.0
                    || sigma_max < sigma_min
                {
                    bad(format!(
                        "awgn: need 0 <= sigmaMin <= sigmaMax, got {sigma_min} and {sigma_max}"
                    ))
                } else {
                    Ok(())
                }
            }
            Degradation::GaussianBlur { sigma } => {
                if sigma.is_finite() && sigma >= 0.0 {
                    Ok(())
                } else {
                    bad(format!("blur: sigma must be >= 0, got {sigma}"))
                }
            }
            Degradation::Jpeg { quality } => {
                if (1..=100).contains(&quality) {
                    Ok(())
                } else {
                    bad(format!("jpeg: quality must be in 1..=100, got {quality}"))
                }
            }
            Degradation::Rain(o) => o.validate().or_else(bad),
            Degradation::Haze(o) => o.validate().or_else(bad),
            Degradation::MotionBlur { length, angle } => {
                length
                    .check("motionBlur.length", 1.0, 255.0, " pixels")
                    .or_else(bad)?;
                match angle {
                    Some(a) => a
                        .check("motionBlur.angle", -360.0, 360.0, " degrees")
                        .or_else(bad),
                    None => Ok(()),
                }
            }
            Degradation::Defocus { radius } => radius
                .check("defocus.radius", 0.0, 50.0, " pixels")
                .or_else(bad),
        }
    }

    /// Whether the result depends on the seed; deterministic degradations
    /// are applied once to whole images, not to every patch.
    fn is_random(&self) -> bool {
        match self {
            Degradation::Awgn { .. } | Degradation::Rain(_) | Degradation::Haze(_) => true,
            // Even a fixed kernel goes per patch, after the flip/rotation, so
            // its angle is the patch's own (applied to the whole image first,
            // a rotated patch would show it turned by 90°).
            Degradation::MotionBlur { .. } => true,
            Degradation::Defocus { radius } => !radius.is_fixed(),
            _ => false,
        }
    }

    /// Pixels beyond a patch that its result depends on (a blur kernel's
    /// radius): random blurs are applied to the patch grown by this much and
    /// cropped, so a patch is a crop of the blurred image, not of a blur with
    /// the patch's own borders reflected.
    fn margin(&self) -> usize {
        match *self {
            Degradation::MotionBlur { length, .. } => {
                degrade::motion_kernel(length.max, 0.0).radius
            }
            Degradation::Defocus { radius } => degrade::disk_kernel(radius.max).radius,
            _ => 0,
        }
    }
}

/// Applies `d` to `img`; the same `(img, d, seed)` always gives the same result.
pub fn degrade(img: &Image, d: &Degradation, seed: u64) -> Image {
    match *d {
        Degradation::Identity => img.clone(),
        Degradation::Awgn {
            sigma_min,
            sigma_max,
        } => {
            // Draw 0 picks σ; the noise uses a separate derived stream.
            let sigma = sigma_min + (sigma_max - sigma_min) * unit(seed, 0) as f32;
            let noise = normal(draw(seed, 1), img.data.len(), 0.0, sigma / 255.0);
            Image {
                data: img.data.iter().zip(&noise).map(|(a, n)| a + n).collect(),
                ..*img
            }
        }
        Degradation::GaussianBlur { sigma } => gaussian_blur(img, sigma),
        Degradation::Jpeg { quality } => jpeg(img, quality),
        Degradation::Rain(o) => degrade::rain(img, &o, seed),
        Degradation::Haze(o) => degrade::haze(img, &o, seed),
        Degradation::MotionBlur { length, angle } => {
            let len = length.at(unit(seed, 0));
            let deg = match angle {
                Some(a) => a.at(unit(seed, 1)),
                None => (180.0 * unit(seed, 1)) as f32,
            };
            degrade::convolve(img, &degrade::motion_kernel(len, deg))
        }
        Degradation::Defocus { radius } => {
            degrade::convolve(img, &degrade::disk_kernel(radius.at(unit(seed, 0))))
        }
    }
}

/// Reflect-101 index (…2 1 | 0 1 2 … n-1 | n-2 …), valid for any offset.
pub(crate) fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n as isize - 1);
    let m = i.rem_euclid(period);
    (if m < n as isize { m } else { period - m }) as usize
}

/// Separable Gaussian blur, radius ⌈3σ⌉, weights normalised to sum 1 (so a
/// constant image stays constant, borders included, since they are reflected).
fn gaussian_blur(img: &Image, sigma: f32) -> Image {
    if sigma <= 0.0 {
        return img.clone();
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|x| (-(x * x) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let (h, w) = (img.height, img.width);
    let mut out = vec![0.0f32; img.data.len()];
    for c in 0..img.channels {
        let plane = &img.data[c * h * w..(c + 1) * h * w];
        let mut tmp = vec![0.0f32; h * w];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = k
                    .iter()
                    .enumerate()
                    .map(|(t, kv)| kv * plane[y * w + reflect(x as isize + t as isize - r, w)])
                    .sum();
            }
        }
        let dst = &mut out[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                dst[y * w + x] = k
                    .iter()
                    .enumerate()
                    .map(|(t, kv)| kv * tmp[reflect(y as isize + t as isize - r, h) * w + x])
                    .sum();
            }
        }
    }
    Image { data: out, ..*img }
}

/// JPEG round trip through 8 bits (values clipped to [0, 1] first, as any
/// stored JPEG would be). Grey images are coded as L8, colour as RGB8.
fn jpeg(img: &Image, quality: u8) -> Image {
    let (c, n) = (img.channels, img.width * img.height);
    let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let pixels: Vec<u8> = (0..n)
        .flat_map(|i| (0..c).map(move |ch| ch * n + i))
        .map(|j| q(img.data[j]))
        .collect();
    let color = if c == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut buf = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality.clamp(1, 100));
    // Encoding an in-memory buffer of the right size cannot fail for 1 or 3
    // channels; the sampler checks channels at construction.
    image::ImageEncoder::write_image(enc, &pixels, img.width as u32, img.height as u32, color)
        .expect("JPEG encoding of an in-memory image");
    let dec = image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
        .expect("decoding a JPEG we just encoded");
    let data = if c == 1 {
        dec.to_luma8()
            .pixels()
            .map(|p| p.0[0] as f32 / 255.0)
            .collect()
    } else {
        let rgb = dec.to_rgb8();
        let mut planar = vec![0.0; 3 * n];
        for (i, p) in rgb.pixels().enumerate() {
            for ch in 0..3 {
                planar[ch * n + i] = p.0[ch] as f32 / 255.0;
            }
        }
        planar
    };
    Image { data, ..*img }
}

/// Pixels a synthetic source may generate (4 GiB of f32).
const MAX_HELD_PIXELS: usize = 1 << 30;

/// Values in one batch's input (and again in its target): 1 GiB of f32 each,
/// with a few batches prefetched.
const MAX_BATCH_VALUES: usize = 1 << 28;

/// Where images come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Clean images of a folder, chosen by extension (other files such as a
    /// `MANIFEST.tsv` are ignored). `channels`: 1, 3 or `None` (as stored).
    /// `exclude`: file stems (names without extension) left out, such as the
    /// test scenes hidden in a training set; each must name an image there.
    Folder {
        dir: PathBuf,
        channels: Option<usize>,
        exclude: Vec<String>,
    },
    /// Real input/target pairs: files of the same name in both folders.
    Paired {
        input_dir: PathBuf,
        target_dir: PathBuf,
        channels: Option<usize>,
    },
    /// `count` synthetic grey dead-leaves images of `size`×`size`.
    DeadLeaves {
        count: usize,
        size: usize,
        seed: u64,
    },
}

/// One loaded example: a name, the clean target and, for paired sources, the real input.
struct Example {
    name: String,
    /// The target file, for messages (the source name for synthetic images).
    path: String,
    target: Image,
    input: Option<Image>,
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `files` less those whose stem is in `exclude`; an entry that names no
/// file is an error (a typo would otherwise leak a test image into training).
fn without(files: Vec<PathBuf>, exclude: &[String], dir: &Path) -> Result<Vec<PathBuf>> {
    if exclude.is_empty() {
        return Ok(files);
    }
    let stem = |p: &PathBuf| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let stems: Vec<String> = files.iter().map(stem).collect();
    let missing: Vec<&String> = exclude.iter().filter(|e| !stems.contains(e)).collect();
    if let Some(first) = missing.first() {
        return Err(Error::File(format!(
            "folder '{}': exclude entry '{first}' matches no image there ({} of {} entries match none; entries are file names without extension)",
            dir.display(),
            missing.len(),
            exclude.len()
        )));
    }
    let kept: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| !exclude.contains(&stem(p)))
        .collect();
    if kept.is_empty() {
        return Err(Error::File(format!(
            "folder '{}': exclude leaves no image",
            dir.display()
        )));
    }
    Ok(kept)
}

fn load(source: &Source) -> Result<Vec<Example>> {
    match source {
        Source::Folder {
            dir,
            channels,
            exclude,
        } => {
            let files = without(list_images(dir)?, exclude, dir)?;
            files
                .par_iter()
                .map(|p| {
                    Ok(Example {
                        name: file_name(p),
                        path: p.display().to_string(),
                        target: read_image(p, *channels)?,
                        input: None,
                    })
                })
                .collect()
        }
        Source::Paired {
            input_dir,
            target_dir,
            channels,
        } => {
            let inputs = list_images(input_dir)?;
            let targets = list_images(target_dir)?;
            let names = |v: &[PathBuf]| -> Vec<String> { v.iter().map(|p| file_name(p)).collect() };
            let (ni, nt) = (names(&inputs), names(&targets));
            let only_in: Vec<&String> = ni.iter().filter(|n| !nt.contains(n)).collect();
            let only_tg: Vec<&String> = nt.iter().filter(|n| !ni.contains(n)).collect();
            if !only_in.is_empty() || !only_tg.is_empty() {
                let list = |v: &[&String]| -> String {
                    if v.is_empty() {
                        return "none".into();
                    }
                    let shown: Vec<&str> = v.iter().take(5).map(|s| s.as_str()).collect();
                    format!(
                        "{} ({}{})",
                        v.len(),
                        shown.join(", "),
                        if v.len() > 5 { ", …" } else { "" }
                    )
                };
                return Err(Error::File(format!(
                    "paired folders '{}' (inputs) and '{}' (targets) do not match: without target {}, without input {}",
                    input_dir.display(),
                    target_dir.display(),
                    list(&only_in),
                    list(&only_tg)
                )));
            }
            // Both lists are sorted by path in folders of the same names, so index i pairs up.
            inputs
                .par_iter()
                .zip(targets.par_iter())
                .map(|(pi, pt)| {
                    let input = read_image(pi, *channels)?;
                    let target = read_image(pt, *channels)?;
                    if (input.channels, input.height, input.width)
                        != (target.channels, target.height, target.width)
                    {
                        return Err(Error::File(format!(
                            "paired images differ in size: input '{}' is {}×{}×{} (channels × height × width) but target '{}' is {}×{}×{}",
                            pi.display(),
                            input.channels,
                            input.height,
                            input.width,
                            pt.display(),
                            target.channels,
                            target.height,
                            target.width
                        )));
                    }
                    Ok(Example {
                        name: file_name(pi),
                        path: pt.display().to_string(),
                        target,
                        input: Some(input),
                    })
                })
                .collect()
        }
        Source::DeadLeaves { count, size, seed } => {
            if *count == 0 || *size == 0 {
                return Err(Error::InvalidArgument(format!(
                    "deadLeaves: count and size must be positive, got {count} and {size}"
                )));
            }
            // The images are held in memory as f32: refuse what cannot fit
            // rather than abort on a failed allocation.
            if count.saturating_mul(size.saturating_mul(*size)) > MAX_HELD_PIXELS {
                return Err(Error::InvalidArgument(format!(
                    "deadLeaves: {count} images of {size}×{size} are more than the {MAX_HELD_PIXELS} pixels a source may hold"
                )));
            }
            Ok((0..*count)
                .into_par_iter()
                .map(|i| Example {
                    name: format!("deadleaves_{i:05}"),
                    path: format!("dead leaves image {i}"),
                    target: dead_leaves(*size, draw(*seed, i as u64)),
                    input: None,
                })
                .collect())
        }
    }
}

/// A grey dead-leaves image (Matheron's model; Lee, Mumford & Huang 2001):
/// shapes with a power-law size density p(r) ∝ r⁻³ fall on top of each other,
/// which gives the scale invariance and occlusion edges of natural images.
/// Each leaf is a disk or a rotated rectangle with a random grey level, a
/// slight linear gradient and a faint sinusoidal texture.
pub fn dead_leaves(size: usize, seed: u64) -> Image {
    let s = size as f32;
    let u = |i: u64| unit(seed, i) as f32;
    let bg = u(0);
    let mut data = vec![bg; size * size];
    let (rmin, rmax) = (1.5f32.max(s / 100.0), (s / 3.0).max(2.0));
    // Enough leaves to cover the image many times over with small ones.
    let leaves = 8 * size as u64 + 20;
    for l in 0..leaves {
        let b = 1 + 16 * l; // 16 draws per leaf
                            // Inverse CDF of p(r) ∝ r⁻³ on [rmin, rmax]: r = (rmin⁻² − u (rmin⁻² − rmax⁻²))^(−1/2).
        let (a2, b2) = (rmin.powi(-2), rmax.powi(-2));
        let r = (a2 - u(b) * (a2 - b2)).powf(-0.5);
        let (cx, cy) = (u(b + 1) * s, u(b + 2) * s);
        let grey = u(b + 3);
        let rect = u(b + 4) < 0.5;
        let aspect = 0.3 + 1.4 * u(b + 5);
        let theta = u(b + 6) * std::f32::consts::PI;
        let (gx, gy) = ((u(b + 7) - 0.5) * 0.2 / r, (u(b + 8) - 0.5) * 0.2 / r);
        let amp = 0.08 * u(b + 9);
        let freq = 0.1 + 0.6 * u(b + 10);
        let phi = u(b + 11) * std::f32::consts::TAU;
        let (ct, st) = (theta.cos(), theta.sin());
        let reach = if rect { r * aspect.max(1.0) * 1.5 } else { r };
        let x0 = (cx - reach).floor().max(0.0) as usize;
        let x1 = ((cx + reach).ceil() as usize).min(size);
        let y0 = (cy - reach).floor().max(0.0) as usize;
        let y1 = ((cy + reach).ceil() as usize).min(size);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                // Coordinates in the leaf's own (rotated) frame.
                let (px, py) = (ct * dx + st * dy, -st * dx + ct * dy);
                let inside = if rect {
                    px.abs() <= r * aspect && py.abs() <= r
                } else {
                    dx * dx + dy * dy <= r * r
                };
                if inside {
                    let v = grey + gx * dx + gy * dy + amp * (freq * px + phi).sin();
                    data[y * size + x] = v.clamp(0.0, 1.0);
                }
            }
        }
    }
    Image {
        channels: 1,
        height: size,
        width: size,
        data,
    }
}

/// The 8 flips/rotations of a planar `[c, h, w]` array (the dihedral group D4).
/// `k`: 0 identity, 1 rotate 90° counter-clockwise, 2 rotate 180°, 3 rotate 270°,
/// 4 flip left-right, 5 transpose, 6 flip up-down, 7 anti-transpose.
/// Returns the data and the new `(h, w)` (swapped for 1, 3, 5, 7).
pub fn dihedral(data: &[f32], c: usize, h: usize, w: usize, k: u8) -> (Vec<f32>, usize, usize) {
    let swap = matches!(k % 8, 1 | 3 | 5 | 7);
    let (oh, ow) = if swap { (w, h) } else { (h, w) };
    // Source (row, column) of output (i, j).
    let src = |i: usize, j: usize| -> (usize, usize) {
        match k % 8 {
            0 => (i, j),
            1 => (j, w - 1 - i),
            2 => (h - 1 - i, w - 1 - j),
            3 => (h - 1 - j, i),
            4 => (i, w - 1 - j),
            5 => (j, i),
            6 => (h - 1 - i, j),
            _ => (h - 1 - j, w - 1 - i),
        }
    };
    let mut out = Vec::with_capacity(data.len());
    for ch in 0..c {
        for i in 0..oh {
            for j in 0..ow {
                let (si, sj) = src(i, j);
                out.push(data[ch * h * w + si * w + sj]);
            }
        }
    }
    (out, oh, ow)
}

/// Copies the `p`×`p` window at (`y`, `x`) out of `img`.
fn crop(img: &Image, y: usize, x: usize, p: usize) -> Vec<f32> {
    let (h, w) = (img.height, img.width);
    let mut out = Vec::with_capacity(img.channels * p * p);
    for c in 0..img.channels {
        for r in y..y + p {
            let row = c * h * w + r * w + x;
            out.extend_from_slice(&img.data[row..row + p]);
        }
    }
    out
}

/// Copies the (`p` + 2`m`)² window whose inner `p`×`p` square is at
/// (`y`, `x`), reflecting (reflect-101) where it leaves the image.
fn crop_reflect(img: &Image, y: usize, x: usize, p: usize, m: usize) -> Vec<f32> {
    let (h, w) = (img.height, img.width);
    let side = p + 2 * m;
    let mut out = Vec::with_capacity(img.channels * side * side);
    for c in 0..img.channels {
        for r in 0..side {
            let sy = reflect((y + r) as isize - m as isize, h);
            let row = &img.data[c * h * w + sy * w..c * h * w + (sy + 1) * w];
            out.extend((0..side).map(|q| row[reflect((x + q) as isize - m as isize, w)]));
        }
    }
    out
}

/// A batch: `input` and `target` are `[batch, channels, patch, patch]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub input: Vec<f32>,
    pub target: Vec<f32>,
    pub shape: [usize; 4],
}

/// Sampler settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Side of the square patches, in pixels.
    pub patch: usize,
    pub batch: usize,
    /// Apply one of the 8 flips/rotations per patch, drawn at random.
    pub augment: bool,
    /// Applied to the clean image (folder and dead-leaves sources) or on top of
    /// the real input (paired sources; usually [`Degradation::Identity`]).
    pub degradation: Degradation,
    pub seed: u64,
}

/// Random patches of images held in memory; batch `step` depends only on
/// `(seed, step)`.
pub struct PatchSampler {
    examples: Vec<Example>,
    /// Inputs precomputed once when the degradation is deterministic (blur,
    /// JPEG): degrading the whole image avoids patch-border artefacts.
    fixed_inputs: Option<Vec<Image>>,
    channels: usize,
    cfg: SamplerConfig,
}

impl PatchSampler {
    /// Decodes the source (in parallel) and checks every image.
    pub fn new(source: &Source, cfg: SamplerConfig) -> Result<PatchSampler> {
        cfg.degradation.validate()?;
        if cfg.patch == 0 || cfg.batch == 0 {
            return Err(Error::InvalidArgument(format!(
                "patch and batch must be positive, got {} and {}",
                cfg.patch, cfg.batch
            )));
        }
        // Checked before any image is read; channels are at most 3.
        let per_batch = cfg
            .batch
            .saturating_mul(3)
            .saturating_mul(cfg.patch.saturating_mul(cfg.patch));
        if per_batch > MAX_BATCH_VALUES {
            return Err(Error::InvalidArgument(format!(
                "a batch of {} patches of {}×{} is more than the {MAX_BATCH_VALUES} values a batch may hold; lower batch or patch",
                cfg.batch, cfg.patch, cfg.patch
            )));
        }
        let examples = load(source)?;
        let channels = examples[0].target.channels;
        for e in &examples {
            if e.target.channels != channels {
                return Err(Error::Shape(format!(
                    "'{}' has {} channels but '{}' has {}; set channels to 1 or 3",
                    e.path, e.target.channels, examples[0].path, channels
                )));
            }
        }
        // Every image must hold a whole patch: sampling only the large ones
        // would silently train on a different data set than the one named.
        let small: Vec<&Example> = examples
            .iter()
            .filter(|e| e.target.height < cfg.patch || e.target.width < cfg.patch)
            .collect();
        if let Some(e) = small.first() {
            let (h, w) = (e.target.height, e.target.width);
            return Err(Error::InvalidArgument(if small.len() == examples.len() {
                format!(
                    "patch {} is larger than every image ({} of {}; '{}' is {h}×{w}); use a patch of at most {}",
                    cfg.patch,
                    small.len(),
                    examples.len(),
                    e.path,
                    examples
                        .iter()
                        .map(|e| e.target.height.min(e.target.width))
                        .min()
                        .unwrap_or(0)
                )
            } else {
                format!(
                    "patch {} is larger than image '{}' ({h}×{w}) and {} other(s) of {}; every image must be at least patch × patch",
                    cfg.patch,
                    e.path,
                    small.len() - 1,
                    examples.len()
                )
            }));
        }
        let fixed_inputs = if cfg.degradation.is_random()
            || cfg.degradation == Degradation::Identity
        {
            None
        } else {
            Some(
                examples
                    .par_iter()
                    .map(|e| degrade(e.input.as_ref().unwrap_or(&e.target), &cfg.degradation, 0))
                    .collect(),
            )
        };
        Ok(PatchSampler {
            examples,
            fixed_inputs,
            channels,
            cfg,
        })
    }

    /// Number of images held.
    pub fn len(&self) -> usize {
        self.examples.len()
    }

    /// Never true (construction fails on an empty source); for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.cfg
    }

    /// Batch number `step`. Sample b uses the stream `draw(draw(seed, step), b)`:
    /// draw 0 picks the image, 1 and 2 the position, 3 the flip/rotation,
    /// 4 seeds the degradation.
    pub fn batch(&self, step: u64) -> Batch {
        let (p, c) = (self.cfg.patch, self.channels);
        let step_seed = draw(self.cfg.seed, step);
        let margin = self.cfg.degradation.margin();
        let samples: Vec<(Vec<f32>, Vec<f32>)> = (0..self.cfg.batch as u64)
            .into_par_iter()
            .map(|b| {
                let s = draw(step_seed, b);
                // Modulo bias is below 2⁻⁴⁰ for these ranges.
                let i = (draw(s, 0) % self.examples.len() as u64) as usize;
                let e = &self.examples[i];
                let y = (draw(s, 1) % (e.target.height - p + 1) as u64) as usize;
                let x = (draw(s, 2) % (e.target.width - p + 1) as u64) as usize;
                let k = if self.cfg.augment {
                    (draw(s, 3) % 8) as u8
                } else {
                    0
                };
                let source_input = match &self.fixed_inputs {
                    Some(v) => &v[i],
                    None => e.input.as_ref().unwrap_or(&e.target),
                };
                let target = dihedral(&crop(&e.target, y, x, p), c, p, p, k).0;
                let deg = &self.cfg.degradation;
                let input = if deg.is_random() {
                    // Flipped/rotated first, then degraded: rain still falls
                    // down and a given blur angle is the patch's own. A blur
                    // sees the patch grown by its kernel's reach (the image's
                    // pixels, reflected only at the image's borders), then the
                    // centre is kept; with no margin this is the patch itself.
                    let m = margin;
                    let side = p + 2 * m;
                    let window = crop_reflect(source_input, y, x, p, m);
                    let window = Image {
                        channels: c,
                        height: side,
                        width: side,
                        data: dihedral(&window, c, side, side, k).0,
                    };
                    let out = degrade(&window, deg, draw(s, 4));
                    if m == 0 {
                        out.data
                    } else {
                        crop(&out, m, m, p)
                    }
                } else {
                    dihedral(&crop(source_input, y, x, p), c, p, p, k).0
                };
                (input, target)
            })
            .collect();
        let mut batch = Batch {
            input: Vec::with_capacity(self.cfg.batch * c * p * p),
            target: Vec::with_capacity(self.cfg.batch * c * p * p),
            shape: [self.cfg.batch, c, p, p],
        };
        for (i, t) in samples {
            batch.input.extend_from_slice(&i);
            batch.target.extend_from_slice(&t);
        }
        batch
    }
}

/// Runs a [`PatchSampler`] on a background thread, `depth` batches ahead, so
/// cropping and noise overlap with training. Dropping it stops the thread.
pub struct Prefetcher {
    rx: Option<Receiver<Batch>>,
    handle: Option<JoinHandle<()>>,
    step: u64,
}

impl Prefetcher {
    /// Produces batches `start`, `start + 1`, …; `depth` is clamped to 1..=16.
    pub fn new(sampler: Arc<PatchSampler>, start: u64, depth: usize) -> Prefetcher {
        let (tx, rx) = sync_channel(depth.clamp(1, 16));
        let handle = std::thread::Builder::new()
            .name("spikeir-prefetch".into())
            .spawn(move || {
                let mut step = start;
                // `send` fails once the receiver is dropped: that ends the thread.
                while tx.send(sampler.batch(step)).is_ok() {
                    step += 1;
                }
            })
            .expect("spawning the prefetch thread");
        Prefetcher {
            rx: Some(rx),
            handle: Some(handle),
            step: start,
        }
    }

    /// The step of the batch that [`Prefetcher::next`] returns next.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The next batch (waits if the thread has not made it yet).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Batch> {
        let rx = self.rx.as_ref().expect("receiver lives until drop");
        let b = rx.recv().map_err(|_| {
            Error::InvalidArgument(format!(
                "data loader: the prefetch thread stopped before step {}",
                self.step
            ))
        })?;
        self.step += 1;
        Ok(b)
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Dropping the receiver wakes a blocked `send` with an error.
        drop(self.rx.take());
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Whole-image evaluation pairs `(file name, input, target)`, in file order.
/// Image i is degraded with seed `draw(seed, i)`, so the noisy test set is
/// the same on every run (Set12/BSD68 protocol). Paired sources give their
/// real input, with `degradation` applied on top (usually `Identity`).
pub fn eval_pairs(
    source: &Source,
    degradation: &Degradation,
    seed: u64,
) -> Result<Vec<(String, Image, Image)>> {
    degradation.validate()?;
    let examples = load(source)?;
    Ok(examples
        .into_par_iter()
        .enumerate()
        .map(|(i, e)| {
            let input = degrade(
                e.input.as_ref().unwrap_or(&e.target),
                degradation,
                draw(seed, i as u64),
            );
            (e.name, input, e.target)
        })
        .collect())
}
