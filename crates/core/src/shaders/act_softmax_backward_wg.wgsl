// Softmax backward with one workgroup per row, for long rows:
// gx = y ⊙ (g − Σ_row g ⊙ y), the sum combined in a shared-memory tree.
struct Params { rows: u32, len: u32, inner: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;

var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let j = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (j >= p.rows) { return; }
    let base = (j / p.inner) * p.len * p.inner + j % p.inner;
    let t = lid.x;
    var s = 0.0;
    for (var l = t; l < p.len; l = l + 256u) {
        let i = base + l * p.inner;
        s = s + g[i] * y[i];
    }
    acc[t] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (t < k) { acc[t] = acc[t] + acc[t + k]; }
        workgroupBarrier();
    }
    let dot = acc[0];
    for (var l = t; l < p.len; l = l + 256u) {
        let i = base + l * p.inner;
        gx[i] = y[i] * (g[i] - dot);
    }
}
