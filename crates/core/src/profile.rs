//! Wall-clock time per op kind, for finding where a training step goes.
//!
//! Off unless the environment variable `SPIKEIR_PROFILE` is set (to anything
//! but `0`) when the first span opens; then every [`span`] adds its duration
//! and a count under its name, and [`report`] prints the totals. Spans nest
//! (a backward rule calls forward kernels), so the table counts only the time
//! of the innermost open span under each name: an outer span pauses while an
//! inner one runs, and the totals add up to the instrumented time.
//!
//! With profiling off a span is one relaxed load and a branch.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 0 = not yet read from the environment, 1 = off, 2 = on.
static STATE: AtomicU8 = AtomicU8::new(0);

static TOTALS: Mutex<Option<HashMap<&'static str, (Duration, u64)>>> = Mutex::new(None);

thread_local! {
    /// The open spans of this thread, innermost last: name and when it last (re)started.
    static OPEN: RefCell<Vec<(&'static str, Instant)>> = const { RefCell::new(Vec::new()) };
}

/// Whether spans are being timed.
pub fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let on = std::env::var("SPIKEIR_PROFILE").is_ok_and(|v| !v.is_empty() && v != "0");
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
        s => s == 2,
    }
}

/// Turns timing on or off regardless of the environment.
pub fn set_enabled(on: bool) {
    STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
}

fn add(name: &'static str, d: Duration, calls: u64) {
    let mut guard = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let e = guard
        .get_or_insert_with(HashMap::new)
        .entry(name)
        .or_default();
    e.0 += d;
    e.1 += calls;
}

/// An open span; its time is added when it drops.
pub struct Span(bool);

/// Opens a span named `name` (an op kind such as `"fwd conv2d"`).
pub fn span(name: &'static str) -> Span {
    if !enabled() {
        return Span(false);
    }
    let now = Instant::now();
    OPEN.with(|o| {
        let mut o = o.borrow_mut();
        // The enclosing span pauses: bank what it has run so far.
        if let Some((outer, since)) = o.last_mut() {
            add(outer, now - *since, 0);
            *since = now;
        }
        o.push((name, now));
    });
    Span(true)
}

impl Drop for Span {
    fn drop(&mut self) {
        if !self.0 {
            return;
        }
        let now = Instant::now();
        OPEN.with(|o| {
            let mut o = o.borrow_mut();
            if let Some((name, since)) = o.pop() {
                add(name, now - since, 1);
            }
            if let Some((_, since)) = o.last_mut() {
                *since = now;
            }
        });
    }
}

/// The totals so far, largest first: name, seconds, calls.
pub fn totals() -> Vec<(&'static str, f64, u64)> {
    let guard = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let mut v: Vec<_> = guard
        .iter()
        .flat_map(|m| m.iter())
        .map(|(&k, &(d, n))| (k, d.as_secs_f64(), n))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    v
}

/// Forgets the totals.
pub fn reset() {
    *TOTALS.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// The totals as a table: seconds, share, calls and name per line.
pub fn report() -> String {
    let t = totals();
    let sum: f64 = t.iter().map(|e| e.1).sum();
    let mut s = format!("{:>9} {:>6} {:>7}  op\n", "seconds", "share", "calls");
    for (name, secs, calls) in &t {
        let share = if sum > 0.0 { 100.0 * secs / sum } else { 0.0 };
        s += &format!("{secs:>9.4} {share:>5.1}% {calls:>7}  {name}\n");
    }
    s += &format!("{sum:>9.4} 100.0% {:>7}  total\n", "");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_spans_count_inner_time_once() {
        set_enabled(true);
        reset();
        let start = Instant::now();
        {
            let _outer = span("test outer");
            std::thread::sleep(Duration::from_millis(20));
            {
                let _inner = span("test inner");
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        let elapsed = start.elapsed().as_secs_f64();
        let t = totals();
        let get = |n: &str| t.iter().find(|e| e.0 == n).copied().unwrap();
        let (outer, inner) = (get("test outer"), get("test inner"));
        assert_eq!((outer.2, inner.2), (1, 1));
        assert!(outer.1 >= 0.02 && inner.1 >= 0.03, "{outer:?} {inner:?}");
        // Disjoint intervals of one block: counting the inner sleep in the
        // outer span too would exceed the block's wall time.
        assert!(
            outer.1 + inner.1 <= elapsed,
            "{outer:?} {inner:?} of {elapsed}"
        );
        set_enabled(false);
    }
}
