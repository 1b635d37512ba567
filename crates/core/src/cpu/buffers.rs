//! Host buffers of the native backend, from one size-bucketed pool (the same
//! size classes as the GPU pool). Kernels take their outputs and large
//! scratch space from [`zeroed`]; a tensor's vector goes back to the pool
//! when its storage drops, so a training step after the first allocates
//! nothing from the system allocator.

use std::sync::{Mutex, MutexGuard};

use crate::pool::{size_class, Pool};

/// Cached host vectors above this many bytes are freed instead.
const MAX_CACHED_BYTES: u64 = 2 << 30;

static FREE: Mutex<Option<Pool<Vec<f32>>>> = Mutex::new(None);

fn free() -> MutexGuard<'static, Option<Pool<Vec<f32>>>> {
    FREE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A vector of `n` zeros, reusing a cached one of the same size class.
pub fn zeroed(n: usize) -> Vec<f32> {
    try_zeroed(n).unwrap_or_else(|| {
        std::alloc::handle_alloc_error(
            std::alloc::Layout::array::<f32>(n).unwrap_or(std::alloc::Layout::new::<f32>()),
        )
    })
}

/// [`zeroed`], or `None` when the allocator cannot give that much memory.
pub fn try_zeroed(n: usize) -> Option<Vec<f32>> {
    let class = size_class(4 * n as u64);
    let cached = free().get_or_insert_with(Pool::default).take(class);
    let mut v = match cached {
        Some(mut v) => {
            v.clear();
            v
        }
        None => {
            let mut v = Vec::new();
            v.try_reserve_exact((class / 4) as usize).ok()?;
            v
        }
    };
    v.resize(n, 0.0);
    Some(v)
}

/// A vector of `n` values for a caller that overwrites every one of them:
/// a cached vector is reused without being cleared (only a part beyond its
/// last length is zero-filled), so its contents are whatever it last held.
/// Zero-filling outputs that a kernel then writes in full was about a tenth
/// of a training step.
pub fn scratch(n: usize) -> Vec<f32> {
    let class = size_class(4 * n as u64);
    let cached = free().get_or_insert_with(Pool::default).take(class);
    let mut v = cached.unwrap_or_else(|| {
        let mut v = Vec::new();
        v.try_reserve_exact((class / 4) as usize)
            .unwrap_or_else(|_| {
                std::alloc::handle_alloc_error(
                    std::alloc::Layout::array::<f32>(n).unwrap_or(std::alloc::Layout::new::<f32>()),
                )
            });
        v
    });
    if v.len() >= n {
        v.truncate(n);
    } else {
        v.resize(n, 0.0);
    }
    v
}

/// Gives a vector back for reuse. Only vectors whose capacity is a whole
/// size class are kept (those from [`zeroed`]); others are simply freed.
pub fn recycle(v: Vec<f32>) {
    let bytes = 4 * v.capacity() as u64;
    if bytes == 0 || size_class(bytes) != bytes {
        return;
    }
    let mut guard = free();
    let pool = guard.get_or_insert_with(Pool::default);
    if pool.cached_bytes() + bytes > MAX_CACHED_BYTES {
        return;
    }
    // The pool's live counters track GPU buffers; host tensors are counted
    // by the device, so account the vector as handed out before returning it.
    pool.note_new(bytes);
    pool.give_back(bytes, v);
}

/// Bytes of host vectors cached for reuse.
pub fn cached_bytes() -> u64 {
    free().as_ref().map_or(0, |p| p.cached_bytes())
}

/// Frees every cached host vector.
pub fn trim() {
    if let Some(p) = free().as_mut() {
        p.trim();
    }
}
