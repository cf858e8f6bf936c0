//! A certificate object's `CKA_VALUE` as the store takes it from a
//! token: parsed, turned into an identity, queried, chained. A token,
//! or whoever wrote to it, chooses these bytes.

fn main() {
    afl::fuzz!(|der: &[u8]| {
        p11agent::fuzzing::store_certificate(der);
    });
}
