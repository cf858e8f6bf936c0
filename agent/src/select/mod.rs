//! Client-certificate selection (DESIGN.md, "Client-certificate
//! selection"): which identity goes to which TLS server, and why the
//! others do not.
//!
//! - [`candidates`]: the filter, with reason codes for every exclusion;
//! - [`origin`], [`pattern`], [`policy`]: origins, Chromium URL patterns
//!   and the auto-select rules;
//! - [`decide`]: policy over the candidates;
//! - [`decisions`], [`chooser`]: remembered choices and the chooser
//!   program that asks a person;
//! - [`selector`]: all of it for one request, as the daemon runs it.

pub(crate) mod candidates;
pub mod chooser;
pub(crate) mod decide;
pub(crate) mod decisions;
pub(crate) mod origin;
pub(crate) mod pattern;
pub(crate) mod policy;
pub(crate) mod selector;
