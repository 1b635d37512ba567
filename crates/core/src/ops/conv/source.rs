//! The WGSL text of the register kernels, unrolled for a tile size: the
//! templates' `//#name` lines are replaced by generated statements.

use std::fmt::Write;

/// A kernel's text after the shared uniform block and tap maps.
pub(super) fn kernel_source(body: &str) -> String {
    format!(
        "{}\n{body}",
        include_str!("../../shaders/conv2d_common.wgsl")
    )
}

/// `template` with each `//#name` line replaced by `parts[name]`.
fn expand(template: &str, parts: &[(&str, String)]) -> String {
    let mut out = String::new();
    for line in template.lines() {
        match parts
            .iter()
            .find(|(name, _)| line.trim() == format!("//#{name}"))
        {
            Some((_, text)) => out.push_str(text),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// `conv2d_register.wgsl` for `tile_p` pixels × `tile_c` output channels.
pub(super) fn register_source(map: &str, tile_p: usize, tile_c: usize) -> String {
    let quads = tile_c / 4;
    let mut parts: [(&str, String); 6] = [
        ("pixels", String::new()),
        ("zero", String::new()),
        ("taps", String::new()),
        ("loads", String::new()),
        ("fma", String::new()),
        ("store", String::new()),
    ];
    let [pixels, zero, taps, loads, fma, store] = parts.each_mut().map(|p| &mut p.1);
    store.push_str("    if (ok0) {\n        let first = (m0 * p.groups + g) * p.wrow + c0 / 4u;\n");
    for j in 0..tile_p {
        let _ = writeln!(
            pixels,
            "    let n{j} = n; let y{j} = y; let x{j} = x; let ok{j} = m0 + {j}u < p.m;"
        );
        if j + 1 < tile_p {
            let _ = writeln!(
                pixels,
                "    x += 1u; y += select(0u, 1u, x == p.wout); x = select(x, 0u, x == p.wout); \
                 n += select(0u, 1u, y == p.hout); y = select(y, 0u, y == p.hout);"
            );
        }
        let _ = writeln!(
            taps,
            "            let s{j} = select(p.zero_px, src_pixel_{map}(n{j}, y{j}, x{j}, ky, kx), ok{j}) \
             * p.px_vec4 + g * p.quads;"
        );
        let _ = writeln!(loads, "                let v{j} = src[s{j} + q];");
        for t in 0..quads {
            let _ = writeln!(zero, "    var a{j}_{t} = vec4<f32>(0.0);");
            let _ = writeln!(
                fma,
                "                a{j}_{t} = fma(vec4<f32>(v{j}.w), w3_{t}, fma(vec4<f32>(v{j}.z), w2_{t}, \
                 fma(vec4<f32>(v{j}.y), w1_{t}, fma(vec4<f32>(v{j}.x), w0_{t}, a{j}_{t}))));"
            );
            let _ = writeln!(
                store,
                "        res[first + {j}u * p.groups * p.wrow + {t}u] = a{j}_{t};"
            );
        }
    }
    store.push_str("    }\n");
    for e in 0..4 {
        let row = if e == 0 {
            String::new()
        } else {
            format!(" + wr{e}")
        };
        for t in 0..quads {
            let _ = writeln!(loads, "                let w{e}_{t} = wpk[wi{row} + {t}u];");
        }
    }
    let template = kernel_source(include_str!("../../shaders/conv2d_register.wgsl"))
        .replace("TILE_P", &format!("{tile_p}u"))
        .replace("TILE_C", &format!("{tile_c}u"));
    expand(&template, &parts)
}

/// `conv2d_wgrad_register.wgsl` for `tile_o` × `tile_i` weights.
pub(super) fn wgrad_register_source(tile_o: usize, tile_i: usize) -> String {
    let (qo, qi) = (tile_o / 4, tile_i / 4);
    let mut parts: [(&str, String); 5] = [
        ("zero", String::new()),
        ("pixels", String::new()),
        ("loads", String::new()),
        ("fma", String::new()),
        ("store", String::new()),
    ];
    let [zero, pixels, loads, fma, store] = parts.each_mut().map(|p| &mut p.1);
    // Row `chunk` of the partial sums is [groups][taps][co_pad][ci_pad], in vec4s here.
    store.push_str(
        "    let ci4 = p.ci_pad / 4u;\n    \
         let row = (((chunk * p.groups + g) * taps + tap) * p.co_pad + o0) * ci4 + i0 / 4u;\n",
    );
    for u in 0..4 {
        let _ = writeln!(
            pixels,
            "        let ok{u} = m + {u}u < end;\n        \
             let gp{u} = select(p.m, m + {u}u, ok{u}) * p.gy_vec4 + gq;\n        \
             let sp{u} = select(p.zero_px, src_pixel_forward(n, y, x, ky, kx), ok{u}) * p.px_vec4 + sq;\n        \
             x += 1u; y += select(0u, 1u, x == p.wout); x = select(x, 0u, x == p.wout); \
             n += select(0u, 1u, y == p.hout); y = select(y, 0u, y == p.hout);"
        );
        for a in 0..qo {
            let _ = writeln!(loads, "        let g{u}_{a} = gy[gp{u} + {a}u];");
        }
        for b in 0..qi {
            let _ = writeln!(loads, "        let v{u}_{b} = src[sp{u} + {b}u];");
        }
    }
    for o in 0..tile_o {
        let (a, lane) = (o / 4, LANES[o % 4]);
        for b in 0..qi {
            let _ = writeln!(zero, "    var a{o}_{b} = vec4<f32>(0.0);");
            let mut chain = format!("a{o}_{b}");
            for u in 0..4 {
                chain = format!("fma(vec4<f32>(g{u}_{a}.{lane}), v{u}_{b}, {chain})");
            }
            let _ = writeln!(fma, "        a{o}_{b} = {chain};");
            let _ = writeln!(store, "    part[row + {o}u * ci4 + {b}u] = a{o}_{b};");
        }
    }
    let template = kernel_source(include_str!("../../shaders/conv2d_wgrad_register.wgsl"))
        .replace("TILE_O", &format!("{tile_o}u"))
        .replace("TILE_I", &format!("{tile_i}u"));
    expand(&template, &parts)
}
