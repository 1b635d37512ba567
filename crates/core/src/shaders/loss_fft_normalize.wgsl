// FFT-loss backward, first step: G = F(d)/|F(d)| scaled by grad[0]/n, from the
// blocks laid out as in loss_fft_modulus.wgsl. Writes Gᵀ stacked as
// [G_rᵀ; G_iᵀ], i.e. out[plane, v, u] = G_r[u, v], out[plane, W+v, u] = G_i[u, v].
struct Params { n: u32, h: u32, w: u32, inv_n: f32, eps: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> blocks: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let hw = p.h * p.w;
    let plane = i / hw;
    let v = (i % hw) / p.h;
    let u = i % p.h;
    let row = 2u * p.h;
    let a = plane * 4u * hw + v * row + u;
    let b = a + p.w * row;
    let re = blocks[a] - blocks[b + p.h];
    let im = -(blocks[b] + blocks[a + p.h]);
    let scale = grad[0] * p.inv_n / sqrt(re * re + im * im + p.eps);
    let o = plane * 2u * hw + v * p.h + u;
    out[o] = re * scale;
    out[o + hw] = im * scale;
}
