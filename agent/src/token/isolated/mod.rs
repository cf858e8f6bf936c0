//! Module isolation: a PKCS#11 module loaded by a helper process of its
//! own, as ssh-agent runs `ssh-pkcs11-helper`, so that a module that
//! crashes (vendor middleware does: `abort()`, a NULL dereference in
//! `C_Sign`) costs its own requests in flight and its logins, never the
//! agent and the other modules.
//!
//! The helper is this binary (`p11agent module-helper PATH`) running the
//! same token layer on its one module ([`helper`]); the agent reaches it
//! through [`Isolated`] ([`client`]), one socket pair per concurrent
//! request, in the frames of [`wire`]. A signature costs one more round
//! trip between two processes than in-process signing: the benchmark's
//! `isolated` rows measure it beside the others (docs/BENCHMARKS.md).

mod client;
pub(crate) mod helper;
pub(crate) mod wire;

pub(crate) use client::{Crash, Isolated};
