//! `p11agent-softhsm`: provisions SoftHSM tokens with keys generated on the
//! token and certificates from a test PKI, for trying p11agent out by hand.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use p11agent_softhsm::demo::{provision_demo, DemoReport, DEFAULT_SO_PIN, DEFAULT_USER_PIN};
use p11agent_softhsm::{
    ExtendedKeyUsagePurpose, IssuedBy, KeyAlgorithm, KeyUsagePurpose, LeafSpec, Pki, SoftHsm,
};
use serde_json::json;

const AFTER_HELP: &str = "\
Every command works on an environment directory (--dir): DIR/softhsm2.conf
points SoftHSM at DIR/tokens and nothing else, so the system's tokens are
never touched. To use the tokens from another program:

    export SOFTHSM2_CONF=DIR/softhsm2.conf
    pkcs11-tool --module /usr/lib/softhsm/libsofthsm2.so --list-objects --login --pin 123456

Start with `p11agent-softhsm demo --dir /tmp/hsm`, then add your own:

    p11agent-softhsm token --dir /tmp/hsm --label alice
    p11agent-softhsm identity --dir /tmp/hsm --token alice --cn 'Alice' --key ed25519
    p11agent-softhsm identity --dir /tmp/hsm --token alice --cn 'Old Alice' --expired
    p11agent-softhsm list --dir /tmp/hsm";

/// Provision SoftHSM tokens for p11agent: keys generated on the token,
/// certificates from a test PKI (a root CA and an intermediate CA whose
/// certificates and keys live in the environment directory).
#[derive(Parser, Debug)]
#[command(name = "p11agent-softhsm", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Provision the demo token "p11agent-demo" in DIR: a root CA and an
    /// intermediate CA (DIR/ca.pem, DIR/intermediate.pem), an RSA-2048
    /// identity "Demo RSA User", an EC P-256 identity "Demo EC User"
    /// (clientAuth), a certificate without a key and the intermediate CA
    /// certificate. Running it again on the same DIR reuses what is there
    /// (recorded in DIR/demo.json) and prints the same report.
    Demo {
        /// The environment directory (created if missing; kept afterwards).
        #[arg(long)]
        dir: PathBuf,
        /// User PIN of the demo token.
        #[arg(long, default_value = DEFAULT_USER_PIN)]
        pin: String,
        /// Security Officer PIN of the demo token.
        #[arg(long, default_value = DEFAULT_SO_PIN)]
        so_pin: String,
        /// Print the report as JSON (module, conf, env, token, identities).
        #[arg(long)]
        json: bool,
    },
    /// Create and initialise a new, empty token in DIR.
    Token {
        /// The environment directory (created if missing).
        #[arg(long)]
        dir: PathBuf,
        /// Token label (at most 32 bytes; must not exist yet in DIR).
        #[arg(long)]
        label: String,
        /// User PIN (4 to 255 characters).
        #[arg(long, default_value = DEFAULT_USER_PIN)]
        pin: String,
        /// Security Officer PIN.
        #[arg(long, default_value = DEFAULT_SO_PIN)]
        so_pin: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate a key pair on a token and store a certificate for it, issued
    /// by the PKI in DIR (created on first use: DIR/ca.pem,
    /// DIR/intermediate.pem and their keys).
    Identity(IdentityArgs),
    /// Store the PKI's root and intermediate CA certificates (no keys) on a
    /// token, for chain building.
    CaCerts {
        /// The environment directory.
        #[arg(long)]
        dir: PathBuf,
        /// Label of the token.
        #[arg(long)]
        token: String,
        /// The token's user PIN.
        #[arg(long, default_value = DEFAULT_USER_PIN)]
        pin: String,
    },
    /// List the tokens in DIR and their certificates (public objects only;
    /// no PIN needed).
    List {
        /// The environment directory.
        #[arg(long)]
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print shell `export` lines for using DIR (SOFTHSM2_CONF) and the module
    /// path.
    Env {
        /// The environment directory.
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct IdentityArgs {
    /// The environment directory.
    #[arg(long)]
    dir: PathBuf,
    /// Label of the token to put the identity on.
    #[arg(long)]
    token: String,
    /// The token's user PIN.
    #[arg(long, default_value = DEFAULT_USER_PIN)]
    pin: String,
    /// Subject common name (UTF-8 welcome: 'Zoë Ærøskøbing 測試').
    #[arg(long)]
    cn: String,
    /// Subject organisation (O).
    #[arg(long)]
    org: Option<String>,
    /// Subject organisational unit (OU).
    #[arg(long)]
    ou: Option<String>,
    /// Subject country (C, two letters).
    #[arg(long)]
    country: Option<String>,
    /// Key type, generated on the token (ed25519-named-curve: Ed25519 with
    /// CKA_EC_PARAMS as the PrintableString "edwards25519").
    #[arg(long, value_enum, default_value_t = KeyArg::P256)]
    key: KeyArg,
    /// Which CA issues the certificate.
    #[arg(long, value_enum, default_value_t = Issuer::Intermediate)]
    issuer: Issuer,
    /// Extended Key Usage; repeat for several; `none` leaves the extension
    /// out. Default: client-auth.
    #[arg(long, value_enum)]
    eku: Vec<Eku>,
    /// Key Usage; repeat for several; `none` leaves the extension out.
    /// Default: digital-signature.
    #[arg(long, value_enum)]
    ku: Vec<Ku>,
    /// Validity in days from now.
    #[arg(long, default_value_t = 365)]
    days: i64,
    /// Make the certificate expired (valid for 30 days, until yesterday).
    #[arg(long, conflicts_with = "not_yet_valid")]
    expired: bool,
    /// Make the certificate valid only from tomorrow.
    #[arg(long)]
    not_yet_valid: bool,
    /// Serial number in hex (default: random).
    #[arg(long)]
    serial: Option<String>,
    /// CKA_LABEL of the objects (default: the common name).
    #[arg(long)]
    label: Option<String>,
    /// Store only the certificate: no private or public key on the token.
    #[arg(long, conflicts_with = "mismatched_id")]
    no_key: bool,
    /// Give the certificate a CKA_ID different from the key's (pairing must
    /// then go by public key).
    #[arg(long)]
    mismatched_id: bool,
    /// Mark the private key CKA_ALWAYS_AUTHENTICATE.
    #[arg(long)]
    always_authenticate: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Issuer {
    Root,
    Intermediate,
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Eku {
    ClientAuth,
    ServerAuth,
    Any,
    EmailProtection,
    CodeSigning,
    None,
}

impl Eku {
    /// The purpose, `None` for `none`.
    fn purpose(self) -> Option<ExtendedKeyUsagePurpose> {
        Some(match self {
            Eku::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            Eku::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            Eku::Any => ExtendedKeyUsagePurpose::Any,
            Eku::EmailProtection => ExtendedKeyUsagePurpose::EmailProtection,
            Eku::CodeSigning => ExtendedKeyUsagePurpose::CodeSigning,
            Eku::None => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, ValueEnum)]
enum Ku {
    DigitalSignature,
    NonRepudiation,
    KeyEncipherment,
    DataEncipherment,
    KeyAgreement,
    None,
}

impl Ku {
    /// The usage, `None` for `none`.
    fn purpose(self) -> Option<KeyUsagePurpose> {
        Some(match self {
            Ku::DigitalSignature => KeyUsagePurpose::DigitalSignature,
            Ku::NonRepudiation => KeyUsagePurpose::ContentCommitment,
            Ku::KeyEncipherment => KeyUsagePurpose::KeyEncipherment,
            Ku::DataEncipherment => KeyUsagePurpose::DataEncipherment,
            Ku::KeyAgreement => KeyUsagePurpose::KeyAgreement,
            Ku::None => return None,
        })
    }
}

/// The extension that repeated `--eku` or `--ku` flags ask for: `absent`
/// when any of them is `none`, else the list of their purposes.
fn usages<A: Copy, P, U: From<Vec<P>>>(
    args: &[A],
    purpose: impl Fn(A) -> Option<P>,
    absent: U,
) -> U {
    args.iter()
        .map(|&arg| purpose(arg))
        .collect::<Option<Vec<P>>>()
        .map_or(absent, U::from)
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KeyArg {
    Rsa1024,
    Rsa2048,
    Rsa3072,
    P256,
    P384,
    P521,
    Ed25519,
    Ed25519NamedCurve,
}

impl From<KeyArg> for KeyAlgorithm {
    fn from(k: KeyArg) -> Self {
        match k {
            KeyArg::Rsa1024 => KeyAlgorithm::Rsa1024,
            KeyArg::Rsa2048 => KeyAlgorithm::Rsa2048,
            KeyArg::Rsa3072 => KeyAlgorithm::Rsa3072,
            KeyArg::P256 => KeyAlgorithm::EcP256,
            KeyArg::P384 => KeyAlgorithm::EcP384,
            KeyArg::P521 => KeyAlgorithm::EcP521,
            KeyArg::Ed25519 => KeyAlgorithm::Ed25519,
            KeyArg::Ed25519NamedCurve => KeyAlgorithm::Ed25519NamedCurve,
        }
    }
}

/// A `--serial`: hex digits, optionally after `0x` and split by colons.
fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits = s.trim_start_matches("0x").replace(':', "");
    if digits.is_empty() {
        return Err(format!("{s:?} has no hex digits"));
    }
    hex::decode(&digits).map_err(|e| format!("{s:?}: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p11agent-softhsm: {e}");
            ExitCode::FAILURE
        }
    }
}

type BoxError = Box<dyn std::error::Error>;

fn run(cli: Cli) -> Result<(), BoxError> {
    match cli.command {
        Command::Demo {
            dir,
            pin,
            so_pin,
            json,
        } => {
            let report = provision_demo(&dir, &pin, &so_pin)?;
            if report.reused {
                eprintln!(
                    "p11agent-softhsm: {} already holds the demo; reusing it (delete the \
                     directory to start over)",
                    report.dir.display()
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_demo(&report);
            }
        }
        Command::Token {
            dir,
            label,
            pin,
            so_pin,
            json,
        } => {
            let hsm = SoftHsm::persistent(&dir)?;
            if hsm.tokens()?.iter().any(|t| t.label == label) {
                return Err(format!(
                    "a token labelled {label:?} already exists in {}; choose another label",
                    hsm.dir().display()
                )
                .into());
            }
            let token = hsm.create_token(&label, &pin, &so_pin)?;
            if json {
                let out = json!({
                    "module": hsm.module_path(),
                    "conf": hsm.conf_path(),
                    "token": { "label": token.label(), "serial": token.serial(),
                               "slot_id": token.slot_id(), "uri": token.uri() },
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "created token {:?} (serial {}, slot {:#x}) in {}",
                    token.label(),
                    token.serial(),
                    token.slot_id(),
                    hsm.dir().display()
                );
                println!(
                    "add identities: p11agent-softhsm identity --dir {} --token {:?} --cn NAME",
                    hsm.dir().display(),
                    token.label()
                );
            }
        }
        Command::Identity(args) => identity(args)?,
        Command::CaCerts { dir, token, pin } => {
            let hsm = SoftHsm::persistent(&dir)?;
            let pki = load_or_create_pki(&hsm)?;
            let token = hsm.open_token(&token, &pin, DEFAULT_SO_PIN)?;
            let stored = token.add_ca_certificates(&pki)?;
            for s in stored {
                println!("stored CA certificate {}", s.subject);
            }
        }
        Command::List { dir, json } => {
            let hsm = SoftHsm::persistent(&dir)?;
            let inventory = hsm.inventory()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inventory)?);
            } else {
                for t in &inventory {
                    println!(
                        "token {:?} serial {} slot {:#x}: {} certificate(s), {} public key(s)",
                        t.token.label,
                        t.token.serial,
                        t.token.slot_id,
                        t.certificates.len(),
                        t.public_keys
                    );
                    for c in &t.certificates {
                        let key = if c.public_key_with_same_id {
                            "key"
                        } else {
                            "no key with same id"
                        };
                        println!("  {}  [{key}]  id {}  issuer {}", c.subject, c.id, c.issuer);
                    }
                }
                if inventory.is_empty() {
                    println!("no tokens in {}", hsm.dir().display());
                }
            }
        }
        Command::Env { dir } => {
            let hsm = SoftHsm::persistent(&dir)?;
            for (k, v) in hsm.env() {
                println!("export {k}={}", shell_quote(&v.to_string_lossy()));
            }
            println!(
                "# module: {}",
                shell_quote(&hsm.module_path().to_string_lossy())
            );
        }
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+=:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn load_or_create_pki(hsm: &SoftHsm) -> Result<Pki, BoxError> {
    if Pki::exists_in(hsm.dir()) {
        Ok(Pki::load(hsm.dir())?)
    } else {
        let pki = Pki::standard()?;
        pki.save(hsm.dir())?;
        eprintln!(
            "p11agent-softhsm: created a test PKI in {} (ca.pem, intermediate.pem)",
            hsm.dir().display()
        );
        Ok(pki)
    }
}

fn identity(args: IdentityArgs) -> Result<(), BoxError> {
    let hsm = SoftHsm::persistent(&args.dir)?;
    let pki = load_or_create_pki(&hsm)?;
    let token = hsm.open_token(&args.token, &args.pin, DEFAULT_SO_PIN)?;

    let mut spec = LeafSpec::new(&args.cn)
        .key(args.key.into())
        .issued_by(match args.issuer {
            Issuer::Root => IssuedBy::Root,
            Issuer::Intermediate => IssuedBy::Intermediate,
        });
    spec.organization = args.org;
    spec.organizational_unit = args.ou;
    spec.country = args.country;
    spec.label = args.label;
    spec.always_authenticate = args.always_authenticate;
    if let Some(serial) = &args.serial {
        spec.serial = Some(parse_hex(serial)?);
    }
    spec.not_after = spec.not_before + time::Duration::hours(1) + time::Duration::days(args.days);
    if args.expired {
        spec = spec.expired();
    }
    if args.not_yet_valid {
        spec = spec.not_yet_valid();
    }
    if !args.eku.is_empty() {
        spec.extended_key_usage = usages(&args.eku, Eku::purpose, p11agent_softhsm::Eku::Absent);
    }
    if !args.ku.is_empty() {
        spec.key_usage = usages(&args.ku, Ku::purpose, p11agent_softhsm::KeyUsage::Absent);
    }

    let provisioned = if args.no_key {
        token.add_certificate_without_key(&pki, &spec)?
    } else if args.mismatched_id {
        token.add_identity_with_mismatched_id(&pki, &spec)?
    } else {
        token.add_identity(&pki, &spec)?
    };
    if args.json {
        let mut value = serde_json::to_value(&provisioned)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("fingerprint".into(), json!(provisioned.fingerprint_hex()));
            obj.insert("token".into(), json!(token.label()));
            obj.insert("pem".into(), json!(provisioned.cert_pem()));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!(
            "{} on token {:?}: {} ({}), CKA_ID {}{}",
            if provisioned.has_private_key() {
                "identity"
            } else {
                "certificate without key"
            },
            token.label(),
            provisioned.subject,
            provisioned.algorithm,
            provisioned.cert_id_hex(),
            match &provisioned.key_id {
                Some(k) if *k != provisioned.cert_id => format!(" (key CKA_ID {})", hex::encode(k)),
                _ => String::new(),
            }
        );
        println!("  issuer {}", provisioned.issuer);
        println!("  sha256 {}", provisioned.fingerprint_hex());
    }
    Ok(())
}

fn print_demo(report: &DemoReport) {
    println!("SoftHSM module : {}", report.module.display());
    println!("SOFTHSM2_CONF  : {}", report.conf.display());
    println!(
        "token          : {} (serial {}, user PIN {})",
        report.token.label, report.token.serial, report.token.user_pin
    );
    println!("root CA        : {}", report.ca.display());
    println!("intermediate CA: {}", report.intermediate.display());
    println!("certificates on the token:");
    for id in &report.identities {
        let what = match id.kind.as_str() {
            "identity" => format!("{} key on token", id.key),
            "ca" => "CA certificate".to_string(),
            _ => format!("{}, no key on token", id.key),
        };
        println!("  {}  [{what}]", id.subject);
    }
    println!();
    println!("use it:  export SOFTHSM2_CONF={}", report.conf.display());
}
