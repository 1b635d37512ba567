// Layer norm over the channels of [N, C, hw], one invocation per position
// j = n·hw + pos: mean and biased variance over its C values (two passes),
// then y = (x − mean)·invstd·weight[c] + bias[c]. Neighbouring invocations
// read neighbouring addresses for each channel.
struct Params { positions: u32, c: u32, hw: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> mean: array<f32>;
@group(0) @binding(6) var<storage, read_write> invstd: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= p.positions) { return; }
    let base = (j / p.hw) * p.c * p.hw + j % p.hw;
    let inv_c = 1.0 / f32(p.c);
    var s = 0.0;
    for (var k = 0u; k < p.c; k = k + 1u) {
        s = s + x[base + k * p.hw];
    }
    let m = s * inv_c;
    var s2 = 0.0;
    for (var k = 0u; k < p.c; k = k + 1u) {
        let d = x[base + k * p.hw] - m;
        s2 = s2 + d * d;
    }
    let inv = inverseSqrt(s2 * inv_c + p.eps);
    for (var k = 0u; k < p.c; k = k + 1u) {
        let i = base + k * p.hw;
        y[i] = (x[i] - m) * inv * weight[k] + bias[k];
    }
    mean[j] = m;
    invstd[j] = inv;
}
