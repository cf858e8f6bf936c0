//! The demo token: what `p11agent-softhsm demo` provisions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::env::SoftHsm;
use crate::error::{Error, Result};
use crate::keys::KeyAlgorithm;
use crate::pki::{ExtendedKeyUsagePurpose, LeafSpec, Pki};
use crate::token::Provisioned;

/// Label of the demo token.
pub const DEMO_TOKEN_LABEL: &str = "p11agent-demo";
/// Default user PIN of the demo token (and of the CLI's other commands).
pub const DEFAULT_USER_PIN: &str = "123456";
/// Default SO PIN of the demo token (and of the CLI's other commands).
pub const DEFAULT_SO_PIN: &str = "12345678";
/// The manifest the demo writes into its directory.
pub const MANIFEST: &str = "demo.json";

/// What the demo provisioned; printed by the CLI and stored as
/// `DIR/demo.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoReport {
    /// The environment's directory.
    pub dir: PathBuf,
    /// The SoftHSM module to load.
    pub module: PathBuf,
    /// The environment's `softhsm2.conf`.
    pub conf: PathBuf,
    /// Environment variables for processes using the token.
    pub env: BTreeMap<String, String>,
    /// The token.
    pub token: DemoToken,
    /// The root CA certificate (PEM file).
    pub ca: PathBuf,
    /// The intermediate CA certificate (PEM file).
    pub intermediate: PathBuf,
    /// A TLS server certificate for localhost, 127.0.0.1 and ::1 with its
    /// chain (PEM file), for the demo's server that requires client
    /// certificates from this PKI.
    pub server_cert: PathBuf,
    /// The server certificate's private key (PEM file, mode 0600).
    pub server_key: PathBuf,
    /// The certificates on the token.
    pub identities: Vec<DemoIdentity>,
    /// True when an earlier run's token was reused rather than provisioned.
    #[serde(default)]
    pub reused: bool,
}

/// The demo token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoToken {
    /// Token label.
    pub label: String,
    /// Token serial.
    pub serial: String,
    /// The user PIN (a demo token: not a secret).
    pub user_pin: String,
}

/// One certificate on the demo token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DemoIdentity {
    /// Subject DN, RFC 4514.
    pub subject: String,
    /// Issuer DN, RFC 4514.
    pub issuer: String,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID` of the certificate, hex.
    pub id: String,
    /// Key algorithm.
    pub key: KeyAlgorithm,
    /// Whether the private key is on the token.
    pub has_private_key: bool,
    /// SHA-256 of the certificate, hex.
    pub fingerprint: String,
    /// `identity`, `certificate-without-key` or `ca`.
    pub kind: String,
}

impl DemoIdentity {
    fn from_provisioned(p: &Provisioned, kind: &str) -> Self {
        DemoIdentity {
            subject: p.subject.clone(),
            issuer: p.issuer.clone(),
            label: p.label.clone(),
            id: p.cert_id_hex(),
            key: p.algorithm,
            has_private_key: p.has_private_key(),
            fingerprint: p.fingerprint_hex(),
            kind: kind.to_string(),
        }
    }
}

/// Provisions the demo into the persistent environment `dir`, or reuses
/// what an earlier run put there.
///
/// A fresh run creates the token [`DEMO_TOKEN_LABEL`], a root and an
/// intermediate CA (written to `DIR/ca.pem` and `DIR/intermediate.pem`,
/// keys next to them), and on the token: "Demo RSA User" (RSA-2048), "Demo
/// EC User" (P-256, clientAuth), a certificate without a key, and the
/// intermediate CA certificate. It records the result in `DIR/demo.json`.
///
/// A second run on the same directory finds `demo.json` and the token and
/// returns the recorded report with `reused: true` (PIN arguments are then
/// ignored). A directory holding a demo token but no manifest (an
/// interrupted run), or a manifest whose token is gone, is an error: delete
/// the directory and run again.
pub fn provision_demo(dir: &Path, user_pin: &str, so_pin: &str) -> Result<DemoReport> {
    let hsm = SoftHsm::persistent(dir)?;
    let manifest = hsm.dir().join(MANIFEST);
    let existing: Vec<_> = hsm
        .tokens()?
        .into_iter()
        .filter(|t| t.label == DEMO_TOKEN_LABEL)
        .collect();

    if manifest.exists() {
        let text =
            std::fs::read_to_string(&manifest).map_err(|e| Error::io("reading", &manifest, e))?;
        let mut report: DemoReport = serde_json::from_str(&text)?;
        if !existing.iter().any(|t| t.serial == report.token.serial) {
            return Err(Error::InvalidArgument(format!(
                "{} records token {} (serial {}) but it is not in {}; delete the directory \
                 and run the demo again",
                manifest.display(),
                DEMO_TOKEN_LABEL,
                report.token.serial,
                hsm.tokens_dir().display()
            )));
        }
        // The module may have moved (another machine, an override).
        report.module = hsm.module_path().to_path_buf();
        report.reused = true;
        return Ok(report);
    }
    if !existing.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} already holds a token labelled {DEMO_TOKEN_LABEL} but no {MANIFEST} \
             (an interrupted run?); delete the directory and run the demo again",
            hsm.dir().display()
        )));
    }

    let pki = Pki::standard()?;
    pki.save(hsm.dir())?;
    let server = pki.localhost_server()?;
    let (server_cert, server_key) = (hsm.dir().join("server.pem"), hsm.dir().join("server.key"));
    crate::pki::write_file(&server_cert, &server.chain_pem, false)?;
    crate::pki::write_file(&server_key, &server.key_pem, true)?;
    let token = hsm.create_token(DEMO_TOKEN_LABEL, user_pin, so_pin)?;
    let identities = token.provision(|p| {
        let org = "p11agent demo";
        let rsa = p.add_identity(
            &pki,
            &LeafSpec::new("Demo RSA User")
                .organization(org)
                .issued_by_intermediate()
                .key(KeyAlgorithm::Rsa2048),
        )?;
        let ec = p.add_identity(
            &pki,
            &LeafSpec::new("Demo EC User")
                .organization(org)
                .issued_by_intermediate()
                .extended_key_usage([ExtendedKeyUsagePurpose::ClientAuth])
                .key(KeyAlgorithm::EcP256),
        )?;
        let keyless = p.add_certificate_without_key(
            &pki,
            &LeafSpec::new("Demo Certificate Without Key")
                .organization(org)
                .issued_by_intermediate()
                .key(KeyAlgorithm::EcP256),
        )?;
        let mut out = vec![
            DemoIdentity::from_provisioned(&rsa, "identity"),
            DemoIdentity::from_provisioned(&ec, "identity"),
            DemoIdentity::from_provisioned(&keyless, "certificate-without-key"),
        ];
        if let Some(der) = pki.intermediate_der() {
            let ca = p.add_ca_certificate(der, "p11agent Test Intermediate CA")?;
            out.push(DemoIdentity::from_provisioned(&ca, "ca"));
        }
        Ok(out)
    })?;

    let report = DemoReport {
        dir: hsm.dir().to_path_buf(),
        module: hsm.module_path().to_path_buf(),
        conf: hsm.conf_path(),
        env: hsm
            .env()
            .into_iter()
            .map(|(k, v)| (k, v.to_string_lossy().into_owned()))
            .collect(),
        token: DemoToken {
            label: token.label().to_string(),
            serial: token.serial().to_string(),
            user_pin: user_pin.to_string(),
        },
        ca: hsm.dir().join("ca.pem"),
        intermediate: hsm.dir().join("intermediate.pem"),
        server_cert,
        server_key,
        identities,
        reused: false,
    };
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(&manifest, text).map_err(|e| Error::io("writing", &manifest, e))?;
    Ok(report)
}
