// Gradient of bilinear ×2 (align_corners = False), one invocation per input
// pixel (no atomics). From the taps in resample_bilinear2x.wgsl, input row h
// is read by output rows
//   2h − 1 (its upper tap, weight 0.25; exists for h ≥ 1),
//   2h     (weight 0.75, plus 0.25 at h = 0 where the lower tap clamps to 0),
//   2h + 1 (weight 0.75, plus 0.25 at h = H − 1 where the upper tap clamps),
//   2h + 2 (its lower tap, weight 0.25; exists for h ≤ H − 2),
// and by no other row. Columns likewise, and
// dx[h, w] = Σ_{a, b} wr_a · wc_b · g[row_a, col_b].
struct Params { n: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// Weights of output rows 2q − 1, 2q, 2q + 1, 2q + 2 for source index q.
fn weights(q: u32, size: u32) -> vec4<f32> {
    return vec4<f32>(
        select(0.0, 0.25, q >= 1u),
        select(0.75, 1.0, q == 0u),
        select(0.75, 1.0, q + 1u == size),
        select(0.0, 0.25, q + 1u < size),
    );
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let xx = i % p.w;
    let t = i / p.w;
    let yy = t % p.h;
    let plane = t / p.h;
    let ow = 2u * p.w;
    let base = plane * 4u * p.h * p.w;
    let wr = weights(yy, p.h);
    let wc = weights(xx, p.w);
    var acc = 0.0;
    for (var a = 0u; a < 4u; a = a + 1u) {
        if (wr[a] == 0.0) { continue; }
        let row = base + (2u * yy + a - 1u) * ow;
        var s = 0.0;
        for (var b = 0u; b < 4u; b = b + 1u) {
            if (wc[b] != 0.0) {
                s = s + wc[b] * g[row + 2u * xx + b - 1u];
            }
        }
        acc = acc + wr[a] * s;
    }
    dx[i] = acc;
}
