//! OpenSSH takes the module on its command line or in ~/.ssh/config,
//! which setup does not edit: it only says how.

use super::report::{shell_quote, Setup};

impl Setup<'_> {
    pub(super) fn install_ssh(&mut self, module: &str) {
        let quoted = shell_quote(module);
        self.note(format!("ssh -I {quoted} user@host"));
        self.note(format!(
            "or, in ~/.ssh/config (setup does not edit it):\n    Host host.example\n        \
             PKCS11Provider {quoted}"
        ));
        self.note(format!(
            "for ssh-agent: `ssh-add -s {quoted}`; ssh-agent accepts providers only \
             under /usr/lib*/ and /usr/local/lib*/ unless started with `ssh-agent -P \
             {quoted}`"
        ));
    }
}
