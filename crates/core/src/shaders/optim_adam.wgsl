// One fused Adam / AdamW step, in place on the parameter and both moments:
//   g' = g + wd·p (Adam, L2)          or  p ← p − lr·wd·p (AdamW, decoupled)
//   m ← β1·m + (1 − β1)·g',  v ← β2·v + (1 − β2)·g'²
//   p ← p − lr · (m / bc1) / (√(v / bc2) + ε),  bc_i = 1 − β_iᵗ
struct Params { n: u32, decoupled: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    var w = param[i];
    var g = grad[i];
    if (p.decoupled != 0u) {
        w = w - p.lr * p.wd * w;
    } else {
        g = g + p.wd * w;
    }
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = w - p.lr * (mi / p.bc1) / (sqrt(vi / p.bc2) + p.eps);
}
