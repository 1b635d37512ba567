//! Matrix products on the CPU through the `gemm` crate (runtime-dispatched
//! SIMD micro-kernels, packing, cache blocking, optional rayon threads).
//!
//! [`matmul`] is the batched row-major product behind `ops::matmul`;
//! [`gemm_strided`] is the raw strided form the convolution kernels build on.

use gemm::Parallelism;
use rayon::prelude::*;

/// Below this many multiply-adds per product, threads cost more than they
/// save; a batch of such products is spread over threads one product each.
const INNER_THREADING_MACS: usize = 1 << 22;

/// Where one operand of [`gemm_strided`] lives: element `(i, j)` is at
/// `ptr + i·rs + j·cs`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MatPtr {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

/// `dst = lhs · rhs` (`accumulate == false`) or `dst += lhs · rhs`
/// (`accumulate == true`), with `dst` `m × n`, `lhs` `m × k`, `rhs` `k × n`,
/// all given by pointer and element strides.
///
/// # Safety
///
/// Every element addressed through the three pointers for the given sizes and
/// strides must be in bounds of a live allocation; `dst`'s elements must be
/// distinct (no zero or overlapping strides) and must not alias `lhs`, `rhs`
/// or memory any other thread touches during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: isize,
    dst_cs: isize,
    accumulate: bool,
    lhs: MatPtr,
    rhs: MatPtr,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        // An empty sum: nothing to add, or a zero product to store.
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    *dst.offset(i as isize * dst_rs + j as isize * dst_cs) = 0.0;
                }
            }
        }
        return;
    }
    // The crate computes dst := alpha·dst + beta·lhs·rhs, reading dst only
    // when `read_dst` is set.
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dst_cs,
        dst_rs,
        accumulate,
        lhs.ptr,
        lhs.cs,
        lhs.rs,
        rhs.ptr,
        rhs.cs,
        rhs.rs,
        1.0f32,
        1.0f32,
        false,
        false,
        false,
        parallelism,
    );
}

/// `c[i] = a[i] · b[i]` for `i` in `0..batch`, all row-major: `a` is
/// `[batch, m, k]` (or one `[m, k]` matrix used for every `i` when
/// `a_shared`), `b` is `[batch, k, n]` (or one `[k, n]` when `b_shared`);
/// the result is `[batch, m, n]`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a_shared: bool,
    b_shared: bool,
) -> Vec<f32> {
    let a_stride = if a_shared { 0 } else { m * k };
    let b_stride = if b_shared { 0 } else { k * n };
    assert!(
        a.len() >= if a_shared { m * k } else { batch * m * k },
        "matmul: a too short"
    );
    assert!(
        b.len() >= if b_shared { k * n } else { batch * k * n },
        "matmul: b too short"
    );
    let mut c = crate::cpu::buffers::zeroed(batch * m * n);
    if m * n == 0 || k == 0 {
        return c;
    }
    let one = |i: usize, ci: &mut [f32], par: Parallelism| {
        let lhs = MatPtr {
            ptr: a[i * a_stride..].as_ptr(),
            rs: k as isize,
            cs: 1,
        };
        let rhs = MatPtr {
            ptr: b[i * b_stride..].as_ptr(),
            rs: n as isize,
            cs: 1,
        };
        // SAFETY: `a` and `b` hold batch entry `i` (checked above); `ci` is
        // this entry's own m·n output, borrowed mutably.
        unsafe {
            gemm_strided(
                m,
                n,
                k,
                ci.as_mut_ptr(),
                n as isize,
                1,
                false,
                lhs,
                rhs,
                par,
            )
        };
    };
    if m * n * k >= INNER_THREADING_MACS || batch == 1 {
        // Large products: the crate splits each one over all threads (it
        // stays single-threaded below its own size threshold).
        for (i, ci) in c.chunks_mut(m * n).enumerate() {
            one(i, ci, super::conv::threaded());
        }
    } else {
        c.par_chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, ci)| one(i, ci, Parallelism::None));
    }
    c
}
