// y[o] = scale · Σ_r x[kept(o) + reduced(r)], one invocation per output.
// Used when each output sums few values, or when neighbouring outputs are
// neighbouring in memory (the innermost dimension is kept), so that the
// invocations of a workgroup read contiguous addresses at every step.
// kept(o) and reduced(r) map a row-major index over the kept (reduced)
// dimensions `kd` (`rd`) to an offset in x through strides `ks` (`rs`).
struct Params {
    m: u32,
    r: u32,
    chunk: u32,
    nchunks: u32,
    nk: u32,
    nr: u32,
    scale: f32,
    pad0: u32,
    kd: vec4<u32>,
    ks: vec4<u32>,
    rd: vec4<u32>,
    rs: vec4<u32>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

fn kept_offset(o: u32) -> u32 {
    var rem = o;
    var off = 0u;
    for (var d = i32(p.nk) - 1; d >= 0; d = d - 1) {
        off = off + (rem % p.kd[d]) * p.ks[d];
        rem = rem / p.kd[d];
    }
    return off;
}

// Row-major coordinates of r over the reduced dimensions (unused ones stay 0,
// and their stride is 0, so dot(coords, p.rs) is the offset of r).
fn reduced_coords(r: u32) -> vec4<u32> {
    var c = vec4<u32>(0u);
    var rem = r;
    for (var d = i32(p.nr) - 1; d >= 0; d = d - 1) {
        c[d] = rem % p.rd[d];
        rem = rem / p.rd[d];
    }
    return c;
}

// The coordinates of r + step from those of r: add to the innermost
// coordinate and carry outwards; a division only where a coordinate wraps.
fn advance(c0: vec4<u32>, step: u32) -> vec4<u32> {
    var c = c0;
    var carry = step;
    for (var d = i32(p.nr) - 1; d >= 0 && carry > 0u; d = d - 1) {
        let v = c[d] + carry;
        if (v < p.rd[d]) {
            c[d] = v;
            carry = 0u;
        } else {
            carry = v / p.rd[d];
            c[d] = v - carry * p.rd[d];
        }
    }
    return c;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 256u;
    if (o >= p.m) { return; }
    let base = kept_offset(o);
    var c = vec4<u32>(0u);
    var acc = 0.0;
    for (var r = 0u; r < p.r; r = r + 1u) {
        acc = acc + x[base + dot(c, p.rs)];
        c = advance(c, 1u);
    }
    y[o] = acc * p.scale;
}
