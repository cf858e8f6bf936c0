//! `p11agent setup TARGET`: makes another program use the agent's PKCS#11
//! module (`libp11agent_pkcs11.so`), and allows that program's signatures
//! over digests in the agent's digest policy.
//!
//! Setup writes only under `$HOME` and `$XDG_CONFIG_HOME`, and only files
//! that are its own: each starts with a marker line, and a file at one of
//! its paths without that line is left alone, with a warning. NSS
//! databases are changed only through `modutil`, and only for the module
//! named `p11agent`. Running setup twice changes nothing the second time.
//!
//! This file only reads the arguments and picks the target's steps. Each
//! family of targets has its file (`nss`, `firefox`, `p11kit`, `openssl`,
//! `java`, `ssh`), which adds its steps to [`Setup`]; `report` records and
//! prints what they did, `files` writes and removes setup's own files,
//! `policy` the digest policy, `programs` finds the executables a policy
//! names, and `target` lists the targets. The files import one another
//! and never this one, so that no two of them depend on each other.

mod files;
mod firefox;
mod java;
mod nss;
mod openssl;
mod p11kit;
mod policy;
mod programs;
mod report;
mod ssh;
mod target;

use std::path::{Path, PathBuf};

use files::utf8;
use programs::Places;
use report::Setup;
use target::Target;

use super::error::{CliError, SetupError};

/// The module's file name, as cargo builds the `p11agent-pkcs11` crate.
const MODULE_FILE: &str = "libp11agent_pkcs11.so";

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

/// `p11agent setup`.
pub(super) fn run(args: SetupArgs) -> Result<(), CliError> {
    let places = Places::from_env()?;
    let module = if args.remove {
        None
    } else {
        Some(module_path(args.module)?)
    };
    let mut setup = Setup::new(
        &places,
        args.target,
        args.print,
        args.remove,
        module.clone(),
    );
    match module {
        Some(module) => setup.install(&module)?,
        None => setup.uninstall()?,
    }
    setup.report.print(args.json)
}

/// The module to configure: as given, or beside the running binary, where
/// `cargo build --release` puts both, or in `../lib/p11agent/` from it,
/// where the Debian package puts it (`/usr/lib/p11agent/` for
/// `/usr/bin/p11agent`). Canonical, since the files written must name it
/// from anywhere.
fn module_path(given: Option<PathBuf>) -> Result<PathBuf, SetupError> {
    let (path, default) = match given {
        Some(path) => (path, false),
        None => {
            let exe = std::env::current_exe().map_err(SetupError::CurrentExe)?;
            let dir = exe.parent().unwrap_or(Path::new("/"));
            let beside = dir.join(MODULE_FILE);
            let packaged = dir.join("../lib/p11agent").join(MODULE_FILE);
            let found = if !beside.is_file() && packaged.is_file() {
                packaged
            } else {
                beside
            };
            (found, true)
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

impl Setup<'_> {
    /// Makes the target load `module`, then writes its digest policy.
    fn install(&mut self, module: &Path) -> Result<(), SetupError> {
        let module_text = utf8(module)?;
        match self.target {
            Target::Nss => self.install_nss(module)?,
            Target::Chromium => self.install_chromium(module)?,
            Target::Firefox => self.install_firefox(module)?,
            Target::P11Kit => self.install_p11kit(module_text)?,
            Target::Openssl => self.install_openssl(module_text)?,
            Target::Java => self.install_java(module_text)?,
            Target::Ssh => self.install_ssh(module_text),
        }
        self.write_digest_policy()
    }

    /// Undoes what `install` did: nothing for ssh, whose configuration
    /// setup only prints.
    fn uninstall(&mut self) -> Result<(), SetupError> {
        match self.target {
            Target::Nss | Target::Chromium => self.uninstall_nss()?,
            Target::Firefox => self.uninstall_firefox()?,
            Target::P11Kit => self.uninstall_p11kit()?,
            Target::Openssl => self.uninstall_openssl()?,
            Target::Java => self.uninstall_java()?,
            Target::Ssh => {}
        }
        self.remove_digest_policy()
    }
}
