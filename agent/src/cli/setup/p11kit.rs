//! p11-kit: a per-user module file, which gnutls and the users of
//! p11-kit-proxy.so load.

use std::path::PathBuf;

use super::files::header;
use super::programs::Places;
use super::report::Setup;
use super::target::Target;
use crate::cli::error::SetupError;

/// p11-kit reads `~/.config/pkcs11/modules` whatever
/// `$XDG_CONFIG_HOME` says (p11-kit 0.24 and 0.25).
fn module_file(places: &Places) -> PathBuf {
    places
        .home
        .join(".config")
        .join("pkcs11")
        .join("modules")
        .join("p11agent.module")
}

impl Setup<'_> {
    pub(super) fn install_p11kit(&mut self, module: &str) -> Result<(), SetupError> {
        let places = self.places;
        let file = module_file(places);
        self.write(&file, p11kit_module(self.target, module))?;
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

    pub(super) fn uninstall_p11kit(&mut self) -> Result<(), SetupError> {
        self.remove(&module_file(self.places))
    }
}

fn p11kit_module(target: Target, module: &str) -> String {
    format!(
        "{}module: {module}\n\
         # The agent loads p11-kit's modules when it has none configured: never\n\
         # this one, which would ask the agent itself.\n\
         disable-in: p11agent\n",
        header(target)
    )
}
