// Layer-norm input gradient, one invocation per position: with
// x̂ = (x − mean)·invstd and ĝ = g·weight[c],
// gx = invstd·(ĝ − mean_C ĝ − x̂·mean_C(ĝ·x̂)).
struct Params { positions: u32, c: u32, hw: u32, inv_c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> invstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= p.positions) { return; }
    let base = (j / p.hw) * p.c * p.hw + j % p.hw;
    let m = mean[j];
    let inv = invstd[j];
    var s1 = 0.0;
    var s2 = 0.0;
    for (var k = 0u; k < p.c; k = k + 1u) {
        let i = base + k * p.hw;
        let gh = g[i] * weight[k];
        s1 = s1 + gh;
        s2 = s2 + gh * (x[i] - m) * inv;
    }
    let a = s1 * p.inv_c;
    let b = s2 * p.inv_c;
    for (var k = 0u; k < p.c; k = k + 1u) {
        let i = base + k * p.hw;
        gx[i] = inv * (g[i] * weight[k] - a - (x[i] - m) * inv * b);
    }
}
