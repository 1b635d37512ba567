// out[b, c, r] = x[b, r, c]: transposes each [rows, cols] plane.
struct Params { total: u32, rows: u32, cols: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.total) { return; }
    let plane = p.rows * p.cols;
    let rem = i % plane;
    let c = rem / p.rows;
    let r = rem % p.rows;
    out[i] = x[i - rem + r * p.cols + c];
}
