//! How the daemon uses the C allocator (glibc's `malloc`), which it
//! shares with the PKCS#11 modules it loads.
//!
//! A scan's records are freed in the arena of the thread that scanned,
//! among the token's objects the module keeps for good (SoftHSM: 250 MiB
//! for 10,000 identities): glibc gives back the free pages between them
//! only when told to ([`release_free`]); 15 MiB at 10,000 identities, in
//! 6 ms (issue 14).
//!
//! Not done, measured with SoftHSM on a 2-core machine: capping glibc's
//! arenas at two (`M_ARENA_MAX`) kept 50 to 90 MiB fewer resident after a
//! few seconds of `list` and `select` at 10,000 identities (each thread
//! that serves a large answer otherwise keeps what it freed in an arena
//! of its own), but made `select` with 999 candidates 10 to 15 % slower
//! at 1,000; a fixed `mmap` threshold (large blocks unmapped on `free`)
//! made `list` and `select` 15 to 25 % slower.
//!
//! Elsewhere than glibc, [`release_free`] does nothing.
#![allow(unsafe_code)]

/// Gives the memory freed so far back to the system, where whole pages
/// of it are free: after a scan was stored or a token forgotten.
pub(crate) fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim only returns free pages to the system; it
        // takes each arena's lock, like malloc.
        unsafe {
            nix::libc::malloc_trim(0);
        }
        tracing::debug!(
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "freed memory given back"
        );
    }
}
