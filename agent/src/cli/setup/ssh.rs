//! ssh: nothing of ssh's is changed; setup prints the lines to use.

use std::path::Path;

use super::report::shell_quote;
use super::session::Setup;
use super::utf8;
use crate::cli::error::SetupError;

impl Setup<'_> {
    /// Prints how ssh and ssh-agent take the module; no file of ssh's changes.
    pub(super) fn install_ssh(&mut self, module: &Path) -> Result<(), SetupError> {
        let module_text = utf8(module)?;
        let quoted = shell_quote(module_text);
        self.note(format!("ssh -I {quoted} user@host"));
        self.note(format!(
            "or, in ~/.ssh/config (setup does not edit it):\n    Host host.example\n        \
                 PKCS11Provider {quoted}"
        ));
        self.note(format!(
            "for ssh-agent: `ssh-add -s {quoted}`; ssh-agent accepts providers only \
                 under /usr/lib*/ and /usr/local/lib*/ unless started with `ssh-agent -P \
                 {quoted}`"
        ));
        Ok(())
    }
}
