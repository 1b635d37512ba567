// Shared by the broadcast kernels (reduce_broadcast.wgsl,
// reduce_max_backward.wgsl), whose `Params` hold `nseg`, `dims` and `ostr`:
// the output index of input element i. i is decomposed over the simplified
// input segments; reduced segments have output stride 0, kept ones their
// row-major stride in the output.
fn output_index(i: u32) -> u32 {
    var rem = i;
    var o = 0u;
    for (var k = i32(p.nseg) - 1; k >= 0; k = k - 1) {
        let q = u32(k) / 4u;
        let r = u32(k) % 4u;
        let d = p.dims[q][r];
        o = o + (rem % d) * p.ostr[q][r];
        rem = rem / d;
    }
    return o;
}
