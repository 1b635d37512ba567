// One SGD step with momentum (PyTorch's form), in place:
//   g' = g + wd·p;  buf ← μ·buf + g';  p ← p − lr·buf   (μ = 0: p ← p − lr·g')
struct Params { n: u32, use_momentum: u32, lr: f32, momentum: f32, wd: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> buf: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let w = param[i];
    var step = grad[i] + p.wd * w;
    if (p.use_momentum != 0u) {
        step = p.momentum * buf[i] + step;
        buf[i] = step;
    }
    param[i] = w - p.lr * step;
}
