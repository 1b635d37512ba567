// Softmax backward with one invocation per row, from the output y:
// gx = y ⊙ (g − Σ_row g ⊙ y). Layout as in act_softmax_rows.wgsl.
struct Params { rows: u32, len: u32, inner: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= p.rows) { return; }
    let base = (j / p.inner) * p.len * p.inner + j % p.inner;
    var dot = 0.0;
    for (var l = 0u; l < p.len; l = l + 1u) {
        let i = base + l * p.inner;
        dot = dot + g[i] * y[i];
    }
    for (var l = 0u; l < p.len; l = l + 1u) {
        let i = base + l * p.inner;
        gx[i] = y[i] * (g[i] - dot);
    }
}
