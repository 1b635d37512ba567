// C[b] = A[b] · B[b], A: [M, K], B: [K, N], row-major; batch strides may be 0
// (broadcast). For GPUs: a 64×64 output tile per workgroup of 16×16
// invocations, each computing 4×4 outputs; 64×16 / 16×64 tiles of A and B are
// staged in workgroup memory.
struct Params { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, stride_c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> ta: array<array<f32, 64>, 16>; // [k][row]
var<workgroup> tb: array<array<f32, 64>, 16>; // [k][col]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let batch = wg.z;
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let oa = batch * p.stride_a;
    let ob = batch * p.stride_b;
    let flat = lid.y * 16u + lid.x;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TK) {
        // 256 invocations load 64×16 values of A and 16×64 of B, 4 each.
        for (var l = 0u; l < 4u; l = l + 1u) {
            let e = flat + l * 256u;
            let ar = e / TK;
            let ak = e % TK;
            let gr = row0 + ar;
            let gk = k0 + ak;
            var va = 0.0;
            if (gr < p.m && gk < p.k) { va = a[oa + gr * p.k + gk]; }
            ta[ak][ar] = va;
            let bk = e / TILE;
            let bc = e % TILE;
            let gk2 = k0 + bk;
            let gc = col0 + bc;
            var vb = 0.0;
            if (gk2 < p.k && gc < p.n) { vb = b[ob + gk2 * p.n + gc]; }
            tb[bk][bc] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            var ra: array<f32, 4>;
            var rb: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                ra[i] = ta[kk][lid.y * 4u + i];
                rb[i] = tb[kk][lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i][j] = fma(ra[i], rb[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    let oc = batch * p.stride_c;
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let col = col0 + lid.x * 4u + j;
            if (r < p.m && col < p.n) { c[oc + r * p.n + col] = acc[i][j]; }
        }
    }
}
