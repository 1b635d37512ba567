// Second stage of the split reductions (weight and bias gradients):
//   out[o · len + i] = Σ part[r · row_len + src(i)] over the rows r of block o,
// one invocation per output value. A weight gradient's rows hold
// [groups][taps][co_pad][ci_pad] (channels padded to the kernel's tiles);
// src maps the weight index i = (c · cig + ci) · taps + tap into that, and is
// the identity when taps = cig = ci_pad = 1 and cog = co_pad = len. A folded
// depthwise gradient (`diagonal`, cig = 1) takes the diagonal of each 4 × 4
// block: output channel c's own column.
struct Params {
    len: u32,
    rows: u32,
    per_out: u32,   // rows summed into one output block
    total: u32,     // outputs: blocks · len
    row_len: u32,
    taps: u32,
    cig: u32,
    cog: u32,
    co_pad: u32,
    ci_pad: u32,
    diagonal: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let j = gid.x + gid.y * nwg.x * 256u;
    if (j >= p.total) { return; }
    let o = j / p.len;
    let i = j - o * p.len;
    let tap = i % p.taps;
    let ci = i / p.taps % p.cig;
    let c = i / p.taps / p.cig;
    let column = select(ci, c % p.cog, p.diagonal != 0u);
    let src = ((c / p.cog * p.taps + tap) * p.co_pad + c % p.cog) * p.ci_pad + column;
    var s = 0.0;
    for (var r = o * p.per_out; r < min(p.rows, (o + 1u) * p.per_out); r++) { s += part[r * p.row_len + src]; }
    out[j] = s;
}
