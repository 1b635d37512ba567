// Partial sums of EXPR(d = pred − truth, s) for a pointwise loss: workgroup
// w sums elements [w·chunk, (w+1)·chunk) ∩ [0, n), each invocation a strided
// share, then a shared-memory tree; out[w] is the chunk's sum.
struct Params { n: u32, chunk: u32, groups: u32, s: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> truth: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (w >= p.groups) { return; }
    let start = w * p.chunk;
    let end = min(start + p.chunk, p.n);
    let s = p.s;
    var sum = 0.0;
    for (var i = start + lid.x; i < end; i = i + 256u) {
        let d = pred[i] - truth[i];
        sum = sum + EXPR;
    }
    acc[lid.x] = sum;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (lid.x < k) { acc[lid.x] = acc[lid.x] + acc[lid.x + k]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) { out[w] = acc[0]; }
}
