// Softmax with one workgroup per row, for long rows: the 256 invocations
// stride over the row, and the maximum and the sum of exponentials are each
// combined in a shared-memory tree. Layout as in act_softmax_rows.wgsl.
struct Params { rows: u32, len: u32, inner: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (j >= p.rows) { return; }
    let base = (j / p.inner) * p.len * p.inner + j % p.inner;
    let t = lid.x;
    // Every invocation starts from an element of the row, even one with no share.
    var m = x[base];
    for (var l = t; l < p.len; l = l + 256u) {
        m = max(m, x[base + l * p.inner]);
    }
    acc[t] = m;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (t < k) { acc[t] = max(acc[t], acc[t + k]); }
        workgroupBarrier();
    }
    let row_max = acc[0];
    workgroupBarrier();
    var s = 0.0;
    for (var l = t; l < p.len; l = l + 256u) {
        s = s + exp(x[base + l * p.inner] - row_max);
    }
    acc[t] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (t < k) { acc[t] = acc[t] + acc[t + k]; }
        workgroupBarrier();
    }
    let inv = 1.0 / acc[0];
    for (var l = t; l < p.len; l = l + 256u) {
        let i = base + l * p.inner;
        y[i] = exp(x[i] - row_max) * inv;
    }
}
