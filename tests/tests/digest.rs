//! Digest signatures (`sign_digest`) through the agent: signatures that
//! an independent verifier (ring) accepts, for the programs the digest
//! policy lists, and refusals, with their advice and audit lines, for
//! the others. The client is this test process, so the program the
//! policy names is this test's own executable.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use p11agent_client::{Client, ClientError};
use p11agent_proto::{DigestMechanism, ErrorCode, HashAlgorithm, Request, Response};
use p11agent_softhsm::{KeyAlg, LeafSpec, Pki, Provisioned, PublicKey, SoftHsm};
use p11agent_tests::{pin_file, Daemon};
use ring::digest::{digest, SHA256, SHA384};
use ring::signature::{self as ring_sig, UnparsedPublicKey};

const PIN: &str = "246810";
const MESSAGE: &[u8] = b"a document the program hashed itself";

/// This process's executable, as the agent reads it in
/// `/proc/PID/exe`.
fn me() -> PathBuf {
    std::env::current_exe()
        .and_then(|exe| exe.canonicalize())
        .expect("own executable")
}

/// `[[allow_digest]]` for `program`, with `identities` when given.
fn allow(program: &Path, identities: Option<&[&str]>) -> String {
    let mut rule = format!(
        "[[allow_digest]]\nprogram = {:?}\n",
        program.display().to_string()
    );
    if let Some(ids) = identities {
        rule.push_str(&format!("identities = {ids:?}\n"));
    }
    rule
}

/// A SoftHSM token with a P-256 and an RSA-2048 identity.
struct Fixture {
    hsm: SoftHsm,
    ec: Provisioned,
    rsa: Provisioned,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let hsm = SoftHsm::new().expect("softhsm");
        let pki = Pki::new("Digest Root").expect("pki");
        let token = hsm.create_token("digests", PIN, "12345678").expect("token");
        let ec = token
            .add_identity(&pki, &LeafSpec::new("EC Digest Signer").key(KeyAlg::EcP256))
            .expect("p256");
        let rsa = token
            .add_identity(
                &pki,
                &LeafSpec::new("RSA Digest Signer").key(KeyAlg::Rsa2048),
            )
            .expect("rsa");
        let dir = tempfile::tempdir().expect("tempdir");
        pin_file(dir.path(), PIN);
        Fixture { hsm, ec, rsa, dir }
    }

    fn audit_log(&self) -> PathBuf {
        self.dir.path().join("audit.log")
    }

    /// A daemon on the token, with `files` in its configuration folder
    /// and `extra` arguments.
    fn daemon(&self, files: &[(&str, &str)], extra: &[&OsStr]) -> Daemon {
        let pin = self.dir.path().join("pin");
        let audit = self.audit_log();
        let mut args: Vec<&OsStr> = vec![
            "--module".as_ref(),
            self.hsm.module_path().as_os_str(),
            "--pin-file".as_ref(),
            pin.as_os_str(),
            "--audit-log".as_ref(),
            audit.as_os_str(),
        ];
        args.extend_from_slice(extra);
        Daemon::start_configured(None, files, &args, self.hsm.env())
    }

    /// The audit records written so far.
    fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.audit_log())
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("audit line is JSON"))
            .collect()
    }
}

/// What ring needs of a certificate's key: the RSAPublicKey DER, or the
/// EC point.
fn public_key(identity: &Provisioned) -> Vec<u8> {
    PublicKey::from_spki_der(&identity.public_key_spki)
        .expect("public key")
        .key_bytes()
        .to_vec()
}

/// Whether `signature` is `algorithm`'s signature of `message` by
/// `identity`: ring hashes the message, so this checks the agent signed
/// its digest as the mechanism says.
fn verifies(
    identity: &Provisioned,
    algorithm: &'static dyn ring_sig::VerificationAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> bool {
    UnparsedPublicKey::new(algorithm, public_key(identity))
        .verify(message, signature)
        .is_ok()
}

/// The agent's error code and message for a failed call.
fn refusal(result: Result<Vec<u8>, ClientError>) -> (ErrorCode, String) {
    match result {
        Err(ClientError::Agent { code, message }) => (code, message),
        other => panic!("expected an agent error, got {other:?}"),
    }
}

fn sha256() -> Vec<u8> {
    digest(&SHA256, MESSAGE).as_ref().to_vec()
}

fn sign_ec(client: &mut Client, fx: &Fixture) -> Result<Vec<u8>, ClientError> {
    client.sign_digest(
        &fx.ec.fingerprint_hex(),
        DigestMechanism::Ecdsa,
        HashAlgorithm::Sha256,
        &sha256(),
    )
}

/// An identity, how it signs a digest, the digest, and ring's verifier
/// for the message hashed the same way.
type Case<'a> = (
    &'a Provisioned,
    DigestMechanism,
    HashAlgorithm,
    &'a [u8],
    &'static dyn ring_sig::VerificationAlgorithm,
);

#[test]
fn an_allowed_program_gets_digest_signatures_that_verify() {
    let fx = Fixture::new();
    let config = allow(&me(), None);
    let daemon = fx.daemon(&[("config.toml", &config)], &[]);
    let mut client = daemon.client();

    let sha384 = digest(&SHA384, MESSAGE).as_ref().to_vec();
    let cases: [Case<'_>; 4] = [
        (
            &fx.ec,
            DigestMechanism::Ecdsa,
            HashAlgorithm::Sha256,
            &sha256(),
            &ring_sig::ECDSA_P256_SHA256_ASN1,
        ),
        (
            &fx.rsa,
            DigestMechanism::RsaPkcs1,
            HashAlgorithm::Sha256,
            &sha256(),
            &ring_sig::RSA_PKCS1_2048_8192_SHA256,
        ),
        (
            &fx.rsa,
            DigestMechanism::RsaPss,
            HashAlgorithm::Sha256,
            &sha256(),
            &ring_sig::RSA_PSS_2048_8192_SHA256,
        ),
        (
            &fx.rsa,
            DigestMechanism::RsaPss,
            HashAlgorithm::Sha384,
            &sha384,
            &ring_sig::RSA_PSS_2048_8192_SHA384,
        ),
    ];
    for (identity, mechanism, hash, digest, algorithm) in cases {
        let signature = client
            .sign_digest(&identity.fingerprint_hex(), mechanism, hash, digest)
            .unwrap_or_else(|e| panic!("{mechanism:?} {hash:?}: {e}\n{}", daemon.log()));
        assert!(
            verifies(identity, algorithm, MESSAGE, &signature),
            "{mechanism:?} {hash:?}: ring rejects the signature"
        );
        assert!(
            !verifies(identity, algorithm, b"another document", &signature),
            "{mechanism:?} {hash:?}: ring accepts it for another document"
        );
    }

    // A digest of the wrong length: the SHA-256 digest sent as SHA-384,
    // or cut short.
    for (hash, digest) in [
        (HashAlgorithm::Sha384, sha256()),
        (HashAlgorithm::Sha256, sha256()[..31].to_vec()),
    ] {
        let (code, message) = refusal(client.sign_digest(
            &fx.rsa.fingerprint_hex(),
            DigestMechanism::RsaPkcs1,
            hash,
            &digest,
        ));
        assert_eq!(code, ErrorCode::Malformed, "{message}");
        assert!(message.contains("send the bare digest"), "{message}");
    }
    // A digest that is not base64 never reaches the service: no audit.
    match client
        .call(&Request::SignDigest {
            id: fx.ec.fingerprint_hex(),
            mechanism: DigestMechanism::Ecdsa,
            hash: HashAlgorithm::Sha256,
            digest: "not base64!".into(),
        })
        .expect("call")
    {
        Response::Error { code, message } => {
            assert_eq!(code, ErrorCode::Malformed, "{message}");
            assert!(message.starts_with("digest is not base64"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A mechanism the key cannot use.
    let (code, message) = refusal(client.sign_digest(
        &fx.rsa.fingerprint_hex(),
        DigestMechanism::Ecdsa,
        HashAlgorithm::Sha256,
        &sha256(),
    ));
    assert_eq!(code, ErrorCode::UnsupportedScheme, "{message}");

    // One audit line per attempt, naming the program, the mechanism and
    // the hash.
    let audit = fx.audit();
    assert_eq!(audit.len(), 7, "{audit:#?}");
    for record in &audit {
        assert_eq!(record["action"], "sign_digest", "{record}");
        assert_eq!(
            record["peer"]["exe"],
            me().display().to_string(),
            "{record}"
        );
    }
    assert_eq!(audit[0]["result"], "ok");
    assert_eq!(audit[0]["mechanism"], "ecdsa");
    assert_eq!(audit[0]["hash"], "sha256");
    assert_eq!(audit[0]["digest"], hex(&sha256()));
    assert_eq!(audit[0]["identity"], fx.ec.fingerprint_hex());
    assert_eq!(audit[3]["mechanism"], "rsa_pss");
    assert_eq!(audit[3]["hash"], "sha384");
    assert_eq!(audit[4]["result"], "malformed");
    assert_eq!(audit[6]["result"], "unsupported_scheme");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_program_the_policy_does_not_list_is_refused_told_how_and_audited() {
    let fx = Fixture::new();
    // A policy for another program only.
    let config = allow(Path::new("/usr/bin/another-signer"), None);
    let daemon = fx.daemon(&[("config.toml", &config)], &[]);
    let mut client = daemon.client();

    let (code, message) = refusal(sign_ec(&mut client, &fx));
    assert_eq!(code, ErrorCode::DigestNotAllowed, "{message}");
    let program = me().display().to_string();
    let id = fx.ec.fingerprint_hex();
    assert!(
        message.starts_with(&format!(
            "the digest policy does not allow {program} to sign digests with identity {id} (CN="
        )),
        "{message}"
    );
    // The advice: a drop-in file in the daemon's configuration folder.
    let (text, snippet) = message.split_once('\n').expect("a snippet");
    let name: String = me()
        .file_name()
        .and_then(OsStr::to_str)
        .expect("name")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let drop_in = daemon
        .config_dir()
        .join("digest.d")
        .join(format!("{name}.toml"));
    assert!(
        text.contains(&format!("add these lines to {}", drop_in.display())),
        "{message}"
    );
    assert!(snippet.starts_with("[[allow_digest]]\n"), "{snippet}");

    // Refused, it is audited with the program, and logged as a warning.
    let audit = fx.audit();
    assert_eq!(audit.len(), 1, "{audit:#?}");
    assert_eq!(audit[0]["action"], "sign_digest");
    assert_eq!(audit[0]["result"], "digest_not_allowed");
    assert_eq!(audit[0]["peer"]["exe"], program);
    assert_eq!(audit[0]["identity"], id);
    assert!(audit[0]["detail"]
        .as_str()
        .is_some_and(|d| d.contains("[[allow_digest]]")));
    let log = daemon.log();
    let warning = log
        .split_once(" WARN p11agent::service::sign")
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("no warning: {log}"));
    assert!(
        warning.contains(&format!("does not allow {program}"))
            && warning.contains(&format!("program = \"{program}\"")),
        "{warning}"
    );

    // The advice works: the snippet in digest.d/ beside a configuration
    // file given with --config lets the program sign.
    drop(daemon);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let config = elsewhere.path().join("agent.toml");
    std::fs::write(&config, "").expect("config");
    std::fs::create_dir(elsewhere.path().join("digest.d")).expect("mkdir");
    std::fs::write(elsewhere.path().join("digest.d").join("test.toml"), snippet).expect("drop-in");
    let daemon = fx.daemon(&[], &["--config".as_ref(), config.as_os_str()]);
    let signature = sign_ec(&mut daemon.client(), &fx)
        .unwrap_or_else(|e| panic!("allowed by the snippet: {e}\n{}", daemon.log()));
    assert!(verifies(
        &fx.ec,
        &ring_sig::ECDSA_P256_SHA256_ASN1,
        MESSAGE,
        &signature
    ));
}

#[test]
fn a_rule_for_other_identities_refuses_this_one() {
    let fx = Fixture::new();
    // A drop-in in the default configuration folder, for the RSA
    // identity only (by a prefix, in upper case with colons).
    let prefix: String = fx.rsa.fingerprint_hex()[..16]
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":");
    let rule = allow(&me(), Some(&[&prefix]));
    let daemon = fx.daemon(&[("digest.d/test.toml", &rule)], &[]);
    let mut client = daemon.client();

    client
        .sign_digest(
            &fx.rsa.fingerprint_hex(),
            DigestMechanism::RsaPkcs1,
            HashAlgorithm::Sha256,
            &sha256(),
        )
        .unwrap_or_else(|e| panic!("the RSA identity is listed: {e}\n{}", daemon.log()));
    let (code, message) = refusal(sign_ec(&mut client, &fx));
    assert_eq!(code, ErrorCode::DigestNotAllowed, "{message}");
    let file = daemon.config_dir().join("digest.d").join("test.toml");
    assert!(
        message.contains("only with other identities")
            && message.contains(&format!("add \"{}\"", fx.ec.fingerprint_hex()))
            && message.contains(&file.display().to_string()),
        "{message}"
    );
    let audit = fx.audit();
    assert_eq!(audit.len(), 2, "{audit:#?}");
    assert_eq!(audit[0]["result"], "ok");
    assert_eq!(audit[1]["result"], "digest_not_allowed");
}

#[test]
fn a_bad_drop_in_file_stops_the_daemon_naming_the_file() {
    let fx = Fixture::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "").expect("config");
    std::fs::create_dir(dir.path().join("digest.d")).expect("mkdir");
    let bad = dir.path().join("digest.d").join("broken.toml");
    std::fs::write(&bad, "[[allow_digest]]\nprogramme = \"/usr/bin/x\"\n").expect("drop-in");
    let stderr = p11agent_tests::daemon_refuses(
        &[
            "--config".as_ref(),
            config.as_os_str(),
            "--module".as_ref(),
            fx.hsm.module_path().as_os_str(),
        ],
        fx.hsm.env(),
    );
    assert!(
        stderr.contains(&format!("invalid digest policy file {}", bad.display()))
            && stderr.contains("programme"),
        "{stderr}"
    );
}
