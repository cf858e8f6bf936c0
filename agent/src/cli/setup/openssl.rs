//! OpenSSL 3: an `openssl.cnf` loading pkcs11-provider over the module.

use std::path::Path;
use std::process::{Command, Stdio};

use super::files::header;
use super::report::shell_quote;
use super::session::Setup;
use super::{utf8, Target};
use crate::cli::error::SetupError;

impl Setup<'_> {
    /// Writes an openssl.cnf that loads pkcs11-provider over the module.
    pub(super) fn install_openssl(&mut self, module: &Path) -> Result<(), SetupError> {
        let places = self.places;
        let module_text = utf8(module)?;
        let file = places.p11agent_dir.join("openssl-pkcs11.cnf");
        self.write(&file, openssl_cnf(self.target, module_text))?;
        let file = utf8(&file)?;
        if let Some(warning) = self.missing_pkcs11_provider() {
            self.warn(warning);
        }
        self.note(format!(
            "to use it: export OPENSSL_CONF={}; then `openssl storeutl -certs pkcs11:` \
                 lists the agent's certificates, and openssl and curl take pkcs11: URIs \
                 (`p11agent show ID` prints them) as keys",
            shell_quote(file)
        ));
        Ok(())
    }

    /// A warning when OpenSSL's pkcs11-provider is not where OpenSSL
    /// looks for it.
    pub(super) fn missing_pkcs11_provider(&self) -> Option<String> {
        let openssl = self.places.which("openssl")?;
        let output = Command::new(openssl)
            .args(["version", "-m"])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let dir = text.split('"').nth(1)?;
        let provider = Path::new(dir).join("pkcs11.so");
        (!provider.exists()).then(|| {
            format!(
                "OpenSSL's pkcs11-provider is not installed ({} is missing): on Debian 12, \
                 `apt-get install -t bookworm-backports pkcs11-provider`",
                provider.display()
            )
        })
    }
}

pub(super) fn openssl_cnf(target: Target, module: &str) -> String {
    format!(
        "{}# OpenSSL 3 with pkcs11-provider over p11agent's PKCS#11 module:\n\
         # OPENSSL_CONF=<this file> openssl ... (the system's openssl.cnf is not read then).\n\
         openssl_conf = openssl_init\n\
         \n\
         [openssl_init]\n\
         providers = provider_sect\n\
         \n\
         [provider_sect]\n\
         default = default_sect\n\
         pkcs11 = pkcs11_sect\n\
         \n\
         [default_sect]\n\
         activate = 1\n\
         \n\
         # OpenSSL finds pkcs11.so in its MODULESDIR (`openssl version -m`).\n\
         [pkcs11_sect]\n\
         pkcs11-module-path = {module}\n\
         activate = 1\n",
        header(target)
    )
}
