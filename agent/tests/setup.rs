//! `p11agent setup`, run as a user runs it, against a temporary HOME and
//! XDG_CONFIG_HOME: what each target writes, byte for byte; that --print
//! writes nothing; that a second run changes nothing; that the NSS
//! targets really register the module with modutil (libnss3-tools, which
//! scripts/install-deps installs); and that it says what to do when the
//! module is missing.
//!
//! The programs a digest policy names are stand-ins on a PATH of the
//! test's own (files that start like an ELF executable), so that the
//! expected paths do not depend on what this machine has installed. The
//! targets that only name the module in a file get a dummy file as the
//! module; those that load it (NSS) get SoftHSM's.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use p11agent_softhsm::SoftHsm;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_p11agent");

/// The first lines of every file setup writes for `target`.
fn header(target: &str) -> String {
    format!(
        "# Written by `p11agent setup {target}`; `p11agent setup --remove {target}` deletes it.\n\
         # Setup rewrites this file while this first line is here: delete the line\n\
         # to make the file yours, and setup leaves it alone.\n"
    )
}

/// The digest policy setup writes for `target`'s `programs`.
fn policy(target: &str, programs: &[&Path]) -> String {
    let mut text = header(target);
    text.push_str(
        "# The agent signs digests (sign_digest, PKCS#11's raw mechanisms) for these\n\
         # executables, with every identity; `identities = [\"ID PREFIX\"]` narrows a\n\
         # table to some.\n",
    );
    for program in programs {
        text.push_str(&format!(
            "\n[[allow_digest]]\nprogram = \"{}\"\n",
            program.display()
        ));
    }
    text
}

/// A temporary home for one test: HOME, XDG_CONFIG_HOME (elsewhere, to
/// show which files follow which), a PATH directory of stand-ins, and a
/// SoftHSM environment for modutil to load the module in.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    xdg: PathBuf,
    bin: PathBuf,
    hsm: SoftHsm,
    /// A file that is not a PKCS#11 module, for targets that only name it.
    dummy_module: PathBuf,
    /// SoftHSM's module, canonical as setup writes it, for the NSS
    /// targets, whose modutil loads the module.
    softhsm_module: String,
    /// Whether the system's directories follow the stand-ins on PATH
    /// (modutil, certutil and the real programs).
    system_path: bool,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical tempdir");
        let home = root.join("home");
        let xdg = root.join("xdg");
        let bin = root.join("bin");
        for d in [&home, &xdg, &bin] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        let dummy_module = root.join("modules/libp11agent_pkcs11.so");
        std::fs::create_dir_all(dummy_module.parent().expect("parent")).expect("mkdir");
        std::fs::write(&dummy_module, b"not a shared object").expect("write");
        let hsm = SoftHsm::new().expect("SoftHSM environment");
        let softhsm_module = hsm.module_path().canonicalize().expect("SoftHSM module");
        Sandbox {
            _dir: dir,
            root,
            home,
            xdg,
            bin,
            hsm,
            dummy_module,
            softhsm_module: softhsm_module.to_str().expect("utf-8").to_owned(),
            system_path: true,
        }
    }

    /// A stand-in executable `name` on the sandbox's PATH; its canonical
    /// path, as the policy must name it.
    fn program(&self, name: &str) -> PathBuf {
        executable(&self.bin.join(name))
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut path = self.bin.clone().into_os_string();
        if self.system_path {
            path.push(":/usr/bin:/bin");
        }
        let mut command = Command::new(BIN);
        command
            .args(["setup"])
            .args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", &self.xdg)
            .env("PATH", path)
            .envs(self.hsm.env());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run p11agent setup")
    }

    /// Runs setup, expecting success, and returns its --json report.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let output = self.run(&args);
        assert!(
            output.status.success(),
            "p11agent setup {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON report")
    }

    /// Every file under HOME and XDG_CONFIG_HOME with its content,
    /// relative to the sandbox, NSS databases aside (they are binary and
    /// modutil's to write).
    fn files(&self) -> BTreeMap<String, String> {
        let mut files = BTreeMap::new();
        for top in [&self.home, &self.xdg] {
            walk(top, &mut |path| {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if ["cert9.db", "key4.db", "pkcs11.txt"].contains(&name) {
                    return;
                }
                let relative = path.strip_prefix(&self.root).expect("inside");
                let content = std::fs::read(path).expect("read");
                files.insert(
                    relative.display().to_string(),
                    String::from_utf8_lossy(&content).into_owned(),
                );
            });
        }
        files
    }

    /// Every file under HOME and XDG_CONFIG_HOME, NSS databases included,
    /// with its bytes and modification time.
    fn snapshot(&self) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
        let mut all = BTreeMap::new();
        for top in [&self.home, &self.xdg] {
            walk(top, &mut |path| {
                let modified = path.metadata().and_then(|m| m.modified()).expect("mtime");
                all.insert(
                    path.to_path_buf(),
                    (std::fs::read(path).expect("read"), modified),
                );
            });
        }
        all
    }

    fn module(&self) -> &str {
        self.dummy_module.to_str().expect("utf-8")
    }

    fn softhsm(&self) -> &str {
        &self.softhsm_module
    }

    /// A Firefox profile listed in `root`/profiles.ini, as Firefox makes
    /// one before its first start: a directory without an NSS database.
    fn firefox_profile(&self, root: &Path, dir: &str) -> PathBuf {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
        std::fs::write(
            root.join("profiles.ini"),
            format!(
                "[Profile0]\nName=default-esr\nIsRelative=1\nPath={dir}\n\n\
                 [General]\nStartWithLastProfile=1\nVersion=2\n"
            ),
        )
        .expect("write profiles.ini");
        root.join(dir)
    }
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            walk(&path, visit);
        } else {
            visit(&path);
        }
    }
}

/// An executable file at `path` that starts like an ELF binary, which is
/// all setup looks at; its canonical path.
fn executable(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, b"\x7fELF stand-in").expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.canonicalize().expect("canonical")
}

/// The libraries registered as `p11agent` in the NSS database in `dir`,
/// as `modutil -list` shows them.
fn nss_registrations(dir: &Path) -> Vec<String> {
    let output = Command::new("modutil")
        .arg("-dbdir")
        .arg(format!("sql:{}", dir.display()))
        .arg("-list")
        .output()
        .expect("modutil not found: scripts/install-deps installs it (libnss3-tools)");
    assert!(output.status.success(), "modutil -list failed");
    let listing = String::from_utf8_lossy(&output.stdout);
    let mut libraries = Vec::new();
    let mut ours = false;
    for line in listing.lines().map(str::trim) {
        if let Some((number, name)) = line.split_once(". ") {
            if number.chars().all(|c| c.is_ascii_digit()) && !number.is_empty() {
                ours = name == "p11agent";
            }
        }
        if let Some(library) = line.strip_prefix("library name:") {
            if ours {
                libraries.push(library.trim().to_owned());
            }
        }
    }
    libraries
}

fn statuses(report: &Value) -> Vec<&str> {
    report["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| c["status"].as_str().expect("status"))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The ssh-pkcs11-helper setup finds on this machine: it is not on PATH,
/// so the stand-ins cannot replace it.
fn ssh_pkcs11_helper() -> Option<PathBuf> {
    [
        "/usr/lib/openssh/ssh-pkcs11-helper",
        "/usr/libexec/openssh/ssh-pkcs11-helper",
        "/usr/libexec/ssh-pkcs11-helper",
    ]
    .iter()
    .find_map(|p| Path::new(p).canonicalize().ok())
}

#[test]
fn print_shows_what_each_target_would_do_and_changes_nothing() {
    let sandbox = Sandbox::new();
    for name in [
        "chromium",
        "firefox-esr",
        "gnutls-cli",
        "openssl",
        "curl",
        "java",
        "ssh",
    ] {
        sandbox.program(name);
    }
    sandbox.firefox_profile(&sandbox.home.join(".mozilla/firefox"), "a1b2.default-esr");
    let before = sandbox.snapshot();
    for target in [
        "nss", "chromium", "firefox", "p11-kit", "openssl", "java", "ssh",
    ] {
        let module = if matches!(target, "nss" | "chromium" | "firefox") {
            sandbox.softhsm()
        } else {
            sandbox.module()
        };
        let output = sandbox.run(&[target, "--print", "--module", module]);
        assert!(output.status.success(), "{target}: {}", stderr(&output));
        let text = stdout(&output);
        assert!(text.contains("(--print: nothing was changed)"), "{text}");
        assert!(!text.contains("\ncreated "), "{text}");
        if target != "nss" {
            assert!(text.contains("would create"), "{target}: {text}");
            // The content to be written is shown.
            assert!(text.contains("| [[allow_digest]]"), "{target}: {text}");
        }
        if matches!(target, "nss" | "chromium" | "firefox") {
            assert!(text.contains("would run: certutil -N --empty-password -d sql:"));
            assert!(text.contains(&format!("-add p11agent -libfile {module} -force")));
        }
        assert_eq!(sandbox.snapshot(), before, "{target} --print changed files");
    }
    assert!(!sandbox.home.join(".pki").exists());
}

#[test]
fn nss_registers_the_module_once_and_remove_unregisters_it() {
    let sandbox = Sandbox::new();
    let db = sandbox.home.join(".pki/nssdb");

    let report = sandbox.json(&["nss", "--module", sandbox.softhsm()]);
    assert_eq!(statuses(&report), ["registered"]);
    assert_eq!(nss_registrations(&db), [sandbox.softhsm()]);
    let mode = db.metadata().expect("nssdb").permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "an NSS database is its owner's only");
    // The NSS target names no program, so it writes no file at all.
    assert_eq!(sandbox.files(), BTreeMap::new());
    assert_eq!(report["programs"], serde_json::json!([]));

    // Again: modutil -list finds it, and nothing runs.
    let before = sandbox.snapshot();
    let report = sandbox.json(&["nss", "--module", sandbox.softhsm()]);
    assert_eq!(statuses(&report), ["unchanged"]);
    assert_eq!(report["changes"][0]["commands"], serde_json::json!([]));
    assert_eq!(nss_registrations(&db), [sandbox.softhsm()]);
    assert_eq!(sandbox.snapshot(), before);

    // Another build of the module replaces the registration, not adds one.
    let other = sandbox.root.join("other/libp11agent_pkcs11.so");
    std::fs::create_dir_all(other.parent().expect("parent")).expect("mkdir");
    std::fs::copy(sandbox.hsm.module_path(), &other).expect("copy");
    let report = sandbox.json(&["nss", "--module", other.to_str().expect("utf-8")]);
    assert_eq!(statuses(&report), ["replaced"]);
    assert_eq!(nss_registrations(&db), [other.to_str().expect("utf-8")]);

    let report = sandbox.json(&["--remove", "nss"]);
    assert_eq!(statuses(&report), ["unregistered"]);
    assert_eq!(nss_registrations(&db), Vec::<String>::new());
    let report = sandbox.json(&["--remove", "nss"]);
    assert_eq!(statuses(&report), ["absent"]);
}

#[test]
fn chromium_registers_in_the_shared_database_and_allows_chromiums_executable() {
    let sandbox = Sandbox::new();
    let chromium = sandbox.program("chromium");

    let report = sandbox.json(&["chromium", "--module", sandbox.softhsm()]);
    assert_eq!(statuses(&report), ["registered", "created"]);
    assert_eq!(
        nss_registrations(&sandbox.home.join(".pki/nssdb")),
        [sandbox.softhsm()]
    );
    assert_eq!(
        sandbox.files(),
        BTreeMap::from([(
            "xdg/p11agent/digest.d/chromium.toml".to_owned(),
            policy("chromium", &[&chromium]),
        )])
    );

    let report = sandbox.json(&["chromium", "--module", sandbox.softhsm()]);
    assert_eq!(statuses(&report), ["unchanged", "unchanged"]);

    let report = sandbox.json(&["--remove", "chromium"]);
    assert_eq!(statuses(&report), ["unregistered", "removed"]);
    assert_eq!(sandbox.files(), BTreeMap::new());
}

#[test]
fn firefox_registers_in_every_profile_in_both_places_firefox_keeps_them() {
    let sandbox = Sandbox::new();

    // No profile yet: nothing to configure, and the way to get one.
    let output = sandbox.run(&["firefox", "--module", sandbox.softhsm()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("start Firefox once"),
        "{}",
        stderr(&output)
    );
    assert_eq!(sandbox.files(), BTreeMap::new());

    let firefox = sandbox.program("firefox-esr");
    let legacy = sandbox.firefox_profile(&sandbox.home.join(".mozilla/firefox"), "x1.default-esr");
    let xdg = sandbox.firefox_profile(&sandbox.xdg.join("mozilla/firefox"), "y2.default-esr");
    let report = sandbox.json(&["firefox", "--module", sandbox.softhsm()]);
    assert_eq!(statuses(&report), ["registered", "registered", "created"]);
    for profile in [&legacy, &xdg] {
        assert_eq!(nss_registrations(profile), [sandbox.softhsm()]);
    }
    let files = sandbox.files();
    assert_eq!(
        files.get("xdg/p11agent/digest.d/firefox.toml"),
        Some(&policy("firefox", &[&firefox]))
    );
    let report = sandbox.json(&["firefox", "--module", sandbox.softhsm()]);
    assert_eq!(statuses(&report), ["unchanged", "unchanged", "unchanged"]);
    assert_eq!(sandbox.files(), files);
}

#[test]
fn p11_kit_writes_its_module_file_where_p11_kit_reads_it() {
    let sandbox = Sandbox::new();
    let gnutls_cli = sandbox.program("gnutls-cli");

    let output = sandbox.run(&["p11-kit", "--module", sandbox.module()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let module_file = format!(
        "{}module: {}\n\
         # The agent loads p11-kit's modules when it has none configured: never\n\
         # this one, which would ask the agent itself.\n\
         disable-in: p11agent\n",
        header("p11-kit"),
        sandbox.module()
    );
    assert_eq!(
        sandbox.files(),
        BTreeMap::from([
            (
                "home/.config/pkcs11/modules/p11agent.module".to_owned(),
                module_file
            ),
            (
                "xdg/p11agent/digest.d/p11-kit.toml".to_owned(),
                policy("p11-kit", &[&gnutls_cli])
            ),
        ])
    );
    // p11-kit reads ~/.config whatever XDG_CONFIG_HOME says: the output
    // says why the file is not under it.
    assert!(stdout(&output).contains("whatever XDG_CONFIG_HOME says"));
    let root = nix::unistd::geteuid().is_root();
    assert_eq!(
        stderr(&output).contains("p11-kit skips per-user module files"),
        root,
        "{}",
        stderr(&output)
    );
}

#[test]
fn openssl_writes_a_provider_configuration_and_leaves_out_what_is_not_installed() {
    let mut sandbox = Sandbox::new();
    // Only openssl on PATH: curl is not installed.
    sandbox.system_path = false;
    let openssl = sandbox.program("openssl");

    let report = sandbox.json(&["openssl", "--module", sandbox.module()]);
    assert_eq!(report["not_installed"], serde_json::json!(["curl"]));
    let cnf = format!(
        "{}# OpenSSL 3 with pkcs11-provider over p11agent's PKCS#11 module:\n\
         # OPENSSL_CONF=<this file> openssl ... (the system's openssl.cnf is not read then).\n\
         openssl_conf = openssl_init\n\n\
         [openssl_init]\nproviders = provider_sect\n\n\
         [provider_sect]\ndefault = default_sect\npkcs11 = pkcs11_sect\n\n\
         [default_sect]\nactivate = 1\n\n\
         # OpenSSL finds pkcs11.so in its MODULESDIR (`openssl version -m`).\n\
         [pkcs11_sect]\npkcs11-module-path = {}\nactivate = 1\n",
        header("openssl"),
        sandbox.module()
    );
    assert_eq!(
        sandbox.files(),
        BTreeMap::from([
            ("xdg/p11agent/openssl-pkcs11.cnf".to_owned(), cnf),
            (
                "xdg/p11agent/digest.d/openssl.toml".to_owned(),
                policy("openssl", &[&openssl])
            ),
        ])
    );
    let cnf_path = sandbox.xdg.join("p11agent/openssl-pkcs11.cnf");
    assert!(report["notes"].as_array().expect("notes").iter().any(|n| n
        .as_str()
        .is_some_and(|n| n.contains(&format!("OPENSSL_CONF={}", cnf_path.display())))));

    // Once curl is installed, running setup again adds it.
    let curl = sandbox.program("curl");
    let report = sandbox.json(&["openssl", "--module", sandbox.module()]);
    assert_eq!(statuses(&report), ["unchanged", "updated"]);
    assert_eq!(
        sandbox.files()["xdg/p11agent/digest.d/openssl.toml"],
        policy("openssl", &[&openssl, &curl])
    );
}

#[test]
fn java_writes_the_sunpkcs11_configuration_and_the_properties_naming_it() {
    let sandbox = Sandbox::new();
    // A JDK whose java.security lists SunPKCS11 as provider 12, as
    // OpenJDK 11 to 21 do.
    let jdk = sandbox.root.join("jdk");
    let java = executable(&jdk.join("bin/java"));
    std::fs::create_dir_all(jdk.join("conf/security")).expect("mkdir");
    std::fs::write(
        jdk.join("conf/security/java.security"),
        "security.provider.1=SUN\nsecurity.provider.11=JdkSASL\nsecurity.provider.12=SunPKCS11\n",
    )
    .expect("write");
    std::os::unix::fs::symlink(&java, sandbox.bin.join("java")).expect("symlink");

    let report = sandbox.json(&["java", "--module", sandbox.module()]);
    assert_eq!(statuses(&report), ["created", "created", "created"]);
    let cfg = sandbox.xdg.join("p11agent/sunpkcs11.cfg");
    assert_eq!(
        sandbox.files(),
        BTreeMap::from([
            (
                "xdg/p11agent/sunpkcs11.cfg".to_owned(),
                format!(
                    "{}name = p11agent\nlibrary = {}\n",
                    header("java"),
                    sandbox.module()
                )
            ),
            (
                "xdg/p11agent/java.security".to_owned(),
                format!(
                    "{}# Security properties for java -Djava.security.properties=<this file>:\n\
                     # the JDK's SunPKCS11 provider, configured with p11agent's module.\n\
                     security.provider.12=SunPKCS11 {}\n",
                    header("java"),
                    cfg.display()
                )
            ),
            (
                "xdg/p11agent/digest.d/java.toml".to_owned(),
                policy("java", &[&java])
            ),
        ])
    );
    let notes = report["notes"].to_string();
    assert!(notes.contains("keytool -list -keystore NONE -storetype PKCS11"));
    assert!(notes.contains("-Djava.security.properties="));
}

#[test]
fn ssh_writes_only_the_policy_and_prints_how_to_use_the_module() {
    let sandbox = Sandbox::new();
    let ssh = sandbox.program("ssh");

    let output = sandbox.run(&["ssh", "--module", sandbox.module()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let helper = ssh_pkcs11_helper();
    let mut programs = vec![ssh.as_path()];
    programs.extend(helper.as_deref());
    assert_eq!(
        sandbox.files(),
        BTreeMap::from([(
            "xdg/p11agent/digest.d/ssh.toml".to_owned(),
            policy("ssh", &programs)
        )])
    );
    let text = stdout(&output);
    assert!(text.contains(&format!("ssh -I {} user@host", sandbox.module())));
    assert!(text.contains(&format!("PKCS11Provider {}", sandbox.module())));
    assert!(!sandbox.home.join(".ssh").exists());
}

#[test]
fn a_second_run_of_each_file_target_changes_nothing() {
    let sandbox = Sandbox::new();
    for name in ["gnutls-cli", "openssl", "curl", "java", "ssh"] {
        sandbox.program(name);
    }
    for target in ["p11-kit", "openssl", "java", "ssh"] {
        sandbox.json(&[target, "--module", sandbox.module()]);
        let before = sandbox.snapshot();
        let report = sandbox.json(&[target, "--module", sandbox.module()]);
        assert!(
            statuses(&report).iter().all(|s| *s == "unchanged"),
            "{target}: {report}"
        );
        assert_eq!(sandbox.snapshot(), before, "{target} changed a file");
    }
}

#[test]
fn a_file_setup_did_not_write_is_left_alone() {
    let sandbox = Sandbox::new();
    sandbox.program("gnutls-cli");
    let mine = sandbox.home.join(".config/pkcs11/modules/p11agent.module");
    std::fs::create_dir_all(mine.parent().expect("parent")).expect("mkdir");
    std::fs::write(&mine, "module: /opt/mine.so\n").expect("write");

    let output = sandbox.run(&["p11-kit", "--module", sandbox.module()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("left alone"),
        "{}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("was not written by p11agent setup"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(&mine).expect("read"),
        "module: /opt/mine.so\n"
    );
    let output = sandbox.run(&["--remove", "p11-kit"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(mine.exists());
}

#[test]
fn a_missing_module_names_the_path_and_how_to_build_it() {
    let sandbox = Sandbox::new();
    let missing = sandbox.root.join("nowhere/libp11agent_pkcs11.so");
    for target in ["nss", "openssl", "ssh"] {
        let output = sandbox.run(&[target, "--module", missing.to_str().expect("utf-8")]);
        assert_eq!(output.status.code(), Some(1));
        let message = stderr(&output);
        assert!(
            message.contains(&format!("no PKCS#11 module at {}", missing.display())),
            "{message}"
        );
        assert!(
            message.contains("cargo build --release -p p11agent-pkcs11"),
            "{message}"
        );
        assert!(message.contains("--module"), "{message}");
    }
    assert_eq!(sandbox.files(), BTreeMap::new());
    assert!(!sandbox.home.join(".pki").exists());
}

#[test]
fn without_nss_tools_the_nss_targets_name_the_package() {
    let mut sandbox = Sandbox::new();
    sandbox.system_path = false;
    for args in [&["nss"][..], &["chromium", "--print"][..]] {
        let mut args = args.to_vec();
        args.extend(["--module", sandbox.softhsm()]);
        let output = sandbox.run(&args);
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).contains("is not installed: it comes with NSS's tools"),
            "{}",
            stderr(&output)
        );
        assert!(stderr(&output).contains("libnss3-tools"));
    }
    assert_eq!(sandbox.files(), BTreeMap::new());
    assert!(!sandbox.home.join(".pki").exists());
}
