//! p11-kit: a per-user module file, read by gnutls and p11-kit-proxy.

use std::path::Path;

use super::files::header;
use super::session::Setup;
use super::{utf8, Target};
use crate::cli::error::SetupError;

impl Setup<'_> {
    /// Writes p11-kit's module file for the agent's module.
    pub(super) fn install_p11kit(&mut self, module: &Path) -> Result<(), SetupError> {
        let places = self.places;
        let module_text = utf8(module)?;
        let file = places.p11kit_module();
        self.write(&file, p11kit_module(self.target, module_text))?;
        self.note(
            "programs that load p11-kit's modules (gnutls-cli, p11tool, users of \
                 p11-kit-proxy.so) see the agent's identities from their next start; \
                 `p11-kit list-modules` lists it as p11agent"
                .into(),
        );
        if places.config_home != places.home.join(".config") {
            self.note(format!(
                "p11-kit reads ~/.config/pkcs11 whatever XDG_CONFIG_HOME says, so the \
                     file is in {}",
                places.home.join(".config").display()
            ));
        }
        if places.root {
            self.warn(format!(
                "you are root, and p11-kit skips per-user module files in programs \
                     running as root: those do not load this module. Run the programs as \
                     your user, or, for every user and root, copy {} to \
                     /etc/pkcs11/modules/ (setup writes only under your home)",
                file.display()
            ));
        }
        Ok(())
    }
}

pub(super) fn p11kit_module(target: Target, module: &str) -> String {
    format!(
        "{}module: {module}\n\
         # The agent loads p11-kit's modules when it has none configured: never\n\
         # this one, which would ask the agent itself.\n\
         disable-in: p11agent\n",
        header(target)
    )
}
