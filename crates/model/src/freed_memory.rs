//! Natively on glibc, memory a forward pass frees kept for the next pass instead of being
//! handed back to the kernel.
//!
//! Every op of the CPU engine returns a fresh tensor. By default glibc serves each large
//! one (a prompt's logits, its attention patterns, its MLP activations) from pages mapped
//! for it alone, or trims the heap once its free top passes a threshold, so the next pass
//! maps the pages again and the kernel zeroes each one on first touch. On GPT-2 small's
//! shape at 256 tokens that was about 55 000 page faults and a sixth of the time of a
//! pass. A process that runs passes one after another (the command line, a pack build, a
//! benchmark) calls [`keep`] once, first thing in `main`: every block then comes from the
//! heap, and the heap keeps what it has grown to, so a pass reuses the last one's pages.
//! The process holds its peak memory until it exits. In the browser the WebAssembly
//! memory never shrinks, so there is nothing to do.

/// Keeps freed memory in this process's heap for reuse (glibc's `M_MMAP_MAX` 0 and
/// `M_TRIM_THRESHOLD` at its largest): call once at the start of `main`, before other
/// threads run. Returns whether glibc took both settings (`false` on other platforms).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[must_use = "whether the allocator took the settings"]
#[allow(
    unsafe_code,
    reason = "mallopt is a C function: it takes two integers and changes only the \
              allocator's thresholds, which glibc reads under its own locks"
)]
pub fn keep() -> bool {
    // SAFETY: mallopt takes plain integers and returns 1 on success, 0 on failure; it
    // locks the main arena while it changes the settings.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
    }
}

/// Elsewhere the allocator is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
#[must_use = "whether the allocator took the settings"]
pub fn keep() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    /// Bytes glibc holds in blocks mapped for themselves (all threads).
    #[allow(
        unsafe_code,
        reason = "mallinfo2 is a C function that only reads counters"
    )]
    fn mapped_bytes() -> usize {
        // SAFETY: mallinfo2 takes nothing and returns a struct of counters by value.
        unsafe { libc::mallinfo2() }.hblkhd
    }

    #[test]
    fn glibc_takes_the_settings_and_serves_large_blocks_from_the_heap() {
        assert!(super::keep());
        // 16 MiB, far above glibc's default threshold (128 KiB) for a block of its own
        // pages: with the defaults the mapped bytes grow by the whole block. Other tests
        // running meanwhile can only unmap (nothing is mapped after `keep`).
        let before = mapped_bytes();
        let block = vec![1.0_f32; 4 << 20];
        let during = mapped_bytes();
        assert_eq!(block.len(), 4 << 20);
        assert!(
            during < before + (4 << 20) * 4,
            "the block was mapped: {before} -> {during} bytes"
        );
    }
}
