//! The two streams the shared core (`connection.rs`) runs on: std's
//! Unix socket for [`Client`](crate::Client), tokio's for
//! [`AsyncClient`](crate::AsyncClient).
//!
//! The core is async code. On std's socket every read and write blocks
//! the thread until it is done, so its futures finish at their first
//! poll, and [`wait`] runs them without a runtime.

use std::future::Future;
use std::io::{self, Write as _};
use std::os::unix::net::UnixStream as StdStream;
use std::path::Path;
use std::task::{Context, Poll, Waker};

use p11agent_proto::frame::{Frame, FrameDecoder};
use p11agent_proto::FrameError;
use tokio::io::AsyncWriteExt as _;
use tokio::net::UnixStream as TokioStream;

/// What reading a frame gives: the frame, in the decoder's buffer.
pub(crate) type Received<'d> = Result<Frame<'d>, FrameError>;

/// A stream to the agent, blocking or async.
pub(crate) trait Transport: Sized {
    /// Connects to the agent's socket.
    async fn connect(path: &Path) -> io::Result<Self>;

    /// Writes one encoded frame.
    async fn send(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Reads through `decoder` until it holds a whole frame.
    async fn receive<'d>(&mut self, decoder: &'d mut FrameDecoder) -> Received<'d>;
}

/// Polls a future over a blocking [`Transport`] to its end.
///
/// Such a future never waits for a wake-up: each read or write blocks
/// the thread until it is done, so the first poll finishes it.
pub(crate) fn wait<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        // Only a transport that does not block would get here; polling
        // again is still correct, just not efficient.
        std::thread::yield_now();
    }
}

/// The blocking client's stream; reads ahead through the decoder.
impl Transport for StdStream {
    async fn connect(path: &Path) -> io::Result<Self> {
        StdStream::connect(path)
    }

    async fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.write_all(frame)?;
        self.flush()
    }

    async fn receive<'d>(&mut self, decoder: &'d mut FrameDecoder) -> Received<'d> {
        decoder.read_frame(self, false)
    }
}

/// The async client's stream; cancel-safe to receive on, since what
/// arrived stays in the decoder.
impl Transport for TokioStream {
    async fn connect(path: &Path) -> io::Result<Self> {
        TokioStream::connect(path).await
    }

    async fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        self.write_all(frame).await?;
        self.flush().await
    }

    async fn receive<'d>(&mut self, decoder: &'d mut FrameDecoder) -> Received<'d> {
        decoder.read_frame_async(self, false).await
    }
}
