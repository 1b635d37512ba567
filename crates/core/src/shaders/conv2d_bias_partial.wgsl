// First stage of the bias gradient: part[(n · chunks + k) · C + c] = the sum
// of grad_out[n, c] over pixel chunk k (conv2d_sum_rows adds the rows).
struct Params { total: u32, c: u32, hw: u32, chunks: u32, chunk: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let k = i % p.chunks;
    let plane = i / p.chunks;
    let n = plane / p.c;
    let c = plane % p.c;
    let begin = plane * p.hw + k * p.chunk;
    let end = plane * p.hw + min((k + 1u) * p.chunk, p.hw);
    var s = 0.0;
    for (var j = begin; j < end; j++) { s += gy[j]; }
    part[(n * p.chunks + k) * p.c + c] = s;
}
