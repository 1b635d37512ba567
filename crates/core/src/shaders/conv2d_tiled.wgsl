// Implicit-GEMM convolution for GPUs: the forward pass and, with the
// transposed tap map, the input gradient (conv2d_register.wgsl has the
// sum). A workgroup of 16×16 computes 64 pixels × 64 channels, each
// invocation 4×4; the K dimension (tap, source channel) is staged through
// workgroup memory 16 channels (4 quads) at a time. Each invocation loads one
// vec4 of the pixel tile and one of the weight tile per step.

@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wpk: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> ta: array<array<f32, 64>, 16>; // [channel][pixel]
var<workgroup> tb: array<array<f32, 64>, 16>; // [channel][output channel]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let wid = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
    if (wid >= p.total) { return; }
    let ct = wid / p.blocks;
    let g = ct / p.tiles;
    let c0 = (ct % p.tiles) * 64u;
    let m0 = (wid % p.blocks) * 64u;
    let hw = p.hout * p.wout;
    let f = lid.y * 16u + lid.x;
    // This invocation loads quad aq of pixel ap, and quad bq of weight row br.
    let ap = f / 4u;
    let aq = f % 4u;
    let br = f / 16u;
    let bq = f % 16u;
    let am = m0 + ap;
    let a_ok = am < p.m;
    let an = am / hw;
    let ay = am % hw / p.wout;
    let ax = am % p.wout;
    var acc: array<array<f32, 4>, 4>;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let s = select(p.zero_px, SRC_PIXEL(an, ay, ax, ky, kx), a_ok) * p.px_vec4 + g * p.quads;
            let wbase = ((g * p.kh + ky) * p.kw + kx) * p.quads * 4u;
            for (var q0 = 0u; q0 < p.quads; q0 += 4u) {
                var va = vec4<f32>(0.0);
                if (q0 + aq < p.quads) { va = src[s + q0 + aq]; }
                var vb = vec4<f32>(0.0);
                let row = (q0 + br / 4u) * 4u + br % 4u;
                if (q0 + br / 4u < p.quads) { vb = wpk[(wbase + row) * p.wrow + c0 / 4u + bq]; }
                for (var i = 0u; i < 4u; i++) {
                    ta[aq * 4u + i][ap] = va[i];
                    tb[br][bq * 4u + i] = vb[i];
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
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y * 4u + i;
        if (m < p.m) {
            let o = (m / hw * p.cout + g * p.cog) * hw + m % hw;
            for (var j = 0u; j < 4u; j++) {
                let c = c0 + lid.x * 4u + j;
                if (c < p.cog) { out[o + c * hw] = acc[i][j] + bias_at(g * p.cog + c); }
            }
        }
    }
}

fn bias_at(c: u32) -> f32 {
    return select(0.0, bias[min(c, arrayLength(&bias) - 1u)], p.has_bias != 0u);
}
