// Partial sums for a reduction: workgroup w handles output o = w / groups and
// chunk g = w % groups, i.e. reduced indices [g·chunk, (g+1)·chunk) ∩ [0, r).
// Each invocation sums a strided share of the chunk; a shared-memory tree
// then combines the 256 shares. out[w] = scale · COMBINE over the chunk
// (COMBINE is + for sums, max for maxima; INIT its identity).
// Input element (o, i) lives at kept_offset(o) + reduced_offset(i): both
// indices are decomposed row-major over (at most 4) segments of the input.
struct Params {
    n_out: u32,
    r: u32,
    chunk: u32,
    groups: u32,
    scale: f32,
    nk: u32,
    nr: u32,
    pad0: u32,
    kdims: vec4<u32>,
    kstr: vec4<u32>,
    rdims: vec4<u32>,
    rstr: vec4<u32>,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> acc: array<f32, 256>;

fn kept_offset(o: u32) -> u32 {
    var rem = o;
    var off = 0u;
    for (var k = i32(p.nk) - 1; k >= 0; k = k - 1) {
        let d = p.kdims[k];
        off = off + (rem % d) * p.kstr[k];
        rem = rem / d;
    }
    return off;
}

fn reduced_offset(i: u32) -> u32 {
    var rem = i;
    var off = 0u;
    for (var k = i32(p.nr) - 1; k >= 0; k = k - 1) {
        let d = p.rdims[k];
        off = off + (rem % d) * p.rstr[k];
        rem = rem / d;
    }
    return off;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (w >= p.n_out * p.groups) { return; }
    let o = w / p.groups;
    let g = w % p.groups;
    let base = kept_offset(o);
    let start = g * p.chunk;
    let end = min(start + p.chunk, p.r);
    var s = INIT;
    for (var i = start + lid.x; i < end; i = i + 256u) {
        s = COMBINE(s, x[base + reduced_offset(i)]);
    }
    acc[lid.x] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (lid.x < k) { acc[lid.x] = COMBINE(acc[lid.x], acc[lid.x + k]); }
        workgroupBarrier();
    }
    if (lid.x == 0u) { out[w] = acc[0] * p.scale; }
}
