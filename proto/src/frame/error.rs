//! Why a frame could not be read or written.

use std::io;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
