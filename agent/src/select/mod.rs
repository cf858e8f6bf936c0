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

pub mod candidates;
pub mod chooser;
pub mod decide;
pub mod decisions;
pub mod origin;
pub mod pattern;
pub mod policy;
pub mod selector;
