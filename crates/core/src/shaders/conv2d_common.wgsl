// Shared by the conv2d implicit-GEMM kernels: the uniform block and the map
// from an output pixel and a kernel tap to the source pixel it reads.
//
// Sources are packed (see conv2d_pack.wgsl): pixel-major, each group's
// channels in vec4 quads, and one all-zero pixel after the last real one. A
// tap that falls outside the image reads that zero pixel, so no kernel
// branches on padding.
struct Params {
    m: u32,         // output pixels, N·hout·wout
    hout: u32,      // output grid
    wout: u32,
    hin: u32,       // source grid
    win: u32,
    zero_px: u32,   // index of the zero pixel in the packed source, N·hin·win
    px_vec4: u32,   // vec4s per packed source pixel
    quads: u32,     // source quads per group
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    cout: u32,      // output channels, all groups
    cog: u32,       // output channels per group
    wrow: u32,      // vec4s per packed weight row (output channels per group, padded, / 4)
    tiles: u32,     // output-channel tiles per group
    blocks: u32,    // workgroups along the inner dimension of the kernel's grid
    total: u32,     // workgroups doing work; the grid may hold a few more
    inv_sh: f32,    // 1 / stride, for the transposed map
    inv_sw: f32,
    has_bias: u32,
    cig: u32,       // weight gradient: input channels per group
    gy_vec4: u32,   // weight gradient: vec4s per packed grad_out pixel
    gy_quads: u32,  // weight gradient: grad_out quads per group
    tiles_i: u32,   // weight gradient: input-channel tiles per group
    chunk: u32,     // weight gradient: grad_out pixels per partial sum
    chunks: u32,    // weight gradient: number of partial sums
    groups: u32,
    co_pad: u32,    // weight gradient: output channels per group in a partial sum
    ci_pad: u32,    // weight gradient: input channels per group in a partial sum
}
@group(0) @binding(0) var<uniform> p: Params;

// Convolution: output (n, y, x) reads source (n, y·s + k·d − pad, x·s + k·d − pad).
fn src_pixel_forward(n: u32, y: u32, x: u32, ky: u32, kx: u32) -> u32 {
    let iy = i32(y * p.sh + ky * p.dh) - i32(p.ph);
    let ix = i32(x * p.sw + kx * p.dw) - i32(p.pw);
    let inside = u32(iy) < p.hin && u32(ix) < p.win;
    return select(p.zero_px, (n * p.hin + u32(iy)) * p.win + u32(ix), inside);
}

// Transposed convolution (the input gradient, gather form): input pixel
// (n, y, x) receives from output (n, oy, ox) through tap (ky, kx) when
// oy·s = y + pad − ky·d exactly. t/s is computed as ⌊(t + ½)·(1/s)⌋ in f32:
// (t + ½)/s lies at least ½/s from an integer, and the rounding error stays
// below that while t < 2^22.
fn src_pixel_transposed(n: u32, y: u32, x: u32, ky: u32, kx: u32) -> u32 {
    let ty = i32(y + p.ph) - i32(ky * p.dh);
    let tx = i32(x + p.pw) - i32(kx * p.dw);
    let oy = u32((f32(max(ty, 0)) + 0.5) * p.inv_sh);
    let ox = u32((f32(max(tx, 0)) + 0.5) * p.inv_sw);
    let hit = ty >= 0 && tx >= 0 && oy * p.sh == u32(ty) && ox * p.sw == u32(tx) && oy < p.hin && ox < p.win;
    return select(p.zero_px, (n * p.hin + oy) * p.win + ox, hit);
}
