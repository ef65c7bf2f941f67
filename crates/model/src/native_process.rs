//! What a native process that runs the CPU engine pass after pass (the command line, a
//! pack build, a benchmark) sets once, first thing in `main`, with [`prepare`]:
//!
//! - **Freed memory kept in the heap.** Every op of the CPU engine returns a fresh
//!   tensor. By default glibc serves each large one (a prompt's logits, its attention
//!   patterns, its MLP activations) from pages mapped for it alone, or trims the heap once
//!   its free top passes a threshold, so the next pass maps the pages again and the kernel
//!   zeroes each one on first touch: on GPT-2 small's shape at 256 tokens about 55 000
//!   page faults and a sixth of a pass. With glibc's `M_MMAP_MAX` 0 and `M_TRIM_THRESHOLD`
//!   at its largest every block comes from the heap, and the heap keeps what it has grown
//!   to, so a pass reuses the last one's pages; the process holds its peak memory until
//!   it exits.
//! - **candle's spare threads parked soon.** candle runs its element-wise ops of 64 Ki
//!   values or more on a pool of its own, whose threads spin 25 000 times after each op
//!   before they park, on the cores where this crate's kernels run next (on rayon's
//!   threads): a spinning thread took a sixth of the samples of the default pack's pass
//!   at 256 tokens on two cores. [`SPIN_LIMIT`] spins (candle's
//!   `CANDLE_BARRIER_POOL_SPIN_LIMIT`, unless the environment already sets it) took that
//!   pass from ~20.6 to ~17.5 ms.
//!
//! In the browser the WebAssembly memory never shrinks and there is one thread, so there
//! is nothing to set.

/// The spins of candle's pool threads before they park, set by [`prepare`].
pub const SPIN_LIMIT: u32 = 1000;

/// What [`prepare`] set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Whether glibc took the settings that keep freed memory (`false` elsewhere).
    pub freed_memory_kept: bool,
    /// The spins of candle's pool threads before they park (the environment's value where
    /// it set one).
    pub spin_limit: String,
}

/// Sets up this process for pass after pass of the CPU engine (see the module's doc).
///
/// # Safety
/// Call before any other thread of the process starts (first thing in `main`): it sets an
/// environment variable, which is undefined behaviour while another thread reads or
/// writes the environment.
#[allow(
    unsafe_code,
    reason = "setting an environment variable is unsafe in Rust 2024; the caller \
              promises there is no other thread yet"
)]
#[must_use = "what was set, to report"]
pub unsafe fn prepare() -> Prepared {
    const SPINS: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";
    let spin_limit = std::env::var(SPINS).unwrap_or_else(|_| {
        // SAFETY: the caller promises that no other thread runs yet.
        unsafe { std::env::set_var(SPINS, SPIN_LIMIT.to_string()) };
        SPIN_LIMIT.to_string()
    });
    Prepared {
        freed_memory_kept: keep_freed_memory(),
        spin_limit,
    }
}

/// Keeps freed memory in this process's heap for reuse (glibc's `M_MMAP_MAX` 0 and
/// `M_TRIM_THRESHOLD` at its largest). Returns whether glibc took both settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "mallopt is a C function: it takes two integers and changes only the \
              allocator's thresholds, which glibc reads under its own locks"
)]
fn keep_freed_memory() -> bool {
    // SAFETY: mallopt takes plain integers and returns 1 on success, 0 on failure; it
    // locks the main arena while it changes the settings.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX) == 1
    }
}

/// Elsewhere the allocator is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() -> bool {
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
        assert!(super::keep_freed_memory());
        // 16 MiB, far above glibc's default threshold (128 KiB) for a block of its own
        // pages: with the defaults the mapped bytes grow by the whole block. Other tests
        // running meanwhile can only unmap (nothing is mapped after the settings).
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
