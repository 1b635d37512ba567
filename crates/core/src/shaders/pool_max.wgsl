// Max pooling, one invocation per output. Padded taps never win (they are
// −∞ in PyTorch); with pad ≤ k/2 every window holds an image pixel. The
// first maximum in row-major window order wins; its flat index y·W + x in
// the (n, c) plane is stored as f32 (exact below 2^24, checked on the host).
struct Params {
    n: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32,
    pad0: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let t = i / p.ow;
    let oy = t % p.oh;
    let plane = t / p.oh;
    let y0 = max(oy * p.sh, p.ph) - p.ph;
    let y1 = min(oy * p.sh + p.kh, p.h + p.ph) - p.ph;
    let x0 = max(ox * p.sw, p.pw) - p.pw;
    let x1 = min(ox * p.sw + p.kw, p.w + p.pw) - p.pw;
    let base = plane * p.h * p.w;
    var best_at = y0 * p.w + x0;
    var best = x[base + best_at];
    for (var yy = y0; yy < y1; yy = yy + 1u) {
        for (var xx = x0; xx < x1; xx = xx + 1u) {
            let at = yy * p.w + xx;
            let v = x[base + at];
            if (v > best) {
                best = v;
                best_at = at;
            }
        }
    }
    y[i] = best;
    idx[i] = f32(best_at);
}
