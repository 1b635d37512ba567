// Batch-norm statistics from the partial sums of d = x − mean₀ (mean₀ the
// first-pass mean), one invocation per channel over its ≤ 256 chunks:
// mean = mean₀ + Σd/M and var = Σd²/M − (Σd/M)², which corrects the
// rounding error of mean₀ (the corrected two-pass algorithm).
struct Params { c: u32, groups: u32, inv_count: f32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> sq: array<f32>;
@group(0) @binding(2) var<storage, read> lin: array<f32>;
@group(0) @binding(3) var<storage, read_write> mean: array<f32>;
@group(0) @binding(4) var<storage, read_write> invstd: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let ch = gid.x + gid.y * nwg.x * 256u;
    if (ch >= p.c) { return; }
    var s2 = 0.0;
    var s1 = 0.0;
    for (var k = 0u; k < p.groups; k = k + 1u) {
        s2 = s2 + sq[ch * p.groups + k];
        s1 = s1 + lin[ch * p.groups + k];
    }
    let dm = s1 * p.inv_count;
    let variance = max(s2 * p.inv_count - dm * dm, 0.0);
    mean[ch] = mean[ch] + dm;
    invstd[ch] = inverseSqrt(variance + p.eps);
}
