//! Extended Key Usage purposes by OID.
//!
//! oid-registry, which x509-parser re-exports for every other OID the
//! store compares, has no `id-kp-*` purposes (x509-parser itself writes
//! them with `oid!`), so the ones the agent checks or names are declared
//! here, once.

use x509_parser::asn1_rs::{oid, Oid};

/// id-kp-serverAuth (RFC 5280).
pub(crate) const SERVER_AUTH: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .3 .1);
/// id-kp-clientAuth (RFC 5280): what TLS client authentication needs.
pub(crate) const CLIENT_AUTH: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .3 .2);
/// id-kp-codeSigning (RFC 5280).
pub(crate) const CODE_SIGNING: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .3 .3);
/// id-kp-emailProtection (RFC 5280).
pub(crate) const EMAIL_PROTECTION: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .3 .4);
/// id-kp-timeStamping (RFC 5280).
pub(crate) const TIME_STAMPING: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .3 .8);
/// id-kp-OCSPSigning (RFC 5280).
pub(crate) const OCSP_SIGNING: Oid<'static> = oid!(1.3.6 .1 .5 .5 .7 .3 .9);
/// anyExtendedKeyUsage (RFC 5280): allows client authentication too.
pub(crate) const ANY: Oid<'static> = oid!(2.5.29 .37 .0);
/// Microsoft's smartcardLogon, common on smartcard certificates.
pub(crate) const SMARTCARD_LOGON: Oid<'static> = oid!(1.3.6 .1 .4 .1 .311 .20 .2 .2);
