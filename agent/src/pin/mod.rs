//! Where PINs come from: a file (automation), a pinentry program (a
//! person), or nowhere (PIN pads, or no source configured).
//!
//! The token layer asks a [`PinSource`] when a login needs a PIN; it
//! never asks twice for one failed attempt, because retrying a wrong PIN
//! locks cards.

use std::path::PathBuf;
use std::sync::Arc;

mod file;
mod pinentry;
mod request;
mod secret;

pub(crate) use file::PinFile;
pub(crate) use pinentry::Pinentry;
pub(crate) use request::{NoPin, PinError, PinKind, PinRequest, PinSource};

/// The PIN source for the agent's configuration: a PIN file if given (it
/// wins, for automation), else the pinentry program if given, else
/// [`NoPin`].
pub(crate) fn source(pin_file: Option<PathBuf>, pinentry: Option<PathBuf>) -> Arc<dyn PinSource> {
    match (pin_file, pinentry) {
        (Some(path), _) => Arc::new(PinFile::new(path)),
        (None, Some(program)) => Arc::new(Pinentry::new(program)),
        (None, None) => Arc::new(NoPin),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_prefers_pin_file_then_pinentry() {
        let s = source(Some("/f".into()), Some("/p".into()));
        assert!(format!("{s:?}").contains("PinFile"));
        let s = source(None, Some("/p".into()));
        assert!(format!("{s:?}").contains("Pinentry"));
        let s = source(None, None);
        assert!(format!("{s:?}").contains("NoPin"));
    }
}
