//! `libp11agent_bench_slowcard.so`: a PKCS#11 module that makes another
//! one (SoftHSM, in the benchmark) answer like a smartcard. It forwards
//! every call of its PKCS#11 2.40 function list unchanged, and before the
//! calls a card would have to work on, waits as long as the card would;
//! one card operation at a time, as a card in a reader does them.
//!
//! SoftHSM signs in a fraction of a millisecond and looks objects up in
//! memory; a card takes tens of milliseconds to sign and a command round
//! trip for everything it is asked. What an agent saves (one login, one
//! scan, an open session for every program) only shows at a card's
//! speed; the benchmark's `card` group measures it with this module.
//!
//! # Configuration (environment, read at the first `C_Initialize`)
//!
//! - `P11AGENT_SLOWCARD_MODULE` (required): the module to forward to.
//! - `P11AGENT_SLOWCARD_PROFILE`: `piv` (default), `openpgp` or `none`.
//! - `P11AGENT_SLOWCARD_INIT_MS`, `_LOGIN_MS`, `_FIND_MS`, `_ATTR_MS`,
//!   `_SIGN_RSA_MS`, `_SIGN_EC_MS`: milliseconds replacing the profile's.
//! - `P11AGENT_SLOWCARD_SCALE`: multiplies every delay (default 1).
//! - `P11AGENT_SLOWCARD_LOCK`: a file every process using the card locks
//!   around each operation, so that processes queue for it as they do
//!   for a real card (through `pcscd`); without it, only this process's
//!   threads queue.
//! - `P11AGENT_SLOWCARD_PRESENT`: a file; the card is in the reader while
//!   it exists (no slot shows a token, and the token's calls fail, while
//!   it does not). Creating it is inserting the card.
//! - `P11AGENT_SLOWCARD_ABORT`: a file; while it exists and holds
//!   `C_Sign` (a signature, not a length query) or `C_GetSlotList`, that
//!   function calls `abort()`, as crashing vendor middleware does. The
//!   agent's module isolation tests use it.
//! - `P11AGENT_SLOWCARD_FLAKY`: a file; while it exists, the next
//!   `C_GetTokenInfo` fails with `CKR_GENERAL_ERROR` and removes it: one
//!   poll that cannot read the token.
//!
//! # What costs what
//!
//! | call | profile field | `piv` | `openpgp` |
//! |---|---|---:|---:|
//! | `C_Initialize` (connect, SELECT the applet) | `init` | 1.3 ms | 0.9 ms |
//! | `C_Login` (VERIFY PIN) | `login` | 9.1 ms | 9.4 ms |
//! | `C_FindObjectsInit` (reading the objects) | `find` | 7.3 ms | 7.3 ms |
//! | `C_GetAttributeValue` (one command) | `attr` | 1.3 ms | 0.9 ms |
//! | `C_Sign`, `C_SignFinal` with an RSA-2048 key | `sign_rsa` | 138.5 ms | 137.8 ms |
//! | `C_Sign`, `C_SignFinal` with a P-256 key | `sign_ec` | 71.6 ms | 71.6 ms |
//!
//! Everything else (slot and token information, sessions, `C_FindObjects`
//! itself) is answered at once, as card drivers answer it from what they
//! read before; so is a `C_Sign` without an output buffer (the length
//! query). The key's type is looked up at `C_SignInit`.
//!
//! # Sources
//!
//! - `piv`: a YubiKey 5 NFC's PIV applet, firmware 5.1.2, measured by
//!   jsign's benchmarks (JMH averages of 10 runs through PC/SC,
//!   <https://github.com/ebourg/jsign/blob/master/jsign-benchmark/README.md>):
//!   SELECT 1.257 ms, reading a certificate 7.298 ms, VERIFY PIN 9.135 ms,
//!   RSA-2048 signature 138.491 ms, P-256 signature 71.572 ms. A command's
//!   round trip (`attr`) is taken as the SELECT's, the cheapest command
//!   measured; a search (`find`) as one object read.
//! - `openpgp`: the same key's OpenPGP applet (2.1) in the same source:
//!   SELECT 0.893 ms, VERIFY PIN 9.373 ms, RSA-2048 signature
//!   137.750 ms. It measured no object read and no ECDSA signature there:
//!   those are the PIV applet's (same chip).
//! - They agree with other published figures: VERIFY PIN "only 10 ms" on
//!   a YubiKey 5 (<https://github.com/Nitrokey/opcard-rs/issues/204>);
//!   10.6 to 10.9 P-256 signatures per second (92 to 95 ms each, host
//!   side included) on YubiKey 5 models
//!   (<https://github.com/obelisk/sshcerts>, README); an RSA-2048
//!   signature in 50 to 200 ms on a smart card's coprocessor
//!   (<https://smartcardfyi.com/id/glossary/rsa>).
//! - Cards vary more than that: the same jsign benchmarks measured a
//!   Nitrokey 3A (OpenPGP, firmware 1.8.2) at 568.6 ms for VERIFY PIN,
//!   666.8 ms for an RSA-2048 and 816.4 ms for a P-256 signature, and a
//!   CryptoCertum card at 269.2 ms (RSA-2048) and 157.7 ms (P-256): set
//!   the `_MS` variables to imitate them.
//!
//! What the model leaves out: the driver's own start-up work (OpenSC and
//! Yubico's ykcs11 read every certificate of a card when they first see
//! it, seconds over a slow reader: OpenSC issues 377 and 2444), USB
//! enumeration when a key is plugged in, and touch or PIN-always policies.
//! It errs on the card's side: real drivers are slower to start.

mod card;
mod ffi;
mod profile;
