//! Helpers for inspecting tokens with cryptoki in the tests.
#![allow(dead_code)]

use p11agent_softhsm::cryptoki::context::Pkcs11;
use p11agent_softhsm::cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use p11agent_softhsm::cryptoki::session::{Session, UserType};
use p11agent_softhsm::cryptoki::slot::Slot;
use p11agent_softhsm::cryptoki::types::AuthPin;
use p11agent_softhsm::{SoftHsm, Token};

/// The slot of the token with this serial.
pub(crate) fn slot_of(ctx: &Pkcs11, serial: &str) -> Slot {
    ctx.get_slots_with_initialized_token()
        .expect("slots")
        .into_iter()
        .find(|s| {
            ctx.get_token_info(*s)
                .expect("token info")
                .serial_number()
                .trim()
                == serial
        })
        .expect("token present")
}

/// Runs `f` on a logged-in read-only session of `token`.
pub(crate) fn with_session<R>(hsm: &SoftHsm, token: &Token, f: impl FnOnce(&Session) -> R) -> R {
    hsm.with_pkcs11(|ctx| {
        let session = ctx
            .open_ro_session(slot_of(ctx, token.serial()))
            .expect("session");
        session
            .login(UserType::User, Some(&AuthPin::from(token.user_pin())))
            .expect("login");
        let r = f(&session);
        let _ = session.logout();
        drop(session);
        Ok(r)
    })
    .expect("pkcs11 session")
}

pub(crate) fn find(session: &Session, template: &[Attribute]) -> Vec<ObjectHandle> {
    session.find_objects(template).expect("find objects")
}

pub(crate) fn find_one(session: &Session, template: &[Attribute]) -> ObjectHandle {
    let found = find(session, template);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one object for {template:?}"
    );
    found[0]
}

pub(crate) fn by_class_and_id(
    session: &Session,
    class: ObjectClass,
    id: &[u8],
) -> Vec<ObjectHandle> {
    find(
        session,
        &[Attribute::Class(class), Attribute::Id(id.to_vec())],
    )
}

pub(crate) fn get(session: &Session, object: ObjectHandle, ty: AttributeType) -> Attribute {
    session
        .get_attributes(object, &[ty])
        .expect("get attribute")
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("object has no {ty:?}"))
}

pub(crate) fn get_bool(session: &Session, object: ObjectHandle, ty: AttributeType) -> bool {
    match get(session, object, ty) {
        Attribute::Token(b)
        | Attribute::Private(b)
        | Attribute::Sensitive(b)
        | Attribute::Extractable(b)
        | Attribute::Sign(b)
        | Attribute::Verify(b)
        | Attribute::AlwaysSensitive(b)
        | Attribute::NeverExtractable(b)
        | Attribute::AlwaysAuthenticate(b)
        | Attribute::Local(b) => b,
        other => panic!("{other:?} is not a boolean attribute"),
    }
}

pub(crate) fn get_bytes(session: &Session, object: ObjectHandle, ty: AttributeType) -> Vec<u8> {
    match get(session, object, ty) {
        Attribute::Id(v)
        | Attribute::Label(v)
        | Attribute::Value(v)
        | Attribute::Subject(v)
        | Attribute::Issuer(v)
        | Attribute::SerialNumber(v)
        | Attribute::EcParams(v)
        | Attribute::EcPoint(v)
        | Attribute::Modulus(v)
        | Attribute::PublicExponent(v) => v,
        other => panic!("{other:?} is not a byte-string attribute"),
    }
}
