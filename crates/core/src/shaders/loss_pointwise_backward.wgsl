// Gradient of a pointwise loss mean EXPR'(d): gx[i] = grad[0]·scale·EXPR(d, s)
// with d = pred − truth and scale = 1/n.
struct Params { n: u32, scale: f32, s: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> pred: array<f32>;
@group(0) @binding(3) var<storage, read> truth: array<f32>;
@group(0) @binding(4) var<storage, read_write> gx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let d = pred[i] - truth[i];
    let s = p.s;
    gx[i] = grad[0] * p.scale * (EXPR);
}
