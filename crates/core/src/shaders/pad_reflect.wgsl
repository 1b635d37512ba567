// Reflect padding of NCHW planes: y[plane, oy, ox] = x[plane, r(oy − top), r(ox − left)]
// with r mirroring about the edge samples without repeating them (PyTorch's
// `reflect`); the op checks that each padding is below the side it pads.
struct Params { n: u32, h: u32, w: u32, oh: u32, ow: u32, top: u32, left: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn reflect(o: u32, before: u32, size: u32) -> u32 {
    if (o < before) { return before - o; }
    let i = o - before;
    if (i < size) { return i; }
    return 2u * (size - 1u) - i;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let ox = i % p.ow;
    let t = i / p.ow;
    let oy = t % p.oh;
    let plane = t / p.oh;
    y[i] = x[(plane * p.h + reflect(oy, p.top, p.h)) * p.w + reflect(ox, p.left, p.w)];
}
