// Packs conv2d weights [Cout, Cin/groups, KH, KW] into rows of output-channel
// quads: dst[(((g · taps + tap) · quads + q) · 4 + e) · wrow + c4] = weights
// from source channel 4q + e to output channels 4·c4 .. 4·c4 + 3, zero past
// either channel count. The strides say which weight dimension is "source"
// and which "output": for the forward pass the source is Cin/groups, for the
// input gradient (a transposed convolution) it is Cout/groups. `diagonal`
// keeps only s = o: a depthwise convolution folded into groups of four.
struct Params {
    total: u32,     // vec4s to write
    taps: u32,
    quads: u32,     // source quads per group
    wrow: u32,      // vec4s per row
    s_count: u32,   // source channels per group
    o_count: u32,   // output channels per group
    s_stride: u32,
    o_stride: u32,
    g_stride: u32,
    diagonal: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let c4 = i % p.wrow;
    let r = i / p.wrow;
    let s = (r / 4u % p.quads) * 4u + r % 4u;
    let t = r / 4u / p.quads;
    let tap = t % p.taps;
    let g = t / p.taps;
    var v = vec4<f32>(0.0);
    for (var k = 0u; k < 4u; k++) {
        let o = 4u * c4 + k;
        if (s < p.s_count && o < p.o_count && (p.diagonal == 0u || s == o)) {
            v[k] = w[g * p.g_stride + s * p.s_stride + o * p.o_stride + tap];
        }
    }
    dst[i] = v;
}
