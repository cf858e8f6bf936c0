//! Parsing a request body as the agent does: a [`Request`], or the error
//! the agent answers instead.

use crate::message::{ErrorCode, Request};

/// A request body the agent cannot take, and the error it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BadRequest {
    /// `malformed` or `unknown_request`.
    pub code: ErrorCode,
    /// What is wrong, for the client's user.
    pub message: String,
}

impl BadRequest {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        BadRequest {
            code,
            message: message.into(),
        }
    }
}

/// Parses a request body (a frame's contents), telling a shape it does
/// not know (`unknown_request`) from input that is not a request at all
/// (`malformed`). This is where the agent parses every client byte, so
/// it lives with the protocol, where the fuzz driver
/// (`proto/examples/fuzz.rs`) and the property tests reach it alone.
///
/// The body is decoded straight into [`Request`], whose PIN wipes itself;
/// only a body that fails is looked at again, for its `op` alone, so a
/// PIN never sits in an intermediate `serde_json::Value`.
pub fn decode_request(body: &[u8]) -> Result<Request, BadRequest> {
    let error = match serde_json::from_slice::<Request>(body) {
        Ok(request) => return Ok(request),
        Err(e) => e,
    };
    #[derive(serde::Deserialize)]
    struct OpOnly {
        op: String,
    }
    match serde_json::from_slice::<OpOnly>(body) {
        Ok(OpOnly { op }) if Request::OPS.contains(&op.as_str()) => Err(BadRequest::new(
            ErrorCode::Malformed,
            format!("bad {op} request: {error}"),
        )),
        Ok(OpOnly { op }) => Err(BadRequest::new(
            ErrorCode::UnknownRequest,
            format!("unknown op {op:?}"),
        )),
        Err(_) if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_err() => Err(
            BadRequest::new(ErrorCode::Malformed, format!("not JSON: {error}")),
        ),
        Err(_) => Err(BadRequest::new(
            ErrorCode::Malformed,
            "a request is a JSON object with a string member \"op\"",
        )),
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;

    /// The answers clients see, word for word: the agent sends them as
    /// they are.
    #[test]
    fn the_errors_say_exactly_this() {
        let cases = [
            (
                r#"{"op":"show"}"#,
                ErrorCode::Malformed,
                "bad show request: missing field `id`",
            ),
            (
                r#"{"op":"explode"}"#,
                ErrorCode::UnknownRequest,
                "unknown op \"explode\"",
            ),
            (
                "not json",
                ErrorCode::Malformed,
                "not JSON: expected ident at line 1 column 2",
            ),
            (
                "",
                ErrorCode::Malformed,
                "not JSON: EOF while parsing a value at line 1 column 0",
            ),
            (
                "[1]",
                ErrorCode::Malformed,
                "a request is a JSON object with a string member \"op\"",
            ),
            (
                r#"{"op":"list","colour":1}"#,
                ErrorCode::Malformed,
                "bad list request: unknown field `colour`, expected `filter`",
            ),
            (
                r#"{"op":"login","pin":"1234","token":7}"#,
                ErrorCode::Malformed,
                "bad login request: invalid type: integer `7`, expected a string",
            ),
        ];
        for (body, code, message) in cases {
            assert_eq!(
                decode_request(body.as_bytes()),
                Err(BadRequest::new(code, message)),
                "{body}"
            );
        }
    }

    /// Every error the parser gives is one of the two it documents, with
    /// something to tell the user.
    fn typed(result: Result<Request, BadRequest>) -> Result<(), TestCaseError> {
        if let Err(e) = result {
            prop_assert!(
                matches!(e.code, ErrorCode::Malformed | ErrorCode::UnknownRequest),
                "unexpected code {}",
                e.code
            );
            prop_assert!(!e.message.is_empty());
        }
        Ok(())
    }

    /// JSON values of any shape, a few levels deep.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..8).prop_map(Value::Array),
                vec((any::<String>(), inner), 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    /// Objects with a real op and members of any name and value, some of
    /// them the members the op takes.
    fn request_like() -> impl Strategy<Value = Vec<u8>> {
        let names = proptest::sample::select(vec![
            "version", "client", "filter", "id", "scheme", "message", "token", "pin", "origin",
            "ca_names", "schemes", "chooser", "remember", "op", "subject", "has_key",
        ]);
        (
            proptest::sample::select(Request::OPS.to_vec()),
            vec((names, json()), 0..5),
        )
            .prop_map(|(op, members)| {
                let mut object = serde_json::Map::new();
                object.insert("op".to_owned(), op.into());
                for (name, value) in members {
                    object.insert(name.to_owned(), value);
                }
                serde_json::to_vec(&object).unwrap_or_default()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn arbitrary_bytes_give_a_request_or_a_typed_error(body in vec(any::<u8>(), 0..512)) {
            typed(decode_request(&body))?;
        }

        #[test]
        fn arbitrary_json_gives_a_request_or_a_typed_error(value in json()) {
            let body = serde_json::to_vec(&value).unwrap_or_default();
            typed(decode_request(&body))?;
        }

        #[test]
        fn request_shaped_garbage_gives_a_request_or_a_typed_error(body in request_like()) {
            typed(decode_request(&body))?;
        }

        // Ops without members (`status`, `tokens`, `decisions`, `watch`)
        // are left out: serde ignores extra members of an internally
        // tagged unit variant, so those parse whatever else is present.
        #[test]
        fn a_known_op_with_bad_members_is_malformed(op in proptest::sample::select(vec![
            "hello", "list", "show", "sign", "sign_digest", "login", "logout", "select", "choose", "forget",
        ])) {
            let body = format!(r#"{{"op":"{op}","no_such_member":1}}"#);
            let error = decode_request(body.as_bytes()).expect_err("unknown member");
            prop_assert_eq!(error.code, ErrorCode::Malformed);
        }

        #[test]
        fn an_unknown_op_is_unknown(op in "[a-z_]{1,16}") {
            prop_assume!(!Request::OPS.contains(&op.as_str()));
            let body = format!(r#"{{"op":"{op}"}}"#);
            let error = decode_request(body.as_bytes()).expect_err("unknown op");
            prop_assert_eq!(error.code, ErrorCode::UnknownRequest);
        }
    }
}
