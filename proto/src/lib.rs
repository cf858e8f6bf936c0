//! The p11agent wire protocol.
//!
//! Everything a client needs to talk to the agent: the message types
//! ([`Request`], [`Response`]), the records they carry ([`Identity`],
//! [`Token`], [`Event`]), the error codes ([`ErrorCode`]) and the framing
//! ([`frame`]). The protocol itself is specified in this crate's README,
//! which is the reference for clients written in other languages.

pub mod digest;
pub mod dn;
pub mod event;
pub mod frame;
pub mod identity;
pub mod key;
pub mod message;
pub mod paths;
pub mod pin;
pub mod request;
mod response_de;
pub mod scheme;
pub mod select;

pub use digest::{DigestMechanism, HashAlgorithm};
pub use event::{Event, EventKind};
pub use frame::{FrameError, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME};
pub use identity::{ClientAuth, Identity, Reason, Token, TokenStatus, TokenSummary};
pub use key::{Curve, KeyType};
pub use message::{ErrorCode, Filter, ModuleError, Request, Response, Status, PROTOCOL_VERSION};
pub use pin::Pin;
pub use request::{decode_request, BadRequest};
pub use scheme::Scheme;
pub use select::{Basis, ChooserMode, Decision, Excluded, RememberedChoice, Selection};
