//! Synthetic degradations for tasks whose training pairs are not published:
//! rain streaks (Rain100L style), haze by the atmospheric scattering model,
//! and motion and defocus blur kernels.
//!
//! Every random choice is a counter-based draw from the seed, so the same
//! `(image, options, seed)` always gives the same result.

use crate::io::Image;
use crate::random::{draw, unit};

use super::reflect;

/// A closed interval a value is drawn from uniformly, once per image or patch
/// (a fixed value when `min == max`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub min: f32,
    pub max: f32,
}

impl Span {
    pub const fn new(min: f32, max: f32) -> Span {
        Span { min, max }
    }

    pub const fn fixed(v: f32) -> Span {
        Span { min: v, max: v }
    }

    pub fn is_fixed(&self) -> bool {
        self.min == self.max
    }

    /// The value at `u` in [0, 1).
    pub fn at(&self, u: f64) -> f32 {
        (self.min as f64 + (self.max as f64 - self.min as f64) * u) as f32
    }

    /// Checks `lo <= min <= max <= hi` (finite), naming the option.
    pub(crate) fn check(&self, name: &str, lo: f32, hi: f32, unit: &str) -> Result<(), String> {
        let ok = self.min.is_finite()
            && self.max.is_finite()
            && lo <= self.min
            && self.min <= self.max
            && self.max <= hi;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{name} must be a value or a range [min, max] with {lo} <= min <= max <= {hi}{unit}, got [{}, {}]",
                self.min, self.max
            ))
        }
    }
}

/// How the streak layer R is put on the background B (both in [0, 1]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blend {
    /// min(B + R, 1): what Rain100L's pairs show (the difference does not
    /// depend on the background until it saturates).
    Add,
    /// 1 − (1 − B)(1 − R): streaks fade on bright backgrounds.
    Screen,
}

/// Rain streaks: each streak is a Gaussian drop (standard deviation from
/// `width`, its full width at half maximum) motion-blurred along its fall
/// line over `length` pixels, all in one direction per image with a little
/// jitter per streak, added as a grey layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RainOptions {
    /// Streaks per 10 000 pixels (per 100×100), drawn per image.
    pub density: Span,
    /// Mean streak length in pixels, drawn per image; each streak is 0.6–1.4 times it.
    pub length: Span,
    /// Direction of fall in degrees from vertical, drawn per image; positive
    /// leans the lower end to the right.
    pub angle: Span,
    /// Each streak's angle differs from the image's by up to ± this, in degrees.
    pub angle_jitter: f32,
    /// Full width at half maximum of a streak, in pixels, drawn per image.
    pub width: Span,
    /// Peak added intensity of a streak (0–1), drawn per image; each streak is
    /// 0.5–1.5 times it.
    pub brightness: Span,
    pub blend: Blend,
}

impl Default for RainOptions {
    /// Light rain in one direction, as Rain100L, fitted to its pairs: over
    /// 15 of them the luma difference exceeds 2/5/10 grey levels on
    /// 28/21/15 % of the pixels (these defaults on the same backgrounds:
    /// 28/23/18 %), its mean over those above 5 levels is 0.092 (0.093),
    /// streak directions lie within ±35° of vertical, and the difference's
    /// autocorrelation is 0.57 at 1 pixel across the streaks (0.61) and 0.47
    /// at 10 pixels along them (0.48).
    fn default() -> Self {
        RainOptions {
            density: Span::new(14.0, 36.0),
            length: Span::new(15.0, 60.0),
            angle: Span::new(-35.0, 35.0),
            angle_jitter: 2.0,
            width: Span::new(1.3, 2.5),
            brightness: Span::new(0.07, 0.2),
            blend: Blend::Add,
        }
    }
}

impl RainOptions {
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.density
            .check("rain.density", 0.0, 500.0, " streaks per 10000 pixels")?;
        self.length.check("rain.length", 1.0, 200.0, " pixels")?;
        self.angle
            .check("rain.angle", -90.0, 90.0, " degrees from vertical")?;
        Span::fixed(self.angle_jitter).check("rain.angleJitter", 0.0, 45.0, " degrees")?;
        self.width.check("rain.width", 0.5, 10.0, " pixels")?;
        self.brightness.check("rain.brightness", 0.0, 1.0, "")?;
        Ok(())
    }
}

/// Haze by the atmospheric scattering model I = J·t + A·(1 − t), t = e^(−β·d),
/// with a random smooth depth d in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HazeOptions {
    /// Scattering coefficient β, drawn per image (t = e^(−β) at the farthest depth).
    pub beta: Span,
    /// Airlight A (0–1), drawn per image, the same for all channels before jitter.
    pub airlight: Span,
    /// Each channel's airlight differs from the drawn one by up to ± this.
    pub airlight_jitter: f32,
    /// Feature size of the depth map in pixels: its largest noise cells and
    /// the run of its linear trend. Depth is laid out in absolute pixels, so a
    /// patch sees the slice of depth that a whole image would show there.
    pub depth_scale: f32,
}

impl Default for HazeOptions {
    /// Fitted to the 50 SOTS-indoor pairs by a least-squares fit of one
    /// airlight per image and one transmission per pixel: their airlight is
    /// 0.93–1.0 (mean 0.99, channels within 0.003), the mean transmission
    /// per image 0.44–0.80, and −ln t spans 0.21–0.98 from the 5th to the
    /// 95th percentile of an image's pixels.
    fn default() -> Self {
        HazeOptions {
            beta: Span::new(0.5, 1.6),
            airlight: Span::new(0.94, 1.0),
            airlight_jitter: 0.005,
            depth_scale: 256.0,
        }
    }
}

impl HazeOptions {
    pub(crate) fn validate(&self) -> Result<(), String> {
        self.beta.check("haze.beta", 0.0, 10.0, "")?;
        self.airlight.check("haze.airlight", 0.0, 1.0, "")?;
        Span::fixed(self.airlight_jitter).check("haze.airlightJitter", 0.0, 0.5, "")?;
        Span::fixed(self.depth_scale).check("haze.depthScale", 4.0, 100_000.0, " pixels")?;
        Ok(())
    }
}

/// The error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x < 0.0 {
        -y
    } else {
        y
    }
}

/// The grey streak layer of `rain` for an `h`×`w` image (values ≥ 0).
pub fn rain_layer(h: usize, w: usize, o: &RainOptions, seed: u64) -> Vec<f32> {
    let u = |i: u64| unit(seed, i);
    let density = o.density.at(u(0)) as f64;
    let base_angle = (o.angle.at(u(1)) as f64).to_radians();
    let mean_len = o.length.at(u(2)) as f64;
    let sigma = o.width.at(u(3)) as f64 / (8.0 * 2f64.ln()).sqrt();
    let bright = o.brightness.at(u(4)) as f64;
    let jitter = (o.angle_jitter as f64).to_radians();
    let mut layer = vec![0.0f64; h * w];
    // Streak centres fall on the image grown by the longest streak's reach,
    // so streaks enter across the borders as often as they lie inside.
    let reach = 0.7 * mean_len + 3.0 * sigma + 1.0;
    let (ew, eh) = (w as f64 + 2.0 * reach, h as f64 + 2.0 * reach);
    let expected = density * ew * eh / 1e4;
    let count = expected.floor() as u64 + u64::from(u(5) < expected.fract());
    let streaks = draw(seed, 6);
    for k in 0..count {
        let v = |i: u64| unit(draw(streaks, k), i);
        let (cx, cy) = (v(0) * ew - reach, v(1) * eh - reach);
        let a = base_angle + jitter * (2.0 * v(2) - 1.0);
        let len = mean_len * (0.6 + 0.8 * v(3));
        let b = (bright * (0.5 + v(4))).min(1.0);
        // Fall direction (x right, y down) and its normal.
        let (dx, dy) = (a.sin(), a.cos());
        let half = len / 2.0;
        let ext = (half + 3.0 * sigma) * dx.abs() + 3.0 * sigma * dy.abs();
        let eyt = (half + 3.0 * sigma) * dy.abs() + 3.0 * sigma * dx.abs();
        let x0 = (cx - ext).floor().max(0.0) as usize;
        let x1 = ((cx + ext).ceil().max(0.0) as usize + 1).min(w);
        let y0 = (cy - eyt).floor().max(0.0) as usize;
        let y1 = ((cy + eyt).ceil().max(0.0) as usize + 1).min(h);
        let s2 = std::f64::consts::SQRT_2 * sigma;
        for y in y0..y1 {
            for x in x0..x1 {
                let (px, py) = (x as f64 - cx, y as f64 - cy);
                let along = px * dx + py * dy;
                let across = px * dy - py * dx;
                if across.abs() > 3.0 * sigma || along.abs() > half + 3.0 * sigma {
                    continue;
                }
                // A Gaussian drop blurred by a box of `len` along its path.
                let profile = 0.5 * (erf((half - along) / s2) + erf((half + along) / s2));
                layer[y * w + x] += b * (-across * across / (2.0 * sigma * sigma)).exp() * profile;
            }
        }
    }
    layer.into_iter().map(|v| v as f32).collect()
}

/// Rain streaks on `img`: the same grey layer on every channel, blended and
/// clipped to [0, 1]; never darker than the background.
pub fn rain(img: &Image, o: &RainOptions, seed: u64) -> Image {
    let (h, w) = (img.height, img.width);
    let layer = rain_layer(h, w, o, seed);
    let mut data = img.data.clone();
    for c in 0..img.channels {
        for (v, r) in data[c * h * w..(c + 1) * h * w].iter_mut().zip(&layer) {
            let b = *v;
            let out = match o.blend {
                Blend::Add => (b + r).min(1.0),
                Blend::Screen => 1.0 - (1.0 - b) * (1.0 - r.min(1.0)),
            };
            *v = out.max(b);
        }
    }
    Image { data, ..*img }
}

/// Smooth value noise in [0, 1]: random values on a lattice of `cell` pixels,
/// interpolated with the smoothstep fade (continuous slope).
fn value_noise(h: usize, w: usize, cell: f64, ox: f64, oy: f64, seed: u64) -> Vec<f64> {
    let lattice = |ix: i64, iy: i64| unit(draw(seed, ix as u64), iy as u64);
    let fade = |t: f64| t * t * (3.0 - 2.0 * t);
    let mut out = vec![0.0; h * w];
    for y in 0..h {
        let fy = (y as f64 + oy) / cell;
        let iy = fy.floor();
        let ty = fade(fy - iy);
        for x in 0..w {
            let fx = (x as f64 + ox) / cell;
            let ix = fx.floor();
            let tx = fade(fx - ix);
            let (ix, iy) = (ix as i64, iy as i64);
            let top = lattice(ix, iy) * (1.0 - tx) + lattice(ix + 1, iy) * tx;
            let bottom = lattice(ix, iy + 1) * (1.0 - tx) + lattice(ix + 1, iy + 1) * tx;
            out[y * w + x] = top * (1.0 - ty) + bottom * ty;
        }
    }
    out
}

/// The nearest depth, as a fraction of the farthest: indoor pictures have no
/// surface at the camera, and SOTS's transmission is below 0.82 on 95 % of
/// an image's pixels.
const NEAREST: f64 = 0.15;

/// A random smooth depth map in [0.15, 1] for an `h`×`w` image: a linear
/// trend of random direction (a floor or wall receding) plus four octaves of
/// value noise (objects), clipped. `scale` is in pixels, so a patch is a
/// window of a field that would be drawn the same way on a whole image.
pub fn depth_map(h: usize, w: usize, scale: f32, seed: u64) -> Vec<f32> {
    let s = scale as f64;
    let u = |i: u64| unit(seed, i);
    let phi = u(0) * std::f64::consts::TAU;
    let (x0, y0) = (u(1) * w as f64, u(2) * h as f64);
    let mut noise = vec![0.0; h * w];
    let mut total = 0.0;
    for octave in 0..4u64 {
        let cell = (s / (1u64 << octave) as f64).max(2.0);
        let amp = 0.5f64.powi(octave as i32);
        // A random window far from the origin, so patches see different fields.
        let (ox, oy) = (u(3 + 2 * octave) * 1e6, u(4 + 2 * octave) * 1e6);
        let n = value_noise(h, w, cell, ox, oy, draw(seed, 100 + octave));
        noise.iter_mut().zip(n).for_each(|(a, b)| *a += amp * b);
        total += amp;
    }
    let mut d = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            let trend = ((x as f64 - x0) * phi.cos() + (y as f64 - y0) * phi.sin()) / (2.0 * s);
            // Value noise of several octaves has a narrow spread around 0.5;
            // doubling it makes depth span most of [0, 1] over a few cells.
            let n = (noise[y * w + x] / total - 0.5) * 2.0;
            d.push((NEAREST + (1.0 - NEAREST) * (0.5 + trend + n).clamp(0.0, 1.0)) as f32);
        }
    }
    d
}

/// I = J·t + A_c·(1 − t) with t = e^(−β·d) per pixel; `airlight` per channel
/// (only the first `img.channels` are used).
pub fn scatter(img: &Image, depth: &[f32], beta: f32, airlight: [f32; 3]) -> Image {
    let n = img.height * img.width;
    assert_eq!(depth.len(), n, "depth map size");
    let mut data = img.data.clone();
    for c in 0..img.channels {
        let a = airlight[c.min(2)] as f64;
        for (v, &d) in data[c * n..(c + 1) * n].iter_mut().zip(depth) {
            let t = (-(beta as f64) * d as f64).exp();
            *v = (*v as f64 * t + a * (1.0 - t)) as f32;
        }
    }
    Image { data, ..*img }
}

/// Haze with a random depth map, β and airlight drawn from `o`.
pub fn haze(img: &Image, o: &HazeOptions, seed: u64) -> Image {
    let u = |i: u64| unit(seed, i);
    let beta = o.beta.at(u(0));
    let base = o.airlight.at(u(1));
    let mut airlight = [base; 3];
    if img.channels > 1 {
        for (c, a) in airlight.iter_mut().enumerate() {
            *a = (base + o.airlight_jitter * (2.0 * u(2 + c as u64) as f32 - 1.0)).clamp(0.0, 1.0);
        }
    }
    let depth = depth_map(img.height, img.width, o.depth_scale, draw(seed, 8));
    scatter(img, &depth, beta, airlight)
}

/// A square blur kernel of side 2·radius + 1, row-major, summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    pub radius: usize,
    pub weights: Vec<f64>,
}

impl Kernel {
    /// The weight at offset (dy, dx) from the centre (0 outside the kernel).
    pub fn at(&self, dy: isize, dx: isize) -> f64 {
        let r = self.radius as isize;
        if dy.abs() > r || dx.abs() > r {
            return 0.0;
        }
        self.weights[((dy + r) * (2 * r + 1) + dx + r) as usize]
    }

    fn normalised(radius: usize, mut weights: Vec<f64>) -> Kernel {
        let s: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|v| *v /= s);
        Kernel { radius, weights }
    }
}

/// Length of the segment p0 + s·(p1 − p0), s in [0, 1], inside the box
/// [xmin, xmax] × [ymin, ymax] (Liang–Barsky clipping).
fn clipped_length(p0: (f64, f64), p1: (f64, f64), bx: (f64, f64), by: (f64, f64)) -> f64 {
    let (dx, dy) = (p1.0 - p0.0, p1.1 - p0.1);
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, p0.0 - bx.0),
        (dx, bx.1 - p0.0),
        (-dy, p0.1 - by.0),
        (dy, by.1 - p0.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return 0.0;
            }
        } else {
            let r = q / p;
            if p < 0.0 {
                lo = lo.max(r);
            } else {
                hi = hi.min(r);
            }
        }
    }
    if hi > lo {
        (hi - lo) * (dx * dx + dy * dy).sqrt()
    } else {
        0.0
    }
}

/// Linear motion blur: a segment of `length` pixels through the centre at
/// `angle` degrees counter-clockwise from horizontal (as seen on screen);
/// each pixel weighs the length of the segment inside its square. So a
/// horizontal kernel of odd integer length L is exactly L taps of 1/L.
pub fn motion_kernel(length: f32, angle: f32) -> Kernel {
    let len = (length as f64).max(1e-6);
    let a = (angle as f64).to_radians();
    // Rows grow downwards, so counter-clockwise on screen is −y.
    let (ux, uy) = (a.cos(), -a.sin());
    let h = len / 2.0;
    let (p0, p1) = ((-h * ux, -h * uy), (h * ux, h * uy));
    // Pixel x covers [x − ½, x + ½], so the segment reaches radius ⌈h − ½⌉.
    let radius = (h - 0.5).ceil().max(0.0) as usize;
    let r = radius as isize;
    let mut w = Vec::with_capacity((2 * radius + 1).pow(2));
    for y in -r..=r {
        for x in -r..=r {
            let (xf, yf) = (x as f64, y as f64);
            w.push(clipped_length(
                p0,
                p1,
                (xf - 0.5, xf + 0.5),
                (yf - 0.5, yf + 0.5),
            ));
        }
    }
    if length <= 0.0 {
        // A zero-length segment: the identity.
        w.iter_mut().for_each(|v| *v = 0.0);
        w[(2 * radius + 1) * radius + radius] = 1.0;
    }
    Kernel::normalised(radius, w)
}

/// Area of the disk of radius `r` about the origin inside the rectangle
/// [x0, x1] × [y0, y1], exactly: the x range is cut where the circle crosses
/// y0 or y1, and on each piece the height is a constant or ±√(r² − x²),
/// whose antiderivative is (x√(r² − x²) + r² asin(x/r)) / 2.
fn disk_rect_area(r: f64, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> f64 {
    let (a, b) = (x0.max(-r), x1.min(r));
    if a >= b {
        return 0.0;
    }
    let s = |x: f64| (r * r - x * x).max(0.0).sqrt();
    let big_s = |x: f64| 0.5 * (x * s(x) + r * r * (x / r).clamp(-1.0, 1.0).asin());
    let mut cuts = vec![a, b];
    for y in [y0, y1] {
        if y.abs() < r {
            let c = s(y);
            cuts.extend([-c, c].into_iter().filter(|&c| c > a && c < b));
        }
    }
    cuts.sort_by(f64::total_cmp);
    let mut area = 0.0;
    for w in cuts.windows(2) {
        let (p, q) = (w[0], w[1]);
        let sm = s(0.5 * (p + q));
        // Upper edge y1 or the circle, lower edge y0 or the circle.
        let top_const = y1 < sm;
        let bottom_const = y0 > -sm;
        let top_mid = if top_const { y1 } else { sm };
        let bottom_mid = if bottom_const { y0 } else { -sm };
        if top_mid <= bottom_mid {
            continue;
        }
        let arc = big_s(q) - big_s(p);
        let top = if top_const { y1 * (q - p) } else { arc };
        let bottom = if bottom_const { y0 * (q - p) } else { -arc };
        area += top - bottom;
    }
    area
}

/// Defocus (out-of-focus) blur: a uniform disk of `radius` pixels, each
/// pixel weighing the exact area of its square inside the disk. Radius 0 is
/// the identity.
pub fn disk_kernel(radius: f32) -> Kernel {
    let rad = (radius as f64).max(0.0);
    // Pixel x covers [x − ½, x + ½]: it meets the disk when x − ½ < radius.
    let size = ((rad + 0.5).ceil() as usize).saturating_sub(1);
    let r = size as isize;
    let mut w = Vec::with_capacity((2 * size + 1).pow(2));
    for y in -r..=r {
        for x in -r..=r {
            let (xf, yf) = (x as f64, y as f64);
            w.push(disk_rect_area(
                rad,
                (xf - 0.5, xf + 0.5),
                (yf - 0.5, yf + 0.5),
            ));
        }
    }
    if w.iter().all(|&v| v == 0.0) {
        w[(2 * size + 1) * size + size] = 1.0;
    }
    Kernel::normalised(size, w)
}

/// Convolution (correlation; the kernels here are point-symmetric) of every
/// channel with `k`, reflected borders (reflect-101, as the Gaussian blur).
/// Zero taps are skipped, so a long thin motion kernel costs its length.
pub fn convolve(img: &Image, k: &Kernel) -> Image {
    let (h, w) = (img.height, img.width);
    let r = k.radius as isize;
    let taps: Vec<(isize, isize, f64)> = (-r..=r)
        .flat_map(|dy| (-r..=r).map(move |dx| (dy, dx)))
        .map(|(dy, dx)| (dy, dx, k.at(dy, dx)))
        .filter(|t| t.2 != 0.0)
        .collect();
    let mut out = vec![0.0f32; img.data.len()];
    for c in 0..img.channels {
        let plane = &img.data[c * h * w..(c + 1) * h * w];
        let dst = &mut out[c * h * w..(c + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0f64;
                for &(dy, dx, wt) in &taps {
                    let sy = reflect(y as isize + dy, h);
                    let sx = reflect(x as isize + dx, w);
                    s += wt * plane[sy * w + sx] as f64;
                }
                dst[y * w + x] = s as f32;
            }
        }
    }
    Image { data: out, ..*img }
}
