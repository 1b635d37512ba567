//! Interrupt requests (SIGINT, SIGTERM) as a counter that the training loop
//! polls between steps.
//!
//! Node runs a JavaScript signal listener only between turns of its event
//! loop, and a training run is one synchronous call, so a listener would fire
//! only once training had ended. A C signal handler runs at once, whatever
//! JavaScript is doing; it only bumps an atomic counter (the one thing that is
//! safe inside a handler), and the loop reads it after each step.
//!
//! `signal` and `raise` are ISO C, in the C runtime of every target (glibc,
//! macOS libSystem, the Windows UCRT), so they are declared here rather than
//! pulled in with a crate. Both may be called from inside a handler.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use napi_derive::napi;

const SIGINT: i32 = 2;
/// 15 on Linux, macOS and in the Windows C runtime alike.
const SIGTERM: i32 = 15;
const SIG_DFL: usize = 0;
const SIG_ERR: usize = usize::MAX;

extern "C" {
    fn signal(signum: i32, handler: usize) -> usize;
    fn raise(signum: i32) -> i32;
}

/// Requests since the trap was armed.
static REQUESTS: AtomicU32 = AtomicU32::new(0);
/// Whether a request is counted (armed) or acts as if no handler were set.
static ARMED: AtomicBool = AtomicBool::new(false);
static INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(signum: i32) {
    let armed = ARMED.load(Ordering::SeqCst);
    // A second request while armed means "stop now": the default action
    // (terminate) runs, as it does when the trap is disarmed.
    if !armed || REQUESTS.fetch_add(1, Ordering::SeqCst) >= 1 {
        unsafe {
            signal(signum, SIG_DFL);
            raise(signum);
        }
        return;
    }
    // The Windows C runtime resets the handler before calling it; re-arm.
    unsafe {
        signal(signum, on_signal as extern "C" fn(i32) as usize);
    }
}

/// Counts SIGINT and SIGTERM from now on instead of terminating: the first is
/// a request to stop after the current step, a second terminates at once.
/// Resets the count.
#[napi(catch_unwind)]
pub fn trap_interrupts() -> napi::Result<()> {
    REQUESTS.store(0, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
    if !INSTALLED.swap(true, Ordering::SeqCst) {
        for s in [SIGINT, SIGTERM] {
            if unsafe { signal(s, on_signal as extern "C" fn(i32) as usize) } == SIG_ERR {
                ARMED.store(false, Ordering::SeqCst);
                INSTALLED.store(false, Ordering::SeqCst);
                return Err(napi::Error::from_reason(format!(
                    "trapInterrupts: the C runtime refused a handler for signal {s}"
                )));
            }
        }
    }
    Ok(())
}

/// SIGINT/SIGTERM requests since `trapInterrupts` (0 when it was not called).
#[napi(catch_unwind)]
pub fn interrupt_requests() -> u32 {
    REQUESTS.load(Ordering::SeqCst)
}

/// Lets SIGINT and SIGTERM terminate the process again.
#[napi(catch_unwind)]
pub fn release_interrupts() {
    ARMED.store(false, Ordering::SeqCst);
}
