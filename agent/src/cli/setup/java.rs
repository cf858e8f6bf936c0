//! Java: a SunPKCS11 configuration naming the module, and security
//! properties that put the provider in the JDK's list with it.

use std::path::{Path, PathBuf};

use super::files::{header, utf8};
use super::programs::{Places, JAVA};
use super::report::{shell_quote, Setup};
use super::target::Target;
use crate::cli::error::SetupError;

fn cfg_file(places: &Places) -> PathBuf {
    places.p11agent_dir.join("sunpkcs11.cfg")
}

fn security_file(places: &Places) -> PathBuf {
    places.p11agent_dir.join("java.security")
}

impl Setup<'_> {
    pub(super) fn install_java(&mut self, module: &str) -> Result<(), SetupError> {
        let cfg = cfg_file(self.places);
        self.write(&cfg, sunpkcs11_cfg(self.target, module))?;
        let cfg_text = utf8(&cfg)?;
        self.write_java_security(cfg_text)?;
        self.note(format!(
            "keytool -list -keystore NONE -storetype PKCS11 -addprovider SunPKCS11 \
             -providerArg {}",
            shell_quote(cfg_text)
        ));
        Ok(())
    }

    /// Writes the security properties for the SunPKCS11 configuration
    /// `cfg`, when a JDK here tells the provider's number.
    fn write_java_security(&mut self, cfg: &str) -> Result<(), SetupError> {
        let java = self.places.find(&JAVA);
        let security = security_file(self.places);
        match java.first().and_then(|java| sunpkcs11_slot(java)) {
            Some(slot) => {
                self.write(&security, java_security(self.target, slot, cfg))?;
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
        Ok(())
    }

    pub(super) fn uninstall_java(&mut self) -> Result<(), SetupError> {
        self.remove(&cfg_file(self.places))?;
        self.remove(&security_file(self.places))
    }
}

fn sunpkcs11_cfg(target: Target, module: &str) -> String {
    format!("{}name = p11agent\nlibrary = {module}\n", header(target))
}

fn java_security(target: Target, slot: u32, cfg: &str) -> String {
    format!(
        "{}# Security properties for java -Djava.security.properties=<this file>:\n\
         # the JDK's SunPKCS11 provider, configured with p11agent's module.\n\
         security.provider.{slot}=SunPKCS11 {}\n",
        header(target),
        cfg.replace('\\', "\\\\")
    )
}

/// The number of the SunPKCS11 entry in the JDK's java.security, where
/// it is listed unconfigured; one past the last entry when it is not.
fn sunpkcs11_slot(java: &Path) -> Option<u32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_sunpkcs11_in_the_jdks_provider_list() {
        let jdk = tempfile::tempdir().expect("tempdir");
        let security = jdk.path().join("conf/security");
        std::fs::create_dir_all(&security).expect("mkdir");
        let java = jdk.path().join("bin/java");
        std::fs::write(
            security.join("java.security"),
            "security.provider.1=SUN\n#security.provider.13=SunPKCS11\n\
             security.provider.11=JdkSASL\nsecurity.provider.12=SunPKCS11\n",
        )
        .expect("write");
        assert_eq!(sunpkcs11_slot(&java), Some(12));
        std::fs::write(
            security.join("java.security"),
            "security.provider.1=SUN\nsecurity.provider.2=SunRsaSign\n",
        )
        .expect("write");
        assert_eq!(sunpkcs11_slot(&java), Some(3));
        std::fs::remove_file(security.join("java.security")).expect("rm");
        assert_eq!(sunpkcs11_slot(&java), None);
    }
}
