//! How long each kind of call takes on the card being imitated: a named
//! profile (sources in the crate's documentation), each value adjustable
//! by an environment variable, all of them scaled by one factor.

use std::time::Duration;

/// Names a built-in profile: `piv` (the default), `openpgp` or `none`.
pub(crate) const PROFILE_ENV: &str = "P11AGENT_SLOWCARD_PROFILE";
/// Multiplies every delay (default 1): a smoke run keeps the profile's
/// shape at a twentieth of its length.
pub(crate) const SCALE_ENV: &str = "P11AGENT_SLOWCARD_SCALE";

/// Milliseconds for one kind of call, replacing the profile's value.
const INIT_MS_ENV: &str = "P11AGENT_SLOWCARD_INIT_MS";
const LOGIN_MS_ENV: &str = "P11AGENT_SLOWCARD_LOGIN_MS";
const FIND_MS_ENV: &str = "P11AGENT_SLOWCARD_FIND_MS";
const ATTR_MS_ENV: &str = "P11AGENT_SLOWCARD_ATTR_MS";
const SIGN_RSA_MS_ENV: &str = "P11AGENT_SLOWCARD_SIGN_RSA_MS";
const SIGN_EC_MS_ENV: &str = "P11AGENT_SLOWCARD_SIGN_EC_MS";

/// The time the card spends on each kind of call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Profile {
    /// `C_Initialize`: connecting to the card and selecting its applet.
    pub(crate) init: Duration,
    /// `C_Login`: VERIFY PIN.
    pub(crate) login: Duration,
    /// `C_FindObjectsInit`: reading the objects searched.
    pub(crate) find: Duration,
    /// `C_GetAttributeValue`: one command to the card.
    pub(crate) attr: Duration,
    /// `C_Sign` or `C_SignFinal` with an RSA key (2048 bits).
    pub(crate) sign_rsa: Duration,
    /// `C_Sign` or `C_SignFinal` with any other key (ECDSA P-256).
    pub(crate) sign_ec: Duration,
}

/// A profile in milliseconds, as the sources give them.
struct Millis {
    init: f64,
    login: f64,
    find: f64,
    attr: f64,
    sign_rsa: f64,
    sign_ec: f64,
}

/// A YubiKey 5 NFC's PIV applet (firmware 5.1.2), as jsign's benchmark
/// measured it: SELECT 1.3 ms (also one attribute, a command's round
/// trip), reading a certificate 7.3 ms (a search), VERIFY PIN 9.1 ms,
/// RSA-2048 signature 138.5 ms, P-256 signature 71.6 ms.
const PIV: Millis = Millis {
    init: 1.3,
    login: 9.1,
    find: 7.3,
    attr: 1.3,
    sign_rsa: 138.5,
    sign_ec: 71.6,
};

/// The same YubiKey's OpenPGP applet: SELECT 0.9 ms, VERIFY PIN 9.4 ms,
/// RSA-2048 signature 137.8 ms. The source measured no object read and
/// no ECDSA signature on it: those are the PIV applet's, on the same
/// chip.
const OPENPGP: Millis = Millis {
    init: 0.9,
    login: 9.4,
    find: 7.3,
    attr: 0.9,
    sign_rsa: 137.8,
    sign_ec: 71.6,
};

/// No delay: the module only forwards (and serialises nothing).
const NONE: Millis = Millis {
    init: 0.0,
    login: 0.0,
    find: 0.0,
    attr: 0.0,
    sign_rsa: 0.0,
    sign_ec: 0.0,
};

impl Profile {
    /// The profile the environment describes, read through `var`.
    pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Profile, String> {
        let name = var(PROFILE_ENV).unwrap_or_else(|| "piv".to_owned());
        let base = match name.as_str() {
            "piv" => PIV,
            "openpgp" => OPENPGP,
            "none" => NONE,
            other => {
                return Err(format!(
                    "{PROFILE_ENV}={other:?}: the profiles are piv, openpgp and none"
                ))
            }
        };
        let number = |key: &str| -> Result<Option<f64>, String> {
            let Some(text) = var(key) else {
                return Ok(None);
            };
            match text.trim().parse::<f64>() {
                // An hour bounds a typo, not a card.
                Ok(x) if x.is_finite() && (0.0..=3_600_000.0).contains(&x) => Ok(Some(x)),
                _ => Err(format!("{key}={text:?}: not a number from 0 to 3600000")),
            }
        };
        let scale = number(SCALE_ENV)?.unwrap_or(1.0);
        let ms = |key: &str, default: f64| -> Result<Duration, String> {
            let value = number(key)?.unwrap_or(default) * scale;
            Ok(Duration::from_secs_f64(value / 1000.0))
        };
        Ok(Profile {
            init: ms(INIT_MS_ENV, base.init)?,
            login: ms(LOGIN_MS_ENV, base.login)?,
            find: ms(FIND_MS_ENV, base.find)?,
            attr: ms(ATTR_MS_ENV, base.attr)?,
            sign_rsa: ms(SIGN_RSA_MS_ENV, base.sign_rsa)?,
            sign_ec: ms(SIGN_EC_MS_ENV, base.sign_ec)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(vars: &[(&str, &str)]) -> Result<Profile, String> {
        Profile::from_env(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn ms(x: f64) -> Duration {
        Duration::from_secs_f64(x / 1000.0)
    }

    #[test]
    fn piv_is_the_default_and_values_override_it() {
        let piv = profile(&[]).expect("default");
        assert_eq!(piv.sign_rsa, ms(138.5));
        assert_eq!(piv.sign_ec, ms(71.6));
        assert_eq!(piv.login, ms(9.1));
        let tuned = profile(&[(LOGIN_MS_ENV, "568.6"), (PROFILE_ENV, "openpgp")]).expect("tuned");
        assert_eq!(tuned.login, ms(568.6));
        assert_eq!(tuned.sign_rsa, ms(137.8));
        assert_eq!(
            profile(&[(PROFILE_ENV, "none")]).expect("none").sign_rsa,
            Duration::ZERO
        );
    }

    #[test]
    fn the_scale_applies_to_every_value() {
        let small = profile(&[(SCALE_ENV, "0.5"), (FIND_MS_ENV, "10")]).expect("scaled");
        assert_eq!(small.find, ms(5.0));
        assert_eq!(small.sign_ec, ms(35.8));
    }

    #[test]
    fn nonsense_is_refused() {
        for vars in [
            &[(PROFILE_ENV, "hsm")][..],
            &[(SCALE_ENV, "-1")],
            &[(SIGN_EC_MS_ENV, "fast")],
            &[(ATTR_MS_ENV, "NaN")],
        ] {
            assert!(profile(vars).is_err(), "{vars:?}");
        }
    }
}
