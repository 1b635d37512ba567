// out[i] = x[Σ_d c_d · strides[d]], where c is the row-major multi-index of i
// over `dims`. Permutation (permuted strides), broadcasting (stride 0) and
// pixel (un)shuffle (a permutation of a 5-D view) are all this index map.
struct Params {
    n: u32,
    rank: u32,
    pad0: u32,
    pad1: u32,
    dims: array<vec4<u32>, 2>,
    strides: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    var rem = i;
    var src = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let dim = p.dims[q][r];
        let c = rem % dim;
        rem = rem / dim;
        src = src + c * p.strides[q][r];
    }
    out[i] = x[src];
}
