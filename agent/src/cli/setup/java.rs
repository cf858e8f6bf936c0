//! Java: a SunPKCS11 configuration, and a `java.security` naming it.

use std::path::Path;

use super::files::header;
use super::programs::JAVA;
use super::report::shell_quote;
use super::session::Setup;
use super::{utf8, Target};
use crate::cli::error::SetupError;

impl Setup<'_> {
    /// Writes the SunPKCS11 configuration and a java.security naming it.
    pub(super) fn install_java(&mut self, module: &Path) -> Result<(), SetupError> {
        let places = self.places;
        let module_text = utf8(module)?;
        let cfg = places.p11agent_dir.join("sunpkcs11.cfg");
        self.write(&cfg, sunpkcs11_cfg(self.target, module_text))?;
        let cfg_text = utf8(&cfg)?;
        let java = places.find(&JAVA);
        let security = places.p11agent_dir.join("java.security");
        match java.first().and_then(|java| sunpkcs11_slot(java)) {
            Some(slot) => {
                self.write(&security, java_security(self.target, slot, cfg_text))?;
                self.note(format!(
                    "for Java programs: java -Djava.security.properties={} \
                         -Djavax.net.ssl.keyStore=NONE -Djavax.net.ssl.keyStoreType=PKCS11 ...",
                    shell_quote(utf8(&security)?)
                ));
            }
            None => self.note(format!(
                "{} is not written: it names the SunPKCS11 provider by its number in \
                     the JDK's java.security, and no JDK was found; install one and run \
                     setup again",
                security.display()
            )),
        }
        self.note(format!(
            "keytool -list -keystore NONE -storetype PKCS11 -addprovider SunPKCS11 \
                 -providerArg {}",
            shell_quote(cfg_text)
        ));
        Ok(())
    }
}

/// The number of the SunPKCS11 entry in the JDK's java.security, where
/// it is listed unconfigured; one past the last entry when it is not.
pub(super) fn sunpkcs11_slot(java: &Path) -> Option<u32> {
    let jdk = java.parent()?.parent()?;
    let text = std::fs::read_to_string(jdk.join("conf/security/java.security")).ok()?;
    let mut last = 0;
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once('=') else {
            continue;
        };
        let Some(Ok(n)) = key
            .trim()
            .strip_prefix("security.provider.")
            .map(str::parse::<u32>)
        else {
            continue;
        };
        if value.split_whitespace().next() == Some("SunPKCS11") {
            return Some(n);
        }
        last = last.max(n);
    }
    Some(last + 1)
}

pub(super) fn sunpkcs11_cfg(target: Target, module: &str) -> String {
    format!("{}name = p11agent\nlibrary = {module}\n", header(target))
}

pub(super) fn java_security(target: Target, slot: u32, cfg: &str) -> String {
    format!(
        "{}# Security properties for java -Djava.security.properties=<this file>:\n\
         # the JDK's SunPKCS11 provider, configured with p11agent's module.\n\
         security.provider.{slot}=SunPKCS11 {}\n",
        header(target),
        cfg.replace('\\', "\\\\")
    )
}
