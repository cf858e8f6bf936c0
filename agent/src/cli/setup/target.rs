//! The targets of `p11agent setup`, as its command line names them. In a
//! file of their own, so that every other file of setup can name them
//! without importing the module that runs setup.

use super::programs::{
    Program, CHROMIUM, CURL, FIREFOX, GNUTLS_CLI, JAVA, OPENSSL, SSH, SSH_PKCS11_HELPER,
};

/// The programs setup knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum Target {
    /// The shared NSS database ~/.pki/nssdb (Chromium and other NSS programs).
    Nss,
    /// Chromium: the shared NSS database, and Chromium's digest policy.
    Chromium,
    /// Firefox: every profile's NSS database, and Firefox's digest policy.
    Firefox,
    /// p11-kit's per-user module list (gnutls, p11-kit-proxy.so).
    #[value(name = "p11-kit")]
    P11Kit,
    /// OpenSSL 3 with pkcs11-provider (openssl, curl).
    Openssl,
    /// Java's SunPKCS11 provider (java, keytool).
    Java,
    /// OpenSSH's PKCS11Provider (ssh, ssh-agent).
    Ssh,
}

impl Target {
    pub(super) fn name(self) -> &'static str {
        match self {
            Target::Nss => "nss",
            Target::Chromium => "chromium",
            Target::Firefox => "firefox",
            Target::P11Kit => "p11-kit",
            Target::Openssl => "openssl",
            Target::Java => "java",
            Target::Ssh => "ssh",
        }
    }

    /// The programs whose signatures over digests the target allows: the
    /// processes that load the module and so connect to the agent.
    pub(super) fn programs(self) -> &'static [Program] {
        match self {
            Target::Nss => &[],
            Target::Chromium => &[CHROMIUM],
            Target::Firefox => &[FIREFOX],
            Target::P11Kit => &[GNUTLS_CLI],
            Target::Openssl => &[OPENSSL, CURL],
            Target::Java => &[JAVA],
            Target::Ssh => &[SSH, SSH_PKCS11_HELPER],
        }
    }
}
