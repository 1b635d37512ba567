//! A size-bucketed pool of buffers: wgpu storage buffers for the GPU, host
//! vectors for the native backend. Training allocates the same few sizes
//! every step; reusing buffers avoids a driver or allocator call per op, and
//! keeps resident memory flat (freeing and re-allocating large host vectors
//! through malloc fragments its arenas, and resident memory creeps up).
//!
//! Reuse is safe while commands are still pending: all work goes through one
//! queue in recording order, and uploads are recorded as copies in the same
//! command encoder (never `queue.write_buffer`, which would jump the queue).

use std::collections::HashMap;

/// Free buffers kept above this many bytes are destroyed instead of cached.
const MAX_CACHED_BYTES: u64 = 1 << 30;

/// Rounds a request up to its size class: powers of two split into four
/// steps, so at most 25 % of a buffer is wasted.
pub(crate) fn size_class(bytes: u64) -> u64 {
    let bytes = bytes.max(256);
    let pow = 63 - (bytes - 1).leading_zeros() as u64; // floor(log2(bytes - 1))
    let base = 1u64 << pow;
    let step = (base / 4).max(1);
    bytes.div_ceil(step) * step
}

pub(crate) struct Pool<B = wgpu::Buffer> {
    free: HashMap<u64, Vec<B>>,
    cached_bytes: u64,
    /// Bytes in buffers handed out and not yet returned.
    pub live_bytes: u64,
    /// Buffers handed out and not yet returned.
    pub live_buffers: u64,
    /// High-water mark of `live_bytes` (reset by the device).
    pub peak_bytes: u64,
}

impl<B> Default for Pool<B> {
    fn default() -> Self {
        Pool {
            free: HashMap::new(),
            cached_bytes: 0,
            live_bytes: 0,
            live_buffers: 0,
            peak_bytes: 0,
        }
    }
}

impl<B> Pool<B> {
    pub fn take(&mut self, class: u64) -> Option<B> {
        let buffer = self.free.get_mut(&class)?.pop()?;
        self.cached_bytes -= class;
        self.note_new(class);
        Some(buffer)
    }

    pub fn note_new(&mut self, class: u64) {
        self.live_bytes += class;
        self.live_buffers += 1;
        self.peak_bytes = self.peak_bytes.max(self.live_bytes);
    }

    /// Takes a buffer back for reuse; false when the pool is full and let it go.
    pub fn give_back(&mut self, class: u64, buffer: B) -> bool {
        self.live_bytes -= class;
        self.live_buffers -= 1;
        if self.cached_bytes + class > MAX_CACHED_BYTES {
            // Dropped, not destroyed: commands already recorded may still
            // use it, and wgpu frees it once they have run.
            drop(buffer);
            return false;
        }
        self.cached_bytes += class;
        self.free.entry(class).or_default().push(buffer);
        true
    }

    pub fn cached_bytes(&self) -> u64 {
        self.cached_bytes
    }

    /// Drops every cached buffer (live ones are untouched); wgpu frees each
    /// once no recorded command uses it.
    pub fn trim(&mut self) {
        self.free.clear();
        self.cached_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::size_class;

    #[test]
    fn size_classes_cover_the_request_with_at_most_a_quarter_wasted() {
        assert_eq!(size_class(1), 256);
        assert_eq!(size_class(256), 256);
        // 257 lies in (256, 512]: steps of 64 → 320.
        assert_eq!(size_class(257), 320);
        assert_eq!(size_class(1 << 20), 1 << 20);
        for bytes in [300u64, 1000, 4097, 123_457, 10_000_001] {
            let c = size_class(bytes);
            assert!(
                c >= bytes && (c - bytes) as f64 <= 0.25 * bytes as f64 + 64.0,
                "{bytes} -> {c}"
            );
            assert_eq!(c % 4, 0);
        }
    }
}
