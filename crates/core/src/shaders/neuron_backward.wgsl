// Fused BPTT of the multi-step IF/LIF/PLIF neuron (DESIGN §3), from t = T−1
// down to 0. One invocation per neuron carries g_V = ∂L/∂V[t] in a register;
// grad_S[t] and H[t] are read once and grad_X[t] written once. V[t−1] is
// rebuilt from H[t−1] and S[t−1] = Θ(H[t−1] − V_th), which the loop loads
// anyway as the next step's H.
//
// PLIF: each invocation writes its Σ_t ∂L/∂w to partial[i]; the host sums
// them on the device.
struct Params {
    n: u32,
    steps: u32,
    plif: u32,
    hard: u32,
    decay_input: u32,
    k: f32,
    v_th: f32,
    v_reset: f32,
    detach_reset: u32,
    // 0 sigmoid, 1 atan, 2 triangle.
    surrogate: u32,
    alpha: f32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grad_s: array<f32>;
@group(0) @binding(2) var<storage, read> h_in: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad_x: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

fn sigmoid(z: f32) -> f32 {
    let e = exp(-abs(z));
    return select(e / (1.0 + e), 1.0 / (1.0 + e), z >= 0.0);
}

// g'(x), x = H − V_th.
fn surrogate_grad(x: f32) -> f32 {
    let a = p.alpha;
    switch p.surrogate {
        case 0u: {
            // α·σ(αx)(1 − σ(αx)) = α·e/(1 + e)² with e = exp(−|αx|), even in x.
            let e = exp(-abs(a * x));
            let d = 1.0 + e;
            return a * e / (d * d);
        }
        case 1u: {
            let u = 1.5707963267948966 * a * x;
            return a / (2.0 * (1.0 + u * u));
        }
        default: {
            // α − α²|x| is ≥ 0 exactly where |x| ≤ 1/α.
            return max(a - a * a * abs(x), 0.0);
        }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n || p.steps == 0u) { return; }
    var k = p.k;
    if (p.plif != 0u) { k = sigmoid(w[0]); }
    let vr = p.v_reset;
    let vth = p.v_th;
    let hard = p.hard != 0u;
    // ∂H[t]/∂X[t] and ∂H[t]/∂V[t−1] (IF: k = 0 without decay_input).
    let dh_dx = select(1.0, k, p.decay_input != 0u);
    let dh_dv = 1.0 - k;
    // 1 − D: whether the gradient flows through the reset's dependence on S.
    let through_reset = select(1.0, 0.0, p.detach_reset != 0u);
    var gv = 0.0;
    var gw = 0.0;
    var idx = (p.steps - 1u) * p.n + i;
    var h = h_in[idx];
    for (var t = p.steps; t > 0u; t--) {
        let s = select(0.0, 1.0, h >= vth);
        let sg = surrogate_grad(h - vth);
        var gh = grad_s[idx] * sg;
        if (hard) {
            gh += gv * (1.0 - s) + through_reset * gv * (vr - h) * sg;
        } else {
            gh += gv - through_reset * vth * gv * sg;
        }
        grad_x[idx] = gh * dh_dx;
        gv = gh * dh_dv;

        var h_prev = 0.0;
        var v_prev = vr;
        if (t > 1u) {
            h_prev = h_in[idx - p.n];
            let fired = h_prev >= vth;
            if (hard) {
                v_prev = select(h_prev, vr, fired);
            } else {
                v_prev = select(h_prev, h_prev - vth, fired);
            }
        }
        if (p.plif != 0u) {
            // ∂H/∂k = X − (V[t−1] − V_reset) with decay_input, which equals
            // (H − V[t−1])/k since H = V[t−1] + k·(X − (V[t−1] − V_reset));
            // X itself is not saved. Without decay_input ∂H/∂k = V_reset − V[t−1].
            // dk/dw = k(1 − k).
            if (p.decay_input != 0u) {
                gw += gh * (1.0 - k) * (h - v_prev);
            } else {
                gw += gh * k * (1.0 - k) * (vr - v_prev);
            }
        }
        h = h_prev;
        // Wraps below 0 after the last step, when it is no longer read.
        idx -= p.n;
    }
    if (p.plif != 0u) { partial[i] = gw; }
}
