//! The PKCS#11 modules registered with p11-kit (`pkcs11.conf(5)`): the
//! agent's default modules when none are configured.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The program name the agent answers to in `enable-in:` / `disable-in:`.
pub(crate) const PROGRAM_NAME: &str = "p11agent";

/// Where p11-kit looks for module config files, lowest precedence first:
/// a file in a later directory overrides the fields of the same-named
/// file in an earlier one.
const SYSTEM_CONFIG_DIRS: [&str; 2] = ["/usr/share/p11-kit/modules", "/etc/pkcs11/modules"];

/// The settings of one p11-kit module config file (`NAME.module`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ModuleConfig {
    /// The `module:` value: a path, or a file name relative to p11-kit's
    /// module directory. `None` when absent or blank (the module is
    /// ignored).
    pub module: Option<String>,
    /// `trust-policy: yes`: the module holds trust anchors (system CAs),
    /// not identities.
    pub trust_policy: bool,
    /// `enable-in:`: the only programs that load the module; `None` when
    /// absent (every program), an empty list when present but blank (no
    /// program).
    pub enable_in: Option<Vec<String>>,
    /// `disable-in:`: programs that do not load the module.
    pub disable_in: Vec<String>,
    /// `priority:` (default 0): higher sorts first.
    pub priority: i64,
    /// `remote:` is set: the module runs in another process, which the
    /// agent does not support.
    pub remote: bool,
}

impl ModuleConfig {
    /// Parses the text of one module config file (the daemon reads them
    /// through [`default_modules`]; tests parse text).
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> ModuleConfig {
        ModuleConfig::from_fields(&parse_fields(text))
    }

    fn from_fields(fields: &BTreeMap<String, String>) -> ModuleConfig {
        let get = |name: &str| fields.get(name).map(String::as_str);
        ModuleConfig {
            module: get("module").filter(|v| !v.is_empty()).map(str::to_owned),
            trust_policy: get("trust-policy").is_some_and(is_yes),
            enable_in: get("enable-in").map(program_list),
            disable_in: get("disable-in").map(program_list).unwrap_or_default(),
            priority: get("priority").and_then(|v| v.parse().ok()).unwrap_or(0),
            remote: get("remote").is_some_and(|v| !v.is_empty()),
        }
    }

    /// Whether `program` should load this module for its identities: a
    /// module is named, it is local, it is not a trust-policy module, and
    /// `enable-in` / `disable-in` allow `program`.
    pub(crate) fn wanted_by(&self, program: &str) -> bool {
        self.module.is_some()
            && !self.remote
            && !self.trust_policy
            && self
                .enable_in
                .as_ref()
                .is_none_or(|list| list.iter().any(|p| p == program))
            && !self.disable_in.iter().any(|p| p == program)
    }
}

/// Splits a config file into `name: value` fields. Blank lines and lines
/// starting with `#` are skipped; white space around names and values is
/// stripped; a later duplicate wins.
fn parse_fields(text: &str) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            fields.insert(name.trim().to_owned(), value.trim().to_owned());
        }
    }
    fields
}

fn is_yes(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "yes" | "true" | "on" | "1"
    )
}

/// A comma and/or space separated list of program names.
fn program_list(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `file_name` names a module config: it starts with an ASCII
/// letter or digit and ends with `.module`.
fn is_module_file_name(file_name: &str) -> bool {
    file_name.len() > ".module".len()
        && file_name.ends_with(".module")
        && file_name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Resolves a `module:` value: an absolute path is taken as is; a
/// relative one is looked up in `module_dirs`, first existing file wins.
pub(crate) fn resolve_module_path(module: &str, module_dirs: &[PathBuf]) -> Option<PathBuf> {
    let path = Path::new(module);
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    module_dirs
        .iter()
        .map(|dir| dir.join(path))
        .find(|candidate| candidate.exists())
}

/// The modules that `program` should load according to the module config
/// files in `config_dirs` (lowest precedence first; a same-named file in
/// a later directory overrides fields of the earlier one), with relative
/// module names resolved against `module_dirs`.
///
/// The result is ordered by `priority` (highest first), then by config
/// name, and de-duplicated by canonical path. Modules whose file does not
/// exist are left out with a warning.
pub(crate) fn modules_from_config_dirs(
    config_dirs: &[PathBuf],
    module_dirs: &[PathBuf],
    program: &str,
) -> Vec<PathBuf> {
    // Config name -> merged fields.
    let mut configs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for dir in config_dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => {
                tracing::warn!(dir = %dir.display(), error = %err, "cannot read p11-kit module configs");
                continue;
            }
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.to_owned();
                is_module_file_name(&name).then(|| (name, entry.path()))
            })
            .collect();
        files.sort();
        for (file_name, path) in files {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let name = file_name.trim_end_matches(".module").to_owned();
                    configs.entry(name).or_default().extend(parse_fields(&text));
                }
                Err(err) => {
                    tracing::warn!(file = %path.display(), error = %err, "cannot read p11-kit module config");
                }
            }
        }
    }

    let mut wanted: Vec<(i64, String, ModuleConfig)> = configs
        .into_iter()
        .map(|(name, fields)| {
            let config = ModuleConfig::from_fields(&fields);
            (config.priority, name, config)
        })
        .filter(|(_, name, config)| {
            let wanted = config.wanted_by(program);
            if !wanted {
                tracing::debug!(config = %name, "p11-kit module not used by {program}");
            }
            wanted
        })
        .collect();
    wanted.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));

    let mut seen = HashSet::new();
    let mut modules = Vec::new();
    for (_, name, config) in wanted {
        let Some(module) = config.module.as_deref() else {
            continue;
        };
        let Some(path) = resolve_module_path(module, module_dirs) else {
            tracing::warn!(config = %name, module, "p11-kit module not found in the module directories");
            continue;
        };
        let canonical = match path.canonicalize() {
            Ok(canonical) => canonical,
            Err(err) => {
                tracing::warn!(config = %name, module = %path.display(), error = %err, "p11-kit module not found");
                continue;
            }
        };
        if seen.insert(canonical) {
            modules.push(path);
        }
    }
    modules
}

/// The directories in which p11-kit resolves relative module names:
/// `pkg-config --variable=p11_module_path p11-kit-1` when that answers,
/// then the usual multiarch and lib directories.
pub(crate) fn p11kit_module_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(output) = Command::new("pkg-config")
        .args(["--variable=p11_module_path", "p11-kit-1"])
        .output()
    {
        if output.status.success() {
            if let Ok(text) = String::from_utf8(output.stdout) {
                dirs.extend(
                    text.split(':')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(PathBuf::from),
                );
            }
        }
    }
    let multiarch = format!("/usr/lib/{}-linux-gnu/pkcs11", std::env::consts::ARCH);
    for dir in [
        multiarch.as_str(),
        "/usr/lib64/pkcs11",
        "/usr/lib/pkcs11",
        "/usr/local/lib/pkcs11",
    ] {
        let dir = PathBuf::from(dir);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// The p11-kit module config directories, lowest precedence first: the
/// package and system directories, then `~/.config/pkcs11/modules`.
pub(crate) fn p11kit_config_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = SYSTEM_CONFIG_DIRS.iter().map(PathBuf::from).collect();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        dirs.push(PathBuf::from(home).join(".config/pkcs11/modules"));
    }
    dirs
}

/// The PKCS#11 modules registered with p11-kit that hold identities: the
/// agent's default when no module is configured. Trust-policy modules
/// and modules disabled for `p11agent` are left out; the list is
/// de-duplicated by canonical path.
pub(crate) fn default_modules() -> Vec<PathBuf> {
    modules_from_config_dirs(&p11kit_config_dirs(), &p11kit_module_dirs(), PROGRAM_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_plain_module_file() {
        let config = ModuleConfig::parse(
            "# This file describes how to load the opensc module\nmodule: opensc-pkcs11.so\n",
        );
        assert_eq!(config.module.as_deref(), Some("opensc-pkcs11.so"));
        assert!(!config.trust_policy);
        assert_eq!(config.enable_in, None);
        assert!(config.disable_in.is_empty());
        assert_eq!(config.priority, 0);
        assert!(config.wanted_by(PROGRAM_NAME));
    }

    #[test]
    fn the_trust_module_is_not_wanted() {
        let config = ModuleConfig::parse(
            "# comment\nmodule: p11-kit-trust.so\npriority: 1\ntrust-policy: yes\n\
             x-trust-lookup: pkcs11:library-description=PKCS%2311%20Kit%20Trust%20Module\n\
             disable-in: p11-kit-proxy\nx-init-reserved:\n",
        );
        assert_eq!(config.module.as_deref(), Some("p11-kit-trust.so"));
        assert!(config.trust_policy);
        assert_eq!(config.priority, 1);
        assert_eq!(config.disable_in, vec!["p11-kit-proxy"]);
        assert!(!config.wanted_by(PROGRAM_NAME));
    }

    #[test]
    fn white_space_around_names_and_values_is_ignored() {
        let config = ModuleConfig::parse("   module :   /opt/x/lib x.so  \n\ttrust-policy:no\n");
        assert_eq!(config.module.as_deref(), Some("/opt/x/lib x.so"));
        assert!(!config.trust_policy);
    }

    #[test]
    fn enable_in_and_disable_in_name_programs() {
        let only_firefox = ModuleConfig::parse("module: a.so\nenable-in: firefox, seahorse\n");
        assert!(!only_firefox.wanted_by(PROGRAM_NAME));
        assert!(only_firefox.wanted_by("seahorse"));

        let for_us = ModuleConfig::parse("module: a.so\nenable-in: ssh,p11agent\n");
        assert!(for_us.wanted_by(PROGRAM_NAME));

        let enabled_nowhere = ModuleConfig::parse("module: a.so\nenable-in:\n");
        assert_eq!(enabled_nowhere.enable_in, Some(vec![]));
        assert!(!enabled_nowhere.wanted_by(PROGRAM_NAME));

        let not_us = ModuleConfig::parse("module: a.so\ndisable-in: firefox p11agent\n");
        assert!(!not_us.wanted_by(PROGRAM_NAME));
        assert!(not_us.wanted_by("ssh"));
    }

    #[test]
    fn blank_module_and_remote_modules_are_not_wanted() {
        assert!(!ModuleConfig::parse("module:\n").wanted_by(PROGRAM_NAME));
        assert!(!ModuleConfig::parse("priority: 3\n").wanted_by(PROGRAM_NAME));
        assert!(
            !ModuleConfig::parse("module: a.so\nremote: |ssh host p11-kit remote a.so\n")
                .wanted_by(PROGRAM_NAME)
        );
    }

    #[test]
    fn default_modules_leave_out_the_trust_module() {
        let modules = default_modules();
        eprintln!("p11-kit modules here: {modules:?}");
        assert!(modules
            .iter()
            .all(|m| m.file_name().is_some_and(|n| n != "p11-kit-trust.so")));
    }

    #[test]
    fn module_file_names() {
        assert!(is_module_file_name("opensc-pkcs11.module"));
        assert!(is_module_file_name("9.module"));
        assert!(!is_module_file_name(".module"));
        assert!(!is_module_file_name(".hidden.module"));
        assert!(!is_module_file_name("opensc.module.dpkg-old"));
        assert!(!is_module_file_name("README"));
    }

    #[test]
    fn relative_module_names_resolve_against_the_module_dirs() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = tmp.path().join("first");
        let second = tmp.path().join("second");
        std::fs::create_dir_all(&first).expect("mkdir");
        std::fs::create_dir_all(&second).expect("mkdir");
        std::fs::write(second.join("m.so"), b"").expect("write");
        let dirs = vec![first, second.clone()];
        assert_eq!(
            resolve_module_path("m.so", &dirs),
            Some(second.join("m.so"))
        );
        assert_eq!(resolve_module_path("missing.so", &dirs), None);
        assert_eq!(
            resolve_module_path("/abs/m.so", &dirs),
            Some(PathBuf::from("/abs/m.so"))
        );
    }

    #[test]
    fn config_dirs_merge_filter_sort_and_deduplicate() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path();
        let package = root.join("package");
        let system = root.join("system");
        let user = root.join("user");
        let libs = root.join("lib");
        for dir in [&package, &system, &user, &libs] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        for lib in ["a.so", "b.so", "trust.so", "gone.so", "hi.so"] {
            std::fs::write(libs.join(lib), b"").expect("write");
        }
        // The same library under another name: de-duplicated.
        std::os::unix::fs::symlink(libs.join("a.so"), libs.join("a-link.so")).expect("symlink");
        let write = |dir: &Path, name: &str, text: &str| {
            std::fs::write(dir.join(name), text).expect("write");
        };
        write(&package, "a.module", "module: a.so\n");
        write(&package, "b.module", "module: b.so\n");
        write(
            &package,
            "trust.module",
            "module: trust.so\ntrust-policy: yes\n",
        );
        write(&package, "gone.module", "module: gone.so\n");
        write(&package, "alias.module", "module: a-link.so\n");
        write(&package, "missing.module", "module: not-there.so\n");
        write(
            &package,
            "hi.module",
            &format!("module: {}\npriority: 5\n", libs.join("hi.so").display()),
        );
        write(&package, "notes.txt", "module: b.so\n");
        // The system config disables `gone` for us; the user's blanks `b`.
        write(&system, "gone.module", "disable-in: p11agent\n");
        write(&user, "b.module", "module:\n");

        let modules = modules_from_config_dirs(
            &[package, system, user],
            std::slice::from_ref(&libs),
            PROGRAM_NAME,
        );
        assert_eq!(modules, vec![libs.join("hi.so"), libs.join("a.so")]);
    }
}
