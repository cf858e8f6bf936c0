//! The digest policy: a drop-in in `digest.d/`, beside the default config
//! file, that allows the target's programs' signatures over digests.

use std::path::PathBuf;

use super::files::{header, utf8};
use super::programs::Places;
use super::report::Setup;
use super::target::Target;
use crate::cli::error::SetupError;

/// The target's drop-in.
fn policy_file(places: &Places, target: Target) -> PathBuf {
    places
        .p11agent_dir
        .join(crate::config::DIGEST_DROP_IN_DIR)
        .join(format!("{}.toml", target.name()))
}

impl Setup<'_> {
    /// Writes the digest policy for the target's programs found here;
    /// those not found are reported, and with none found no file is
    /// written. nss names no program, and has no policy.
    pub(super) fn write_digest_policy(&mut self) -> Result<(), SetupError> {
        if self.target == Target::Nss {
            return Ok(());
        }
        self.find_programs();
        let file = policy_file(self.places, self.target);
        if self.report.programs.is_empty() {
            self.note(format!(
                "no digest policy written ({}): none of its programs is installed",
                file.display()
            ));
            return Ok(());
        }
        let programs = self
            .report
            .programs
            .iter()
            .map(|p| utf8(p))
            .collect::<Result<Vec<_>, _>>()?;
        let content = digest_policy(self.target, &programs);
        self.write(&file, content)?;
        self.note(format!(
            "a `p11agent daemon` started from now on applies the digest policy in {}; restart \
             a running one",
            file.parent().unwrap_or(&file).display()
        ));
        Ok(())
    }

    /// Records the executables of the target's programs, and those not
    /// installed here, with a warning.
    fn find_programs(&mut self) {
        for program in self.target.programs() {
            let found = self.places.find(program);
            if found.is_empty() {
                self.report.not_installed.push(program.name);
            }
            self.report.programs.extend(found);
        }
        if !self.report.not_installed.is_empty() {
            let missing = self.report.not_installed.join(", ");
            self.warn(format!(
                "not installed here: {missing}; the digest policy leaves it out (install it and \
                 run setup again)"
            ));
        }
    }

    pub(super) fn remove_digest_policy(&mut self) -> Result<(), SetupError> {
        if self.target == Target::Nss {
            return Ok(());
        }
        self.remove(&policy_file(self.places, self.target))
    }
}

fn digest_policy(target: Target, programs: &[&str]) -> String {
    let mut text = header(target);
    text.push_str(
        "# The agent signs digests (sign_digest, PKCS#11's raw mechanisms) for these\n\
         # executables, with every identity; `identities = [\"ID PREFIX\"]` narrows a\n\
         # table to some.\n",
    );
    for program in programs {
        text.push_str("\n[[allow_digest]]\nprogram = ");
        text.push_str(&toml::Value::String((*program).to_owned()).to_string());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_policy_names_each_program_in_a_table() {
        let text = digest_policy(
            Target::Ssh,
            &["/usr/bin/ssh", "/usr/lib/openssh/ssh-pkcs11-helper"],
        );
        assert!(text.starts_with(&header(Target::Ssh)));
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
}
