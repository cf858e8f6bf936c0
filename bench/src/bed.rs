//! The test bed of the signing and handshake groups: one SoftHSM token
//! with an RSA-2048 and a P-256 identity, served at the same time by a
//! `p11agent daemon` (also through its PKCS#11 module) and by a
//! `p11-kit server`, so that every backend signs with the same keys in
//! the same token files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p11agent_client::proto::paths::SOCKET_ENV;
use p11agent_softhsm::{KeyAlg, LeafSpec, P11KitServer, Pki, Provisioned, SoftHsm};

use crate::error::BenchError;
use crate::fixture::{self, Daemon};
use crate::job::{KeyKind, TokenKey};

/// The token's label.
pub(crate) const TOKEN: &str = "bench";
/// The user PIN of every token the benchmark makes.
pub(crate) const PIN: &str = "1234";
/// The SO PIN of every token the benchmark makes.
pub(crate) const SO_PIN: &str = "12345678";

/// One identity on the bench token.
#[derive(Debug)]
pub(crate) struct BenchKey {
    /// What the provisioning put on the token.
    pub provisioned: Provisioned,
}

impl BenchKey {
    /// The agent's id for it: the certificate's SHA-256.
    pub(crate) fn agent_id(&self) -> String {
        self.provisioned.fingerprint_hex()
    }

    /// Its private key for cryptoki, through `module`.
    pub(crate) fn token_key(&self, module: &Path) -> Result<TokenKey, BenchError> {
        Ok(TokenKey {
            module: module.to_path_buf(),
            token: TOKEN.to_owned(),
            pin: PIN.to_owned(),
            key_id: self
                .provisioned
                .key_id
                .clone()
                .ok_or_else(|| BenchError::Setup("a bench identity without a key".into()))?,
        })
    }
}

/// The running bed. Dropping it stops the daemon and the p11-kit server
/// and removes the token.
pub(crate) struct Bed {
    /// The SoftHSM environment.
    pub hsm: SoftHsm,
    /// The CA that issued the identities (and the TLS server's
    /// certificate).
    pub pki: Pki,
    /// The RSA-2048 identity.
    pub rsa: BenchKey,
    /// The P-256 identity.
    pub p256: BenchKey,
    /// The agent, as configured by default (the module in a helper
    /// process).
    pub daemon: Daemon,
    /// The agent with the module loaded in its own process
    /// (`--isolate false`).
    pub daemon_inproc: Daemon,
    /// The agent's PKCS#11 module, when the signing group runs.
    pub module: Option<PathBuf>,
    /// The p11-kit server, when p11-kit is installed.
    pub p11kit: Option<P11KitServer>,
}

impl Bed {
    /// Provisions the token, then starts the daemon (with a PIN file in
    /// `dir`) and, if it can, the p11-kit server; both see the token.
    /// `module` is the agent's PKCS#11 module, if it is to be measured.
    pub(crate) fn start(
        agent_bin: &Path,
        module: Option<PathBuf>,
        dir: &Path,
    ) -> Result<Bed, BenchError> {
        let hsm = SoftHsm::new()?;
        let pki = Pki::new("p11agent bench root")?;
        let token = hsm.create_token(TOKEN, PIN, SO_PIN)?;
        // Provisioning ends before anything else opens the token files:
        // SoftHSM processes racing on them see CKR_GENERAL_ERROR.
        let (rsa, p256) = token.provision(|p| {
            let rsa = p.add_identity(&pki, &LeafSpec::new("Bench RSA").key(KeyAlg::Rsa2048))?;
            let p256 = p.add_identity(&pki, &LeafSpec::new("Bench P-256").key(KeyAlg::EcP256))?;
            Ok((rsa, p256))
        })?;
        let pin_file = dir.join("pin");
        fixture::write_pin_file(&pin_file, PIN)?;
        let mut daemon = Daemon::spawn(
            agent_bin,
            dir,
            hsm.module_path(),
            &hsm.env(),
            &pin_file,
            &[],
        )?;
        let mut agent = daemon.connect(Duration::from_millis(20), Duration::from_secs(60))?;
        // The same agent with the module loaded in its own process
        // rather than in a helper: what isolation costs.
        let inproc_dir = dir.join("inproc");
        std::fs::create_dir_all(&inproc_dir)
            .map_err(|e| BenchError::io("creating", &inproc_dir, e))?;
        let mut daemon_inproc = Daemon::spawn(
            agent_bin,
            &inproc_dir,
            hsm.module_path(),
            &hsm.env(),
            &pin_file,
            &["--isolate", "false"],
        )?;
        daemon_inproc.connect(Duration::from_millis(20), Duration::from_secs(60))?;
        let listed = agent.list(&Default::default())?;
        for key in [&rsa, &p256] {
            let id = key.fingerprint_hex();
            if !listed.iter().any(|i| i.id == id && i.has_private_key) {
                return Err(BenchError::Setup(format!(
                    "the agent does not list {} with its key\n{}",
                    key.subject,
                    daemon.log_text()
                )));
            }
        }
        let p11kit = match P11KitServer::start(&hsm) {
            Ok(server) => Some(server),
            Err(e @ p11agent_softhsm::Error::P11KitNotFound(_)) => {
                eprintln!("p11-kit remoting is not measured: {e}");
                None
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Bed {
            hsm,
            pki,
            rsa: BenchKey { provisioned: rsa },
            p256: BenchKey { provisioned: p256 },
            daemon,
            daemon_inproc,
            module,
            p11kit,
        })
    }

    /// The identity of `kind`.
    pub(crate) fn key(&self, kind: KeyKind) -> &BenchKey {
        match kind {
            KeyKind::Rsa2048 => &self.rsa,
            KeyKind::P256 => &self.p256,
        }
    }

    /// SoftHSM itself, and the environment a process loading it needs.
    pub(crate) fn softhsm(&self) -> (PathBuf, Vec<(String, OsString)>) {
        (self.hsm.module_path().to_path_buf(), self.hsm.env())
    }

    /// The agent's PKCS#11 module and its environment (the daemon's
    /// socket), when it was built.
    pub(crate) fn agent_module(&self) -> Option<(PathBuf, Vec<(String, OsString)>)> {
        let socket = self.daemon.socket().as_os_str().to_owned();
        self.module
            .as_ref()
            .map(|module| (module.clone(), vec![(SOCKET_ENV.to_owned(), socket)]))
    }

    /// `p11-kit-client.so` and its environment, when the server runs.
    pub(crate) fn p11kit_client(&self) -> Option<(PathBuf, Vec<(String, OsString)>)> {
        self.p11kit
            .as_ref()
            .map(|s| (s.client_module().to_path_buf(), s.client_env()))
    }
}
