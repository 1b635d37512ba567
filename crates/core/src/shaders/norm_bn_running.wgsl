// Running statistics, one invocation per channel (PyTorch's update):
// rm ← (1 − m)·rm + m·mean, rv ← (1 − m)·rv + m·var·count/(count − 1),
// with the biased batch variance var = 1/invstd² − eps.
struct Params { c: u32, momentum: f32, eps: f32, unbias: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> invstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_var: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = gid.x + gid.y * nwg.x * 256u;
    if (ch >= p.c) { return; }
    let inv = invstd[ch];
    let variance = max(1.0 / (inv * inv) - p.eps, 0.0);
    let m = p.momentum;
    running_mean[ch] = (1.0 - m) * running_mean[ch] + m * mean[ch];
    running_var[ch] = (1.0 - m) * running_var[ch] + m * variance * p.unbias;
}
