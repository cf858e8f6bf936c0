//! Length-prefixed framing.
//!
//! A frame is a 4-byte big-endian unsigned length followed by that many
//! bytes of UTF-8 JSON. Requests may be at most [`MAX_REQUEST_FRAME`]
//! bytes, responses at most [`MAX_RESPONSE_FRAME`]; a zero-length frame
//! is malformed. A frame must cross the socket within [`FRAME_TIMEOUT`]
//! once it has started, and the agent closes a connection that has no
//! request in progress for [`IDLE_TIMEOUT`] (the limits are listed in the
//! crate README, "Limits").
//!
//! [`FrameDecoder`] holds these rules; every reader of frames (the
//! functions here, the clients, the agent) reads through one.

use std::io::{Read, Write};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

mod decoder;
mod error;

pub use decoder::{Frame, FrameDecoder};
pub use error::FrameError;

/// Largest request body the agent accepts: 64 KiB. Requests are small;
/// the bound keeps a hostile client from making the agent allocate.
pub const MAX_REQUEST_FRAME: u32 = 64 * 1024;

/// Largest response body the agent sends: 32 MiB, room for listing
/// tens of thousands of identities.
pub const MAX_RESPONSE_FRAME: u32 = 32 * 1024 * 1024;

/// How long one frame may take to cross the socket once it has started:
/// from the first byte of a request to its last, and from the agent's
/// first write of a response to its last (the socket buffers only part
/// of a large one, so in effect a client must read its answer).
///
/// A local client moves even a [`MAX_RESPONSE_FRAME`] in milliseconds,
/// so 10 s only ever cuts off a client that stopped halfway (a "slow
/// loris", or one that sends requests without reading the answers),
/// which would otherwise hold a connection slot and a frame buffer for
/// as long as it liked.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the agent keeps a connection open with no request in
/// progress: 5 minutes from its last answer until the first byte of the
/// next request.
///
/// Long enough that an interactive tool holding a connection rarely
/// sees it go; short enough that connections a client leaked are
/// returned within minutes. The client library reconnects transparently
/// when it finds its connection closed, so the bound costs a well-written
/// client one reconnection. An event stream (`watch`) is not idle: it
/// stays open.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Encodes a message as a frame (length prefix and body).
///
/// The body is written after a placeholder prefix, which is then filled
/// in: a listing of 1,000 identities is 700 KB, and copying it once more
/// behind its prefix showed in the agent's profile (issue 7).
pub fn encode<T: Serialize>(msg: &T, max: u32) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(4 * 1024);
    out.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut out, msg)?;
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    out[..4].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

/// Reads one frame's body from a blocking stream.
///
/// Reads exactly the frame and nothing after it, so the stream is left
/// at the next frame; a prefix over `max` is refused before the body is
/// read or any room is made for it.
pub fn read_body<R: Read>(r: &mut R, max: u32) -> Result<Vec<u8>, FrameError> {
    let mut decoder = FrameDecoder::new(max);
    let body = decoder.read_frame(r, true)?.to_vec();
    Ok(body)
}

/// Reads and decodes one message from a blocking stream, as
/// [`read_body`] reads.
///
/// The message is decoded from the reader's buffer, which is wiped
/// afterwards: no copy of a request's PIN stays behind.
pub fn read<R: Read, T: DeserializeOwned>(r: &mut R, max: u32) -> Result<T, FrameError> {
    let mut decoder = FrameDecoder::new(max);
    let message = decoder.read_frame(r, true)?.decode();
    message
}

/// Encodes and writes one message to a blocking stream.
pub fn write<W: Write, T: Serialize>(w: &mut W, msg: &T, max: u32) -> Result<(), FrameError> {
    w.write_all(&encode(msg, max)?)?;
    w.flush()?;
    Ok(())
}

/// The same operations on tokio streams.
#[cfg(feature = "tokio")]
pub mod tokio_io {
    use super::*;
    use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

    /// Reads one frame's body from an async stream, as
    /// [`read_body`](super::read_body) does from a blocking one.
    ///
    /// Cancel-safe only between frames: dropping the future mid-frame
    /// leaves the stream at an unknown position. A reader that must not
    /// lose bytes keeps a [`FrameDecoder`] across calls instead.
    pub async fn read_body<R: AsyncRead + Unpin>(
        r: &mut R,
        max: u32,
    ) -> Result<Vec<u8>, FrameError> {
        let mut decoder = FrameDecoder::new(max);
        let body = decoder.read_frame_async(r, true).await?.to_vec();
        Ok(body)
    }

    /// Reads and decodes one message from an async stream, as
    /// [`read`](super::read) does from a blocking one.
    pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(
        r: &mut R,
        max: u32,
    ) -> Result<T, FrameError> {
        let mut decoder = FrameDecoder::new(max);
        let message = decoder.read_frame_async(r, true).await?.decode();
        message
    }

    /// Encodes and writes one message to an async stream.
    pub async fn write<W: AsyncWrite + Unpin, T: Serialize>(
        w: &mut W,
        msg: &T,
        max: u32,
    ) -> Result<(), FrameError> {
        w.write_all(&encode(msg, max)?).await?;
        w.flush().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Request;

    #[test]
    fn round_trip() {
        let bytes = encode(&Request::Status, MAX_REQUEST_FRAME).expect("encode");
        assert_eq!(&bytes[..4], &(bytes.len() as u32 - 4).to_be_bytes());
        let back: Request = read(&mut &bytes[..], MAX_REQUEST_FRAME).expect("decode");
        assert_eq!(back, Request::Status);
    }

    #[test]
    fn rejects_oversized_and_empty_and_truncated() {
        let big = (MAX_REQUEST_FRAME + 1).to_be_bytes();
        assert!(matches!(
            read_body(&mut &big[..], MAX_REQUEST_FRAME),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            read_body(&mut &[0u8, 0, 0, 0][..], MAX_REQUEST_FRAME),
            Err(FrameError::Empty)
        ));
        assert!(matches!(
            read_body(&mut &[0u8, 0, 0, 9, b'{'][..], MAX_REQUEST_FRAME),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_body(&mut &[0u8, 0][..], MAX_REQUEST_FRAME),
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_body(&mut &[][..], MAX_REQUEST_FRAME),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn oversized_prefix_is_refused_without_reading_on() {
        // The body of a 4 GiB announcement is never asked for: the reader
        // would hand over its bytes if the decoder tried to read them.
        let mut input = u32::MAX.to_be_bytes().to_vec();
        input.extend_from_slice(b"{\"op\":\"status\"}");
        let mut rest = &input[..];
        assert!(matches!(
            read_body(&mut rest, MAX_REQUEST_FRAME),
            Err(FrameError::TooLarge { len: u32::MAX, .. })
        ));
        assert_eq!(rest.len(), input.len() - 4, "only the prefix was read");
    }

    #[test]
    fn request_wire_names() {
        let json = serde_json::to_string(&Request::List {
            filter: crate::Filter {
                has_key: Some(true),
                ..Default::default()
            },
        })
        .expect("json");
        assert_eq!(json, r#"{"op":"list","filter":{"has_key":true}}"#);
        let unknown: Result<Request, _> = serde_json::from_str(r#"{"op":"explode"}"#);
        assert!(unknown.is_err());
    }
}

/// Property tests: whatever bytes arrive, the decoders return frames or
/// typed errors, never panic, never hand out a frame outside the limits,
/// and the blocking and async readers agree, with each other and with a
/// decoder fed the bytes in pieces of any size.
#[cfg(test)]
mod properties {
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    use super::*;
    use crate::message::{Filter, Request};
    use crate::{ChooserMode, KeyType, Pin, Scheme};

    /// What decoding a stream frame by frame gave: the bodies, then the
    /// error that stopped it, as text (errors are not comparable).
    type Outcome = (Vec<Vec<u8>>, String);

    /// Decodes frames from `input` with the blocking decoder until it
    /// fails (at the latest, at the end of the input).
    fn decode_all(input: &[u8], max: u32) -> Outcome {
        let mut rest = input;
        let mut bodies = Vec::new();
        loop {
            match read_body(&mut rest, max) {
                Ok(body) => bodies.push(body),
                Err(e) => return (bodies, e.to_string()),
            }
        }
    }

    /// The same with the async decoder the agent uses.
    #[cfg(feature = "tokio")]
    fn decode_all_async(input: &[u8], max: u32) -> Outcome {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let mut rest = input;
            let mut bodies = Vec::new();
            loop {
                match tokio_io::read_body(&mut rest, max).await {
                    Ok(body) => bodies.push(body),
                    Err(e) => return (bodies, e.to_string()),
                }
            }
        })
    }

    fn text() -> impl Strategy<Value = String> {
        // Any Unicode, including what JSON must escape.
        any::<String>()
    }

    fn scheme() -> impl Strategy<Value = Scheme> {
        proptest::sample::select(Scheme::ALL.to_vec())
    }

    fn filter() -> impl Strategy<Value = Filter> {
        (
            option::of(text()),
            option::of(text()),
            option::of(text()),
            option::of(proptest::sample::select(vec![
                KeyType::Rsa,
                KeyType::Ec,
                KeyType::Ed25519,
                KeyType::Other,
            ])),
            option::of(any::<bool>()),
            option::of(any::<bool>()),
        )
            .prop_map(
                |(subject, issuer, fingerprint, key_type, has_key, client_auth)| Filter {
                    subject,
                    issuer,
                    fingerprint,
                    key_type,
                    has_key,
                    client_auth,
                    ..Filter::default()
                },
            )
    }

    /// Requests of every shape that is settled in the protocol.
    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (any::<u32>(), option::of(text()))
                .prop_map(|(version, client)| Request::Hello { version, client }),
            Just(Request::Status),
            Just(Request::Tokens),
            filter().prop_map(|filter| Request::List { filter }),
            text().prop_map(|id| Request::Show { id }),
            (option::of(text()), option::of(text())).prop_map(|(token, pin)| Request::Login {
                token,
                pin: pin.map(Pin::new),
            }),
            option::of(text()).prop_map(|token| Request::Logout { token }),
            (
                text(),
                vec(text(), 0..4),
                option::of(vec(scheme(), 0..4)),
                any::<bool>(),
                option::of(text()),
                any::<bool>(),
            )
                .prop_map(|(origin, ca_names, schemes, client, id, explain)| {
                    Request::Select {
                        origin,
                        ca_names,
                        schemes,
                        chooser: if client {
                            ChooserMode::Client
                        } else {
                            ChooserMode::Agent
                        },
                        id,
                        explain,
                    }
                }),
            (text(), option::of(text()), any::<bool>()).prop_map(|(origin, id, remember)| {
                Request::Choose {
                    origin,
                    id,
                    remember,
                }
            }),
            Just(Request::Decisions),
            option::of(text()).prop_map(|origin| Request::Forget { origin }),
            Just(Request::Watch),
        ]
    }

    /// The same with one [`FrameDecoder`] fed the input in pieces of the
    /// given sizes (repeated), as a buffered reader's reads bring it.
    fn decode_in_pieces(input: &[u8], pieces: &[usize], max: u32) -> Outcome {
        let mut decoder = FrameDecoder::new(max);
        let mut rest = input;
        let mut pieces = pieces.iter().cycle();
        let mut bodies = Vec::new();
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    bodies.push(frame.to_vec());
                    continue;
                }
                Ok(None) => {}
                Err(e) => return (bodies, e.to_string()),
            }
            let space = decoder.read_space(false);
            let n = pieces
                .next()
                .map_or(1, |&p| p)
                .min(space.len())
                .min(rest.len());
            space[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            if let Err(e) = decoder.received(Ok(n)) {
                return (bodies, e.to_string());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_body_round_trips(body in vec(any::<u8>(), 1..4096), tail in vec(any::<u8>(), 0..16)) {
            let mut input = (body.len() as u32).to_be_bytes().to_vec();
            input.extend_from_slice(&body);
            input.extend_from_slice(&tail);
            let mut rest = &input[..];
            prop_assert_eq!(read_body(&mut rest, MAX_REQUEST_FRAME).expect("frame"), body);
            // The decoder took its frame and nothing after it.
            prop_assert_eq!(rest, &tail[..]);
        }

        #[test]
        fn requests_round_trip(request in request()) {
            let bytes = encode(&request, MAX_REQUEST_FRAME).expect("encode");
            let back: Request = read(&mut &bytes[..], MAX_REQUEST_FRAME).expect("decode");
            prop_assert_eq!(back, request);
        }

        #[test]
        fn arbitrary_bytes_give_bounded_frames_or_errors(
            input in vec(any::<u8>(), 0..512),
            max in 1u32..64,
        ) {
            let (bodies, _) = decode_all(&input, max);
            let mut used = 0;
            for body in &bodies {
                prop_assert!(!body.is_empty() && body.len() <= max as usize);
                used += 4 + body.len();
            }
            prop_assert!(used <= input.len());
        }

        #[test]
        fn frame_sequences_decode_in_order(
            bodies in vec(vec(any::<u8>(), 1..64), 0..8),
            garbage in vec(any::<u8>(), 0..8),
        ) {
            let mut input = Vec::new();
            for body in &bodies {
                input.extend_from_slice(&(body.len() as u32).to_be_bytes());
                input.extend_from_slice(body);
            }
            input.extend_from_slice(&garbage);
            let (decoded, _) = decode_all(&input, MAX_REQUEST_FRAME);
            // The well-formed frames come out first, whatever follows them.
            prop_assert!(decoded.len() >= bodies.len());
            prop_assert_eq!(&decoded[..bodies.len()], &bodies[..]);
        }

        #[test]
        fn arbitrary_bodies_decode_to_requests_or_errors(body in vec(any::<u8>(), 0..256)) {
            let mut input = (body.len() as u32).to_be_bytes().to_vec();
            input.extend_from_slice(&body);
            // Any outcome is fine; what is checked is that there is one.
            let _ = read::<_, Request>(&mut &input[..], MAX_REQUEST_FRAME);
        }

        #[test]
        fn a_decoder_fed_in_pieces_agrees_with_the_stream_reader(
            input in vec(any::<u8>(), 0..512),
            pieces in vec(1usize..40, 1..8),
            max in 1u32..64,
        ) {
            prop_assert_eq!(decode_in_pieces(&input, &pieces, max), decode_all(&input, max));
        }

        #[test]
        fn well_formed_streams_decode_whole_in_pieces(
            bodies in vec(vec(any::<u8>(), 1..200), 0..6),
            pieces in vec(1usize..300, 1..8),
        ) {
            let mut input = Vec::new();
            for body in &bodies {
                input.extend_from_slice(&(body.len() as u32).to_be_bytes());
                input.extend_from_slice(body);
            }
            let (decoded, end) = decode_in_pieces(&input, &pieces, 256);
            prop_assert_eq!(decoded, bodies);
            prop_assert_eq!(end, FrameError::Closed.to_string());
        }

        #[cfg(feature = "tokio")]
        #[test]
        fn blocking_and_async_decoders_agree(input in vec(any::<u8>(), 0..256), max in 1u32..64) {
            prop_assert_eq!(decode_all(&input, max), decode_all_async(&input, max));
        }
    }
}
