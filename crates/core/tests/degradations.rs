//! Synthetic degradations (rain, haze, motion and defocus blur) and folder
//! exclusion: closed forms derived by hand in f64, properties, determinism.

use std::f64::consts::PI;
use std::fs;
use std::path::PathBuf;

use spikeir_core::data::degrade::{
    convolve, depth_map, disk_kernel, motion_kernel, rain, rain_layer, scatter, Kernel,
};
use spikeir_core::data::{
    degrade, eval_pairs, Blend, Degradation, HazeOptions, PatchSampler, RainOptions, SamplerConfig,
    Source, Span,
};
use spikeir_core::io::{write_png, Image};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spikeir-degrade-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn image(channels: usize, h: usize, w: usize, f: impl Fn(usize, usize, usize) -> f32) -> Image {
    let mut data = Vec::with_capacity(channels * h * w);
    for c in 0..channels {
        for y in 0..h {
            for x in 0..w {
                data.push(f(c, y, x));
            }
        }
    }
    Image {
        channels,
        height: h,
        width: w,
        data,
    }
}

/// A grey image whose 8-bit values are nearly all distinct within small windows.
fn ramp(h: usize, w: usize) -> Image {
    image(1, h, w, |_, y, x| ((y * w + x) * 37 % 251) as f32 / 255.0)
}

fn config(patch: usize, batch: usize, augment: bool, d: Degradation, seed: u64) -> SamplerConfig {
    SamplerConfig {
        patch,
        batch,
        augment,
        degradation: d,
        seed,
    }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

// ---------------------------------------------------------------- haze

#[test]
fn haze_with_constant_depth_is_the_closed_form() {
    let j = image(3, 5, 7, |c, y, x| {
        ((c * 13 + y * 7 + x * 3) % 17) as f32 / 16.0
    });
    let (beta, d) = (1.3f32, 0.7f32);
    let a = [0.95f32, 0.9, 0.85];
    let out = scatter(&j, &[d; 35], beta, a);
    // t = e^(−1.3·0.7) = e^(−0.91).
    let t = (-0.91f64).exp();
    for (c, &ac) in a.iter().enumerate() {
        for i in 0..35 {
            let jv = j.data[c * 35 + i] as f64;
            let want = jv * t + ac as f64 * (1.0 - t);
            assert!(
                close(out.data[c * 35 + i] as f64, want, 1e-6),
                "channel {c} pixel {i}: {} vs {want}",
                out.data[c * 35 + i]
            );
        }
    }
    // Depth 0 is the clear image; β = 0 too.
    assert_eq!(scatter(&j, &[0.0; 35], 2.0, a), j);
    assert_eq!(scatter(&j, &[0.9; 35], 0.0, a), j);
}

#[test]
fn haze_is_one_transmission_per_pixel_between_the_image_and_the_airlight() {
    let j = image(3, 48, 64, |c, y, x| {
        (0.1 + 0.8 * (((x * 5 + y * 3 + c * 29) % 41) as f32 / 40.0)).min(0.9)
    });
    let opts = HazeOptions {
        beta: Span::fixed(1.5),
        airlight: Span::fixed(0.92),
        airlight_jitter: 0.0,
        depth_scale: 32.0,
    };
    let hazy = degrade(&j, &Degradation::Haze(opts), 7);
    let n = 48 * 64;
    let (mut tmin, mut tmax) = (f64::INFINITY, f64::NEG_INFINITY);
    for i in 0..n {
        let ts: Vec<f64> = (0..3)
            .filter(|&c| (j.data[c * n + i] - 0.92).abs() > 0.1)
            .map(|c| (hazy.data[c * n + i] as f64 - 0.92) / (j.data[c * n + i] as f64 - 0.92))
            .collect();
        for w in ts.windows(2) {
            assert!(close(w[0], w[1], 1e-4), "pixel {i}: {ts:?}");
        }
        for &t in &ts {
            // d in [0, 1] so t in [e^(−β), 1].
            assert!(t >= (-1.5f64).exp() - 1e-4 && t <= 1.0 + 1e-4, "t {t}");
            tmin = tmin.min(t);
            tmax = tmax.max(t);
        }
    }
    // The depth varies: the transmission is not one value over the image.
    assert!(tmax - tmin > 0.1, "t spans {tmin}..{tmax}");
    // Same seed, same haze; another seed, another depth map.
    assert_eq!(hazy, degrade(&j, &Degradation::Haze(opts), 7));
    assert_ne!(hazy, degrade(&j, &Degradation::Haze(opts), 8));
}

#[test]
fn airlight_and_beta_are_drawn_from_their_ranges() {
    // A black image shows A·(1 − t); a constant depth is not available through
    // the options, but on black the ratio of channels is the ratio of airlights.
    let black = image(3, 16, 16, |_, _, _| 0.0);
    let opts = HazeOptions {
        beta: Span::new(0.5, 2.0),
        airlight: Span::new(0.8, 0.9),
        airlight_jitter: 0.05,
        depth_scale: 64.0,
    };
    let mut seen = Vec::new();
    for seed in 0..20 {
        let out = degrade(&black, &Degradation::Haze(opts), seed);
        // The brightest pixel has the largest 1 − t; dividing channels gives A_c / A_0.
        let n = 256;
        let i = (0..n)
            .max_by(|&a, &b| out.data[a].total_cmp(&out.data[b]))
            .unwrap();
        let v: Vec<f64> = (0..3).map(|c| out.data[c * n + i] as f64).collect();
        assert!(v.iter().all(|&x| (0.0..=0.95).contains(&x)), "{v:?}");
        for c in 1..3 {
            // A_c / A_0 in [(0.8 − 0.05)/(0.9 + 0.05), (0.9 + 0.05)/(0.8 − 0.05)].
            let r = v[c] / v[0];
            assert!((0.75 / 0.95..=0.95 / 0.75).contains(&r), "{r}");
        }
        seen.push(v[0]);
    }
    assert!(seen.iter().any(|&s| (s - seen[0]).abs() > 0.02), "{seen:?}");
}

#[test]
fn depth_maps_are_smooth_in_range_and_seeded() {
    let d = depth_map(128, 160, 64.0, 3);
    assert!(d.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let (lo, hi) = d
        .iter()
        .fold((1.0f32, 0.0f32), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(hi - lo > 0.3, "depth spans only {lo}..{hi}");
    // Smooth: neighbours differ by far less than the range (cells of 64/8 = 8
    // pixels at the finest octave).
    let mut step = 0.0f32;
    for y in 0..128 {
        for x in 1..160 {
            step = step.max((d[y * 160 + x] - d[y * 160 + x - 1]).abs());
        }
    }
    assert!(step < 0.15, "largest neighbour step {step}");
    assert_eq!(d, depth_map(128, 160, 64.0, 3));
    assert_ne!(d, depth_map(128, 160, 64.0, 4));
}

// ---------------------------------------------------------------- kernels

fn row(k: &Kernel, dy: isize) -> Vec<f64> {
    let r = k.radius as isize;
    (-r..=r).map(|dx| k.at(dy, dx)).collect()
}

fn sum(k: &Kernel) -> f64 {
    k.weights.iter().sum()
}

#[test]
fn motion_kernels_are_the_segment_length_per_pixel() {
    // Horizontal, length 3: pixels -1, 0, 1 each hold a unit of the segment.
    let k = motion_kernel(3.0, 0.0);
    assert_eq!(k.radius, 1);
    for (a, b) in row(&k, 0).iter().zip([1.0 / 3.0; 3]) {
        assert!(close(*a, b, 1e-12), "{:?}", row(&k, 0));
    }
    assert!(row(&k, -1).iter().chain(&row(&k, 1)).all(|&v| v == 0.0));
    // Length 4 reaches ±2, half into the end pixels: [1/8, 1/4, 1/4, 1/4, 1/8].
    let k = motion_kernel(4.0, 0.0);
    assert_eq!(k.radius, 2);
    for (a, b) in row(&k, 0).iter().zip([0.125, 0.25, 0.25, 0.25, 0.125]) {
        assert!(close(*a, b, 1e-12), "{:?}", row(&k, 0));
    }
    // 45°, length 2√2 from (−1, 1) to (1, −1) on screen: the centre square's
    // diagonal (√2) and half a diagonal in each end square, of 2√2.
    let k = motion_kernel(2.0 * 2f32.sqrt(), 45.0);
    assert!(close(k.at(0, 0), 0.5, 1e-6), "{:?}", k.weights);
    assert!(close(k.at(-1, 1), 0.25, 1e-6), "{:?}", k.weights);
    assert!(close(k.at(1, -1), 0.25, 1e-6), "{:?}", k.weights);
    assert!(k.at(1, 1).abs() < 1e-6 && k.at(-1, -1).abs() < 1e-6);
    // Vertical is horizontal transposed.
    let (h, v) = (motion_kernel(5.0, 0.0), motion_kernel(5.0, 90.0));
    for dy in -2..=2isize {
        for dx in -2..=2isize {
            assert!(close(h.at(dy, dx), v.at(dx, dy), 1e-12));
        }
    }
    // Every kernel sums to 1 and is point-symmetric (a line through the centre).
    for (len, ang) in [
        (1.0, 0.0),
        (7.3, 17.0),
        (15.0, 123.0),
        (30.0, -60.0),
        (2.0, 90.0),
    ] {
        let k = motion_kernel(len, ang);
        assert!(close(sum(&k), 1.0, 1e-9), "{len} {ang}: {}", sum(&k));
        let r = k.radius as isize;
        for dy in -r..=r {
            for dx in -r..=r {
                assert!(close(k.at(dy, dx), k.at(-dy, -dx), 1e-9));
            }
        }
        // The weight off the line is zero: no tap farther than ½√2 from it.
        let a = (ang as f64).to_radians();
        for dy in -r..=r {
            for dx in -r..=r {
                let dist = (dx as f64 * a.sin() + dy as f64 * a.cos()).abs();
                if dist > 0.5 * 2f64.sqrt() + 1e-9 {
                    assert_eq!(k.at(dy, dx), 0.0, "{len} {ang} at ({dy}, {dx})");
                }
            }
        }
    }
}

#[test]
fn a_blur_along_an_edge_leaves_it_and_across_it_smooths_it() {
    // A vertical edge: columns 0–4 are 0.2, 5–9 are 0.8 (constant down each column).
    let vertical_edge = image(1, 8, 10, |_, _, x| if x < 5 { 0.2 } else { 0.8 });
    let horizontal_edge = image(1, 10, 8, |_, y, _| if y < 5 { 0.2 } else { 0.8 });
    let vertical = motion_kernel(5.0, 90.0);
    let horizontal = motion_kernel(3.0, 0.0);
    assert_eq!(convolve(&vertical_edge, &vertical), vertical_edge);
    assert_eq!(convolve(&horizontal_edge, &horizontal), horizontal_edge);
    // Across the edge, length 3: x = 4 sees (0.2 + 0.2 + 0.8)/3 = 0.4 and
    // x = 5 sees (0.2 + 0.8 + 0.8)/3 = 0.6; the rest are unchanged.
    let across = convolve(&vertical_edge, &horizontal);
    for y in 0..8 {
        for x in 0..10 {
            let want = match x {
                4 => 0.4,
                5 => 0.6,
                x if x < 4 => 0.2,
                _ => 0.8,
            };
            assert!(
                close(across.data[y * 10 + x] as f64, want, 1e-6),
                "({y}, {x}) {}",
                across.data[y * 10 + x]
            );
        }
    }
}

#[test]
fn disk_kernels_weigh_the_exact_area_of_each_pixel_inside_the_disk() {
    // Radius 0.6: the four side squares reach to 0.5 from the centre (inside),
    // the corner squares to √½ ≈ 0.707 (outside): a plus of five.
    let k = disk_kernel(0.6);
    assert_eq!(k.radius, 1);
    for dy in -1..=1isize {
        for dx in -1..=1isize {
            let inside = dy == 0 || dx == 0;
            assert_eq!(k.at(dy, dx) > 0.0, inside, "({dy}, {dx})");
        }
    }
    // Radius 1: the centre square lies inside (its corners are √½ away), each
    // side square holds the part of the disk beyond x = ½ and within |y| ≤ ½:
    // ∫_{1/2}^{√3/2} 1 dx + ∫_{√3/2}^{1} 2√(1 − x²) dx = √3/4 − 1/2 + π/6;
    // the four corners share the rest of the disk's area π.
    let k = disk_kernel(1.0);
    let side = 3f64.sqrt() / 4.0 - 0.5 + PI / 6.0;
    let corner = (PI - 1.0 - 4.0 * side) / 4.0;
    assert!(close(k.at(0, 0), 1.0 / PI, 1e-12), "{}", k.at(0, 0));
    for (dy, dx) in [(0, 1), (1, 0), (0, -1), (-1, 0)] {
        assert!(close(k.at(dy, dx), side / PI, 1e-12), "{}", k.at(dy, dx));
    }
    for (dy, dx) in [(1, 1), (1, -1), (-1, 1), (-1, -1)] {
        assert!(close(k.at(dy, dx), corner / PI, 1e-12), "{}", k.at(dy, dx));
    }
    // Radius 3.3: the support is exactly the squares whose nearest point is
    // inside the circle, and the kernel sums to 1.
    let k = disk_kernel(3.3);
    // Squares at 4 start 3.5 from the centre, beyond the circle.
    assert_eq!(k.radius, 3);
    for dy in -4..=4isize {
        for dx in -4..=4isize {
            let near = |v: isize| (v.abs() as f64 - 0.5).max(0.0);
            let reaches = near(dx).hypot(near(dy)) < 3.3;
            assert_eq!(k.at(dy, dx) > 0.0, reaches, "({dy}, {dx})");
        }
    }
    assert!(close(sum(&k), 1.0, 1e-9));
    // Radius 0 is the identity.
    let k = disk_kernel(0.0);
    assert_eq!((k.radius, k.weights.clone()), (0, vec![1.0]));
}

#[test]
fn blurs_keep_constants_at_the_borders_and_are_seeded() {
    let flat = image(3, 9, 12, |c, _, _| 0.25 * (c + 1) as f32);
    for k in [motion_kernel(9.0, 33.0), disk_kernel(4.5)] {
        let out = convolve(&flat, &k);
        assert!(out
            .data
            .iter()
            .zip(&flat.data)
            .all(|(a, b)| (a - b).abs() < 1e-6));
    }
    let img = ramp(24, 24);
    let random_angle = Degradation::MotionBlur {
        length: Span::new(5.0, 11.0),
        angle: None,
    };
    let a = degrade(&img, &random_angle, 1);
    assert_eq!(a, degrade(&img, &random_angle, 1));
    assert_ne!(a, degrade(&img, &random_angle, 2));
    let radius = Degradation::Defocus {
        radius: Span::new(1.0, 3.0),
    };
    let b = degrade(&img, &radius, 1);
    assert_eq!(b, degrade(&img, &radius, 1));
    assert_ne!(b, degrade(&img, &radius, 2));
    // A fixed kernel does not depend on the seed.
    let fixed = Degradation::MotionBlur {
        length: Span::fixed(7.0),
        angle: Some(Span::fixed(20.0)),
    };
    assert_eq!(degrade(&img, &fixed, 1), degrade(&img, &fixed, 2));
    assert_eq!(
        degrade(&img, &fixed, 1),
        convolve(&img, &motion_kernel(7.0, 20.0))
    );
}

#[test]
fn a_blurred_patch_is_a_crop_of_the_blurred_image() {
    // Random (so per patch) but in effect one kernel: the sampler must blur a
    // margin of real pixels around each patch, not the patch's own reflection.
    let dir = temp_dir("margin");
    // Random grey levels, so that a 12×12 crop shows where it came from.
    let img = image(1, 30, 34, |_, y, x| {
        spikeir_core::random::unit(7, (y * 34 + x) as u64) as f32
    });
    write_png(&dir.join("a.png"), &img).unwrap();
    let img = spikeir_core::io::read_image(&dir.join("a.png"), Some(1)).unwrap();
    let src = Source::Folder {
        dir: dir.clone(),
        channels: Some(1),
        exclude: vec![],
    };
    let d = Degradation::MotionBlur {
        length: Span::fixed(9.0),
        angle: Some(Span::new(30.0, 30.0001)),
    };
    let whole = convolve(&img, &motion_kernel(9.0, 30.0));
    let p = 12;
    let s = PatchSampler::new(&src, config(p, 6, false, d, 5)).unwrap();
    let b = s.batch(0);
    for (inp, tgt) in b.input.chunks(p * p).zip(b.target.chunks(p * p)) {
        // Find where the target patch came from.
        let (y, x) = (0..=30 - p)
            .flat_map(|y| (0..=34 - p).map(move |x| (y, x)))
            .find(|&(y, x)| (0..p * p).all(|i| img.data[(y + i / p) * 34 + x + i % p] == tgt[i]))
            .expect("the target is a crop");
        for (i, &v) in inp.iter().enumerate() {
            let want = whole.data[(y + i / p) * 34 + x + i % p];
            assert!(
                (v - want).abs() < 1e-4,
                "({y}, {x}) pixel {i}: {v} vs {want}"
            );
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_given_blur_angle_is_the_patch_own_under_flips_and_rotations() {
    // A horizontal kernel of 5: inside each patch (2 pixels from its left and
    // right sides) the input is the mean of the target's 5 horizontal
    // neighbours, whichever of the 8 transforms the patch had.
    let src = Source::DeadLeaves {
        count: 2,
        size: 40,
        seed: 1,
    };
    let d = Degradation::MotionBlur {
        length: Span::fixed(5.0),
        angle: Some(Span::fixed(0.0)),
    };
    let p = 16;
    let s = PatchSampler::new(&src, config(p, 12, true, d, 3)).unwrap();
    let b = s.batch(0);
    for (k, (inp, tgt)) in b
        .input
        .chunks(p * p)
        .zip(b.target.chunks(p * p))
        .enumerate()
    {
        for y in 0..p {
            for x in 2..p - 2 {
                let want = (x - 2..=x + 2).map(|j| tgt[y * p + j]).sum::<f32>() / 5.0;
                let got = inp[y * p + x];
                assert!(
                    (got - want).abs() < 1e-5,
                    "patch {k} ({y}, {x}): {got} vs {want}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------- rain

fn coverage(clean: &Image, rainy: &Image) -> f64 {
    let hits = clean
        .data
        .iter()
        .zip(&rainy.data)
        .filter(|(a, b)| *b - *a > 5.0 / 255.0)
        .count();
    hits as f64 / clean.data.len() as f64
}

#[test]
fn rain_only_adds_the_same_grey_streaks_to_every_channel() {
    let bg = image(3, 96, 128, |c, y, x| {
        0.1 + 0.2 * c as f32 + 0.001 * (x + y) as f32
    });
    let opts = RainOptions::default();
    let wet = degrade(&bg, &Degradation::Rain(opts), 11);
    let n = 96 * 128;
    let mut added = 0.0;
    for i in 0..n {
        let d: Vec<f32> = (0..3)
            .map(|c| wet.data[c * n + i] - bg.data[c * n + i])
            .collect();
        assert!(d.iter().all(|&v| v >= 0.0), "pixel {i}: {d:?}");
        assert!((0..3).all(|c| wet.data[c * n + i] <= 1.0));
        // Unclipped where the background leaves room: equal on all channels.
        if (0..3).all(|c| wet.data[c * n + i] < 1.0) {
            assert!(
                (d[0] - d[1]).abs() < 1e-6 && (d[0] - d[2]).abs() < 1e-6,
                "{d:?}"
            );
        }
        added += d[0] as f64;
    }
    assert!(added > 0.0);
    // The layer is the difference (no clipping on this dark background).
    let layer = rain_layer(96, 128, &opts, 11);
    assert!(layer.iter().all(|&v| v >= 0.0));
    for (i, l) in layer.iter().enumerate() {
        assert!((wet.data[i] - bg.data[i] - l).abs() < 1e-6);
    }
    // Seeded.
    assert_eq!(wet, degrade(&bg, &Degradation::Rain(opts), 11));
    assert_ne!(wet, degrade(&bg, &Degradation::Rain(opts), 12));
    // No streaks at density 0; screen never adds more than add; white stays white.
    let none = RainOptions {
        density: Span::fixed(0.0),
        ..opts
    };
    assert_eq!(rain(&bg, &none, 3), bg);
    let screen = RainOptions {
        blend: Blend::Screen,
        ..opts
    };
    let s = rain(&bg, &screen, 11);
    assert!(s.data.iter().zip(&wet.data).all(|(a, b)| *a <= b + 1e-6));
    assert!(s.data.iter().zip(&bg.data).all(|(a, b)| a >= b));
    let white = image(1, 32, 32, |_, _, _| 1.0);
    assert_eq!(rain(&white, &opts, 1), white);
}

#[test]
fn rain_coverage_grows_with_density() {
    let bg = image(1, 128, 128, |_, _, _| 0.3);
    let with = |density: f32| RainOptions {
        density: Span::fixed(density),
        length: Span::fixed(20.0),
        width: Span::fixed(1.5),
        brightness: Span::fixed(0.3),
        ..RainOptions::default()
    };
    let cov: Vec<f64> = [2.0, 10.0, 40.0]
        .iter()
        .map(|&d| {
            (0..8)
                .map(|seed| coverage(&bg, &rain(&bg, &with(d), seed)))
                .sum::<f64>()
                / 8.0
        })
        .collect();
    assert!(
        cov[0] > 0.0 && cov[0] < cov[1] && cov[1] < cov[2],
        "{cov:?}"
    );
    // Sparse streaks barely overlap, so 5× the density is roughly 5× the cover.
    assert!(cov[1] / cov[0] > 3.0 && cov[1] / cov[0] < 7.0, "{cov:?}");
}

/// Sum of squared differences between vertical and horizontal neighbours.
fn gradient_energy(v: &[f32], h: usize, w: usize) -> (f64, f64) {
    let (mut gy, mut gx) = (0.0, 0.0);
    for y in 0..h - 1 {
        for x in 0..w - 1 {
            let c = v[y * w + x] as f64;
            gy += (v[(y + 1) * w + x] as f64 - c).powi(2);
            gx += (v[y * w + x + 1] as f64 - c).powi(2);
        }
    }
    (gy, gx)
}

#[test]
fn vertical_rain_stays_vertical_in_flipped_and_rotated_patches() {
    // Streaks falling straight down vary little along columns and much
    // across them; patches are flipped/rotated before the rain is added.
    let opts = RainOptions {
        angle: Span::fixed(0.0),
        angle_jitter: 0.0,
        density: Span::fixed(30.0),
        ..RainOptions::default()
    };
    let src = Source::DeadLeaves {
        count: 3,
        size: 64,
        seed: 2,
    };
    let s = PatchSampler::new(&src, config(48, 16, true, Degradation::Rain(opts), 4)).unwrap();
    let b = s.batch(0);
    for (k, (inp, tgt)) in b
        .input
        .chunks(48 * 48)
        .zip(b.target.chunks(48 * 48))
        .enumerate()
    {
        let diff: Vec<f32> = inp.iter().zip(tgt).map(|(a, b)| a - b).collect();
        assert!(diff.iter().all(|&v| v >= 0.0), "patch {k}");
        let (gy, gx) = gradient_energy(&diff, 48, 48);
        assert!(gx > 3.0 * gy, "patch {k}: across {gx}, along {gy}");
    }
}

// ---------------------------------------------------------------- options

fn err(d: Degradation) -> String {
    d.validate().unwrap_err().to_string()
}

#[test]
fn bad_ranges_name_the_option() {
    let r = RainOptions::default();
    let h = HazeOptions::default();
    let cases = [
        (
            Degradation::Rain(RainOptions {
                density: Span::new(5.0, 1.0),
                ..r
            }),
            "rain.density",
        ),
        (
            Degradation::Rain(RainOptions {
                length: Span::fixed(0.0),
                ..r
            }),
            "rain.length",
        ),
        (
            Degradation::Rain(RainOptions {
                angle: Span::new(-100.0, 0.0),
                ..r
            }),
            "rain.angle",
        ),
        (
            Degradation::Rain(RainOptions {
                angle_jitter: f32::NAN,
                ..r
            }),
            "rain.angleJitter",
        ),
        (
            Degradation::Rain(RainOptions {
                width: Span::fixed(0.1),
                ..r
            }),
            "rain.width",
        ),
        (
            Degradation::Rain(RainOptions {
                brightness: Span::new(0.5, 1.5),
                ..r
            }),
            "rain.brightness",
        ),
        (
            Degradation::Haze(HazeOptions {
                beta: Span::fixed(-1.0),
                ..h
            }),
            "haze.beta",
        ),
        (
            Degradation::Haze(HazeOptions {
                airlight: Span::new(0.9, 1.1),
                ..h
            }),
            "haze.airlight",
        ),
        (
            Degradation::Haze(HazeOptions {
                airlight_jitter: 0.6,
                ..h
            }),
            "haze.airlightJitter",
        ),
        (
            Degradation::Haze(HazeOptions {
                depth_scale: 1.0,
                ..h
            }),
            "haze.depthScale",
        ),
        (
            Degradation::MotionBlur {
                length: Span::fixed(0.5),
                angle: None,
            },
            "motionBlur.length",
        ),
        (
            Degradation::MotionBlur {
                length: Span::fixed(5.0),
                angle: Some(Span::new(10.0, f32::INFINITY)),
            },
            "motionBlur.angle",
        ),
        (
            Degradation::Defocus {
                radius: Span::new(2.0, 60.0),
            },
            "defocus.radius",
        ),
    ];
    for (d, name) in cases {
        let e = err(d.clone());
        assert!(e.contains(name), "{name}: {e}");
        // The sampler refuses it before reading any image.
        let src = Source::DeadLeaves {
            count: 1,
            size: 16,
            seed: 0,
        };
        let e = PatchSampler::new(&src, config(8, 1, false, d, 0))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(name), "{name}: {e}");
    }
    assert!(Degradation::Rain(r).validate().is_ok());
    assert!(Degradation::Haze(h).validate().is_ok());
}

// ---------------------------------------------------------------- exclude

#[test]
fn folder_exclude_leaves_out_stems_and_refuses_unknown_ones() {
    let dir = temp_dir("exclude");
    for (i, name) in ["2092.png", "100007.png", "100039.png"].iter().enumerate() {
        write_png(
            &dir.join(name),
            &image(1, 8, 8, |_, _, _| 0.1 * (i + 1) as f32),
        )
        .unwrap();
    }
    let folder = |exclude: &[&str]| Source::Folder {
        dir: dir.clone(),
        channels: Some(1),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
    };
    let names = |src: &Source| -> Vec<String> {
        eval_pairs(src, &Degradation::Identity, 0)
            .unwrap()
            .into_iter()
            .map(|p| p.0)
            .collect()
    };
    assert_eq!(names(&folder(&[])).len(), 3);
    assert_eq!(names(&folder(&["2092"])), ["100007.png", "100039.png"]);
    let s = PatchSampler::new(
        &folder(&["2092", "100039"]),
        config(8, 4, false, Degradation::Identity, 0),
    )
    .unwrap();
    assert_eq!(s.len(), 1);
    // Only 100007 (grey 0.2) is left.
    assert!(s.batch(0).target.iter().all(|&v| (v - 0.2).abs() < 0.003));
    // An entry that names no image, or a full name with its extension.
    for bad in ["2093", "2092.png"] {
        let e = eval_pairs(&folder(&["100007", bad]), &Degradation::Identity, 0)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("'{bad}'")) && e.contains("matches no image"),
            "{e}"
        );
    }
    let e = eval_pairs(
        &folder(&["2092", "100007", "100039"]),
        &Degradation::Identity,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("leaves no image"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}
