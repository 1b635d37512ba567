//! Maximum over axes against a CPU reference.

mod common;

use common::{data, device};
use spikeir_core::ops::reduce::max_axes;
use spikeir_core::Tensor;

#[test]
fn max_over_axes_matches_the_cpu() {
    let dev = device();
    // [T=3, B=2, C=5, H=4, W=7]; reduce C,H,W (attention's temporal gate),
    // T,H,W (channel gate), axis 1 alone, and a long single axis (tree path).
    let shape = [3usize, 2, 5, 4, 7];
    let n: usize = shape.iter().product();
    let x = data(9, n);
    let t = Tensor::from_slice(&dev, &x, &shape).unwrap();
    let idx = |i: [usize; 5]| (((i[0] * 2 + i[1]) * 5 + i[2]) * 4 + i[3]) * 7 + i[4];
    for axes in [vec![2usize, 3, 4], vec![0, 3, 4], vec![1]] {
        let got = max_axes(&t, &axes, true).unwrap();
        let gs: Vec<usize> = (0..5)
            .map(|d| if axes.contains(&d) { 1 } else { shape[d] })
            .collect();
        assert_eq!(got.shape(), &gs[..]);
        let g = got.to_vec().unwrap();
        let mut want = vec![f32::MIN; g.len()];
        for a in 0..3 {
            for b in 0..2 {
                for c in 0..5 {
                    for h in 0..4 {
                        for w in 0..7 {
                            let i = [a, b, c, h, w];
                            let o: Vec<usize> = (0..5)
                                .map(|d| if axes.contains(&d) { 0 } else { i[d] })
                                .collect();
                            let oi = (((o[0] * gs[1] + o[1]) * gs[2] + o[2]) * gs[3] + o[3])
                                * gs[4]
                                + o[4];
                            want[oi] = want[oi].max(x[idx(i)]);
                        }
                    }
                }
            }
        }
        assert_eq!(g, want, "axes {axes:?}");
    }
    let long = data(3, 100_000);
    let tl = Tensor::from_slice(&dev, &long, &[100_000]).unwrap();
    let m = max_axes(&tl, &[0], false).unwrap();
    assert_eq!(m.shape(), &[] as &[usize]);
    assert_eq!(
        m.to_vec().unwrap()[0],
        long.iter().cloned().fold(f32::MIN, f32::max)
    );
}
