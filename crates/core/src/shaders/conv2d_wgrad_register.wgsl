// Weight gradient for CPU adapters (llvmpipe/lavapipe), first stage:
//   part[k, g, tap, o, i] = Σ_{m in chunk k} grad_out[m, g, o] · src[src_pixel_forward(m, tap), g, i]
// a convolution with batch and channels swapped, split over chunks of output
// pixels so that few weights and many pixels still give many invocations;
// conv2d_sum_rows adds the chunks. Each invocation owns a tile of
// TILE_O × TILE_I weights of one tap for one chunk (the 32 of a workgroup
// take 32 tiles of the same chunk, so they read the same pixels), walks the
// chunk four pixels at a time (padding and the chunk's end read the zero
// pixels) and chains the four products per accumulator (conv2d_register.wgsl
// says why). Channels are padded to whole tiles, so the partial sums are
// stored without conditions: hundreds of conditional stores took llvmpipe
// seconds to compile. The //# lines are expanded on the host for the tile.

@group(0) @binding(1) var<storage, read> gy: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part: array<vec4<f32>>;

@compute @workgroup_size(32)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wid = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
    if (wid >= p.total) { return; }
    let taps = p.kh * p.kw;
    let t = (wid % p.blocks) * 32u + lid;
    if (t >= p.groups * taps * p.tiles * p.tiles_i) { return; }
    let chunk = wid / p.blocks;
    let o0 = t / p.tiles_i % p.tiles * TILE_O;
    let i0 = t % p.tiles_i * TILE_I;
    let tap = t / p.tiles_i / p.tiles % taps;
    let g = t / p.tiles_i / p.tiles / taps;
    let ky = tap / p.kw;
    let kx = tap % p.kw;
    let hw = p.hout * p.wout;
    let begin = chunk * p.chunk;
    let end = min(begin + p.chunk, p.m);
    var n = begin / hw;
    var y = begin % hw / p.wout;
    var x = begin % p.wout;
    let gq = g * p.gy_quads + o0 / 4u;
    let sq = g * p.quads + i0 / 4u;
    //#zero
    for (var k = 0u; k < p.chunk; k += 4u) {
        let m = begin + k;
        //#pixels
        //#loads
        //#fma
    }
    //#store
}
