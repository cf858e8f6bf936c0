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
pub(crate) use file::PinFileError;
pub(crate) use pinentry::Pinentry;
pub(crate) use request::{NoPin, PinError, PinKind, PinRequest, PinSource};

/// The PIN source for the agent's configuration: a PIN file if given (it
/// wins, for automation; checked now, see [`PinFile::check`]), else the
/// pinentry program if given, else [`NoPin`].
pub(crate) fn source(
    pin_file: Option<PathBuf>,
    pinentry: Option<PathBuf>,
) -> Result<Arc<dyn PinSource>, PinFileError> {
    Ok(match (pin_file, pinentry) {
        (Some(path), _) => {
            let file = PinFile::new(path);
            file.check()?;
            Arc::new(file)
        }
        (None, Some(program)) => Arc::new(Pinentry::new(program)),
        (None, None) => Arc::new(NoPin),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_prefers_pin_file_then_pinentry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pin = dir.path().join("pin");
        std::fs::write(&pin, "1234\n").expect("write");
        std::fs::set_permissions(&pin, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let s = source(Some(pin), Some("/p".into())).expect("source");
        assert!(format!("{s:?}").contains("PinFile"));
        let s = source(None, Some("/p".into())).expect("source");
        assert!(format!("{s:?}").contains("Pinentry"));
        let s = source(None, None).expect("source");
        assert!(format!("{s:?}").contains("NoPin"));
        assert!(source(Some("/nonexistent/pin".into()), None).is_err());
    }
}
