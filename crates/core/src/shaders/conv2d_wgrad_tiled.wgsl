// Weight gradient for GPUs, first stage (the formula is in
// conv2d_wgrad_register.wgsl): a workgroup of 16×16 reduces one chunk of
// output pixels into 64 output × 64 input channels of one tap, each
// invocation 4×4; grad_out and the tap's source pixels are staged through
// workgroup memory 16 pixels at a time. conv2d_sum_rows adds the chunks.

@group(0) @binding(1) var<storage, read> gy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

var<workgroup> ta: array<array<f32, 64>, 16>; // [pixel][output channel]
var<workgroup> tb: array<array<f32, 64>, 16>; // [pixel][input channel]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let wid = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
    if (wid >= p.total) { return; }
    let chunk = wid % p.blocks;
    let taps = p.kh * p.kw;
    let t = wid / p.blocks;
    let o0 = t / p.tiles_i % p.tiles * 64u;
    let i0 = t % p.tiles_i * 64u;
    let tap = t / p.tiles_i / p.tiles % taps;
    let g = t / p.tiles_i / p.tiles / taps;
    let ky = tap / p.kw;
    let kx = tap % p.kw;
    let hw = p.hout * p.wout;
    let begin = chunk * p.chunk;
    let end = min(begin + p.chunk, p.m);
    let f = lid.y * 16u + lid.x;
    // This invocation loads quad lq of pixel lp, from grad_out and from the source.
    let lp = f / 16u;
    let lq = f % 16u;
    var acc: array<array<f32, 4>, 4>;
    for (var m0 = begin; m0 < end; m0 += 16u) {
        let m = m0 + lp;
        var va = vec4<f32>(0.0);
        var vb = vec4<f32>(0.0);
        if (m < end) {
            if (o0 / 4u + lq < p.gy_quads) { va = gy[m * p.gy_vec4 + g * p.gy_quads + o0 / 4u + lq]; }
            let s = src_pixel_forward(m / hw, m % hw / p.wout, m % p.wout, ky, kx);
            if (i0 / 4u + lq < p.quads) { vb = src[s * p.px_vec4 + g * p.quads + i0 / 4u + lq]; }
        }
        for (var i = 0u; i < 4u; i++) {
            ta[lp][lq * 4u + i] = va[i];
            tb[lp][lq * 4u + i] = vb[i];
        }
        workgroupBarrier();
        for (var k = 0u; k < 16u; k++) {
            var ra: array<f32, 4>;
            var rb: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                ra[i] = ta[k][lid.y * 4u + i];
                rb[i] = tb[k][lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i][j] = fma(ra[i], rb[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let o = o0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let c = i0 + lid.x * 4u + j;
            if (o < p.cog && c < p.cig) {
                part[(((chunk * p.groups + g) * taps + tap) * p.co_pad + o) * p.ci_pad + c] = acc[i][j];
            }
        }
    }
}
