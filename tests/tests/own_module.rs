//! The agent never loads p11agent's own PKCS#11 module, which forwards
//! to the agent: named with `--module` it refuses to start; registered
//! with p11-kit it leaves it out. SoftHSM's module under the own
//! module's file name stands in for it.

use std::ffi::OsString;
use std::path::Path;

use p11agent_softhsm::SoftHsm;
use p11agent_tests::{daemon_refuses, Daemon};

/// A copy of SoftHSM's module named as p11agent's own module, in `dir`.
/// A copy, not a link: p11-kit's list is de-duplicated by the file a
/// path leads to, and the real SoftHSM entry must stay in it.
fn impostor(hsm: &SoftHsm, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("libp11agent_pkcs11.so");
    std::fs::copy(hsm.module_path(), &path).expect("copy the module");
    path
}

#[test]
fn named_explicitly_it_is_refused_at_start() {
    let hsm = SoftHsm::new().expect("softhsm");
    let dir = tempfile::tempdir().expect("tempdir");
    let own = impostor(&hsm, dir.path());
    let stderr = daemon_refuses(
        &[
            "--module".as_ref(),
            hsm.module_path().as_os_str(),
            "--module".as_ref(),
            own.as_os_str(),
        ],
        hsm.env(),
    );
    assert!(
        stderr.contains(&format!(
            "{} is p11agent's own PKCS#11 module (its file name starts with \
             libp11agent_pkcs11), which forwards to this agent; give the module of your token",
            own.display()
        )),
        "{stderr}"
    );
    // Through a link under another name too.
    let link = dir.path().join("forwarder.so");
    std::os::unix::fs::symlink(&own, &link).expect("symlink");
    let stderr = daemon_refuses(&["--module".as_ref(), link.as_os_str()], hsm.env());
    assert!(
        stderr.contains(&format!(
            "{} is p11agent's own PKCS#11 module",
            link.display()
        )),
        "{stderr}"
    );
}

#[test]
fn registered_with_p11kit_it_is_left_out() {
    let hsm = SoftHsm::new().expect("softhsm");
    let home = tempfile::tempdir().expect("tempdir");
    let own = impostor(&hsm, home.path());
    // p11-kit's per-user registry, under a HOME of the test's own.
    let registry = home.path().join(".config/pkcs11/modules");
    std::fs::create_dir_all(&registry).expect("mkdir");
    std::fs::write(
        registry.join("p11agent.module"),
        format!("module: {}\n", own.display()),
    )
    .expect("module config");
    let mut env = hsm.env();
    env.push(("HOME".into(), OsString::from(home.path())));
    let daemon = Daemon::start_with_args(&[], env);

    let log = daemon.log();
    assert!(
        log.lines().any(|line| line.contains(" INFO ")
            && line.contains("not loading p11agent's own PKCS#11 module")
            && line.contains(&own.display().to_string())),
        "{log}"
    );
    let own = own.display().to_string();
    let status = daemon.client().status().expect("status");
    assert!(!status.modules.contains(&own), "{:?}", status.modules);
    assert!(
        !status.module_errors.iter().any(|e| e.module == own),
        "{:?}",
        status.module_errors
    );
}
