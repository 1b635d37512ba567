//! Lists the wgpu adapters of this machine, one JSON object a line, each with
//! whether it opened and ran a kernel correctly. `scripts/test-rust.mjs` runs
//! this in its own process (a driver may hang or abort) to decide which
//! adapters the kernel tests run on.

fn main() {
    let probes = spikeir_core::Device::probe_adapters();
    for p in &probes {
        let (usable, reason) = match &p.usable {
            Ok(()) => (true, String::new()),
            Err(e) => (false, e.clone()),
        };
        println!(
            "{{\"name\":{},\"type\":{},\"backend\":{},\"usable\":{usable},\"reason\":{}}}",
            json_string(&p.name),
            json_string(&p.device_type),
            json_string(&p.backend),
            json_string(&reason)
        );
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
