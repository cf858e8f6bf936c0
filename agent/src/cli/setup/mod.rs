//! `p11agent setup TARGET`: makes another program use the agent's PKCS#11
//! module (`libp11agent_pkcs11.so`), and allows that program's signatures
//! over digests in the agent's digest policy.
//!
//! Setup writes only under `$HOME` and `$XDG_CONFIG_HOME`, and only files
//! that are its own: each starts with a marker line, and a file at one of
//! its paths without that line is left alone, with a warning. NSS
//! databases are changed only through `modutil`, and only for the module
//! named `p11agent`. Running setup twice changes nothing the second time.

use std::path::{Path, PathBuf};

mod files;
mod java;
mod nss;
mod openssl;
mod p11kit;
mod programs;
mod report;
mod session;
mod ssh;

use programs::{
    Places, Program, CHROMIUM, CURL, FIREFOX, GNUTLS_CLI, JAVA, OPENSSL, SSH, SSH_PKCS11_HELPER,
};
use report::{print_text, Report};
use session::Setup;

use super::error::{CliError, SetupError};
use super::format::print_json;

/// The module's file name, as cargo builds the `p11agent-pkcs11` crate.
const MODULE_FILE: &str = "libp11agent_pkcs11.so";
/// The name the module is registered under in NSS databases.
const NSS_NAME: &str = "p11agent";
/// The first line of every file setup writes: how it knows a file is its
/// own to rewrite or delete.
const MARKER: &str = "# Written by `p11agent setup";

/// Arguments of `p11agent setup`.
#[derive(Debug, clap::Args)]
pub(crate) struct SetupArgs {
    /// The program to configure.
    #[arg(value_enum)]
    target: Target,
    /// Show exactly what would be written and run, and change nothing.
    #[arg(long)]
    print: bool,
    /// Undo the setup of TARGET: delete the files setup wrote for it and
    /// unregister the module from the NSS databases.
    #[arg(long)]
    remove: bool,
    /// The agent's PKCS#11 module [default: libp11agent_pkcs11.so beside
    /// the p11agent binary].
    #[arg(long, value_name = "PATH", conflicts_with = "remove")]
    module: Option<PathBuf>,
    /// Print what was done (or, with --print, what would be) as JSON.
    #[arg(long)]
    json: bool,
}

/// The programs setup knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Target {
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
    fn name(self) -> &'static str {
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
    fn programs(self) -> &'static [Program] {
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

/// `p11agent setup`.
pub(super) fn run(args: SetupArgs) -> Result<(), CliError> {
    let places = Places::from_env()?;
    let module = if args.remove {
        None
    } else {
        Some(module_path(args.module)?)
    };
    let mut setup = Setup {
        places: &places,
        target: args.target,
        print: args.print,
        report: Report {
            target: args.target.name(),
            remove: args.remove,
            print: args.print,
            module: module.clone(),
            changes: Vec::new(),
            programs: Vec::new(),
            not_installed: Vec::new(),
            notes: Vec::new(),
            warnings: Vec::new(),
        },
    };
    match module {
        Some(module) => setup.install(&module)?,
        None => setup.uninstall()?,
    }
    let report = setup.report;
    if args.json {
        print_json(&report)
    } else {
        print_text(&report)
    }
}

/// The module to configure: as given, or beside the running binary, where
/// `cargo build --release` puts both. Canonical, since the files written
/// must name it from anywhere.
fn module_path(given: Option<PathBuf>) -> Result<PathBuf, SetupError> {
    let (path, default) = match given {
        Some(path) => (path, false),
        None => {
            let exe = std::env::current_exe().map_err(SetupError::CurrentExe)?;
            let dir = exe.parent().unwrap_or(Path::new("/"));
            (dir.join(MODULE_FILE), true)
        }
    };
    match path.canonicalize() {
        Ok(canonical) if canonical.is_file() => {
            utf8(&canonical)?;
            Ok(canonical)
        }
        _ => Err(SetupError::ModuleMissing { path, default }),
    }
}

/// Text files name paths as UTF-8.
fn utf8(path: &Path) -> Result<&str, SetupError> {
    path.to_str()
        .ok_or_else(|| SetupError::NotUtf8(path.to_path_buf()))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;

    use super::files::*;
    use super::java::*;
    use super::nss::*;
    use super::programs::*;
    use super::report::*;
    use super::*;

    #[test]
    fn finds_the_library_of_the_named_module_in_a_listing() {
        let listing = "\nListing of PKCS #11 Modules\n\
            -----------------------------------------------------------\n  \
            1. NSS Internal PKCS #11 Module\n\t   uri: pkcs11:library-manufacturer=Mozilla\n\t \
            slots: 2 slots attached\n\n  \
            2. p11agent-old\n\tlibrary name: /old.so\n\n  \
            3. p11agent\n\tlibrary name: /opt/p 11/libp11agent_pkcs11.so\n\t \
            slots: There are no slots attached to this module\n\tstatus: Not loaded\n";
        assert_eq!(
            registered_library(listing, "p11agent").as_deref(),
            Some("/opt/p 11/libp11agent_pkcs11.so")
        );
        assert_eq!(
            registered_library(listing, "p11agent-old").as_deref(),
            Some("/old.so")
        );
        assert_eq!(registered_library(listing, "other"), None);
        // The internal module has no library line: nothing leaks to the next.
        assert_eq!(
            registered_library(listing, "NSS Internal PKCS #11 Module"),
            None
        );
    }

    #[test]
    fn reads_profile_paths_from_profiles_ini() {
        let ini = "[Install4F96D1932A9F858E]\nDefault=abc.default-esr\nLocked=1\n\n\
            [Profile1]\nName=default\nIsRelative=1\nPath=abc.default\n\n\
            [Profile0]\nName=work\nIsRelative=0\nPath=/data/work-profile\n\n\
            [Profile2]\nName=odd\nIsRelative=0\nPath=not-absolute\n\n\
            [General]\nStartWithLastProfile=1\nVersion=2\n";
        assert_eq!(
            profile_paths(ini),
            vec![
                PathBuf::from("abc.default"),
                PathBuf::from("/data/work-profile")
            ]
        );
    }

    #[test]
    fn quotes_words_for_the_shell_only_when_needed() {
        assert_eq!(shell_quote("/usr/lib/x.so"), "/usr/lib/x.so");
        assert_eq!(shell_quote("sql:/home/a b"), "'sql:/home/a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn a_digest_policy_names_each_program_in_a_table() {
        let text = digest_policy(
            Target::Ssh,
            &["/usr/bin/ssh", "/usr/lib/openssh/ssh-pkcs11-helper"],
        );
        assert!(text.starts_with(MARKER));
        let parsed: toml::Table = toml::from_str(&text).expect("TOML");
        let tables = parsed["allow_digest"].as_array().expect("array of tables");
        let programs: Vec<&str> = tables
            .iter()
            .map(|t| t["program"].as_str().expect("program"))
            .collect();
        assert_eq!(
            programs,
            ["/usr/bin/ssh", "/usr/lib/openssh/ssh-pkcs11-helper"]
        );
        assert!(tables
            .iter()
            .all(|t| t.as_table().is_some_and(|t| t.len() == 1)));
        // A path TOML must escape stays the same path.
        let odd = digest_policy(Target::Java, &[r#"/opt/"j"\bin/java"#]);
        let parsed: toml::Table = toml::from_str(&odd).expect("TOML");
        assert_eq!(
            parsed["allow_digest"][0]["program"].as_str(),
            Some(r#"/opt/"j"\bin/java"#)
        );
    }

    /// Writes an executable file starting with `head`.
    fn executable(path: &Path, head: &[u8]) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, head).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn names_the_executable_a_launcher_script_starts_and_follows_symlinks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        let (bin, lib) = (root.join("bin"), root.join("lib"));
        let real: &'static str = Box::leak(
            lib.join("prog")
                .to_str()
                .expect("utf-8")
                .to_owned()
                .into_boxed_str(),
        );
        let program = Program {
            name: "prog",
            commands: &["prog", "prog-alias"],
            elsewhere: Box::leak(vec![real].into_boxed_slice()),
        };
        let places = Places {
            home: root.join("home"),
            config_home: root.join("home/.config"),
            p11agent_dir: root.join("home/.config/p11agent"),
            path: Some(OsString::from(format!("{}:relative/dir", bin.display()))),
            root: false,
        };
        // Not installed at all.
        assert!(places.find(&program).is_empty());

        // Only a launcher script on PATH: the executable it starts.
        executable(
            &bin.join("prog"),
            b"#!/bin/sh\nexec /elsewhere/prog \"$@\"\n",
        );
        assert!(places.find(&program).is_empty());
        executable(&lib.join("prog"), b"\x7fELF rest of the file");
        assert_eq!(places.find(&program), [lib.join("prog")]);

        // An executable on PATH, through a symlink, and once for two names.
        std::fs::remove_file(bin.join("prog")).expect("rm");
        executable(&lib.join("other"), b"\x7fELF another");
        std::os::unix::fs::symlink(lib.join("other"), bin.join("prog")).expect("symlink");
        std::os::unix::fs::symlink(lib.join("other"), bin.join("prog-alias")).expect("symlink");
        assert_eq!(places.find(&program), [lib.join("other")]);

        // A file that is not executable is not a program.
        let plain = root.join("plain");
        std::fs::write(&plain, b"\x7fELF").expect("write");
        assert!(!is_executable(&plain));
    }

    #[test]
    fn finds_sunpkcs11_in_the_jdks_provider_list() {
        let jdk = tempfile::tempdir().expect("tempdir");
        let security = jdk.path().join("conf/security");
        std::fs::create_dir_all(&security).expect("mkdir");
        let java = jdk.path().join("bin/java");
        std::fs::write(
            security.join("java.security"),
            "security.provider.1=SUN\n#security.provider.13=SunPKCS11\n\
             security.provider.11=JdkSASL\nsecurity.provider.12=SunPKCS11\n",
        )
        .expect("write");
        assert_eq!(sunpkcs11_slot(&java), Some(12));
        std::fs::write(
            security.join("java.security"),
            "security.provider.1=SUN\nsecurity.provider.2=SunRsaSign\n",
        )
        .expect("write");
        assert_eq!(sunpkcs11_slot(&java), Some(3));
        std::fs::remove_file(security.join("java.security")).expect("rm");
        assert_eq!(sunpkcs11_slot(&java), None);
    }
}
