// Implicit-GEMM convolution for CPU adapters (llvmpipe/lavapipe): the forward
// pass and, with the transposed tap map, the input gradient:
//   res[n, y, x, g, c] = Σ_tap Σ_s src[SRC_PIXEL(n, y, x, tap), g, s] · w[g, tap, s, c]
// llvmpipe runs invocations as SIMD lanes, and inside a loop it loads storage
// one lane at a time, so the loads are what costs. Each invocation therefore
// computes TILE_P consecutive pixels × TILE_C channels in registers: per
// source quad it loads TILE_P + TILE_C vec4s for 4·TILE_P·TILE_C FMAs,
// chained four deep so that each accumulator is written (a masked write in
// llvmpipe) once per quad. No shared memory or barriers; padding taps read
// the zero pixel. Results go out pixel-major as whole vec4s,
// res[(m · groups + g) · wrow + c/4], with no per-value conditions (pixels
// past the end land in padding rows): hundreds of conditional scalar stores
// took llvmpipe many seconds to compile. conv2d_unpack.wgsl writes NCHW and
// adds the bias.
// The //# lines are expanded on the host for the tile, into named registers:
// an array indexed in a loop would live in memory, and one indexed by a
// variable compiles to a search over its elements.

@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> wpk: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> res: array<vec4<f32>>;

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
    if (wid >= p.total) { return; }
    let ct = wid / p.blocks;
    let g = ct / p.tiles;
    let c0 = (ct % p.tiles) * TILE_C;
    let m0 = ((wid % p.blocks) * 32u + lid) * TILE_P;
    let hw = p.hout * p.wout;
    // The first pixel by division, the others by stepping along the row.
    var n = m0 / hw;
    var y = m0 % hw / p.wout;
    var x = m0 % p.wout;
    //#pixels
    //#zero
    let wr1 = p.wrow;
    let wr2 = 2u * p.wrow;
    let wr3 = 3u * p.wrow;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            //#taps
            var wi = ((g * p.kh + ky) * p.kw + kx) * p.quads * 4u * p.wrow + c0 / 4u;
            for (var q = 0u; q < p.quads; q++) {
                //#loads
                //#fma
                wi += 4u * p.wrow;
            }
        }
    }
    //#store
}
