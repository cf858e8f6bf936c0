//! Recognising p11agent's own PKCS#11 module (`libp11agent_pkcs11.so`),
//! which forwards every call to this agent: an agent that loaded it would
//! be its own client, and each of its calls would wait on itself.
//!
//! The module is recognised by its file name, or, under any name, by the
//! data symbol it exports for this purpose, looked up before the module
//! is initialised. Opening a library runs its initialisers, and this is
//! the one place besides `raw.rs` that needs `unsafe`: `dlopen` and
//! `dlsym` through libloading.
#![allow(unsafe_code)]

use std::fmt;
use std::path::Path;

/// What p11agent's PKCS#11 module file names start with.
const FILE_PREFIX: &str = "libp11agent_pkcs11";

/// The data symbol p11agent's PKCS#11 module exports to say what it is.
const MARKER: &str = "p11agent_pkcs11_module_marker";

/// How a module was recognised as p11agent's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnModule {
    /// Its file name (or that of the file a link leads to).
    FileName,
    /// The symbol it exports.
    Marker,
}

impl fmt::Display for OwnModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnModule::FileName => write!(f, "its file name starts with {FILE_PREFIX}"),
            OwnModule::Marker => write!(f, "it exports {MARKER}"),
        }
    }
}

/// Whether the module at `path` is p11agent's own, and how that shows.
/// A file that cannot be opened is not: loading it will say why.
pub(crate) fn own_module(path: &Path) -> Option<OwnModule> {
    let named = |p: &Path| {
        p.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(FILE_PREFIX))
    };
    if named(path) || path.canonicalize().is_ok_and(|real| named(&real)) {
        return Some(OwnModule::FileName);
    }
    exports_marker(path).then_some(OwnModule::Marker)
}

fn exports_marker(path: &Path) -> bool {
    // SAFETY: opening the library runs its initialisers, as loading it
    // as a module right after would; nothing else of it runs here.
    let library = match unsafe { libloading::Library::new(path) } {
        Ok(library) => library,
        Err(err) => {
            tracing::debug!(module = %path.display(), error = %err, "cannot open the module to look for p11agent's marker");
            return false;
        }
    };
    // SAFETY: the symbol's address is only compared with nothing: it is
    // never read or called, so its type does not matter.
    unsafe { library.get::<*const u8>(MARKER.as_bytes()) }.is_ok()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::process::Command;

    use super::super::testing::{SoftHsm, SOFTHSM_MODULE};
    use super::*;

    #[test]
    fn recognised_by_file_name_or_the_name_a_link_leads_to() {
        let dir = tempfile::tempdir().expect("tempdir");
        // No file at all: the name says it.
        for name in ["libp11agent_pkcs11.so", "libp11agent_pkcs11.so.0.1"] {
            assert_eq!(
                own_module(&dir.path().join(name)),
                Some(OwnModule::FileName),
                "{name}"
            );
        }
        let real = dir.path().join("libp11agent_pkcs11.so");
        std::fs::write(&real, b"").expect("write");
        let link = dir.path().join("p11agent.so");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        assert_eq!(own_module(&link), Some(OwnModule::FileName));
    }

    #[test]
    fn other_modules_and_missing_files_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(own_module(&dir.path().join("opensc-pkcs11.so")), None);
        assert_eq!(own_module(&dir.path().join("p11agent_pkcs11.so")), None);
        let not_a_library = dir.path().join("module.so");
        std::fs::write(&not_a_library, b"not ELF").expect("write");
        assert_eq!(own_module(&not_a_library), None);
        // A real module, opened while no other test uses SoftHSM.
        if let Some(_softhsm) = SoftHsm::new() {
            assert_eq!(own_module(Path::new(SOFTHSM_MODULE)), None);
        }
    }

    /// A shared library exporting `symbol`, built with the C compiler;
    /// `None` (the test is then skipped) without one.
    fn library_exporting(dir: &Path, name: &str, symbol: &str) -> Option<PathBuf> {
        let source = dir.join(format!("{name}.c"));
        std::fs::write(&source, format!("const char {symbol}[] = \"p11agent\";\n")).expect("write");
        let library = dir.join(name);
        match Command::new("cc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&source)
            .output()
        {
            Ok(out) if out.status.success() => Some(library),
            other => {
                eprintln!("no C compiler to build a test library ({other:?}); not run");
                None
            }
        }
    }

    #[test]
    fn recognised_under_any_name_by_its_marker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let Some(marked) = library_exporting(dir.path(), "forwarder.so", MARKER) else {
            return;
        };
        assert_eq!(own_module(&marked), Some(OwnModule::Marker));
        let Some(other) = library_exporting(dir.path(), "other.so", "another_marker") else {
            return;
        };
        assert_eq!(own_module(&other), None);
    }
}
