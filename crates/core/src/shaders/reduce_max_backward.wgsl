// Backward of a max over axes (PyTorch's amax rule). Element i belongs to
// output o(i) (output_index, reduce_output_index.wgsl, appended); it is at its maximum
// when x[i] == m[o(i)]. With `mark` set, gx[i] = 1 there (the tie count is a
// sum of these); otherwise gx[i] = share[o(i)] = g / count there. Elsewhere 0.
struct Params {
    n: u32,
    nseg: u32,
    mark: u32,
    pad0: u32,
    dims: array<vec4<u32>, 2>,
    ostr: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> m: array<f32>;
@group(0) @binding(3) var<storage, read> share: array<f32>;
@group(0) @binding(4) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let o = output_index(i);
    var v = 0.0;
    if (x[i] == m[o]) {
        v = select(share[o], 1.0, p.mark != 0u);
    }
    gx[i] = v;
}
