// Softmax with one invocation per row: the input is [outer, len, inner] and
// row j = (o, k) is x[o·len·inner + l·inner + k], l < len. Subtracting the
// row maximum keeps exp ≤ 1, so nothing overflows.
struct Params { rows: u32, len: u32, inner: u32, pad0: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= p.rows) { return; }
    let base = (j / p.inner) * p.len * p.inner + j % p.inner;
    var m = x[base];
    for (var l = 1u; l < p.len; l = l + 1u) {
        m = max(m, x[base + l * p.inner]);
    }
    var s = 0.0;
    for (var l = 0u; l < p.len; l = l + 1u) {
        s = s + exp(x[base + l * p.inner] - m);
    }
    let inv = 1.0 / s;
    for (var l = 0u; l < p.len; l = l + 1u) {
        let i = base + l * p.inner;
        y[i] = exp(x[i] - m) * inv;
    }
}
