// Tree reduction for outputs that each sum many values (bias gradients:
// [N, C, H, W] → [1, C, 1, 1] sums N·H·W values per channel). Workgroup w
// sums chunk c = w mod nchunks of output o = w / nchunks: its 256 invocations
// stride through the chunk (adjacent invocations read adjacent reduced
// indices, so a contiguous innermost reduced dimension is read coalesced),
// then halve the 256 partial sums in workgroup memory. y[w] = scale · that
// sum; with nchunks > 1 the host reduces the [m, nchunks] partials in a
// second pass. kept/reduced offsets as in layout_sum_serial.wgsl.
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

var<workgroup> partial: array<f32, 256>;

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
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Rows of the grid wrap at the per-dimension limit; the test is uniform
    // across the workgroup, so the barriers below stay in uniform control flow.
    let w = wg.x + wg.y * nwg.x;
    if (w >= p.m * p.nchunks) { return; }
    let o = w / p.nchunks;
    let chunk = w - o * p.nchunks;
    let base = kept_offset(o);
    let start = chunk * p.chunk;
    let end = min(start + p.chunk, p.r);
    var acc = 0.0;
    if (start + lid < end) {
        var c = reduced_coords(start + lid);
        for (var r = start + lid; r < end; r = r + 256u) {
            acc = acc + x[base + dot(c, p.rs)];
            c = advance(c, 256u);
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (lid < s) {
            partial[lid] = partial[lid] + partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        y[w] = partial[0] * p.scale;
    }
}
