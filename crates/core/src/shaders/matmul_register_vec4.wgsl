// C[b] = A[b] · B[b] for CPU adapters when K and N are multiples of 4: the
// register kernel with vec4 loads (4× fewer load instructions than scalar
// loads for the same 256 FMAs per step). Each invocation computes 8 rows × 8
// columns of C; rows are clamped so the inner loop has no branches.
struct Params { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, stride_c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> c: array<vec4<f32>>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 8u;
    let col0 = gid.x * 8u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    let k4 = p.k / 4u;
    let n4 = p.n / 4u;
    let oa = gid.z * (p.stride_a / 4u);
    let ob = gid.z * (p.stride_b / 4u);
    // Past the last column the second vec4 re-reads the first (clamped); its
    // results are never stored.
    let c4 = col0 / 4u;
    let c4b = min(c4 + 1u, n4 - 1u);
    let r0 = oa + min(row0 + 0u, p.m - 1u) * k4;
    let r1 = oa + min(row0 + 1u, p.m - 1u) * k4;
    let r2 = oa + min(row0 + 2u, p.m - 1u) * k4;
    let r3 = oa + min(row0 + 3u, p.m - 1u) * k4;
    let r4 = oa + min(row0 + 4u, p.m - 1u) * k4;
    let r5 = oa + min(row0 + 5u, p.m - 1u) * k4;
    let r6 = oa + min(row0 + 6u, p.m - 1u) * k4;
    let r7 = oa + min(row0 + 7u, p.m - 1u) * k4;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var acc4 = vec4<f32>(0.0);
    var acc5 = vec4<f32>(0.0);
    var acc6 = vec4<f32>(0.0);
    var acc7 = vec4<f32>(0.0);
    var acc8 = vec4<f32>(0.0);
    var acc9 = vec4<f32>(0.0);
    var acc10 = vec4<f32>(0.0);
    var acc11 = vec4<f32>(0.0);
    var acc12 = vec4<f32>(0.0);
    var acc13 = vec4<f32>(0.0);
    var acc14 = vec4<f32>(0.0);
    var acc15 = vec4<f32>(0.0);
    for (var kq = 0u; kq < k4; kq = kq + 1u) {
        let a0 = a[r0 + kq];
        let a1 = a[r1 + kq];
        let a2 = a[r2 + kq];
        let a3 = a[r3 + kq];
        let a4 = a[r4 + kq];
        let a5 = a[r5 + kq];
        let a6 = a[r6 + kq];
        let a7 = a[r7 + kq];
        let bl0 = b[ob + (kq * 4u + 0u) * n4 + c4];
        let bh0 = b[ob + (kq * 4u + 0u) * n4 + c4b];
        let bl1 = b[ob + (kq * 4u + 1u) * n4 + c4];
        let bh1 = b[ob + (kq * 4u + 1u) * n4 + c4b];
        let bl2 = b[ob + (kq * 4u + 2u) * n4 + c4];
        let bh2 = b[ob + (kq * 4u + 2u) * n4 + c4b];
        let bl3 = b[ob + (kq * 4u + 3u) * n4 + c4];
        let bh3 = b[ob + (kq * 4u + 3u) * n4 + c4b];
        acc0 = fma(vec4<f32>(a0.x), bl0, acc0);
        acc1 = fma(vec4<f32>(a0.x), bh0, acc1);
        acc0 = fma(vec4<f32>(a0.y), bl1, acc0);
        acc1 = fma(vec4<f32>(a0.y), bh1, acc1);
        acc0 = fma(vec4<f32>(a0.z), bl2, acc0);
        acc1 = fma(vec4<f32>(a0.z), bh2, acc1);
        acc0 = fma(vec4<f32>(a0.w), bl3, acc0);
        acc1 = fma(vec4<f32>(a0.w), bh3, acc1);
        acc2 = fma(vec4<f32>(a1.x), bl0, acc2);
        acc3 = fma(vec4<f32>(a1.x), bh0, acc3);
        acc2 = fma(vec4<f32>(a1.y), bl1, acc2);
        acc3 = fma(vec4<f32>(a1.y), bh1, acc3);
        acc2 = fma(vec4<f32>(a1.z), bl2, acc2);
        acc3 = fma(vec4<f32>(a1.z), bh2, acc3);
        acc2 = fma(vec4<f32>(a1.w), bl3, acc2);
        acc3 = fma(vec4<f32>(a1.w), bh3, acc3);
        acc4 = fma(vec4<f32>(a2.x), bl0, acc4);
        acc5 = fma(vec4<f32>(a2.x), bh0, acc5);
        acc4 = fma(vec4<f32>(a2.y), bl1, acc4);
        acc5 = fma(vec4<f32>(a2.y), bh1, acc5);
        acc4 = fma(vec4<f32>(a2.z), bl2, acc4);
        acc5 = fma(vec4<f32>(a2.z), bh2, acc5);
        acc4 = fma(vec4<f32>(a2.w), bl3, acc4);
        acc5 = fma(vec4<f32>(a2.w), bh3, acc5);
        acc6 = fma(vec4<f32>(a3.x), bl0, acc6);
        acc7 = fma(vec4<f32>(a3.x), bh0, acc7);
        acc6 = fma(vec4<f32>(a3.y), bl1, acc6);
        acc7 = fma(vec4<f32>(a3.y), bh1, acc7);
        acc6 = fma(vec4<f32>(a3.z), bl2, acc6);
        acc7 = fma(vec4<f32>(a3.z), bh2, acc7);
        acc6 = fma(vec4<f32>(a3.w), bl3, acc6);
        acc7 = fma(vec4<f32>(a3.w), bh3, acc7);
        acc8 = fma(vec4<f32>(a4.x), bl0, acc8);
        acc9 = fma(vec4<f32>(a4.x), bh0, acc9);
        acc8 = fma(vec4<f32>(a4.y), bl1, acc8);
        acc9 = fma(vec4<f32>(a4.y), bh1, acc9);
        acc8 = fma(vec4<f32>(a4.z), bl2, acc8);
        acc9 = fma(vec4<f32>(a4.z), bh2, acc9);
        acc8 = fma(vec4<f32>(a4.w), bl3, acc8);
        acc9 = fma(vec4<f32>(a4.w), bh3, acc9);
        acc10 = fma(vec4<f32>(a5.x), bl0, acc10);
        acc11 = fma(vec4<f32>(a5.x), bh0, acc11);
        acc10 = fma(vec4<f32>(a5.y), bl1, acc10);
        acc11 = fma(vec4<f32>(a5.y), bh1, acc11);
        acc10 = fma(vec4<f32>(a5.z), bl2, acc10);
        acc11 = fma(vec4<f32>(a5.z), bh2, acc11);
        acc10 = fma(vec4<f32>(a5.w), bl3, acc10);
        acc11 = fma(vec4<f32>(a5.w), bh3, acc11);
        acc12 = fma(vec4<f32>(a6.x), bl0, acc12);
        acc13 = fma(vec4<f32>(a6.x), bh0, acc13);
        acc12 = fma(vec4<f32>(a6.y), bl1, acc12);
        acc13 = fma(vec4<f32>(a6.y), bh1, acc13);
        acc12 = fma(vec4<f32>(a6.z), bl2, acc12);
        acc13 = fma(vec4<f32>(a6.z), bh2, acc13);
        acc12 = fma(vec4<f32>(a6.w), bl3, acc12);
        acc13 = fma(vec4<f32>(a6.w), bh3, acc13);
        acc14 = fma(vec4<f32>(a7.x), bl0, acc14);
        acc15 = fma(vec4<f32>(a7.x), bh0, acc15);
        acc14 = fma(vec4<f32>(a7.y), bl1, acc14);
        acc15 = fma(vec4<f32>(a7.y), bh1, acc15);
        acc14 = fma(vec4<f32>(a7.z), bl2, acc14);
        acc15 = fma(vec4<f32>(a7.z), bh2, acc15);
        acc14 = fma(vec4<f32>(a7.w), bl3, acc14);
        acc15 = fma(vec4<f32>(a7.w), bh3, acc15);
    }
    let oc = gid.z * (p.stride_c / 4u);
    if (row0 + 0u < p.m) {
        c[oc + (row0 + 0u) * n4 + c4] = acc0;
        if (col0 + 4u < p.n) { c[oc + (row0 + 0u) * n4 + c4 + 1u] = acc1; }
    }
    if (row0 + 1u < p.m) {
        c[oc + (row0 + 1u) * n4 + c4] = acc2;
        if (col0 + 4u < p.n) { c[oc + (row0 + 1u) * n4 + c4 + 1u] = acc3; }
    }
    if (row0 + 2u < p.m) {
        c[oc + (row0 + 2u) * n4 + c4] = acc4;
        if (col0 + 4u < p.n) { c[oc + (row0 + 2u) * n4 + c4 + 1u] = acc5; }
    }
    if (row0 + 3u < p.m) {
        c[oc + (row0 + 3u) * n4 + c4] = acc6;
        if (col0 + 4u < p.n) { c[oc + (row0 + 3u) * n4 + c4 + 1u] = acc7; }
    }
    if (row0 + 4u < p.m) {
        c[oc + (row0 + 4u) * n4 + c4] = acc8;
        if (col0 + 4u < p.n) { c[oc + (row0 + 4u) * n4 + c4 + 1u] = acc9; }
    }
    if (row0 + 5u < p.m) {
        c[oc + (row0 + 5u) * n4 + c4] = acc10;
        if (col0 + 4u < p.n) { c[oc + (row0 + 5u) * n4 + c4 + 1u] = acc11; }
    }
    if (row0 + 6u < p.m) {
        c[oc + (row0 + 6u) * n4 + c4] = acc12;
        if (col0 + 4u < p.n) { c[oc + (row0 + 6u) * n4 + c4 + 1u] = acc13; }
    }
    if (row0 + 7u < p.m) {
        c[oc + (row0 + 7u) * n4 + c4] = acc14;
        if (col0 + 4u < p.n) { c[oc + (row0 + 7u) * n4 + c4 + 1u] = acc15; }
    }
}
