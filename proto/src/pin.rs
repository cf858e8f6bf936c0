//! A PIN in transit: zeroized when dropped and never printed.

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A PIN sent to the agent by `p11agent login --pin-stdin`.
///
/// Its `Debug` prints `Pin(***)`, so a request logged with `{:?}` does
/// not leak it, and its memory is wiped when it is dropped. The JSON
/// buffer it was decoded from is the caller's to wipe.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(transparent)]
pub struct Pin(String);

impl Pin {
    /// Wraps a PIN.
    pub fn new(pin: String) -> Self {
        Pin(pin)
    }

    /// The PIN's text, for handing to the token.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_pin() {
        let pin = Pin::new("123456".into());
        assert_eq!(format!("{pin:?}"), "Pin(***)");
        assert_eq!(pin.expose(), "123456");
    }
}
