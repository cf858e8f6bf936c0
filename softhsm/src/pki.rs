//! A test PKI: a software root CA, an optional intermediate CA, and leaf
//! certificates for keys that live on a token (or in software, for TLS
//! servers).

use std::net::IpAddr;
use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, IsCa, Issuer,
    KeyIdMethod, KeyPair, SanType, SerialNumber, SigningKey,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use yasna::models::TaggedDerValue;

pub(crate) use rcgen::{ExtendedKeyUsagePurpose, KeyUsagePurpose};

use crate::error::{Error, Result};
use crate::keys::{KeyAlgorithm, PublicKey, RcgenPublicKey};
use crate::util::{pem_decode_all, pem_encode, random_serial, rfc4514, sha256};

/// Which CA signs a leaf certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IssuedBy {
    /// The root CA (the default).
    #[default]
    Root,
    /// The intermediate CA ([`Error::NoIntermediate`] if there is none).
    Intermediate,
}

/// The Key Usage extension of a leaf certificate.
///
/// Converts from a list: `[KeyUsagePurpose::KeyEncipherment].into()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum KeyUsage {
    /// `digitalSignature` only: what a TLS client certificate needs (the
    /// default).
    #[default]
    DigitalSignature,
    /// No Key Usage extension (allowed for client authentication).
    Absent,
    /// `keyEncipherment` only: "wrong" for TLS client authentication.
    KeyEnciphermentOnly,
    /// These usages (an empty list leaves the extension out).
    List(Vec<KeyUsagePurpose>),
}

impl KeyUsage {
    /// The usages written into the certificate (empty: no extension).
    pub fn purposes(&self) -> Vec<KeyUsagePurpose> {
        match self {
            KeyUsage::DigitalSignature => vec![KeyUsagePurpose::DigitalSignature],
            KeyUsage::Absent => Vec::new(),
            KeyUsage::KeyEnciphermentOnly => vec![KeyUsagePurpose::KeyEncipherment],
            KeyUsage::List(list) => list.clone(),
        }
    }
}

impl From<Vec<KeyUsagePurpose>> for KeyUsage {
    fn from(list: Vec<KeyUsagePurpose>) -> Self {
        KeyUsage::List(list)
    }
}

impl<const N: usize> From<[KeyUsagePurpose; N]> for KeyUsage {
    fn from(list: [KeyUsagePurpose; N]) -> Self {
        KeyUsage::List(list.to_vec())
    }
}

/// The Extended Key Usage extension of a leaf certificate.
///
/// Converts from a list: `[ExtendedKeyUsagePurpose::ServerAuth].into()`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Eku {
    /// `clientAuth` only (the default).
    #[default]
    ClientAuth,
    /// No Extended Key Usage extension (allowed for client authentication).
    Absent,
    /// `serverAuth` only: "wrong" for TLS client authentication.
    ServerAuthOnly,
    /// These purposes (an empty list leaves the extension out).
    List(Vec<ExtendedKeyUsagePurpose>),
}

impl Eku {
    /// The purposes written into the certificate (empty: no extension).
    pub fn purposes(&self) -> Vec<ExtendedKeyUsagePurpose> {
        match self {
            Eku::ClientAuth => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Eku::Absent => Vec::new(),
            Eku::ServerAuthOnly => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Eku::List(list) => list.clone(),
        }
    }
}

impl From<Vec<ExtendedKeyUsagePurpose>> for Eku {
    fn from(list: Vec<ExtendedKeyUsagePurpose>) -> Self {
        Eku::List(list)
    }
}

impl<const N: usize> From<[ExtendedKeyUsagePurpose; N]> for Eku {
    fn from(list: [ExtendedKeyUsagePurpose; N]) -> Self {
        Eku::List(list.to_vec())
    }
}

/// What a leaf certificate should look like.
///
/// Start from [`LeafSpec::new`] (or `Default`, CN "p11agent test user") and
/// adjust with the builder methods or the public fields. The defaults make a
/// certificate a careful TLS client would offer: valid from an hour ago for
/// a year, Key Usage digitalSignature, Extended Key Usage clientAuth, an EC
/// P-256 key, issued by the root CA.
///
/// ```
/// use p11agent_softhsm::{Eku, ExtendedKeyUsagePurpose, KeyAlg, KeyUsage, LeafSpec};
/// let spec = LeafSpec::new("Zoë Ærøskøbing 測試")
///     .organization("Example Org")
///     .issued_by_intermediate()
///     .key(KeyAlg::Rsa2048)
///     .eku(Eku::ServerAuthOnly) // "wrong" for a client
///     .key_usage(KeyUsage::Absent)
///     .expired();
/// let mixed = LeafSpec::new("Mixed").extended_key_usage([
///     ExtendedKeyUsagePurpose::ClientAuth,
///     ExtendedKeyUsagePurpose::EmailProtection,
/// ]);
/// assert!(spec.not_after < time::OffsetDateTime::now_utc());
/// ```
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// Subject commonName (UTF-8).
    pub common_name: String,
    /// Subject organizationName.
    pub organization: Option<String>,
    /// Subject organizationalUnitName.
    pub organizational_unit: Option<String>,
    /// Subject countryName (two letters; encoded as PrintableString).
    pub country: Option<String>,
    /// Further subject attributes (e.g. `DnType::LocalityName`), UTF-8.
    pub extra_subject: Vec<(DnType, String)>,
    /// Which CA signs.
    pub issued_by: IssuedBy,
    /// Serial number (big-endian magnitude); random 16 bytes when `None`.
    pub serial: Option<Vec<u8>>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Key Usage.
    pub key_usage: KeyUsage,
    /// Extended Key Usage.
    pub extended_key_usage: Eku,
    /// Subject alternative names: IP addresses, e-mail addresses (with `@`)
    /// or DNS names.
    pub subject_alt_names: Vec<String>,
    /// The key algorithm (for keys generated on the token or in software).
    pub key: KeyAlgorithm,
    /// `CKA_ID` for the key and certificate objects; random 16 bytes when
    /// `None`.
    pub id: Option<Vec<u8>>,
    /// `CKA_LABEL` for the objects; the common name when `None`.
    pub label: Option<String>,
    /// Give the private key `CKA_ALWAYS_AUTHENTICATE` (a context-specific
    /// login before every signature).
    pub always_authenticate: bool,
}

impl Default for LeafSpec {
    fn default() -> Self {
        LeafSpec::new("p11agent test user")
    }
}

fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    OffsetDateTime::from_unix_timestamp(now.unix_timestamp()).unwrap_or(now)
}

impl LeafSpec {
    /// A spec with the given common name and the defaults described on the
    /// type.
    pub fn new(common_name: impl Into<String>) -> Self {
        let now = now();
        LeafSpec {
            common_name: common_name.into(),
            organization: None,
            organizational_unit: None,
            country: None,
            extra_subject: Vec::new(),
            issued_by: IssuedBy::Root,
            serial: None,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(365),
            key_usage: KeyUsage::DigitalSignature,
            extended_key_usage: Eku::ClientAuth,
            subject_alt_names: Vec::new(),
            key: KeyAlgorithm::EcP256,
            id: None,
            label: None,
            always_authenticate: false,
        }
    }

    /// Sets the subject organizationName.
    pub fn organization(mut self, o: impl Into<String>) -> Self {
        self.organization = Some(o.into());
        self
    }

    /// Sets the subject organizationalUnitName.
    pub fn organizational_unit(mut self, ou: impl Into<String>) -> Self {
        self.organizational_unit = Some(ou.into());
        self
    }

    /// Sets the subject countryName.
    pub fn country(mut self, c: impl Into<String>) -> Self {
        self.country = Some(c.into());
        self
    }

    /// Adds another subject attribute.
    pub fn subject_attribute(mut self, ty: DnType, value: impl Into<String>) -> Self {
        self.extra_subject.push((ty, value.into()));
        self
    }

    /// Chooses the issuing CA.
    pub fn issued_by(mut self, by: IssuedBy) -> Self {
        self.issued_by = by;
        self
    }

    /// Issued by the root CA (the default).
    pub fn issued_by_root(self) -> Self {
        self.issued_by(IssuedBy::Root)
    }

    /// Issued by the intermediate CA.
    pub fn issued_by_intermediate(self) -> Self {
        self.issued_by(IssuedBy::Intermediate)
    }

    /// Chooses the serial number (big-endian bytes, interpreted as positive).
    pub fn serial(mut self, serial: impl Into<Vec<u8>>) -> Self {
        self.serial = Some(serial.into());
        self
    }

    /// Sets the validity period.
    pub fn validity(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Valid for 30 days, ended yesterday.
    pub fn expired(self) -> Self {
        let now = now();
        self.validity(now - Duration::days(31), now - Duration::days(1))
    }

    /// Valid for a year, from tomorrow.
    pub fn not_yet_valid(self) -> Self {
        let now = now();
        self.validity(now + Duration::days(1), now + Duration::days(366))
    }

    /// The validity period: `(not_before, not_after)`.
    pub fn validity_range(&self) -> (OffsetDateTime, OffsetDateTime) {
        (self.not_before, self.not_after)
    }

    /// Sets the Key Usage: a [`KeyUsage`] or a list such as
    /// `[KeyUsagePurpose::KeyEncipherment]`.
    pub fn key_usage(mut self, usage: impl Into<KeyUsage>) -> Self {
        self.key_usage = usage.into();
        self
    }

    /// Leaves the Key Usage extension out.
    pub fn no_key_usage(self) -> Self {
        self.key_usage(KeyUsage::Absent)
    }

    /// Sets the Extended Key Usage: an [`Eku`] or a list such as
    /// `[ExtendedKeyUsagePurpose::ServerAuth]`.
    pub fn eku(mut self, eku: impl Into<Eku>) -> Self {
        self.extended_key_usage = eku.into();
        self
    }

    /// Same as [`eku`](LeafSpec::eku).
    pub fn extended_key_usage(self, eku: impl Into<Eku>) -> Self {
        self.eku(eku)
    }

    /// Leaves the Extended Key Usage extension out.
    pub fn no_extended_key_usage(self) -> Self {
        self.eku(Eku::Absent)
    }

    /// Adds a subject alternative name (IP address, e-mail or DNS name).
    pub fn subject_alt_name(mut self, name: impl Into<String>) -> Self {
        self.subject_alt_names.push(name.into());
        self
    }

    /// Chooses the key algorithm.
    pub fn key(mut self, algorithm: KeyAlgorithm) -> Self {
        self.key = algorithm;
        self
    }

    /// Chooses the `CKA_ID`.
    pub fn id(mut self, id: impl Into<Vec<u8>>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Chooses the `CKA_LABEL`.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Marks the private key `CKA_ALWAYS_AUTHENTICATE`.
    pub fn always_authenticate(mut self) -> Self {
        self.always_authenticate = true;
        self
    }

    /// The `CKA_LABEL` the objects get.
    pub fn effective_label(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.common_name)
    }

    fn distinguished_name(&self) -> Result<DistinguishedName> {
        let mut dn = DistinguishedName::new();
        if let Some(c) = &self.country {
            let printable = rcgen::string::PrintableString::try_from(c.as_str())
                .map_err(|e| Error::InvalidArgument(format!("country {c:?}: {e}")))?;
            dn.push(DnType::CountryName, DnValue::PrintableString(printable));
        }
        if let Some(o) = &self.organization {
            dn.push(DnType::OrganizationName, o.as_str());
        }
        if let Some(ou) = &self.organizational_unit {
            dn.push(DnType::OrganizationalUnitName, ou.as_str());
        }
        for (ty, value) in &self.extra_subject {
            dn.push(ty.clone(), value.as_str());
        }
        dn.push(DnType::CommonName, self.common_name.as_str());
        Ok(dn)
    }

    fn params(&self, key: &PublicKey) -> Result<CertificateParams> {
        if self.not_after < self.not_before {
            return Err(Error::InvalidArgument(
                "not_after is before not_before".into(),
            ));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = self.distinguished_name()?;
        params.serial_number = Some(SerialNumber::from(
            self.serial.clone().unwrap_or_else(|| random_serial(16)),
        ));
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.key_usages = self.key_usage.purposes();
        params.extended_key_usages = self.extended_key_usage.purposes();
        params.subject_alt_names = self
            .subject_alt_names
            .iter()
            .map(|name| san(name))
            .collect::<Result<_>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::PreSpecified(key_identifier(key.spki_der()));
        Ok(params)
    }
}

fn san(name: &str) -> Result<SanType> {
    let ia5 = |s: &str| {
        rcgen::string::Ia5String::try_from(s)
            .map_err(|e| Error::InvalidArgument(format!("subject alt name {s:?}: {e}")))
    };
    Ok(if let Ok(ip) = name.parse::<IpAddr>() {
        SanType::IpAddress(ip)
    } else if name.contains('@') {
        SanType::Rfc822Name(ia5(name)?)
    } else {
        SanType::DnsName(ia5(name)?)
    })
}

/// RFC 7093 method 1: the leftmost 160 bits of the SHA-256 of the
/// SubjectPublicKeyInfo (what rcgen uses for the CAs, so AKI matches SKI).
fn key_identifier(spki: &[u8]) -> Vec<u8> {
    sha256(spki)[..20].to_vec()
}

/// A CA: its certificate and signing key.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    key_pem: String,
}

impl Ca {
    fn params(common_name: &str, path_len: Option<u8>) -> CertificateParams {
        let now = now();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(random_serial(16)));
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        params.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params
    }

    fn root(common_name: &str) -> Result<Ca> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let params = Ca::params(common_name, None);
        let cert = params.self_signed(&key)?;
        Ok(Ca {
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    fn intermediate(common_name: &str, parent: &Ca) -> Result<Ca> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = Ca::params(common_name, Some(0));
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &parent.issuer)?;
        Ok(Ca {
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        let cert_der = pem_decode_all("CERTIFICATE", cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::X509("no CERTIFICATE in CA file".into()))?;
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der.as_slice().into(), key)?;
        Ok(Ca {
            cert_der,
            key_pem: key_pem.to_string(),
            issuer,
        })
    }
}

/// A test PKI: a root CA and optionally an intermediate CA, both with
/// software ECDSA P-256 keys and subject `CN=<name>`.
pub struct Pki {
    root: Ca,
    intermediate: Option<Ca>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("root", &self.root_subject())
            .field("intermediate", &self.intermediate_subject())
            .finish()
    }
}

/// A certificate with a software private key (a TLS server's, or a client
/// identity that is not on a token).
#[derive(Clone, Debug)]
pub struct SoftwareIdentity {
    /// The leaf certificate, DER.
    pub cert_der: Vec<u8>,
    /// The leaf certificate, PEM.
    pub cert_pem: String,
    /// The leaf followed by the intermediate (when it issued the leaf), PEM:
    /// what a TLS server presents.
    pub chain_pem: String,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
    /// The private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub key_pem: String,
}

impl Pki {
    /// A PKI with only a root CA named `root_cn` (same as
    /// [`Pki::root_only`]).
    pub fn new(root_cn: &str) -> Result<Pki> {
        Pki::root_only(root_cn)
    }

    /// A PKI with only a root CA named `root_cn`.
    pub fn root_only(root_cn: &str) -> Result<Pki> {
        Ok(Pki {
            root: Ca::root(root_cn)?,
            intermediate: None,
        })
    }

    /// A PKI with a root CA and an intermediate CA (path length 0) below it.
    pub fn with_intermediate(root_cn: &str, intermediate_cn: &str) -> Result<Pki> {
        let root = Ca::root(root_cn)?;
        let intermediate = Ca::intermediate(intermediate_cn, &root)?;
        Ok(Pki {
            root,
            intermediate: Some(intermediate),
        })
    }

    /// The usual test PKI: "p11agent Test Root CA" and "p11agent Test
    /// Intermediate CA".
    pub fn standard() -> Result<Pki> {
        Pki::with_intermediate("p11agent Test Root CA", "p11agent Test Intermediate CA")
    }

    /// The CA certificates, DER: the root, then the intermediate if any.
    pub fn ca_certificates(&self) -> Vec<&[u8]> {
        let mut out = vec![self.root.cert_der.as_slice()];
        out.extend(self.intermediate_der());
        out
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &[u8] {
        &self.root.cert_der
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.root.cert_der)
    }

    /// The intermediate certificate, DER, if the PKI has one.
    pub fn intermediate_der(&self) -> Option<&[u8]> {
        self.intermediate.as_ref().map(|ca| ca.cert_der.as_slice())
    }

    /// The intermediate certificate, PEM, if the PKI has one.
    pub fn intermediate_pem(&self) -> Option<String> {
        self.intermediate_der()
            .map(|der| pem_encode("CERTIFICATE", der))
    }

    /// The root's subject name, DER (what a TLS server lists in
    /// `certificate_authorities`).
    pub fn root_subject_der(&self) -> Result<Vec<u8>> {
        Ok(CertFields::parse(&self.root.cert_der)?.subject_der)
    }

    /// The intermediate's subject name, DER.
    pub fn intermediate_subject_der(&self) -> Result<Option<Vec<u8>>> {
        self.intermediate_der()
            .map(|der| Ok(CertFields::parse(der)?.subject_der))
            .transpose()
    }

    /// The root's subject as an RFC 4514 string.
    pub fn root_subject(&self) -> String {
        CertFields::parse(&self.root.cert_der)
            .map(|f| f.subject)
            .unwrap_or_default()
    }

    /// The intermediate's subject as an RFC 4514 string.
    pub fn intermediate_subject(&self) -> Option<String> {
        self.intermediate_der()
            .and_then(|der| CertFields::parse(der).ok())
            .map(|f| f.subject)
    }

    fn ca(&self, by: IssuedBy) -> Result<&Ca> {
        match by {
            IssuedBy::Root => Ok(&self.root),
            IssuedBy::Intermediate => self.intermediate.as_ref().ok_or(Error::NoIntermediate),
        }
    }

    /// The issuer certificates (DER) of a leaf issued with `by`, leaf side
    /// first, root excluded: what goes after the leaf in a TLS chain.
    pub fn intermediates_for(&self, by: IssuedBy) -> Result<Vec<Vec<u8>>> {
        let ca = self.ca(by)?;
        Ok(if std::ptr::eq(ca, &self.root) {
            Vec::new()
        } else {
            vec![ca.cert_der.clone()]
        })
    }

    /// Issues a certificate for `key` as `spec` describes; returns the DER.
    ///
    /// rcgen cannot express P-521 keys with its ring backend, so a P-521
    /// certificate is issued with a same-length P-384 stand-in whose curve
    /// OID is then replaced, and the TBSCertificate signed again.
    pub fn issue(&self, spec: &LeafSpec, key: &PublicKey) -> Result<Vec<u8>> {
        let ca = self.ca(spec.issued_by)?;
        let params = spec.params(key)?;
        let subject_key = RcgenPublicKey { key };
        let cert = params.signed_by(&subject_key, &ca.issuer)?;
        let der = cert.der().to_vec();
        if key.algorithm() != KeyAlgorithm::EcP521 {
            return Ok(der);
        }
        let stand_in = subject_key.rcgen_spki();
        resign_with_spki(&der, &stand_in, key.spki_der(), ca.issuer.key())
    }

    /// Issues a certificate with a fresh software key (P-256, P-384 or
    /// Ed25519 per `spec.key`; RSA keys cannot be generated in software
    /// here).
    pub fn issue_software(&self, spec: &LeafSpec) -> Result<SoftwareIdentity> {
        let alg = match spec.key {
            KeyAlgorithm::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed25519NamedCurve => &rcgen::PKCS_ED25519,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "software keys can be p256, p384 or ed25519, not {other}"
                )))
            }
        };
        let key_pair = KeyPair::generate_for(alg)?;
        let public =
            PublicKey::from_spki_der(&rcgen::PublicKeyData::subject_public_key_info(&key_pair))?;
        let cert_der = self.issue(spec, &public)?;
        let mut chain_pem = pem_encode("CERTIFICATE", &cert_der);
        for der in self.intermediates_for(spec.issued_by)? {
            chain_pem.push_str(&pem_encode("CERTIFICATE", &der));
        }
        Ok(SoftwareIdentity {
            cert_pem: pem_encode("CERTIFICATE", &cert_der),
            cert_der,
            chain_pem,
            key_der: key_pair.serialize_der(),
            key_pem: key_pair.serialize_pem(),
        })
    }

    /// Issues a TLS server certificate (EKU serverAuth, P-256 software key)
    /// for `names` (DNS names or IP addresses; the first is also the CN),
    /// by the intermediate CA when there is one, else by the root.
    pub fn issue_server(&self, names: &[&str]) -> Result<SoftwareIdentity> {
        let first = names
            .first()
            .ok_or_else(|| Error::InvalidArgument("a server needs at least one name".into()))?;
        let mut spec = LeafSpec::new(*first)
            .eku(Eku::ServerAuthOnly)
            .key(KeyAlgorithm::EcP256);
        if self.intermediate.is_some() {
            spec.issued_by = IssuedBy::Intermediate;
        }
        spec.subject_alt_names = names.iter().map(|n| n.to_string()).collect();
        self.issue_software(&spec)
    }

    /// A server certificate for `localhost`, `127.0.0.1` and `::1`.
    pub fn localhost_server(&self) -> Result<SoftwareIdentity> {
        self.issue_server(&["localhost", "127.0.0.1", "::1"])
    }

    /// Writes `ca.pem`, `ca.key.pem` and, with an intermediate,
    /// `intermediate.pem` and `intermediate.key.pem` into `dir` (keys mode
    /// 0600).
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_file(&dir.join("ca.pem"), &self.root_pem(), false)?;
        write_file(&dir.join("ca.key.pem"), &self.root.key_pem, true)?;
        if let Some(ca) = &self.intermediate {
            write_file(
                &dir.join("intermediate.pem"),
                &pem_encode("CERTIFICATE", &ca.cert_der),
                false,
            )?;
            write_file(&dir.join("intermediate.key.pem"), &ca.key_pem, true)?;
        }
        Ok(())
    }

    /// Reads a PKI written by [`Pki::save`].
    pub fn load(dir: &Path) -> Result<Pki> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| Error::io("reading", path, e))
        };
        let root = Ca::from_pem(&read("ca.pem")?, &read("ca.key.pem")?)?;
        let intermediate = if dir.join("intermediate.key.pem").exists() {
            Some(Ca::from_pem(
                &read("intermediate.pem")?,
                &read("intermediate.key.pem")?,
            )?)
        } else {
            None
        };
        Ok(Pki { root, intermediate })
    }

    /// Whether `dir` holds a PKI written by [`Pki::save`].
    pub fn exists_in(dir: &Path) -> bool {
        dir.join("ca.pem").is_file() && dir.join("ca.key.pem").is_file()
    }
}

pub(crate) fn write_file(path: &Path, contents: &str, secret: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| Error::io("writing", path, e))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| Error::io("writing", path, e))
}

/// Replaces the stand-in SubjectPublicKeyInfo in `cert` by `real` (same
/// length) and signs the TBSCertificate again with `key`.
fn resign_with_spki(
    cert: &[u8],
    stand_in: &[u8],
    real: &[u8],
    key: &impl SigningKey,
) -> Result<Vec<u8>> {
    if stand_in.len() != real.len() {
        return Err(Error::PublicKey(
            "stand-in key differs in length from the real key".into(),
        ));
    }
    let (mut tbs, signature_algorithm) = yasna::parse_der(cert, |r| {
        r.read_sequence(|r| {
            let tbs = r.next().read_der()?;
            let signature_algorithm = r.next().read_der()?;
            r.next().read_bitvec_bytes()?;
            Ok((tbs, signature_algorithm))
        })
    })
    .map_err(|e| Error::X509(format!("certificate to sign again: {e}")))?;
    let positions: Vec<usize> = tbs
        .windows(stand_in.len())
        .enumerate()
        .filter(|(_, w)| *w == stand_in)
        .map(|(i, _)| i)
        .collect();
    let [at] = positions[..] else {
        return Err(Error::PublicKey(format!(
            "stand-in key found {} times in the certificate",
            positions.len()
        )));
    };
    tbs[at..at + real.len()].copy_from_slice(real);
    let signature = key.sign(&tbs)?;
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&tbs);
            w.next().write_der(&signature_algorithm);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    }))
}

/// The fields of a certificate the token objects and reports need.
#[derive(Clone, Debug)]
pub(crate) struct CertFields {
    pub(crate) subject: String,
    pub(crate) issuer: String,
    pub(crate) subject_der: Vec<u8>,
    pub(crate) issuer_der: Vec<u8>,
    /// The serial number as a DER INTEGER (tag and length included), as
    /// `CKA_SERIAL_NUMBER` wants it.
    pub(crate) serial_der: Vec<u8>,
    pub(crate) serial: Vec<u8>,
    pub(crate) spki: Vec<u8>,
    pub(crate) common_name: Option<String>,
}

impl CertFields {
    pub(crate) fn parse(der: &[u8]) -> Result<CertFields> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| Error::X509(e.to_string()))?;
        let serial = cert.raw_serial().to_vec();
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_string);
        Ok(CertFields {
            subject: rfc4514(cert.subject()),
            issuer: rfc4514(cert.issuer()),
            subject_der: cert.subject().as_raw().to_vec(),
            issuer_der: cert.issuer().as_raw().to_vec(),
            // The INTEGER as the certificate encodes it, sign byte and all.
            serial_der: yasna::construct_der(|w| {
                w.write_tagged_der(&TaggedDerValue::from_tag_and_bytes(
                    yasna::tags::TAG_INTEGER,
                    serial.clone(),
                ))
            }),
            serial,
            spki: cert.public_key().raw.to_vec(),
            common_name,
        })
    }
}
