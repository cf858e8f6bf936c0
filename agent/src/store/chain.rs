//! Issuer chains, built by name from the CA certificates on the tokens and
//! in the configured CA folder.
//!
//! Servers usually trust only a root, and TLS 1.3 servers name in their
//! CA list whichever CAs they trust, root or intermediate; so for every
//! identity the store keeps the certificates above it, nearest first,
//! for two uses: the CA-list check of selection (a listed name is the
//! issuer of the leaf or of any certificate up the chain), and the chain
//! a TLS client presents (the leaf, then the intermediates).
//!
//! Names are compared as DER bytes, which is how TLS CA lists carry them
//! and how issuers are named in practice. Signatures are not checked:
//! the server verifies the chain; the agent only needs to know which
//! certificates to send and which server lists apply.
//!
//! That is why no path-building crate fits: those (rustls-webpki, for one)
//! build only paths they can verify up to a trust anchor the caller
//! supplies, and the agent has no trust anchors. A path by name is a map
//! lookup over the names x509-parser reads, done here.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use x509_parser::prelude::{FromDer, X509Certificate};

/// The longest chain followed upward from a leaf; longer real chains do
/// not exist, and the bound ends loops of cross-signed certificates.
pub(crate) const MAX_CHAIN_DEPTH: usize = 8;

/// A certificate that may appear in a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainCert {
    /// The certificate's DER.
    pub der: Arc<[u8]>,
    /// Its subject name's DER.
    pub subject: Arc<[u8]>,
    /// Its issuer name's DER.
    pub issuer: Arc<[u8]>,
    /// Its issuer name compared loosely (see [`name_key`]).
    pub issuer_key: Arc<str>,
    /// Whether it may issue certificates (Basic Constraints absent or
    /// `cA`); a leaf that happens to share a CA's name is never used as
    /// an issuer.
    pub may_issue: bool,
}

impl ChainCert {
    /// Reads the names of a DER certificate; `None` when it is not one.
    pub(crate) fn from_der(der: &[u8]) -> Option<ChainCert> {
        let (rest, cert) = X509Certificate::from_der(der).ok()?;
        let der = &der[..der.len() - rest.len()];
        let may_issue = match cert.basic_constraints() {
            Ok(Some(bc)) => bc.value.ca,
            Ok(None) => true,
            Err(_) => false,
        };
        Some(ChainCert {
            der: der.into(),
            subject: cert.subject().as_raw().into(),
            issuer: cert.issuer().as_raw().into(),
            issuer_key: loose(cert.issuer()).into(),
            may_issue,
        })
    }

    /// Whether the certificate names itself as its issuer (a root).
    pub(crate) fn self_issued(&self) -> bool {
        self.subject == self.issuer
    }
}

/// A name for loose comparison: its RFC 4514 string in lower case, or
/// `None` when `der` is not a distinguished name.
///
/// Names are first compared byte for byte; this catches the same name
/// encoded differently (PrintableString in one certificate, UTF8String
/// in another, or different letter case), which RFC 5280 name matching
/// treats as equal and which real CA lists contain.
pub(crate) fn name_key(der: &[u8]) -> Option<String> {
    let (_, name) = x509_parser::x509::X509Name::from_der(der).ok()?;
    Some(loose(&name))
}

fn loose(name: &x509_parser::x509::X509Name<'_>) -> String {
    p11agent_proto::dn::format_name(name).to_lowercase()
}

/// Finds the issuers of certificates among a pool of CA certificates.
#[derive(Debug, Default)]
pub(crate) struct Issuers {
    by_subject: HashMap<Arc<[u8]>, Vec<Arc<ChainCert>>>,
}

impl Issuers {
    /// Indexes every certificate of `pool` that may issue, once per
    /// distinct DER, in pool order.
    pub(crate) fn new<'a>(pool: impl IntoIterator<Item = &'a Arc<ChainCert>>) -> Issuers {
        let mut by_subject: HashMap<Arc<[u8]>, Vec<Arc<ChainCert>>> = HashMap::new();
        for cert in pool.into_iter().filter(|c| c.may_issue) {
            let list = by_subject.entry(cert.subject.clone()).or_default();
            if !list.iter().any(|c| c.der == cert.der) {
                list.push(cert.clone());
            }
        }
        Issuers { by_subject }
    }

    /// The issuers of `leaf`, nearest first, up to and including a
    /// self-issued root when one is known. A certificate is never used
    /// twice, so cross-signing loops end; the first candidate issuer in
    /// pool order is taken.
    pub(crate) fn chain(&self, leaf: &ChainCert) -> Vec<Arc<ChainCert>> {
        let mut chain: Vec<Arc<ChainCert>> = Vec::new();
        let mut issuer = leaf.issuer.clone();
        let mut current_self_issued = leaf.self_issued();
        while !current_self_issued && chain.len() < MAX_CHAIN_DEPTH {
            let next = self.by_subject.get(&issuer).and_then(|list| {
                list.iter()
                    .find(|c| c.der != leaf.der && !chain.iter().any(|seen| seen.der == c.der))
            });
            let Some(next) = next else { break };
            issuer = next.issuer.clone();
            current_self_issued = next.self_issued();
            chain.push(next.clone());
        }
        chain
    }
}

/// What reading a CA folder found.
#[derive(Debug, Default)]
pub(crate) struct CaFolder {
    /// The certificates read, in file-name order.
    pub certificates: Vec<Arc<ChainCert>>,
    /// Files skipped, with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads every regular file of `dir` as PEM (any number of
/// `CERTIFICATE` blocks) or as one DER certificate. A file that is
/// neither is skipped and reported, never fatal: a CA folder often holds
/// READMEs, CRLs or keys next to the certificates.
pub(crate) fn read_ca_folder(dir: &Path) -> std::io::Result<CaFolder> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut folder = CaFolder::default();
    for path in paths {
        match std::fs::read(&path) {
            Ok(data) => match certificates_in(&data) {
                Ok(certs) => folder.certificates.extend(certs.into_iter().map(Arc::new)),
                Err(why) => folder.skipped.push((path, why)),
            },
            Err(e) => folder.skipped.push((path, e.to_string())),
        }
    }
    Ok(folder)
}

/// The certificates of a PEM or DER file.
fn certificates_in(data: &[u8]) -> Result<Vec<ChainCert>, String> {
    if data.starts_with(b"-----") || data.windows(11).any(|w| w == b"-----BEGIN ") {
        let mut certs = Vec::new();
        for pem in x509_parser::pem::Pem::iter_from_buffer(data) {
            let pem = pem.map_err(|e| format!("bad PEM: {e}"))?;
            if pem.label != "CERTIFICATE" {
                continue;
            }
            certs.push(
                ChainCert::from_der(&pem.contents)
                    .ok_or_else(|| "a CERTIFICATE block is not an X.509 certificate".to_owned())?,
            );
        }
        if certs.is_empty() {
            return Err("no CERTIFICATE block".to_owned());
        }
        Ok(certs)
    } else {
        ChainCert::from_der(data)
            .map(|c| vec![c])
            .ok_or_else(|| "neither PEM nor a DER certificate".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p11agent_softhsm::{LeafSpec, Pki};

    fn cert(der: &[u8]) -> Arc<ChainCert> {
        Arc::new(ChainCert::from_der(der).expect("certificate"))
    }

    #[test]
    fn chain_goes_up_to_the_root_nearest_first() {
        let pki = Pki::with_intermediate("Chain Root", "Chain Intermediate").expect("pki");
        let leaf = pki
            .issue_software(&LeafSpec::new("Leaf").issued_by_intermediate())
            .expect("leaf");
        let root = cert(pki.root_der());
        let intermediate = cert(pki.intermediate_der().expect("intermediate"));
        let leaf = cert(&leaf.cert_der);

        // Pool order must not matter, and the leaf in the pool is ignored.
        let issuers = Issuers::new([&root, &leaf, &intermediate]);
        let chain = issuers.chain(&leaf);
        assert_eq!(chain, vec![intermediate.clone(), root.clone()]);

        // Without the root the chain stops at the intermediate.
        let chain = Issuers::new([&intermediate]).chain(&leaf);
        assert_eq!(chain, vec![intermediate]);
        // A root's chain is empty.
        assert!(Issuers::new([&root]).chain(&root).is_empty());
    }

    #[test]
    fn a_leaf_never_issues() {
        let pki = Pki::root_only("Leaf Root").expect("pki");
        // A leaf whose subject equals another leaf's issuer name.
        let fake_ca = pki
            .issue_software(&LeafSpec::new("Leaf Root").issued_by_root())
            .expect("leaf");
        let leaf = pki
            .issue_software(&LeafSpec::new("Real Leaf"))
            .expect("leaf");
        let fake_ca = cert(&fake_ca.cert_der);
        assert!(!fake_ca.may_issue);
        assert!(Issuers::new([&fake_ca])
            .chain(&cert(&leaf.cert_der))
            .is_empty());
    }

    #[test]
    fn ca_folder_reads_pem_and_der_and_reports_the_rest() {
        let pki = Pki::with_intermediate("Folder Root", "Folder Intermediate").expect("pki");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bundle = pki.root_pem();
        bundle.push_str(&pki.intermediate_pem().expect("intermediate"));
        std::fs::write(dir.path().join("a-bundle.pem"), bundle).expect("write");
        std::fs::write(dir.path().join("b-root.der"), pki.root_der()).expect("write");
        std::fs::write(dir.path().join("c-README"), "not a certificate\n").expect("write");
        std::fs::write(
            dir.path().join("d-key.pem"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");

        let folder = read_ca_folder(dir.path()).expect("read");
        assert_eq!(folder.certificates.len(), 3);
        assert_eq!(&*folder.certificates[0].der, pki.root_der());
        let skipped: Vec<String> = folder
            .skipped
            .iter()
            .map(|(p, _)| p.file_name().expect("name").to_string_lossy().into_owned())
            .collect();
        assert_eq!(skipped, ["c-README", "d-key.pem"]);
        assert!(read_ca_folder(&dir.path().join("missing")).is_err());
    }
}
