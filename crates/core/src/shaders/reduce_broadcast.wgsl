// Backward of a sum/mean: gx[i] = scale · g[o(i)]. The input index is
// decomposed over the simplified input segments; reduced segments have
// output stride 0, kept ones their row-major stride in g.
struct Params {
    n: u32,
    nseg: u32,
    scale: f32,
    pad0: u32,
    dims: array<vec4<u32>, 2>,
    ostr: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    var rem = i;
    var o = 0u;
    for (var k = i32(p.nseg) - 1; k >= 0; k = k - 1) {
        let q = u32(k) / 4u;
        let r = u32(k) % 4u;
        let d = p.dims[q][r];
        o = o + (rem % d) * p.ostr[q][r];
        rem = rem / d;
    }
    gx[i] = g[o] * p.scale;
}
