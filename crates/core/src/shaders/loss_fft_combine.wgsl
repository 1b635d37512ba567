// FFT-loss backward, second step. X = [G_rᵀ; G_iᵀ]·[C_H | S_H] is
// [planes, 2W, 2H] with blocks [v][u] = G_rᵀC_H, [v][H+u] = G_rᵀS_H,
// [W+v][u] = G_iᵀC_H, [W+v][H+u] = G_iᵀS_H. Q = (C_H + iS_H)·G has
// Q_r = C_H G_r − S_H G_i and Q_i = S_H G_r + C_H G_i; writes [Q_r | Q_i] as
// [planes, H, 2W], ready for the product with [C_W; −S_W].
struct Params { n: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let hw = p.h * p.w;
    let plane = i / hw;
    let u = (i % hw) / p.w;
    let v = i % p.w;
    let row = 2u * p.h;
    let a = plane * 4u * hw + v * row + u;
    let b = a + p.w * row;
    let o = plane * 2u * hw + u * 2u * p.w + v;
    out[o] = x[a] - x[b + p.h];
    out[o + p.w] = x[a + p.h] + x[b];
}
