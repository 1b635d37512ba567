//! Mutation fuzzing of the readers that see untrusted bytes: the image
//! decoders (`io::decode_image`: PNG, JPEG, BMP, TIFF) and the safetensors
//! reader (`io::parse_safetensors`, whose header is JSON).
//!
//! Seeds are the files in `tests/fuzz-corpus/{image,safetensors}/` (small
//! valid files, plus every input that once broke a reader, kept as a
//! regression). Each run first replays every corpus file as is, then feeds
//! mutants — bit flips, byte edits, inserts, deletes, truncations, header
//! field edits (with PNG checksums repaired, so edits get past them), JSON
//! edits of safetensors headers, splices of two seeds — from a seeded RNG,
//! so a run is reproducible from its seed.
//!
//! A reader may return `Ok` or `Err`; it fails the test if it panics, takes
//! longer than the per-input limit, or allocates more than the allocation cap
//! while decoding (the decoders are given small [`ImageLimits`], so an image
//! whose header declares a huge size must be refused before its pixels are
//! allocated). A failing input is written to `target/fuzz-failures/`.
//!
//! Environment: `SPIKEIR_FUZZ_SECONDS` (time per target, default 2: the
//! replay that runs in `cargo test`), `SPIKEIR_FUZZ_ITERATIONS` (stop after
//! that many mutants instead), `SPIKEIR_FUZZ_SEED` (default 1),
//! `SPIKEIR_FUZZ_TARGET` (`image`, `safetensors`; default both),
//! `SPIKEIR_FUZZ_VERBOSE=1` (print each mutant's number before running it, to
//! find an input that aborts the process).

use std::alloc::{GlobalAlloc, Layout, System};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spikeir_core::io::{decode_image, parse_safetensors, ImageLimits};

// --- allocation accounting ---------------------------------------------------

/// Counts live heap bytes and their peak; refuses single requests over
/// [`HARD_CAP`] (the process then aborts with Rust's allocation-failure message).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static OVER_HARD_CAP: AtomicBool = AtomicBool::new(false);
const HARD_CAP: usize = 4 << 30;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_CAP {
            OVER_HARD_CAP.store(true, Ordering::SeqCst);
            return std::ptr::null_mut();
        }
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > HARD_CAP {
            OVER_HARD_CAP.store(true, Ordering::SeqCst);
            return std::ptr::null_mut();
        }
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The limits the decoders run under here: small, so the cap below can tell
/// a reader that honours them from one that allocates what a header claims.
const LIMITS: ImageLimits = ImageLimits {
    max_side: 4096,
    max_pixels: 1 << 20,
    max_bytes: 64 << 20,
};

/// Heap growth allowed while reading one input: the decoder's budget, the
/// f32 copy of a maximal image (12 bytes a pixel) and slack.
const SOFT_CAP: usize = (64 << 20) + 12 * (1 << 20) + (64 << 20);

/// Longest a reader may take on one input (release build, small inputs: a
/// healthy reader takes milliseconds; this only catches loops and stalls).
const TIME_LIMIT: Duration = Duration::from_secs(5);

// --- seeded randomness -------------------------------------------------------

/// SplitMix64: small, fast and enough for choosing mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

// --- mutations ---------------------------------------------------------------

/// Values that sit on the edges decoders get wrong: zero, one, sign bits,
/// all ones, powers of two around common buffer sizes.
const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0xffff_ffff,
    0x1_0000_0000,
    u64::MAX,
];

const DTYPES: [&str; 10] = [
    "F32", "F16", "BF16", "F64", "I64", "I32", "U8", "BOOL", "F8_E4M3", "Q",
];

const NUMBERS: [&str; 9] = [
    "0",
    "1",
    "-1",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e309",
    "9007199254740993",
    "1.5",
];

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Rewrites the CRC of every complete PNG chunk, so that a mutated field is
/// seen by the decoder instead of stopping at the checksum.
fn repair_png_crcs(b: &mut [u8]) {
    if !b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return;
    }
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let Some(end) = at.checked_add(12 + len).filter(|&e| e <= b.len()) else {
            return;
        };
        let crc = crc32(&b[at + 4..at + 8 + len]);
        b[end - 4..end].copy_from_slice(&crc.to_be_bytes());
        at = end;
    }
}

/// Bounds of a safetensors header (the JSON), if the length field is sane.
fn st_header(b: &[u8]) -> Option<(usize, usize)> {
    let n = u64::from_le_bytes(b.get(..8)?.try_into().ok()?) as usize;
    (n <= b.len() - 8).then_some((8, 8 + n))
}

/// One mutation of `b`; `other` is a second seed for splices; `json` marks
/// safetensors (JSON-aware edits of the header).
fn mutate_once(b: &mut Vec<u8>, other: &[u8], json: bool, rng: &mut Rng) {
    let len = b.len();
    let choice = rng.below(if json { 11 } else { 9 });
    match choice {
        // Flip 1–8 bits.
        0 if len > 0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
        }
        // Set a byte to an interesting or random value.
        1 if len > 0 => {
            let i = rng.below(len);
            b[i] = if rng.chance(2) {
                INTERESTING[rng.below(INTERESTING.len())] as u8
            } else {
                rng.next() as u8
            };
        }
        // Insert 1–32 random bytes.
        2 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(32);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            b.splice(i..i, bytes);
        }
        // Delete a range.
        3 if len > 1 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(64));
            b.drain(i..i + n);
        }
        // Truncate.
        4 if len > 1 => b.truncate(rng.below(len)),
        // Overwrite a header field (1, 2, 4 or 8 bytes, either byte order)
        // in the first 128 bytes with an interesting integer.
        5 if len > 0 => {
            let width = [1usize, 2, 4, 8][rng.below(4)];
            let i = rng.below(len.min(128));
            let v = INTERESTING[rng.below(INTERESTING.len())]
                .wrapping_add(rng.below(3) as u64)
                .wrapping_sub(1);
            let bytes = if rng.chance(2) {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let take = if rng.chance(2) {
                &bytes[..width]
            } else {
                &bytes[8 - width..]
            };
            for (k, &x) in take.iter().enumerate() {
                if i + k < len {
                    b[i + k] = x;
                }
            }
        }
        // Splice: a prefix of this input, a suffix of another.
        6 if !other.is_empty() => {
            let cut_here = rng.below(len + 1);
            let cut_there = rng.below(other.len());
            b.truncate(cut_here);
            b.extend_from_slice(&other[cut_there..]);
        }
        // Copy a chunk of the input elsewhere in it.
        7 if len > 2 => {
            let from = rng.below(len);
            let n = 1 + rng.below((len - from).min(256));
            let chunk = b[from..from + n].to_vec();
            let to = rng.below(len);
            b.splice(to..to, chunk);
        }
        // Append junk after the end.
        8 => {
            let n = 1 + rng.below(64);
            b.extend((0..n).map(|_| rng.next() as u8));
        }
        // JSON: replace a number in the header (offsets, shape dimensions).
        9 => {
            if let Some((s, e)) = st_header(b) {
                let digits: Vec<usize> = (s..e).filter(|&i| b[i].is_ascii_digit()).collect();
                if let Some(&i) = digits.get(rng.below(digits.len().max(1))) {
                    let mut j = i;
                    while j < e && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    let mut k = i;
                    while k > s && b[k - 1].is_ascii_digit() {
                        k -= 1;
                    }
                    let with = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
                    let delta = with.len() as i64 - (j - k) as i64;
                    b.splice(k..j, with.iter().copied());
                    fix_length(b, delta);
                }
            }
        }
        // JSON: swap a dtype, or break the structure (drop a brace, add a key).
        10 => {
            if let Some((s, e)) = st_header(b) {
                let text = String::from_utf8_lossy(&b[s..e]).into_owned();
                let edited = match rng.below(4) {
                    0 => {
                        let from = DTYPES[rng.below(4)];
                        let to = DTYPES[rng.below(DTYPES.len())];
                        text.replacen(&format!("\"{from}\""), &format!("\"{to}\""), 1)
                    }
                    1 => text.replacen('}', "", 1),
                    2 => text.replacen('{', "{\"__metadata__\":{\"k\":[1,2]},", 1),
                    _ => text.replacen("\"shape\":[", "\"shape\":[0,", 1),
                };
                let delta = edited.len() as i64 - (e - s) as i64;
                b.splice(s..e, edited.into_bytes());
                fix_length(b, delta);
            }
        }
        _ => {}
    }
}

/// Adjusts a safetensors length field by `delta` (sometimes leaving it
/// stale on purpose is covered by the byte mutations).
fn fix_length(b: &mut [u8], delta: i64) {
    if b.len() < 8 {
        return;
    }
    let n = u64::from_le_bytes(b[..8].try_into().expect("8 bytes")) as i64 + delta;
    b[..8].copy_from_slice(&(n.max(0) as u64).to_le_bytes());
}

/// A mutant of `seed`: 1–4 stacked mutations.
fn mutant(seed: &[u8], other: &[u8], json: bool, rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_once(&mut b, other, json, rng);
    }
    if rng.chance(2) {
        repair_png_crcs(&mut b);
    }
    // Keep inputs small: the readers' cost is in what headers claim, not in bytes.
    b.truncate(1 << 16);
    b
}

// --- running inputs ----------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Image,
    Safetensors,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Image => "image",
            Target::Safetensors => "safetensors",
        }
    }
}

/// What a reader did with one input.
enum Outcome {
    Ok,
    Err(String),
    Panic(String),
}

/// One input on the worker thread: the bytes, and a channel choice for images.
type Job = (Vec<u8>, Option<usize>);

/// Panics seen anywhere, caught or not: `decode_image` turns a decoder's
/// panic into an error as a last resort, but each is a bug to fix here.
static PANICS: AtomicUsize = AtomicUsize::new(0);
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

fn count_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
            previous(info);
        }));
    });
}

/// A thread that runs the reader on each input it is sent, catching panics;
/// the caller waits for each answer with a timeout, so a hang is seen as one.
fn worker(target: Target) -> (Sender<Job>, Receiver<(Outcome, usize)>) {
    let (tx, rx) = channel::<Job>();
    let (back, results) = channel();
    std::thread::Builder::new()
        .name(format!("fuzz-{}", target.name()))
        .spawn(move || {
            for (bytes, channels) in rx {
                let panics = PANICS.load(Ordering::SeqCst);
                let base = LIVE.load(Ordering::SeqCst);
                PEAK.store(base, Ordering::SeqCst);
                let r = catch_unwind(AssertUnwindSafe(|| match target {
                    Target::Image => decode_image(&bytes, channels, &LIMITS).map(|_| ()),
                    Target::Safetensors => parse_safetensors(&bytes).map(|_| ()),
                }));
                let grew = PEAK.load(Ordering::SeqCst).saturating_sub(base);
                let outcome = match r {
                    _ if PANICS.load(Ordering::SeqCst) != panics => {
                        Outcome::Panic(LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).clone())
                    }
                    Ok(Ok(())) => Outcome::Ok,
                    Ok(Err(e)) => Outcome::Err(e),
                    Err(p) => Outcome::Panic(
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_else(|| "non-string panic".into()),
                    ),
                };
                if back.send((outcome, grew)).is_err() {
                    return;
                }
            }
        })
        .expect("spawning the fuzz worker");
    (tx, results)
}

fn corpus(target: Target) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fuzz-corpus")
        .join(target.name());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus '{}': {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "fuzz corpus '{}' is empty",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("reading a corpus file"))
        })
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got '{v}'"))
    })
}

fn save_failure(target: Target, label: &str, bytes: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("..")
        .join("target")
        .join("fuzz-failures");
    std::fs::create_dir_all(&dir).expect("creating target/fuzz-failures");
    let p = dir.join(format!("{}-{label}.bin", target.name()));
    std::fs::write(&p, bytes).expect("saving a failing input");
    p
}

/// Only one target runs at a time: allocation accounting is process-wide.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn fuzz(target: Target) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Ok(only) = std::env::var("SPIKEIR_FUZZ_TARGET") {
        if only != target.name() {
            eprintln!(
                "fuzz {}: skipped (SPIKEIR_FUZZ_TARGET={only})",
                target.name()
            );
            return;
        }
    }
    let seconds = env_u64("SPIKEIR_FUZZ_SECONDS").unwrap_or(2);
    let iterations = env_u64("SPIKEIR_FUZZ_ITERATIONS");
    let seed = env_u64("SPIKEIR_FUZZ_SEED").unwrap_or(1);
    let verbose = std::env::var("SPIKEIR_FUZZ_VERBOSE").is_ok_and(|v| v == "1");
    let seeds = corpus(target);
    count_panics();
    let (tx, rx) = worker(target);
    let mut rng = Rng(seed ^ (target as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let (mut executions, mut oks, mut errs) = (0u64, 0u64, 0u64);
    let mut peak_growth = 0usize;
    let mut slowest = Duration::ZERO;
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(seconds);
    let json = target == Target::Safetensors;
    let mut n = 0u64;
    loop {
        // Corpus files first, as they are; then mutants.
        let (label, bytes) = if (n as usize) < seeds.len() {
            let (name, b) = &seeds[n as usize];
            (format!("corpus {name}"), b.clone())
        } else {
            let m = n - seeds.len() as u64;
            if iterations.map_or(Instant::now() >= deadline, |k| m >= k) {
                break;
            }
            let a = rng.below(seeds.len());
            let b = rng.below(seeds.len());
            (
                format!("mutant {m} of seed {seed}"),
                mutant(&seeds[a].1, &seeds[b].1, json, &mut rng),
            )
        };
        // Exercise the default and both explicit channel conversions.
        let channels = [None, Some(1), Some(3)][(n % 3) as usize];
        if verbose {
            eprintln!("fuzz {}: {label}", target.name());
        }
        let started = Instant::now();
        tx.send((bytes.clone(), channels))
            .expect("fuzz worker alive");
        let (outcome, grew) = match rx.recv_timeout(TIME_LIMIT) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => {
                let p = save_failure(target, &format!("hang-{n}"), &bytes);
                panic!(
                    "fuzz {}: {label} took over {TIME_LIMIT:?}; input saved to {}",
                    target.name(),
                    p.display()
                );
            }
            Err(RecvTimeoutError::Disconnected) => panic!("fuzz worker died on {label}"),
        };
        slowest = slowest.max(started.elapsed());
        executions += 1;
        peak_growth = peak_growth.max(grew);
        match outcome {
            Outcome::Ok => oks += 1,
            Outcome::Err(e) => {
                errs += 1;
                assert!(
                    !e.is_empty(),
                    "fuzz {}: {label}: empty error",
                    target.name()
                );
            }
            Outcome::Panic(msg) => {
                let p = save_failure(target, &format!("panic-{n}"), &bytes);
                panic!(
                    "fuzz {}: {label} panicked: {msg}; input saved to {}",
                    target.name(),
                    p.display()
                );
            }
        }
        if grew > SOFT_CAP {
            let p = save_failure(target, &format!("alloc-{n}"), &bytes);
            panic!(
                "fuzz {}: {label} grew the heap by {grew} bytes (cap {SOFT_CAP}); input saved to {}",
                target.name(),
                p.display()
            );
        }
        assert!(
            !OVER_HARD_CAP.load(Ordering::SeqCst),
            "allocation over the hard cap"
        );
        n += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "fuzz {}: seed {seed}, {executions} executions ({} corpus files, {} mutants) in {secs:.1} s \
         ({:.0}/s): {oks} decoded, {errs} refused with an error, 0 panics, 0 hangs; \
         slowest input {:.1} ms, largest heap growth {:.1} MiB",
        target.name(),
        seeds.len(),
        executions - seeds.len() as u64,
        executions as f64 / secs,
        slowest.as_secs_f64() * 1e3,
        peak_growth as f64 / (1 << 20) as f64
    );
}

#[test]
fn image_decoders_survive_mutated_files() {
    fuzz(Target::Image);
}

#[test]
fn safetensors_reader_survives_mutated_files() {
    fuzz(Target::Safetensors);
}

/// Writes the seed corpus (run once, by hand; the files are committed):
/// `cargo test --release -p spikeir-core --test fuzz_inputs -- --ignored write_seed_corpus`.
#[test]
#[ignore]
fn write_seed_corpus() {
    use image::{DynamicImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fuzz-corpus");
    let img_dir = root.join("image");
    std::fs::create_dir_all(&img_dir).unwrap();
    let ramp = |x: u32, y: u32, k: u32| ((x * 7 + y * 13 + k * 50) % 256) as u8;
    let grey = DynamicImage::ImageLuma8(ImageBuffer::from_fn(16, 12, |x, y| Luma([ramp(x, y, 0)])));
    let rgb = DynamicImage::ImageRgb8(ImageBuffer::from_fn(12, 10, |x, y| {
        Rgb([ramp(x, y, 0), ramp(x, y, 1), ramp(x, y, 2)])
    }));
    let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(8, 8, |x, y| {
        Rgba([
            ramp(x, y, 0),
            ramp(x, y, 1),
            ramp(x, y, 2),
            if x < 4 { 255 } else { 128 },
        ])
    }));
    let deep = DynamicImage::ImageLuma16(ImageBuffer::from_fn(8, 6, |x, y| {
        Luma([(x * 8000 + y * 300) as u16])
    }));
    let write = |name: &str, img: &DynamicImage, f: ImageFormat| {
        let mut buf = std::io::Cursor::new(Vec::new());
        img.write_to(&mut buf, f).unwrap();
        std::fs::write(img_dir.join(name), buf.into_inner()).unwrap();
    };
    write("grey.png", &grey, ImageFormat::Png);
    write("rgb.png", &rgb, ImageFormat::Png);
    write("rgba.png", &rgba, ImageFormat::Png);
    write("grey16.png", &deep, ImageFormat::Png);
    write("grey.jpg", &grey, ImageFormat::Jpeg);
    write("rgb.jpg", &rgb, ImageFormat::Jpeg);
    write("grey.tif", &grey, ImageFormat::Tiff);
    write("rgb.tif", &rgb, ImageFormat::Tiff);
    write("grey16.tif", &deep, ImageFormat::Tiff);
    write("rgb.bmp", &rgb, ImageFormat::Bmp);
    write("rgba.bmp", &rgba, ImageFormat::Bmp);
    // A palette PNG with transparency, which the encoder above cannot make.
    let ihdr = [0, 0, 0, 4, 0, 0, 0, 4, 8, 3, 0, 0, 0];
    let plte = [0u8, 0, 0, 255, 255, 255, 200, 30, 90];
    let trns = [255u8, 255, 0];
    let mut raw = Vec::new();
    for y in 0..4u8 {
        raw.push(0);
        raw.extend((0..4u8).map(|x| (x + y) % 3));
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |t: &[u8], d: &[u8]| {
        png.extend((d.len() as u32).to_be_bytes());
        let mut body = t.to_vec();
        body.extend_from_slice(d);
        png.extend_from_slice(&body);
        png.extend(crc32(&body).to_be_bytes());
    };
    chunk(b"IHDR", &ihdr);
    chunk(b"PLTE", &plte);
    chunk(b"tRNS", &trns);
    chunk(b"IDAT", &stored_zlib(&raw));
    chunk(b"IEND", &[]);
    std::fs::write(img_dir.join("palette.png"), png).unwrap();

    let st_dir = root.join("safetensors");
    std::fs::create_dir_all(&st_dir).unwrap();
    let st = |tensors: &[(&str, &str, Vec<usize>, Vec<u8>)], meta: Option<&str>| -> Vec<u8> {
        let mut parts = Vec::new();
        if let Some(m) = meta {
            parts.push(format!("\"__metadata__\":{m}"));
        }
        let mut off = 0;
        for (name, dtype, shape, bytes) in tensors {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            parts.push(format!(
                "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{}],\"data_offsets\":[{off},{}]}}",
                dims.join(","),
                off + bytes.len()
            ));
            off += bytes.len();
        }
        let header = format!("{{{}}}", parts.join(","));
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        for (_, _, _, bytes) in tensors {
            out.extend_from_slice(bytes);
        }
        out
    };
    let f32s = |n: usize| -> Vec<u8> {
        (0..n)
            .flat_map(|i| (i as f32 * 0.25 - 1.0).to_le_bytes())
            .collect()
    };
    std::fs::write(
        st_dir.join("conv.safetensors"),
        st(
            &[
                ("layers.0.bias", "F32", vec![4], f32s(4)),
                ("layers.0.weight", "F32", vec![4, 1, 3, 3], f32s(36)),
            ],
            Some("{\"step\":\"7\"}"),
        ),
    )
    .unwrap();
    std::fs::write(
        st_dir.join("half.safetensors"),
        st(
            &[
                (
                    "a",
                    "F16",
                    vec![2, 3],
                    vec![0, 0x3c, 0, 0xc0, 1, 0, 0, 0x3e, 0, 0x3e, 0xff, 0x7b],
                ),
                ("b", "BF16", vec![2], vec![0xc0, 0x3f, 0, 0xc0]),
            ],
            None,
        ),
    )
    .unwrap();
    std::fs::write(
        st_dir.join("double.safetensors"),
        st(
            &[(
                "x",
                "F64",
                vec![3],
                [1.5f64, -2.0, 1e-3]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            )],
            Some("{}"),
        ),
    )
    .unwrap();
    std::fs::write(st_dir.join("empty.safetensors"), st(&[], None)).unwrap();
    std::fs::write(
        st_dir.join("scalar-and-empty.safetensors"),
        st(
            &[
                ("s", "F32", vec![], f32s(1)),
                ("z", "F32", vec![0, 5], vec![]),
            ],
            Some("{\"format\":\"pt\"}"),
        ),
    )
    .unwrap();
}

/// zlib framing of stored (uncompressed) deflate blocks: enough for a seed.
fn stored_zlib(raw: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65535).collect();
    for (i, c) in chunks.iter().enumerate() {
        out.push(if i + 1 == chunks.len() { 1 } else { 0 });
        out.extend((c.len() as u16).to_le_bytes());
        out.extend((!(c.len() as u16)).to_le_bytes());
        out.extend_from_slice(c);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in raw {
        a = (a + x as u32) % 65521;
        b = (b + a) % 65521;
    }
    out.extend(((b << 16) | a).to_be_bytes());
    out
}
