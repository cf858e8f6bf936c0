//! The Debian package (`scripts/package`, cargo deb): its asset list in
//! agent/Cargo.toml ships everything a user needs, from files that
//! exist. Building the package takes a release build, too long for the
//! suite; `dpkg-deb --contents target/debian/p11agent_*.deb` shows the
//! same list after `scripts/package`.

use std::path::Path;

#[test]
fn the_package_ships_binaries_units_man_page_completions_and_example_config() {
    let agent = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../agent"));
    let manifest: toml::Value = toml::from_str(
        &std::fs::read_to_string(agent.join("Cargo.toml")).expect("agent/Cargo.toml"),
    )
    .expect("agent/Cargo.toml parses");
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("[package.metadata.deb] assets");
    let mut installed = Vec::new();
    for asset in assets {
        let source = asset[0].as_str().expect("source");
        let dest = asset[1].as_str().expect("destination");
        // Built by scripts/package before cargo deb runs.
        if !source.starts_with("target/") {
            assert!(
                agent.join(source).is_file(),
                "{source} is not in the repository"
            );
        }
        let name = Path::new(source).file_name().expect("file name");
        installed.push(if dest.ends_with('/') {
            format!("{dest}{}", name.to_string_lossy())
        } else {
            dest.to_owned()
        });
    }
    for wanted in [
        "usr/bin/p11agent",
        "usr/lib/p11agent/libp11agent_pkcs11.so",
        "usr/lib/systemd/user/p11agent.socket",
        "usr/lib/systemd/user/p11agent.service",
        "usr/share/man/man1/p11agent.1",
        "usr/share/bash-completion/completions/p11agent",
        "usr/share/zsh/vendor-completions/_p11agent",
        "usr/share/fish/vendor_completions.d/p11agent.fish",
        "usr/share/doc/p11agent/config.toml.example",
    ] {
        assert!(
            installed.iter().any(|i| i == wanted),
            "the package does not install {wanted}: {installed:#?}"
        );
    }
    // The service runs the binary where the package puts it.
    let service = std::fs::read_to_string(agent.join("../dist/systemd/p11agent.service"))
        .expect("service unit");
    assert!(
        service.contains("ExecStart=/usr/bin/p11agent daemon"),
        "{service}"
    );
}
