// Packs an NCHW activation for the conv2d kernels: dst[(pixel · groups + g) ·
// quads + q] = channels 4q..4q+3 of group g at that pixel (zero past the
// group's channels), pixels in (n, y, x) order, then one all-zero pixel.
// One invocation per vec4, i = (g · quads + q) · hw + yx so that neighbours
// read neighbouring values; n = workgroup z, and the z row n = N writes the
// zero pixel.
struct Params { n: u32, c: u32, hw: u32, groups: u32, cg: u32, quads: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

fn channel(base: u32, c: u32) -> f32 {
    return select(0.0, src[select(0u, base + c * p.hw, c < p.cg)], c < p.cg);
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let gq = i / p.hw;
    let yx = i - gq * p.hw;
    let row = p.groups * p.quads;
    if (gq >= row) { return; }
    let n = wg.z;
    if (n == p.n) {
        if (yx == 0u) { dst[n * p.hw * row + gq] = vec4<f32>(0.0); }
        return;
    }
    let g = gq / p.quads;
    let c = 4u * (gq - g * p.quads);
    let base = (n * p.c + g * p.cg) * p.hw + yx;
    dst[(n * p.hw + yx) * row + gq] = vec4<f32>(channel(base, c), channel(base, c + 1u), channel(base, c + 2u), channel(base, c + 3u));
}
