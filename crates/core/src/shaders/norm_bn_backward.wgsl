// Batch-norm input gradient over [N, C, hw] with x̂ = (x − mean)·invstd and
// M values per channel: gx = weight·invstd·(g − Σg/M − x̂·Σ(g·x̂)/M), the
// sums per channel (they are also grad_bias and grad_weight).
struct Params { total: u32, c: u32, hw: u32, inv_count: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> invstd: array<f32>;
@group(0) @binding(6) var<storage, read> sum_g: array<f32>;
@group(0) @binding(7) var<storage, read> sum_gx: array<f32>;
@group(0) @binding(8) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let ch = (i / p.hw) % p.c;
    let inv = invstd[ch];
    let xh = (x[i] - mean[ch]) * inv;
    gx[i] = weight[ch] * inv * (g[i] - sum_g[ch] * p.inv_count - xh * sum_gx[ch] * p.inv_count);
}
