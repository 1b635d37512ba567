// Backward of a sum/mean: gx[i] = scale · g[o(i)], o(i) from output_index
// (reduce_output_index.wgsl, appended).
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
    let o = output_index(i);
    gx[i] = g[o] * p.scale;
}
