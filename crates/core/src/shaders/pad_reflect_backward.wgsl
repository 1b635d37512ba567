// Gradient of reflect padding, one invocation per input pixel (no atomics):
// it sums the up to 3 × 3 padded positions that read it — along each axis
// the direct one, its mirror in the leading padding, then in the trailing
// one — rows outer, columns inner, as the CPU kernel does.
struct Params { n: u32, h: u32, w: u32, oh: u32, ow: u32, top: u32, left: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;

// Padded positions along an axis that read input index i (count in .w).
fn sources(i: u32, before: u32, size: u32, padded: u32) -> vec4<u32> {
    var s = vec4<u32>(before + i, 0u, 0u, 1u);
    if (i >= 1u && i <= before) {
        s[s.w] = before - i;
        s.w = s.w + 1u;
    }
    if (i + 2u <= size && before + 2u * (size - 1u) - i < padded) {
        s[s.w] = before + 2u * (size - 1u) - i;
        s.w = s.w + 1u;
    }
    return s;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let ix = i % p.w;
    let t = i / p.w;
    let iy = t % p.h;
    let plane = t / p.h;
    let ys = sources(iy, p.top, p.h, p.oh);
    let xs = sources(ix, p.left, p.w, p.ow);
    var s = 0.0;
    for (var a = 0u; a < ys.w; a = a + 1u) {
        let row = (plane * p.oh + ys[a]) * p.ow;
        for (var b = 0u; b < xs.w; b = b + 1u) {
            s = s + g[row + xs[b]];
        }
    }
    dx[i] = s;
}
