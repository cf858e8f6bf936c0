//! Errors of the token layer.

use std::path::PathBuf;

/// What went wrong while talking to a PKCS#11 module or one of its tokens.
///
/// Each PKCS#11 failure keeps the module's own answer as its
/// [`source`](std::error::Error::source) (a `cryptoki` error carrying the
/// `CKR_*` return value).
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenError {
    /// No module has this index.
    #[error("no PKCS#11 module number {0} is loaded")]
    NoSuchModule(usize),
    /// The module a token names is not loaded.
    #[error("PKCS#11 module {0} is not loaded")]
    NotLoaded(String),

    /// The helper process of an isolated module could not be started,
    /// or died.
    #[error("PKCS#11 module {} (in its helper process): {detail}", path.display())]
    HelperFailed {
        /// The module path as given.
        path: PathBuf,
        /// What happened.
        detail: String,
    },

    /// A failure in an isolated module's helper, as the helper told it
    /// (with its causes).
    #[error("{0}")]
    Remote(String),
    /// The shared library could not be loaded, or it is not a PKCS#11
    /// module (no `C_GetFunctionList`).
    #[error("cannot load PKCS#11 module {}", path.display())]
    Load {
        /// The module path as given.
        path: PathBuf,
        /// The loader's or module's error.
        #[source]
        source: cryptoki::error::Error,
    },

    /// `C_Initialize` failed.
    #[error("cannot initialise PKCS#11 module {}", path.display())]
    Initialize {
        /// The module path as given.
        path: PathBuf,
        /// The module's answer.
        #[source]
        source: cryptoki::error::Error,
    },

    /// `C_Finalize` failed.
    #[error("cannot finalise PKCS#11 module {}", path.display())]
    Finalize {
        /// The module path as given.
        path: PathBuf,
        /// The module's answer.
        #[source]
        source: cryptoki::error::Error,
    },

    /// `C_GetSlotList` failed: the module's slots cannot be enumerated.
    #[error("cannot list the slots of PKCS#11 module {}", path.display())]
    SlotList {
        /// The module path as given.
        path: PathBuf,
        /// The module's answer.
        #[source]
        source: cryptoki::error::Error,
    },

    /// A slot id does not fit the platform's `CK_SLOT_ID`.
    #[error("slot id {slot} is not valid for PKCS#11 module {}", path.display())]
    InvalidSlot {
        /// The module path as given.
        path: PathBuf,
        /// The slot id asked for.
        slot: u64,
    },

    /// `C_GetTokenInfo` failed (often: no token in the slot).
    #[error("cannot read the token in slot {slot} of {}", path.display())]
    TokenInfo {
        /// The module path as given.
        path: PathBuf,
        /// The slot.
        slot: u64,
        /// The module's answer.
        #[source]
        source: cryptoki::error::Error,
    },

    /// The token in the slot has not been initialised (no label, no
    /// objects): there is nothing to scan.
    #[error("the token in slot {slot} of {} is not initialised", path.display())]
    TokenNotInitialized {
        /// The module path as given.
        path: PathBuf,
        /// The slot.
        slot: u64,
    },

    /// `C_OpenSession` failed.
    #[error("cannot open a session on token {label:?} (slot {slot} of {})", path.display())]
    OpenSession {
        /// The module path as given.
        path: PathBuf,
        /// The slot.
        slot: u64,
        /// The token label.
        label: String,
        /// The module's answer.
        #[source]
        source: cryptoki::error::Error,
    },

    /// `C_FindObjectsInit` or `C_FindObjects` failed while listing the
    /// token's objects.
    #[error(
        "cannot list the {} objects on token {:?} (slot {} of {})",
        objects.what,
        objects.label,
        objects.slot,
        objects.path.display()
    )]
    FindObjects {
        /// The objects being listed.
        objects: ScanObjects,
        /// The module's answer.
        #[source]
        source: cryptoki::error::Error,
    },

    /// The token stopped answering while its objects were read (removed,
    /// or its session or module went away).
    #[error(
        "token {:?} (slot {} of {}) went away while its {} objects were read",
        objects.label,
        objects.slot,
        objects.path.display(),
        objects.what
    )]
    ReadObjects {
        /// The objects being read.
        objects: ScanObjects,
        /// The module's answer.
        #[source]
        source: cryptoki::error::Error,
    },
}

/// One class of objects on one token, as a scan lists and reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanObjects {
    /// The module path as given.
    pub path: PathBuf,
    /// The slot.
    pub slot: u64,
    /// The token label.
    pub label: String,
    /// Which objects: "certificate and key" (all of them, while they
    /// are listed and classified), "certificate", "private key" or
    /// "public key".
    pub what: &'static str,
}
