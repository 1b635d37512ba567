// Partial per-channel sums over [N, C, hw]: workgroup w handles channel
// w / groups and chunk w % groups of the N·hw values r = n·hw + pos of that
// channel. With d = x − mean[s], it adds up
//   mode 0: a = d², b = d           (variance around a first-pass mean)
//   mode 1: a = g,  b = g·d·invstd[s] (gradients of an affine map after a norm)
// where s is the channel, or with per_position the position r (layer norm's
// statistics [N, 1, hw]). Each sum is combined in a shared-memory tree;
// out_a/out_b are [C, groups].
struct Params {
    n: u32,
    c: u32,
    hw: u32,
    chunk: u32,
    groups: u32,
    mode: u32,
    per_position: u32,
    pad0: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read> mean: array<f32>;
@group(0) @binding(4) var<storage, read> invstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_a: array<f32>;
@group(0) @binding(6) var<storage, read_write> out_b: array<f32>;

var<workgroup> acc_a: array<f32, 256>;
var<workgroup> acc_b: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (w >= p.c * p.groups) { return; }
    let ch = w / p.groups;
    let start = (w % p.groups) * p.chunk;
    let end = min(start + p.chunk, p.n * p.hw);
    var a = 0.0;
    var b = 0.0;
    for (var r = start + lid.x; r < end; r = r + 256u) {
        let i = ((r / p.hw) * p.c + ch) * p.hw + r % p.hw;
        let s = select(ch, r, p.per_position == 1u);
        let d = x[i] - mean[s];
        if (p.mode == 0u) {
            a = a + d * d;
            b = b + d;
        } else {
            let gv = g[i];
            a = a + gv;
            b = b + gv * d * invstd[s];
        }
    }
    acc_a[lid.x] = a;
    acc_b[lid.x] = b;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (lid.x < k) {
            acc_a[lid.x] = acc_a[lid.x] + acc_a[lid.x + k];
            acc_b[lid.x] = acc_b[lid.x] + acc_b[lid.x + k];
        }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        out_a[w] = acc_a[0];
        out_b[w] = acc_b[0];
    }
}
