//! The data pipeline (DESIGN §6): degradations, sources, the seeded patch
//! sampler, the prefetcher and evaluation pairs. Host code only, no device.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spikeir_core::data::{
    dead_leaves, degrade, dihedral, eval_pairs, Degradation, PatchSampler, Prefetcher,
    SamplerConfig, Source,
};
use spikeir_core::io::{write_png, Image};

/// A fresh temporary folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spikeir-data-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A grey image whose 8-bit values are nearly all distinct within small windows.
fn ramp(h: usize, w: usize, salt: usize) -> Image {
    Image {
        channels: 1,
        height: h,
        width: w,
        data: (0..h * w)
            .map(|i| ((i * 37 + salt * 11) % 251) as f32 / 255.0)
            .collect(),
    }
}

fn constant(h: usize, w: usize, v: f32) -> Image {
    Image {
        channels: 1,
        height: h,
        width: w,
        data: vec![v; h * w],
    }
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

fn awgn(sigma: f32) -> Degradation {
    Degradation::Awgn {
        sigma_min: sigma,
        sigma_max: sigma,
    }
}

fn leaves(count: usize, size: usize) -> Source {
    Source::DeadLeaves {
        count,
        size,
        seed: 5,
    }
}

fn shared_data() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    d.is_dir().then_some(d)
}

#[test]
fn batches_depend_only_on_seed_and_step() {
    let cfg = config(16, 4, true, awgn(25.0), 42);
    let a = PatchSampler::new(&leaves(6, 48), cfg.clone()).unwrap();
    let b = PatchSampler::new(&leaves(6, 48), cfg.clone()).unwrap();
    let x = a.batch(7);
    assert_eq!(x.shape, [4, 1, 16, 16]);
    assert_eq!(x.input.len(), 4 * 16 * 16);
    assert_eq!(x.target.len(), 4 * 16 * 16);
    // Same (seed, step) from an independent sampler, in any order: identical.
    let _ = b.batch(3);
    assert_eq!(x, b.batch(7));
    assert_eq!(x, a.batch(7));
    assert_ne!(x.target, a.batch(8).target);
    assert_ne!(x.input, a.batch(8).input);
    let c = PatchSampler::new(&leaves(6, 48), config(16, 4, true, awgn(25.0), 43)).unwrap();
    assert_ne!(x.input, c.batch(7).input);
}

#[test]
fn a_prefetcher_started_at_k_yields_the_sampler_batches_from_k() {
    let s =
        Arc::new(PatchSampler::new(&leaves(4, 40), config(12, 3, true, awgn(15.0), 9)).unwrap());
    let mut p = Prefetcher::new(s.clone(), 5, 3);
    for k in 5..12 {
        assert_eq!(p.step(), k);
        assert_eq!(p.next().unwrap(), s.batch(k), "step {k}");
    }
    // Dropping it with a full channel must stop (and join) the thread.
    drop(p);
}

#[test]
fn awgn_has_the_stated_mean_and_std_and_is_not_clipped() {
    let n = 512 * 512;
    let clean = constant(512, 512, 0.95);
    for sigma in [15.0f32, 50.0] {
        let noisy = degrade(&clean, &awgn(sigma), 1234);
        let d: Vec<f64> = noisy
            .data
            .iter()
            .map(|&v| v as f64 - 0.95f32 as f64)
            .collect();
        let mean = d.iter().sum::<f64>() / n as f64;
        let std = (d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let s = sigma as f64 / 255.0;
        // Standard error of the mean s/√n and of the std ≈ s/√(2n); allow 6 of each.
        assert!(mean.abs() < 6.0 * s / (n as f64).sqrt(), "mean {mean}");
        assert!(
            (std - s).abs() < 6.0 * s / (2.0 * n as f64).sqrt(),
            "std {std} vs {s}"
        );
        assert!(
            noisy.data.iter().any(|&v| v > 1.0),
            "values are not clipped"
        );
        assert_eq!(noisy, degrade(&clean, &awgn(sigma), 1234));
        assert_ne!(noisy, degrade(&clean, &awgn(sigma), 1235));
    }
    // A σ range: each draw lies in it, and draws differ between seeds.
    let range = Degradation::Awgn {
        sigma_min: 0.0,
        sigma_max: 55.0,
    };
    let stds: Vec<f64> = (0..6)
        .map(|seed| {
            let v = degrade(&constant(128, 128, 0.5), &range, seed).data;
            (v.iter().map(|&x| (x as f64 - 0.5).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
                * 255.0
        })
        .collect();
    assert!(stds.iter().all(|&s| s < 57.0), "{stds:?}");
    assert!(stds.iter().any(|&s| (s - stds[0]).abs() > 1.0), "{stds:?}");
}

#[test]
fn the_8_augmentations_are_the_dihedral_group() {
    // [[0, 1, 2], [3, 4, 5]], checked by hand.
    let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
    let expected: [(&[f32], usize, usize); 8] = [
        (&[0., 1., 2., 3., 4., 5.], 2, 3), // identity
        (&[2., 5., 1., 4., 0., 3.], 3, 2), // rotate 90° counter-clockwise
        (&[5., 4., 3., 2., 1., 0.], 2, 3), // rotate 180°
        (&[3., 0., 4., 1., 5., 2.], 3, 2), // rotate 270°
        (&[2., 1., 0., 5., 4., 3.], 2, 3), // flip left-right
        (&[0., 3., 1., 4., 2., 5.], 3, 2), // transpose
        (&[3., 4., 5., 0., 1., 2.], 2, 3), // flip up-down
        (&[5., 2., 4., 1., 3., 0.], 3, 2), // anti-transpose
    ];
    for (k, (data, h, w)) in expected.iter().enumerate() {
        assert_eq!(
            dihedral(&x, 1, 2, 3, k as u8),
            (data.to_vec(), *h, *w),
            "k = {k}"
        );
    }
    // On a square with distinct values: 8 distinct results, closed under
    // composition, and each has an inverse among them (so it is a group).
    let sq: Vec<f32> = (0..9).map(|v| v as f32).collect();
    let all: Vec<Vec<f32>> = (0..8).map(|k| dihedral(&sq, 1, 3, 3, k).0).collect();
    for i in 0..8 {
        for j in 0..i {
            assert_ne!(all[i], all[j]);
        }
    }
    for a in 0..8u8 {
        let mut has_inverse = false;
        for b in 0..8u8 {
            let ab = dihedral(&all[a as usize], 1, 3, 3, b).0;
            assert!(all.contains(&ab), "{a} then {b} is not in the set");
            has_inverse |= ab == sq;
        }
        assert!(has_inverse, "{a}");
    }
    // Channels are transformed alike.
    let two: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let (out, _, _) = dihedral(&two, 2, 2, 3, 1);
    assert_eq!(&out[..6], &[2., 5., 1., 4., 0., 3.]);
    assert_eq!(&out[6..], &[8., 11., 7., 10., 6., 9.]);
}

/// All p×p crops of `img`, under all 8 transforms when `augment`.
fn crops(img: &Image, p: usize, augment: bool) -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for y in 0..=img.height - p {
        for x in 0..=img.width - p {
            let c: Vec<f32> = (0..p)
                .flat_map(|r| img.data[(y + r) * img.width + x..][..p].to_vec())
                .collect();
            for k in 0..if augment { 8 } else { 1 } {
                out.push(dihedral(&c, 1, p, p, k).0);
            }
        }
    }
    out
}

#[test]
fn patches_are_crops_of_the_source_images() {
    let dir = temp_dir("crops");
    let imgs = [ramp(20, 17, 0), ramp(15, 23, 1)];
    write_png(&dir.join("a.png"), &imgs[0]).unwrap();
    write_png(&dir.join("b.png"), &imgs[1]).unwrap();
    let src = Source::Folder {
        dir: dir.clone(),
        channels: Some(1),
        exclude: vec![],
    };
    let p = 6;
    for augment in [false, true] {
        let s = PatchSampler::new(&src, config(p, 8, augment, Degradation::Identity, 3)).unwrap();
        assert_eq!(s.len(), 2);
        let all: Vec<Vec<f32>> = imgs.iter().flat_map(|i| crops(i, p, augment)).collect();
        for step in 0..5 {
            let b = s.batch(step);
            assert_eq!(b.input, b.target, "identity degradation");
            for patch in b.target.chunks(p * p) {
                let hit = all
                    .iter()
                    .any(|c| c.iter().zip(patch).all(|(a, b)| (a - b).abs() < 1e-6));
                assert!(hit, "a patch at step {step} is no crop of a source image");
            }
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn manifests_and_other_files_are_ignored() {
    let dir = temp_dir("manifest");
    write_png(&dir.join("01.png"), &ramp(12, 12, 0)).unwrap();
    fs::write(dir.join("MANIFEST.tsv"), "file\twidth\n01.png\t12\n").unwrap();
    fs::write(dir.join("README.md"), "# notes").unwrap();
    let src = Source::Folder {
        dir: dir.clone(),
        channels: None,
        exclude: vec![],
    };
    let s = PatchSampler::new(&src, config(8, 2, false, awgn(25.0), 0)).unwrap();
    assert_eq!((s.len(), s.channels()), (1, 1));
    let pairs = eval_pairs(&src, &awgn(25.0), 0).unwrap();
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].0, "01.png");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_folders_give_errors_that_name_the_problem() {
    // Empty (of images).
    let dir = temp_dir("empty");
    fs::write(dir.join("MANIFEST.tsv"), "x").unwrap();
    let src = Source::Folder {
        dir: dir.clone(),
        channels: None,
        exclude: vec![],
    };
    let e = PatchSampler::new(&src, config(8, 2, false, awgn(25.0), 0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no images"), "{e}");
    // Patch larger than an image.
    write_png(&dir.join("small.png"), &ramp(10, 30, 0)).unwrap();
    let e = PatchSampler::new(&src, config(12, 2, false, awgn(25.0), 0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("small.png") && e.contains("larger"), "{e}");
    // A corrupt file.
    fs::write(dir.join("broken.png"), b"\x89PNG not really").unwrap();
    let e = PatchSampler::new(&src, config(8, 2, false, awgn(25.0), 0))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("broken.png"), "{e}");
    assert!(eval_pairs(&src, &awgn(25.0), 0)
        .unwrap_err()
        .to_string()
        .contains("broken.png"));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn paired_folders_pair_by_name_and_report_missing_partners() {
    let dir = temp_dir("paired");
    let (inp, tgt) = (dir.join("input"), dir.join("target"));
    fs::create_dir_all(&inp).unwrap();
    fs::create_dir_all(&tgt).unwrap();
    for (i, name) in ["a.png", "b.png"].iter().enumerate() {
        write_png(&inp.join(name), &ramp(16, 16, i)).unwrap();
        write_png(&tgt.join(name), &constant(16, 16, 0.2 * (i + 1) as f32)).unwrap();
    }
    let src = Source::Paired {
        input_dir: inp.clone(),
        target_dir: tgt.clone(),
        channels: None,
    };
    let pairs = eval_pairs(&src, &Degradation::Identity, 0).unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[1].0, "b.png");
    assert!(pairs[1]
        .1
        .data
        .iter()
        .zip(&ramp(16, 16, 1).data)
        .all(|(a, b)| (a - b).abs() < 1e-6));
    assert!(pairs[1].2.data.iter().all(|&v| (v - 0.4).abs() < 0.003));
    // Patches keep input and target aligned: every target patch of pair b is constant 0.4.
    let s = PatchSampler::new(&src, config(8, 6, true, Degradation::Identity, 1)).unwrap();
    let b = s.batch(0);
    for (i, t) in b.input.chunks(64).zip(b.target.chunks(64)) {
        let level = t[0];
        assert!(t.iter().all(|&v| v == level));
        let salt = if (level - 0.2).abs() < 0.01 { 0 } else { 1 };
        assert!(crops(&ramp(16, 16, salt), 8, true)
            .iter()
            .any(|c| c.iter().zip(i).all(|(a, b)| (a - b).abs() < 1e-6)));
    }
    // A missing partner.
    write_png(&inp.join("c.png"), &ramp(16, 16, 2)).unwrap();
    let e = eval_pairs(&src, &Degradation::Identity, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.png") && e.contains("without target"), "{e}");
    fs::remove_dir_all(&dir).unwrap();
}

fn mean_abs_diff(a: &Image, b: &Image) -> f32 {
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>()
        / a.data.len() as f32
}

#[test]
fn jpeg_at_quality_10_changes_the_image_and_at_100_nearly_not() {
    let img = dead_leaves(96, 3);
    let q10 = degrade(&img, &Degradation::Jpeg { quality: 10 }, 0);
    let q100 = degrade(&img, &Degradation::Jpeg { quality: 100 }, 0);
    assert_eq!((q10.height, q10.width, q10.channels), (96, 96, 1));
    let (d10, d100) = (mean_abs_diff(&img, &q10), mean_abs_diff(&img, &q100));
    assert!(d10 > 0.01, "quality 10 changed too little: {d10}");
    // Quality 100 leaves only 8-bit rounding and small DCT error (< 1 grey level on average).
    assert!(d100 < 1.0 / 255.0, "quality 100 changed too much: {d100}");
    assert!(d10 > 4.0 * d100);
    // Colour images go through RGB coding.
    let rgb = Image {
        channels: 3,
        height: 16,
        width: 24,
        data: (0..3 * 16 * 24).map(|i| (i % 7) as f32 / 7.0).collect(),
    };
    let out = degrade(&rgb, &Degradation::Jpeg { quality: 90 }, 0);
    assert_eq!((out.channels, out.height, out.width), (3, 16, 24));
}

#[test]
fn gaussian_blur_keeps_constants_and_the_mean() {
    let c = constant(15, 22, 0.3);
    let b = degrade(&c, &Degradation::GaussianBlur { sigma: 2.0 }, 0);
    assert!(b.data.iter().all(|&v| (v - 0.3).abs() < 1e-5));
    // On a textured image it smooths (lower variance) and nearly keeps the mean.
    let img = dead_leaves(64, 8);
    let bl = degrade(&img, &Degradation::GaussianBlur { sigma: 1.5 }, 0);
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let var = |v: &[f32]| {
        let m = mean(v);
        v.iter().map(|x| (x - m).powi(2)).sum::<f32>() / v.len() as f32
    };
    assert!((mean(&img.data) - mean(&bl.data)).abs() < 0.01);
    assert!(var(&bl.data) < var(&img.data));
    assert_eq!(
        degrade(&img, &Degradation::GaussianBlur { sigma: 0.0 }, 0),
        img
    );
}

#[test]
fn dead_leaves_are_in_range_deterministic_and_textured() {
    let a = dead_leaves(64, 11);
    assert_eq!((a.channels, a.height, a.width), (1, 64, 64));
    assert!(a.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(a, dead_leaves(64, 11));
    assert_ne!(a, dead_leaves(64, 12));
    let lo = a.data.iter().cloned().fold(f32::INFINITY, f32::min);
    let hi = a.data.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    assert!(hi - lo > 0.3, "range {lo}..{hi}");
    // Many distinct grey levels: leaves plus texture, not a handful of flat shapes.
    let mut levels: Vec<u32> = a.data.iter().map(|v| (v * 255.0).round() as u32).collect();
    levels.sort();
    levels.dedup();
    assert!(levels.len() > 50, "{} levels", levels.len());
    // The source gives the same images on every construction.
    let s1 = PatchSampler::new(
        &leaves(3, 32),
        config(32, 3, false, Degradation::Identity, 0),
    );
    let s2 = PatchSampler::new(
        &leaves(3, 32),
        config(32, 3, false, Degradation::Identity, 0),
    );
    assert_eq!(s1.unwrap().batch(0), s2.unwrap().batch(0));
}

#[test]
fn set12_eval_pairs_and_train400_patches() {
    let Some(data) = shared_data() else {
        eprintln!("skipping: ../shared/data is absent (Set12/Train400 checks not run)");
        return;
    };
    let set12 = Source::Folder {
        dir: data.join("set12"),
        channels: Some(1),
        exclude: vec![],
    };
    let pairs = eval_pairs(&set12, &awgn(25.0), 0).unwrap();
    assert_eq!(pairs.len(), 12);
    assert_eq!(pairs[0].0, "01.png");
    assert_eq!((pairs[0].2.height, pairs[0].2.width), (256, 256));
    assert_eq!((pairs[11].2.height, pairs[11].2.width), (512, 512));
    let again = eval_pairs(&set12, &awgn(25.0), 0).unwrap();
    assert_eq!(pairs[3].1, again[3].1, "fixed noise per image");
    // Noise on image i differs from image j (a seed per index).
    let n0: Vec<f32> = pairs[0]
        .1
        .data
        .iter()
        .zip(&pairs[0].2.data)
        .map(|(a, b)| a - b)
        .collect();
    let n1: Vec<f32> = pairs[1]
        .1
        .data
        .iter()
        .zip(&pairs[1].2.data)
        .map(|(a, b)| a - b)
        .collect();
    assert_ne!(n0[..100], n1[..100]);
    let std = (n0.iter().map(|v| v * v).sum::<f32>() / n0.len() as f32).sqrt();
    assert!((std * 255.0 - 25.0).abs() < 0.5, "σ {}", std * 255.0);

    let train = Source::Folder {
        dir: data.join("train400"),
        channels: Some(1),
        exclude: vec![],
    };
    let s = Arc::new(PatchSampler::new(&train, config(40, 16, true, awgn(15.0), 1)).unwrap());
    assert_eq!(s.len(), 400);
    let mut p = Prefetcher::new(s.clone(), 100, 2);
    let b = p.next().unwrap();
    assert_eq!(b.shape, [16, 1, 40, 40]);
    assert_eq!(b, s.batch(100));
}
