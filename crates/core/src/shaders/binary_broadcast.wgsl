// z[i] = EXPR(a[ia], b[ib]) with NumPy broadcasting: the output index is
// decomposed over `dims`; a broadcast dimension has stride 0 in `sa`/`sb`.
struct Params {
    n: u32,
    rank: u32,
    pad0: u32,
    pad1: u32,
    dims: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let q = u32(d) / 4u;
        let r = u32(d) % 4u;
        let dim = p.dims[q][r];
        let c = rem % dim;
        rem = rem / dim;
        ia = ia + c * p.sa[q][r];
        ib = ib + c * p.sb[q][r];
    }
    let x = a[ia];
    let y = b[ib];
    z[i] = EXPR;
}
