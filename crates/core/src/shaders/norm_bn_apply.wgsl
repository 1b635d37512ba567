// y = (x − mean[c])·inv[c]·weight[c] + bias[c] over [N, C, hw], where inv is
// stat[c] (training: invstd) or, with from_var, 1/√(stat[c] + eps)
// (evaluation: the running variance).
struct Params { total: u32, c: u32, hw: u32, from_var: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> stat: array<f32>;
@group(0) @binding(4) var<storage, read> weight: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let ch = (i / p.hw) % p.c;
    let st = stat[ch];
    let inv = select(st, inverseSqrt(st + p.eps), p.from_var == 1u);
    y[i] = (x[i] - mean[ch]) * inv * weight[ch] + bias[ch];
}
