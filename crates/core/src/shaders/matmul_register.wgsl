// C[b] = A[b] · B[b] for CPU adapters (llvmpipe/lavapipe), where a workgroup
// barrier is very expensive: no shared memory; each invocation computes an
// 8×8 block of C from registers. Indices are clamped instead of branched so
// the inner loop has no conditionals; only the store is masked.
struct Params { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, stride_c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let oa = gid.z * p.stride_a;
    let ob = gid.z * p.stride_b;
    var rows: array<u32, 8>;
    var cols: array<u32, 8>;
    for (var i = 0u; i < 8u; i = i + 1u) {
        rows[i] = oa + min(row0 + i, p.m - 1u) * p.k;
        cols[i] = ob + min(col0 + i, p.n - 1u);
    }
    var acc0: vec4<f32>; var acc1: vec4<f32>; var acc2: vec4<f32>; var acc3: vec4<f32>;
    var acc4: vec4<f32>; var acc5: vec4<f32>; var acc6: vec4<f32>; var acc7: vec4<f32>;
    var acc8: vec4<f32>; var acc9: vec4<f32>; var acc10: vec4<f32>; var acc11: vec4<f32>;
    var acc12: vec4<f32>; var acc13: vec4<f32>; var acc14: vec4<f32>; var acc15: vec4<f32>;
    for (var k = 0u; k < p.k; k = k + 1u) {
        let kb = k * p.n;
        let b0 = vec4<f32>(b[kb + cols[0]], b[kb + cols[1]], b[kb + cols[2]], b[kb + cols[3]]);
        let b1 = vec4<f32>(b[kb + cols[4]], b[kb + cols[5]], b[kb + cols[6]], b[kb + cols[7]]);
        let a0 = a[rows[0] + k]; let a1 = a[rows[1] + k]; let a2 = a[rows[2] + k]; let a3 = a[rows[3] + k];
        let a4 = a[rows[4] + k]; let a5 = a[rows[5] + k]; let a6 = a[rows[6] + k]; let a7 = a[rows[7] + k];
        acc0 = fma(vec4<f32>(a0), b0, acc0); acc1 = fma(vec4<f32>(a0), b1, acc1);
        acc2 = fma(vec4<f32>(a1), b0, acc2); acc3 = fma(vec4<f32>(a1), b1, acc3);
        acc4 = fma(vec4<f32>(a2), b0, acc4); acc5 = fma(vec4<f32>(a2), b1, acc5);
        acc6 = fma(vec4<f32>(a3), b0, acc6); acc7 = fma(vec4<f32>(a3), b1, acc7);
        acc8 = fma(vec4<f32>(a4), b0, acc8); acc9 = fma(vec4<f32>(a4), b1, acc9);
        acc10 = fma(vec4<f32>(a5), b0, acc10); acc11 = fma(vec4<f32>(a5), b1, acc11);
        acc12 = fma(vec4<f32>(a6), b0, acc12); acc13 = fma(vec4<f32>(a6), b1, acc13);
        acc14 = fma(vec4<f32>(a7), b0, acc14); acc15 = fma(vec4<f32>(a7), b1, acc15);
    }
    let oc = gid.z * p.stride_c;
    store_row(oc, row0 + 0u, col0, acc0, acc1);
    store_row(oc, row0 + 1u, col0, acc2, acc3);
    store_row(oc, row0 + 2u, col0, acc4, acc5);
    store_row(oc, row0 + 3u, col0, acc6, acc7);
    store_row(oc, row0 + 4u, col0, acc8, acc9);
    store_row(oc, row0 + 5u, col0, acc10, acc11);
    store_row(oc, row0 + 6u, col0, acc12, acc13);
    store_row(oc, row0 + 7u, col0, acc14, acc15);
}

fn store_row(oc: u32, r: u32, col0: u32, lo: vec4<f32>, hi: vec4<f32>) {
    if (r >= p.m) { return; }
    let base = oc + r * p.n + col0;
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (col0 + j < p.n) { c[base + j] = lo[j]; }
        if (col0 + 4u + j < p.n) { c[base + 4u + j] = hi[j]; }
    }
}
