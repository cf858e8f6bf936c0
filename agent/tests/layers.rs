//! The agent's layers point down only: token ← store ← select ← service
//! ← server ← cli (docs/ARCHITECTURE.md). This test reads the sources
//! and fails when a file refers to a module its layer may not use, so a
//! shortcut upwards is caught when it is written, not when it has grown
//! into a cycle.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Each top-level module of agent/src, and the top-level modules its
/// non-test code may refer to as `crate::...`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("process", &[]),
    ("memory", &[]),
    ("pin", &["process"]),
    ("token", &["pin"]),
    ("store", &["token"]),
    ("select", &["store", "token", "process"]),
    ("service", &["select", "store", "token", "pin", "memory"]),
    ("server", &["service", "select", "store", "token"]),
    (
        "config",
        &["service", "server", "select", "store", "token", "pin"],
    ),
    ("daemon", &["config", "server", "service"]),
    (
        "cli",
        &[
            "config", "daemon", "service", "server", "select", "store", "token", "pin", "process",
        ],
    ),
];

/// Layers below the server never talk to the agent as a client does.
const NO_CLIENT_CRATE: &[&str] = &["token", "store", "select", "service", "server"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every .rs file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The files declared as `#[cfg(test)] mod name;`: test code, skipped.
fn test_only_files(files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut skipped = BTreeSet::new();
    for file in files {
        let text = fs::read_to_string(file).expect("read source");
        let dir = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs") => file.parent().expect("parent").to_path_buf(),
            _ => file.with_extension(""),
        };
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            if line.trim() != "#[cfg(test)]" {
                continue;
            }
            let Some(next) = lines.peek() else { break };
            let declared = next
                .trim()
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'));
            if let Some(name) = declared {
                skipped.insert(dir.join(format!("{name}.rs")));
                skipped.insert(dir.join(name).join("mod.rs"));
            }
        }
    }
    skipped
}

/// The part of a file before its inline test module.
fn product_code(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(end) => &text[..end],
        None => text,
    }
}

/// The top-level modules `code` names as `crate::NAME`.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `p11agent_crate::`
        }
        let name: String = code[at + "crate::".len()..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        found.insert(name);
    }
    found
}

#[test]
fn layers_point_down_only() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let tests = test_only_files(&files);
    let mut violations = Vec::new();
    for file in files.iter().filter(|f| !tests.contains(*f)) {
        let relative = file.strip_prefix(&root).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|c| c.trim_end_matches(".rs").to_owned())
            .expect("a top-level module");
        let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| *name == top) else {
            continue; // lib.rs, main.rs
        };
        let text = fs::read_to_string(file).expect("read source");
        let code = product_code(&text);
        for used in crate_modules(code) {
            if used != top && !allowed.contains(&used.as_str()) {
                violations.push(format!("{}: crate::{used}", relative.display()));
            }
        }
        if NO_CLIENT_CRATE.contains(&top.as_str()) && code.contains("p11agent_client") {
            violations.push(format!("{}: p11agent_client", relative.display()));
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layering (token <- store <- select <- service <- server <- cli):\n{}",
        violations.join("\n")
    );
}

/// The check itself sees what it is meant to: a reference upwards in a
/// lower layer's file is reported.
#[test]
fn the_check_finds_an_upward_reference() {
    let code = "use crate::store::Store;\nfn f() { crate::server::serve(); }\n";
    let found = crate_modules(code);
    assert!(
        found.contains("store") && found.contains("server"),
        "{found:?}"
    );
    assert!(crate_modules("use p11agent_crate::x;").is_empty());
    let with_tests = "use crate::token::X;\n#[cfg(test)]\nmod tests {\n use crate::cli::Y;\n}\n";
    assert_eq!(
        crate_modules(product_code(with_tests)),
        BTreeSet::from(["token".to_owned()])
    );
}
