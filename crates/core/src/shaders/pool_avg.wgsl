// Average pooling, one invocation per output, count_include_pad: padded
// taps count as zeros, so the divisor is always kh·kw (`inv_area` = 1/(kh·kw);
// with pad ≤ k/2 every window lies inside the padded image).
struct Params {
    n: u32, h: u32, w: u32, oh: u32, ow: u32, kh: u32, kw: u32, sh: u32, sw: u32, ph: u32, pw: u32,
    inv_area: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let t = i / p.ow;
    let oy = t % p.oh;
    let plane = t / p.oh;
    // Window rows [oy·sh − ph, oy·sh − ph + kh) clipped to the image, in
    // unsigned arithmetic shifted by +ph.
    let y0 = max(oy * p.sh, p.ph) - p.ph;
    let y1 = min(oy * p.sh + p.kh, p.h + p.ph) - p.ph;
    let x0 = max(ox * p.sw, p.pw) - p.pw;
    let x1 = min(ox * p.sw + p.kw, p.w + p.pw) - p.pw;
    let base = plane * p.h * p.w;
    var acc = 0.0;
    for (var yy = y0; yy < y1; yy = yy + 1u) {
        for (var xx = x0; xx < x1; xx = xx + 1u) {
            acc = acc + x[base + yy * p.w + xx];
        }
    }
    y[i] = acc * p.inv_area;
}
