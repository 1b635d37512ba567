// Writes the register kernels' pixel-major result as NCHW and adds the bias:
//   out[n, g·cog + c, y, x] = res[(m · groups + g) · wrow + c / 4][c % 4] + bias[g·cog + c]
// with m = (n, y, x). One invocation per (m, quad); neighbours take
// neighbouring pixels of one channel quad, so that the writes are contiguous.
struct Params { m: u32, hw: u32, groups: u32, quads: u32, wrow: u32, cog: u32, cout: u32, has_bias: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> res: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let gq = i / p.m;
    if (gq >= p.groups * p.quads) { return; }
    let m = i - gq * p.m;
    let g = gq / p.quads;
    let c = 4u * (gq - g * p.quads);
    let v = res[(m * p.groups + g) * p.wrow + c / 4u];
    let n = m / p.hw;
    let o = (n * p.cout + g * p.cog + c) * p.hw + m - n * p.hw;
    for (var k = 0u; k < 4u; k++) {
        if (c + k < p.cog) {
            let b = select(0.0, bias[min(g * p.cog + c + k, arrayLength(&bias) - 1u)], p.has_bias != 0u);
            out[o + k * p.hw] = v[k] + b;
        }
    }
}
