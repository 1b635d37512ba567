// Short reductions over many outputs: invocation o sums its r values alone,
// walking the (at most 4) reduced segments as nested loops. Unused segment
// slots have size 1 and stride 0. out[o] = scale · COMBINE over the values
// (COMBINE is + for sums, max for maxima; INIT its identity).
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

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let o = gid.x + gid.y * nwg.x * 256u;
    if (o >= p.n_out) { return; }
    var rem = o;
    var base = 0u;
    for (var k = i32(p.nk) - 1; k >= 0; k = k - 1) {
        let d = p.kdims[k];
        base = base + (rem % d) * p.kstr[k];
        rem = rem / d;
    }
    var s = INIT;
    for (var a = 0u; a < p.rdims.x; a = a + 1u) {
        let oa = base + a * p.rstr.x;
        for (var b = 0u; b < p.rdims.y; b = b + 1u) {
            let ob = oa + b * p.rstr.y;
            for (var c = 0u; c < p.rdims.z; c = c + 1u) {
                let oc = ob + c * p.rstr.z;
                for (var d = 0u; d < p.rdims.w; d = d + 1u) {
                    s = COMBINE(s, x[oc + d * p.rstr.w]);
                }
            }
        }
    }
    out[o] = s * p.scale;
}
