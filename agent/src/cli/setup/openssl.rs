//! OpenSSL 3: a configuration file that loads pkcs11-provider with the
//! module, for OPENSSL_CONF.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::files::{header, utf8};
use super::programs::Places;
use super::report::{shell_quote, Setup};
use super::target::Target;
use crate::cli::error::SetupError;

fn config_file(places: &Places) -> PathBuf {
    places.p11agent_dir.join("openssl-pkcs11.cnf")
}

impl Setup<'_> {
    pub(super) fn install_openssl(&mut self, module: &str) -> Result<(), SetupError> {
        let file = config_file(self.places);
        self.write(&file, openssl_cnf(self.target, module))?;
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

    pub(super) fn uninstall_openssl(&mut self) -> Result<(), SetupError> {
        self.remove(&config_file(self.places))
    }

    /// A warning when OpenSSL's pkcs11-provider is not where OpenSSL
    /// looks for it.
    fn missing_pkcs11_provider(&self) -> Option<String> {
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

fn openssl_cnf(target: Target, module: &str) -> String {
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
