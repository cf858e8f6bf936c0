//! How the daemon uses the C allocator (glibc's `malloc`), which it
//! shares with the PKCS#11 modules it loads.
//!
//! Two things make the defaults costly for a daemon (issue 14, measured
//! with SoftHSM and 10,000 identities on a 2-core machine):
//!
//! * glibc gives a thread that finds the allocator busy an arena of its
//!   own, up to eight per core, and an arena keeps what was freed in it.
//!   A `list` of 10,000 identities builds tens of megabytes of records and
//!   JSON for a moment; served on one thread after another, each kept its
//!   share: 65 to 100 MiB more resident after a few seconds of `list` and
//!   `select`. Two arenas, and large blocks given back on `free` (a fixed
//!   `mmap` threshold, which glibc otherwise raises to the largest block
//!   freed), leave about 15 MiB, with signatures per second with 1 and 8
//!   clients unchanged within the noise.
//! * A scan's records are freed in the arena of the thread that scanned,
//!   among the token's objects the module keeps for good (SoftHSM: 250 MiB
//!   for 10,000 identities): glibc gives back the free pages between them
//!   only when told to ([`release_free`]), 15 MiB here, in 6 ms.
//!
//! Elsewhere than glibc both functions do nothing.
#![allow(unsafe_code)]

/// The arenas glibc may create.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 2;

/// Blocks from this size up are mapped on their own and unmapped when
/// freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 256 * 1024;

/// Sets the allocator up for the daemon. Call first, before the runtime
/// starts its threads: an arena made before stays.
pub(crate) fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::libc::{mallopt, M_ARENA_MAX, M_MMAP_THRESHOLD};
        // SAFETY: mallopt only changes allocator parameters, both
        // documented for these values; on failure the default stays.
        unsafe {
            mallopt(M_ARENA_MAX, ARENAS);
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

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
