//! Length-prefixed framing.
//!
//! A frame is a 4-byte big-endian unsigned length followed by that many
//! bytes of UTF-8 JSON. Requests may be at most [`MAX_REQUEST_FRAME`]
//! bytes, responses at most [`MAX_RESPONSE_FRAME`]; a zero-length frame
//! is malformed.

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Largest request body the agent accepts: 64 KiB. Requests are small;
/// the bound keeps a hostile client from making the agent allocate.
pub const MAX_REQUEST_FRAME: u32 = 64 * 1024;

/// Largest response body the agent sends: 32 MiB, room for listing
/// tens of thousands of identities.
pub const MAX_RESPONSE_FRAME: u32 = 32 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the stream cleanly between frames.
    #[error("connection closed")]
    Closed,
    /// The stream ended inside a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
    /// The announced length exceeds the limit.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The announced length.
        len: u32,
        /// The limit in force.
        max: u32,
    },
    /// A zero-length frame.
    #[error("empty frame")]
    Empty,
    /// The body is not the expected JSON.
    #[error("malformed message: {0}")]
    Json(#[from] serde_json::Error),
    /// The stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Encodes a message as a frame (length prefix and body).
pub fn encode<T: Serialize>(msg: &T, max: u32) -> Result<Vec<u8>, FrameError> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Checks an announced frame length against a limit.
fn check_len(len: u32, max: u32) -> Result<usize, FrameError> {
    match len {
        0 => Err(FrameError::Empty),
        n if n > max => Err(FrameError::TooLarge { len: n, max }),
        n => Ok(n as usize),
    }
}

/// Maps an unexpected EOF to [`FrameError::Truncated`].
fn truncated(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FrameError::Truncated
    } else {
        FrameError::Io(e)
    }
}

/// Reads one frame's body from a blocking stream.
pub fn read_body<R: Read>(r: &mut R, max: u32) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = check_len(u32::from_be_bytes(len), max)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(truncated)?;
    Ok(body)
}

/// Reads and decodes one message from a blocking stream.
pub fn read<R: Read, T: DeserializeOwned>(r: &mut R, max: u32) -> Result<T, FrameError> {
    let body = read_body(r, max)?;
    Ok(serde_json::from_slice(&body)?)
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
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    /// Reads one frame's body from an async stream.
    ///
    /// Cancel-safe only between frames: dropping the future mid-frame
    /// leaves the stream at an unknown position.
    pub async fn read_body<R: AsyncRead + Unpin>(
        r: &mut R,
        max: u32,
    ) -> Result<Vec<u8>, FrameError> {
        let mut len = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            match r.read(&mut len[got..]).await? {
                0 if got == 0 => return Err(FrameError::Closed),
                0 => return Err(FrameError::Truncated),
                n => got += n,
            }
        }
        let len = check_len(u32::from_be_bytes(len), max)?;
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await.map_err(truncated)?;
        Ok(body)
    }

    /// Reads and decodes one message from an async stream.
    pub async fn read<R: AsyncRead + Unpin, T: DeserializeOwned>(
        r: &mut R,
        max: u32,
    ) -> Result<T, FrameError> {
        let body = read_body(r, max).await?;
        Ok(serde_json::from_slice(&body)?)
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
