// Concat and split as a block copy: view the n values as rows of `len`;
// row o moves from src[o·src_stride + src_off ..] to dst[o·dst_stride + dst_off ..].
// Concat copies each input's rows into its slice of the output rows; split
// copies a slice of every input row out into its own tensor.
struct Params { n: u32, len: u32, src_stride: u32, src_off: u32, dst_stride: u32, dst_off: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let o = i / p.len;
    let r = i - o * p.len;
    dst[o * p.dst_stride + p.dst_off + r] = src[o * p.src_stride + p.src_off + r];
}
