// Bilinear ×2 up-sampling, PyTorch align_corners = False. Output row d samples
// s = max(0, (d + 0.5)/2 − 0.5) between rows floor(s) and floor(s) + 1
// (clamped to H − 1) with weights 1 − λ, λ (λ = s − floor(s)). At scale 2
// that is, with k = floor(d / 2):
//   d = 2k:     0.25·row (k − 1) + 0.75·row k      (k = 0: s = 0, so row 0 alone,
//                                                   which the clamp k − 1 → 0 gives)
//   d = 2k + 1: 0.75·row k + 0.25·row (k + 1)      (k + 1 clamped to H − 1)
// Columns likewise; integer taps and exact weights, no float coordinates.
struct Params { n: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// Rows (lo, hi) and the weight of `lo` (that of `hi` is 1 − it).
struct Taps { lo: u32, hi: u32, w_lo: f32 }

fn taps(d: u32, size: u32) -> Taps {
    let k = d / 2u;
    let odd = (d & 1u) == 1u;
    // Neighbouring invocations alternate parity: select, not branch.
    return Taps(select(max(k, 1u) - 1u, k, odd), select(k, min(k + 1u, size - 1u), odd), select(0.25, 0.75, odd));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let ow = 2u * p.w;
    let ox = i % ow;
    let t = i / ow;
    let oy = t % (2u * p.h);
    let plane = t / (2u * p.h);
    let r = taps(oy, p.h);
    let c = taps(ox, p.w);
    let base = plane * p.h * p.w;
    let r0 = base + r.lo * p.w;
    let r1 = base + r.hi * p.w;
    let top = c.w_lo * x[r0 + c.lo] + (1.0 - c.w_lo) * x[r0 + c.hi];
    let bottom = c.w_lo * x[r1 + c.lo] + (1.0 - c.w_lo) * x[r1 + c.hi];
    y[i] = r.w_lo * top + (1.0 - r.w_lo) * bottom;
}
