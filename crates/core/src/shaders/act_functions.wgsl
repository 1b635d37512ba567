// Helpers prepended to act_forward.wgsl and act_backward.wgsl.

// erf, |error| < 2e-7 in f32 (WGSL has no erf). For |x| < 1 the Maclaurin
// series (2/√π) Σ_{n≤10} (−1)^n x^{2n+1} / (n!(2n+1)), truncated below 2e-8;
// beyond, Abramowitz & Stegun 7.1.26, erf(x) = 1 − t(a1 + a2 t + … + a5 t⁴)
// e^{−x²} with t = 1/(1 + 0.3275911 x), |error| ≤ 1.5e-7. The series avoids
// the cancellation in 1 − (…)e^{−x²} near 0, where A&S loses ~5e-7 in f32.
fn erf_approx(x: f32) -> f32 {
    let z = abs(x);
    var r: f32;
    if (z < 1.0) {
        let z2 = z * z;
        var a = 1.4807192805221803e-08;
        a = -1.6365844146548625e-07 + z2 * a;
        a = 1.6462114444948384e-06 + z2 * a;
        a = -1.4925650248187594e-05 + z2 * a;
        a = 0.00012055332626914605 + z2 * a;
        a = -0.0008548327023163438 + z2 * a;
        a = 0.005223977845162153 + z2 * a;
        a = -0.02686617150902748 + z2 * a;
        a = 0.11283791810274124 + z2 * a;
        a = -0.37612637877464294 + z2 * a;
        a = 1.128379225730896 + z2 * a;
        r = z * a;
    } else {
        let t = 1.0 / (1.0 + 0.3275911 * z);
        let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        r = 1.0 - poly * exp(-z * z);
    }
    return select(r, -r, x < 0.0);
}

// tanh(x) = sign(x)(1 − e^{−2|x|})/(1 + e^{−2|x|}), which cannot overflow
// (the built-in may form e^{2x}/e^{2x} = inf/inf). Below |x| = 1/8 the
// series x − x³/3 + 2x⁵/15 − 17x⁷/315 (next term < 2e-9 relative) keeps
// full relative precision where 1 − e^{−2|x|} would cancel.
fn tanh_stable(x: f32) -> f32 {
    let z = abs(x);
    if (z < 0.125) {
        let x2 = x * x;
        return x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 - x2 * (17.0 / 315.0))));
    }
    let e = exp(-2.0 * z);
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}
