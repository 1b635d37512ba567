// Partial sums of the DFT modulus for the FFT loss. blocks is [planes, 2W, 2H]
// with, for frequency (u, v) of a plane (row v, column u of each block):
//   [v][u] = AᵀC_H   [v][H+u] = AᵀS_H   [W+v][u] = BᵀC_H   [W+v][H+u] = BᵀS_H
// so re = AᵀC_H − BᵀS_H and im = −(BᵀC_H + AᵀS_H). Element i = (plane, v, u)
// of [planes, W, H] adds √(re² + im² + eps); workgroup w sums chunk w in a
// shared-memory tree.
struct Params { n: u32, h: u32, w: u32, chunk: u32, groups: u32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> blocks: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> acc: array<f32, 256>;

fn modulus(i: u32) -> f32 {
    let hw = p.h * p.w;
    let plane = i / hw;
    let v = (i % hw) / p.h;
    let u = i % p.h;
    let row = 2u * p.h;
    let a = plane * 4u * hw + v * row + u;
    let b = a + p.w * row;
    let re = blocks[a] - blocks[b + p.h];
    let im = -(blocks[b] + blocks[a + p.h]);
    return sqrt(re * re + im * im + p.eps);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (w >= p.groups) { return; }
    let start = w * p.chunk;
    let end = min(start + p.chunk, p.n);
    var sum = 0.0;
    for (var i = start + lid.x; i < end; i = i + 256u) {
        sum = sum + modulus(i);
    }
    acc[lid.x] = sum;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (lid.x < k) { acc[lid.x] = acc[lid.x] + acc[lid.x + k]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { out[w] = acc[0]; }
}
