//! The digest policy: which programs may have a digest signed, and with
//! which identities.
//!
//! A `sign_digest` request carries a digest, not a message, so purpose
//! binding cannot look at what is signed. The agent admits it only for
//! a program the policy names, identified by the executable of the
//! connecting process (`/proc/PID/exe`, which the process cannot choose
//! without being that program), and by default for none. A rule names
//! one program (its path, canonicalised when the configuration was
//! read) and optionally the identities it may use (ids or id prefixes);
//! without them, every identity.
//!
//! The rules come from the configuration file and the drop-in folder
//! beside it (`digest.d/*.toml`, where `p11agent setup` writes); both
//! are read once, in `config.rs`.

use std::path::{Path, PathBuf};

use super::audit::Peer;

/// What the kernel appends to `/proc/PID/exe` when the file was deleted
/// or replaced since the process started, as a package upgrade does to
/// a running browser.
const DELETED: &str = " (deleted)";

/// The shortest id prefix a rule may name, as for `show` and `sign`: a
/// shorter one would match identities nobody meant.
const MIN_ID_PREFIX: usize = 8;

/// The programs `p11agent setup` configures, by the executable its
/// drop-in file names, with the target it takes: a refusal for one of
/// them names the command rather than a snippet to write by hand. Kept
/// in step with `p11agent setup`.
/// Java is matched by file name below, since its path carries the JDK's
/// version.
const SETUP_TARGETS: &[(&str, &str)] = &[
    ("/usr/lib/chromium/chromium", "chromium"),
    ("/usr/lib/firefox-esr/firefox-esr", "firefox"),
    ("/usr/bin/gnutls-cli", "p11-kit"),
    ("/usr/bin/openssl", "openssl"),
    ("/usr/bin/curl", "openssl"),
    ("/usr/bin/ssh", "ssh"),
    ("/usr/lib/openssh/ssh-pkcs11-helper", "ssh"),
];

/// Which programs may have digests signed, with which identities.
#[derive(Debug, Clone, Default)]
pub(crate) struct DigestPolicy {
    rules: Vec<DigestRule>,
    /// Where drop-in files go, for the refusal's advice; `None` when
    /// there is no configuration folder.
    drop_in_dir: Option<PathBuf>,
}

/// One `[[allow_digest]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigestRule {
    program: PathBuf,
    /// Normalised id prefixes; `None`: every identity.
    identities: Option<Vec<String>>,
    /// The file the rule is in, for the refusal's advice.
    source: PathBuf,
}

/// Why an `[[allow_digest]]` table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadDigestRule {
    /// The program is not an absolute path.
    #[error(
        "program {0:?} is not an absolute path; give the executable's full path, \
         as /proc/PID/exe shows it (e.g. /usr/lib/chromium/chromium)"
    )]
    RelativeProgram(PathBuf),
    /// An identity is not an id or a long enough prefix of one.
    #[error(
        "identity {0:?} is not an id or an id prefix of at least {MIN_ID_PREFIX} hex \
         digits; see `p11agent list`"
    )]
    Identity(String),
}

/// Why a digest signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DigestRefused {
    /// No rule names the program.
    #[error(
        "the digest policy does not allow {program} to sign digests with identity {id} \
         ({subject}); to allow it, {how}"
    )]
    NotListed {
        /// The program's executable.
        program: String,
        /// The identity's full id.
        id: String,
        /// Its subject.
        subject: String,
        /// What to do: the `p11agent setup` command, or the rule to write.
        how: String,
    },
    /// Rules name the program, for other identities only.
    #[error(
        "the digest policy allows {program} to sign digests only with other identities \
         than {id} ({subject}); to allow this one too, add \"{id}\" to the `identities` \
         of its [[allow_digest]] in {files}, then restart the agent"
    )]
    OtherIdentities {
        /// The program's executable.
        program: String,
        /// The identity's full id.
        id: String,
        /// Its subject.
        subject: String,
        /// The files whose rules name the program.
        files: String,
    },
    /// The program asking is unknown: its executable cannot be read.
    #[error(
        "digest signatures are allowed only for the programs the digest policy lists, \
         and the program asking ({who}) cannot be identified: its /proc/PID/exe is \
         unreadable"
    )]
    Unidentified {
        /// The process, as far as known.
        who: String,
    },
}

impl DigestRule {
    /// A rule for `program` (canonicalised by the caller, which reads
    /// the file system) and, when given, only `identities` (ids or id
    /// prefixes; case and colons ignored), found in `source`.
    pub(crate) fn new(
        program: PathBuf,
        identities: Option<Vec<String>>,
        source: PathBuf,
    ) -> Result<DigestRule, BadDigestRule> {
        if !program.is_absolute() {
            return Err(BadDigestRule::RelativeProgram(program));
        }
        let identities = identities
            .map(|ids| {
                ids.into_iter()
                    .map(|id| {
                        let prefix: String = id
                            .chars()
                            .filter(|&c| c != ':')
                            .map(|c| c.to_ascii_lowercase())
                            .collect();
                        if prefix.len() >= MIN_ID_PREFIX
                            && prefix.chars().all(|c| c.is_ascii_hexdigit())
                        {
                            Ok(prefix)
                        } else {
                            Err(BadDigestRule::Identity(id))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(DigestRule {
            program,
            identities,
            source,
        })
    }

    fn covers(&self, id: &str) -> bool {
        self.identities
            .as_ref()
            .is_none_or(|prefixes| prefixes.iter().any(|p| id.starts_with(p.as_str())))
    }
}

impl DigestPolicy {
    /// A policy of `rules`; refusals point new rules to `drop_in_dir`.
    pub(crate) fn new(rules: Vec<DigestRule>, drop_in_dir: Option<PathBuf>) -> DigestPolicy {
        DigestPolicy { rules, drop_in_dir }
    }

    /// Whether `peer`'s program may have a digest signed with the
    /// identity whose full id is `id` (and subject `subject`).
    pub(crate) fn admits(&self, peer: &Peer, id: &str, subject: &str) -> Result<(), DigestRefused> {
        let Some(exe) = peer.exe.as_deref() else {
            return Err(DigestRefused::Unidentified {
                who: peer
                    .pid
                    .map_or_else(|| "a process".to_owned(), |pid| format!("process {pid}")),
            });
        };
        let program = exe.strip_suffix(DELETED).unwrap_or(exe);
        let rules: Vec<&DigestRule> = self
            .rules
            .iter()
            .filter(|rule| rule.program == Path::new(program))
            .collect();
        if rules.iter().any(|rule| rule.covers(id)) {
            return Ok(());
        }
        let (program, id, subject) = (program.to_owned(), id.to_owned(), subject.to_owned());
        if rules.is_empty() {
            let how = self.how_to_allow(&program, &id);
            return Err(DigestRefused::NotListed {
                program,
                id,
                subject,
                how,
            });
        }
        let mut files: Vec<String> = rules
            .iter()
            .map(|rule| rule.source.display().to_string())
            .collect();
        files.sort();
        files.dedup();
        Err(DigestRefused::OtherIdentities {
            program,
            id,
            subject,
            files: files.join(" or "),
        })
    }

    /// The advice of a refusal for a program no rule names: the setup
    /// command for a program it knows, otherwise the rule to write and
    /// where.
    fn how_to_allow(&self, program: &str, id: &str) -> String {
        let target = SETUP_TARGETS
            .iter()
            .find(|(exe, _)| *exe == program)
            .map(|(_, target)| *target)
            .or_else(|| {
                (program.starts_with("/usr/lib/jvm/") && program.ends_with("/bin/java"))
                    .then_some("java")
            });
        if let Some(target) = target {
            return format!("run `p11agent setup {target}`, then restart the agent");
        }
        let file = match &self.drop_in_dir {
            Some(dir) => {
                let name: String = Path::new(program)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                    .collect();
                format!(
                    "{} (or the agent's configuration file)",
                    dir.join(format!("{name}.toml")).display()
                )
            }
            None => "the agent's configuration file".to_owned(),
        };
        // A TOML string, quoted and escaped, whatever the path holds.
        let quoted = toml::Value::String(program.to_owned());
        format!(
            "add these lines to {file}, then restart the agent:\n\
             [[allow_digest]]\n\
             program = {quoted}\n\
             identities = [\"{id}\"]"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1b7d0e4a55aa00bb11cc22dd33ee44ff5566778899aabbccddeeff0011";
    const OTHER: &str = "9900aabbccddeeff00112233445566778899aabbccddeeff0011223344556677";

    fn peer(exe: Option<&str>) -> Peer {
        Peer {
            uid: 1000,
            pid: Some(4242),
            exe: exe.map(str::to_owned),
            remote: false,
        }
    }

    fn rule_of(program: &str, identities: Option<&[&str]>) -> DigestRule {
        DigestRule::new(
            program.into(),
            identities.map(|ids| ids.iter().map(|&id| id.to_owned()).collect()),
            "/home/me/.config/p11agent/digest.d/x.toml".into(),
        )
        .expect("rule")
    }

    fn policy_of(rules: Vec<DigestRule>) -> DigestPolicy {
        DigestPolicy::new(rules, Some("/home/me/.config/p11agent/digest.d".into()))
    }

    #[test]
    fn nothing_is_allowed_by_default() {
        let refused = DigestPolicy::default()
            .admits(&peer(Some("/usr/bin/signer")), ID, "CN=Alice")
            .expect_err("refused");
        assert!(
            matches!(refused, DigestRefused::NotListed { .. }),
            "{refused}"
        );
    }

    #[test]
    fn a_rule_admits_its_program_only() {
        let policy = policy_of(vec![rule_of("/usr/bin/signer", None)]);
        assert_eq!(
            policy.admits(&peer(Some("/usr/bin/signer")), ID, "CN=Alice"),
            Ok(())
        );
        assert_eq!(
            policy.admits(&peer(Some("/usr/bin/signer")), OTHER, "CN=Bob"),
            Ok(())
        );
        for other in [
            "/usr/bin/signer2",
            "/usr/bin/signe",
            "/tmp/usr/bin/signer",
            "signer",
        ] {
            assert!(
                policy.admits(&peer(Some(other)), ID, "CN=Alice").is_err(),
                "{other}"
            );
        }
    }

    #[test]
    fn a_replaced_executable_is_still_its_program() {
        let policy = policy_of(vec![rule_of("/usr/lib/chromium/chromium", None)]);
        assert_eq!(
            policy.admits(
                &peer(Some("/usr/lib/chromium/chromium (deleted)")),
                ID,
                "CN=Alice"
            ),
            Ok(())
        );
        // Only the kernel's suffix, at the end, is taken off.
        assert!(policy
            .admits(
                &peer(Some("/usr/lib/chromium/chromium (deleted) (x)")),
                ID,
                "CN=Alice"
            )
            .is_err());
    }

    #[test]
    fn identities_are_ids_or_prefixes_ignoring_case_and_colons() {
        let policy = policy_of(vec![rule_of("/usr/bin/signer", Some(&["3F:2A:9C:1B"]))]);
        let signer = peer(Some("/usr/bin/signer"));
        assert_eq!(policy.admits(&signer, ID, "CN=Alice"), Ok(()));
        let refused = policy
            .admits(&signer, OTHER, "CN=Bob")
            .expect_err("another identity");
        assert_eq!(
            refused.to_string(),
            format!(
                "the digest policy allows /usr/bin/signer to sign digests only with other \
                 identities than {OTHER} (CN=Bob); to allow this one too, add \"{OTHER}\" \
                 to the `identities` of its [[allow_digest]] in \
                 /home/me/.config/p11agent/digest.d/x.toml, then restart the agent"
            )
        );
        let full = policy_with_ids(&[ID]);
        assert_eq!(full.admits(&signer, ID, "CN=Alice"), Ok(()));
        assert!(full.admits(&signer, OTHER, "CN=Bob").is_err());
        // Another rule for the same program adds identities.
        let two = policy_of(vec![
            rule_of("/usr/bin/signer", Some(&["3f2a9c1b"])),
            rule_of("/usr/bin/signer", Some(&["9900aabb"])),
        ]);
        assert_eq!(two.admits(&signer, OTHER, "CN=Bob"), Ok(()));
    }

    fn policy_with_ids(ids: &[&str]) -> DigestPolicy {
        policy_of(vec![rule_of("/usr/bin/signer", Some(ids))])
    }

    #[test]
    fn short_or_non_hex_identities_and_relative_programs_are_refused() {
        let source = PathBuf::from("/c.toml");
        for bad in ["3f2a9c1", "3f:2a:9c:1", "", "3f2a9c1g", "Alice Example"] {
            assert_eq!(
                DigestRule::new("/usr/bin/x".into(), Some(vec![bad.into()]), source.clone()),
                Err(BadDigestRule::Identity(bad.into())),
                "{bad:?}"
            );
        }
        assert_eq!(
            DigestRule::new("chromium".into(), None, source.clone()),
            Err(BadDigestRule::RelativeProgram("chromium".into()))
        );
        // An empty list allows no identity, rather than all.
        let none = DigestRule::new("/usr/bin/x".into(), Some(Vec::new()), source).expect("rule");
        assert!(!none.covers(ID));
    }

    #[test]
    fn a_program_without_a_rule_is_told_the_rule_to_write() {
        let program = "/opt/My Signer/sign\"er";
        let refused = policy_of(Vec::new())
            .admits(&peer(Some(program)), ID, "CN=Alice")
            .expect_err("refused");
        let message = refused.to_string();
        let (text, snippet) = message.split_once('\n').expect("a snippet follows");
        assert_eq!(
            text,
            format!(
                "the digest policy does not allow {program} to sign digests with identity \
                 {ID} (CN=Alice); to allow it, add these lines to \
                 /home/me/.config/p11agent/digest.d/sign-er.toml (or the agent's \
                 configuration file), then restart the agent:"
            )
        );
        // The snippet is TOML that allows exactly this.
        let table: toml::Table = snippet.parse().expect("TOML");
        let rule = &table["allow_digest"][0];
        assert_eq!(rule["program"].as_str(), Some(program));
        assert_eq!(rule["identities"][0].as_str(), Some(ID));
        let allowed = policy_of(vec![rule_of(program, Some(&[ID]))]);
        assert_eq!(allowed.admits(&peer(Some(program)), ID, "CN=Alice"), Ok(()));
    }

    #[test]
    fn a_program_setup_knows_is_told_the_command() {
        for (program, target) in [
            ("/usr/lib/chromium/chromium", "chromium"),
            ("/usr/bin/curl", "openssl"),
            ("/usr/lib/openssh/ssh-pkcs11-helper", "ssh"),
            ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java"),
        ] {
            let refused = policy_of(Vec::new())
                .admits(&peer(Some(program)), ID, "CN=Alice")
                .expect_err("refused");
            let advice =
                format!("; to allow it, run `p11agent setup {target}`, then restart the agent");
            assert!(refused.to_string().ends_with(&advice), "{refused}");
        }
    }

    #[test]
    fn a_program_that_cannot_be_identified_is_refused() {
        let policy = policy_of(vec![rule_of("/usr/bin/signer", None)]);
        let refused = policy
            .admits(&peer(None), ID, "CN=Alice")
            .expect_err("refused");
        assert!(
            refused
                .to_string()
                .contains("(process 4242) cannot be identified"),
            "{refused}"
        );
    }
}
