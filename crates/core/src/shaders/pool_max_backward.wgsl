// Gradient of max pooling, one invocation per input pixel (no atomics):
// dx[y, x] = Σ g[oy, ox] over the windows that contain (y, x) and whose
// stored argmax is y·W + x. Window ranges as in pool_avg_backward.wgsl.
struct Params {
    n: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32,
    pad0: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

fn windows(q: u32, k: u32, s: u32, count: u32) -> vec2<u32> {
    var lo = 0u;
    if (q + 1u > k) { lo = (q + 1u - k + s - 1u) / s; }
    let hi = min(q / s + 1u, count);
    return vec2<u32>(lo, hi);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let xx = i % p.w;
    let t = i / p.w;
    let yy = t % p.h;
    let plane = t / p.h;
    let me = f32(yy * p.w + xx);
    let rows = windows(yy + p.ph, p.kh, p.sh, p.oh);
    let cols = windows(xx + p.pw, p.kw, p.sw, p.ow);
    let base = plane * p.oh * p.ow;
    var acc = 0.0;
    for (var oy = rows.x; oy < rows.y; oy = oy + 1u) {
        for (var ox = cols.x; ox < cols.y; ox = ox + 1u) {
            let o = base + oy * p.ow + ox;
            if (idx[o] == me) {
                acc = acc + g[o];
            }
        }
    }
    dx[i] = acc;
}
