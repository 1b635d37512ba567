// Gradient of nearest ×2: each input pixel sums its 2×2 output block.
struct Params { n: u32, h: u32, w: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let xx = i % p.w;
    let t = i / p.w;
    let yy = t % p.h;
    let plane = t / p.h;
    let ow = 2u * p.w;
    let top = (plane * 2u * p.h + 2u * yy) * ow + 2u * xx;
    dx[i] = (g[top] + g[top + 1u]) + (g[top + ow] + g[top + ow + 1u]);
}
