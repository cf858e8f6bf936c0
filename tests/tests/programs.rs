//! Real programs authenticate with a key on the token through the agent's
//! PKCS#11 module, as a user sets them up: gnutls-cli with the module as
//! its provider, `openssl s_client` through OpenSSL's pkcs11-provider,
//! curl through libp11's OpenSSL engine, a Java client through SunPKCS11,
//! and `ssh -I MODULE`. The TLS clients talk to `openssl s_server -Verify
//! 1 -verify_return_error -www`, whose page only a verified client gets;
//! ssh to a private sshd that lets in only the identity's key. The agent's
//! audit log shows that the agent made each signature for that program.
//!
//! Every test has its own SoftHSM token, daemon, configuration files and
//! ports; nothing of the system's is read or written (helpers in
//! `p11agent_tests::programs`).

use std::path::Path;
use std::process::Command;

use p11agent_tests::programs::{
    assert_not_verified, assert_verified, real_path, require, ssh_command, JavaClient, Setup, Sshd,
    CURL, EC_USER, GNUTLS_CLI, HANDSHAKES, LIBP11_ENGINE, PKCS11_PROVIDER, RSA_USER, SSH,
};
use p11agent_tests::{describe, pkcs11_module, OpensslServer};

/// gnutls-cli loads the module as its provider and hashes itself: every
/// signature is a digest, which the policy lets gnutls-cli have.
#[test]
fn gnutls_cli_authenticates_through_the_module() {
    require("gnutls-bin", GNUTLS_CLI);
    let setup = Setup::new(&[GNUTLS_CLI]);
    for (user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(extra);
        let since = setup.audit_records().len();
        let out = setup.run(&mut gnutls_cli(&setup, user, &server));
        assert_verified(&out, protocol, user, &server);
        setup.assert_audited(since, GNUTLS_CLI, setup.identity(user), "sign_digest", "ok");
    }
    // The same client, to a server that trusts another CA, gets no page:
    // the page above proves the client certificate was verified. (Each
    // TLS test ends so.)
    let server = setup.s_server_trusting("other-ca.pem", &[]);
    let out = setup.run(&mut gnutls_cli(&setup, EC_USER, &server));
    assert_not_verified(&out, &server);
}

fn gnutls_cli(setup: &Setup, user: &str, server: &OpensslServer) -> Command {
    let mut command = Command::new(GNUTLS_CLI);
    command
        .arg("--provider")
        .arg(pkcs11_module())
        .arg("--x509certfile")
        .arg(setup.uri(user, "cert"))
        .arg("--x509keyfile")
        .arg(setup.uri(user, "private"))
        .arg("--x509cafile")
        .arg("server-ca.pem")
        .arg("-p")
        .arg(server.port().to_string())
        .arg("localhost");
    command
}

/// `openssl s_client` with OpenSSL's pkcs11-provider over the module: the
/// provider signs the whole handshake message (hash-and-sign), which the
/// agent's purpose binding admits as TLS; the digest policy lists openssl
/// all the same, as a user's would, and the audit shows no digest.
#[test]
fn openssl_s_client_authenticates_through_pkcs11_provider() {
    require("pkcs11-provider", PKCS11_PROVIDER);
    let openssl = real_path("openssl");
    let setup = Setup::new(&[&openssl]);
    let config = setup.provider_config();
    for (user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(extra);
        let since = setup.audit_records().len();
        let out = setup.run(&mut s_client(&setup, &config, user, &server));
        assert_verified(&out, protocol, user, &server);
        setup.assert_audited(since, &openssl, setup.identity(user), "sign", "ok");
    }
    let server = setup.s_server_trusting("other-ca.pem", &[]);
    let out = setup.run(&mut s_client(&setup, &config, EC_USER, &server));
    assert_not_verified(&out, &server);
}

fn s_client(setup: &Setup, config: &Path, user: &str, server: &OpensslServer) -> Command {
    let mut command = Command::new("openssl");
    command
        .env("OPENSSL_CONF", config)
        .arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{}", server.port()))
        .arg("-cert")
        .arg(setup.uri(user, "cert"))
        .arg("-key")
        .arg(setup.uri(user, "private"))
        .arg("-CAfile")
        .arg("server-ca.pem")
        .arg("-quiet")
        .arg("-ign_eof");
    command
}

/// curl with libp11's engine over the module: the engine hashes, so the
/// signatures are digests, admitted by the policy for curl.
#[test]
fn curl_authenticates_through_the_libp11_engine() {
    require("curl", CURL);
    require("libengine-pkcs11-openssl", LIBP11_ENGINE);
    let setup = Setup::new(&[CURL]);
    for (user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(extra);
        let since = setup.audit_records().len();
        let out = setup.run(&mut curl(&setup, user, &server));
        assert_verified(&out, protocol, user, &server);
        setup.assert_audited(since, CURL, setup.identity(user), "sign_digest", "ok");
    }
    let server = setup.s_server_trusting("other-ca.pem", &[]);
    let out = setup.run(&mut curl(&setup, EC_USER, &server));
    assert_not_verified(&out, &server);
}

fn curl(setup: &Setup, user: &str, server: &OpensslServer) -> Command {
    let mut command = Command::new(CURL);
    command
        .env("OPENSSL_CONF", setup.engine_config())
        .args(["-sS", "--max-time", "30", "--cacert", "server-ca.pem"])
        .args([
            "--engine",
            "pkcs11",
            "--key-type",
            "ENG",
            "--cert-type",
            "ENG",
        ])
        .arg("--cert")
        .arg(setup.uri(user, "cert"))
        .arg("--key")
        .arg(setup.uri(user, "private"))
        .arg(server.url());
    command
}

/// A Java client through SunPKCS11 (KeyStore type PKCS11, an SSLContext
/// with its key manager), compiled here with javac.
#[test]
fn java_authenticates_through_sunpkcs11() {
    let java = real_path("java");
    let setup = Setup::new(&[&java]);
    let client = JavaClient::compile(&setup);
    for (user, protocol, extra) in HANDSHAKES {
        let server = setup.s_server(extra);
        let since = setup.audit_records().len();
        let out = setup.run_with_input(&mut client.command(user, protocol, &server), b"");
        assert_verified(&out, protocol, user, &server);
        // SunPKCS11 signs ECDSA whole (CKM_ECDSA_SHA256), which purpose
        // binding admits as TLS, but hashes for RSA-PSS itself (which
        // Java also prefers in TLS 1.2): digests, for the policy.
        let action = if user == EC_USER {
            "sign"
        } else {
            "sign_digest"
        };
        setup.assert_audited(since, &client.java, setup.identity(user), action, "ok");
    }
    let server = setup.s_server_trusting("other-ca.pem", &[]);
    let out = setup.run_with_input(&mut client.command(EC_USER, "TLSv1.3", &server), b"");
    assert_not_verified(&out, &server);
}

/// `ssh -I MODULE` signs the session hash with `CKM_ECDSA` or
/// `CKM_RSA_PKCS` over a SHA-512 DigestInfo: digests, which purpose
/// binding cannot judge and the digest policy admits for ssh. sshd lets
/// in only the key `ssh-keygen -D MODULE` shows for the identity.
#[test]
fn ssh_authenticates_through_the_module() {
    let setup = Setup::new(&[SSH]);
    let sshd = Sshd::start(&setup.dir().join("sshd"));
    for user in [EC_USER, RSA_USER] {
        let identity = setup.identity(user);
        let key = setup.ssh_public_key(identity);
        sshd.authorize(&[&key]);
        let since = setup.audit_records().len();
        let out = setup.run_with_input(&mut ssh_command(&setup, &sshd, &key), b"");
        assert!(
            out.status.success()
                && String::from_utf8_lossy(&out.stdout).trim() == "authenticated-through-agent",
            "ssh with {user} was not let in:\n{}\n--- sshd\n{}",
            describe(&out),
            sshd.log()
        );
        setup.assert_audited(since, SSH, identity, "sign_digest", "ok");
        // nistp256 signs SHA-256; rsa-sha2-512 (which sshd offers first)
        // a SHA-512 DigestInfo through CKM_RSA_PKCS.
        let (mechanism, hash) = if user == EC_USER {
            ("ecdsa", "sha256")
        } else {
            ("rsa_pkcs1", "sha512")
        };
        let records = setup.audit_records();
        assert!(
            records[since..]
                .iter()
                .filter(|r| r["action"] == "sign_digest")
                .all(|r| r["mechanism"] == mechanism && r["hash"] == hash),
            "ssh with {user} should sign {mechanism} {hash}:\n{records:#?}"
        );
    }
    // sshd lets in no other key: the EC identity, while only the RSA key
    // is authorized, is refused (so the "yes" above is sshd's).
    sshd.authorize(&[&setup.ssh_public_key(&setup.rsa)]);
    let key = setup.ssh_public_key(&setup.ec);
    let out = setup.run_with_input(&mut ssh_command(&setup, &sshd, &key), b"");
    assert!(
        !out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("authenticated"),
        "sshd let in a key it does not list:\n{}",
        describe(&out)
    );
}

/// A program the digest policy does not list gets no digest signature:
/// curl's handshake fails, and ssh is not let in, and each refusal is
/// audited under the program's path.
#[test]
fn a_program_the_policy_does_not_list_is_refused_and_audited() {
    require("curl", CURL);
    require("libengine-pkcs11-openssl", LIBP11_ENGINE);
    let setup = Setup::new(&[GNUTLS_CLI]);
    let server = setup.s_server(&[]);
    let since = setup.audit_records().len();
    let out = setup.run(&mut curl(&setup, EC_USER, &server));
    assert!(
        !out.status.success(),
        "curl must not get the page:\n{}",
        describe(&out)
    );
    assert_not_verified(&out, &server);
    setup.assert_audited(since, CURL, &setup.ec, "sign_digest", "digest_not_allowed");

    let sshd = Sshd::start(&setup.dir().join("sshd"));
    let key = setup.ssh_public_key(&setup.ec);
    sshd.authorize(&[&key]);
    let since = setup.audit_records().len();
    let out = setup.run_with_input(&mut ssh_command(&setup, &sshd, &key), b"");
    assert!(
        !out.status.success() && !String::from_utf8_lossy(&out.stdout).contains("authenticated"),
        "ssh must not be let in:\n{}",
        describe(&out)
    );
    setup.assert_audited(since, SSH, &setup.ec, "sign_digest", "digest_not_allowed");
}
