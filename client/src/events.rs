//! Event streams: a connection turned over to the agent's events by
//! [`Client::watch`](crate::Client::watch) or
//! [`AsyncClient::watch`](crate::AsyncClient::watch).

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::task::Poll;

use p11agent_proto::{Event, FrameError, Response};

use crate::connection::Connection;
use crate::transport::{wait, Transport};
use crate::ClientError;

/// The events of a blocking connection, in the order the agent sent them.
///
/// Iterating blocks until the next event. The iteration ends (`None`)
/// when the agent closes the connection, which it does when it stops.
/// An event frame that cannot be decoded is reported as an error and the
/// stream goes on (the framing is intact); a broken connection is
/// reported once, and then the stream ends. Dropping the stream closes
/// the connection.
///
/// A program that must not block (a PKCS#11 module answering a call)
/// takes what has arrived with [`try_next`](EventStream::try_next), and
/// may wait for more with `poll(2)` on [`as_fd`](AsFd::as_fd).
#[derive(Debug)]
pub struct EventStream {
    events: Events<UnixStream>,
}

impl EventStream {
    pub(crate) fn new(connection: Connection<UnixStream>) -> Self {
        EventStream {
            events: Events::new(connection),
        }
    }

    /// The next event if one has arrived, without waiting:
    /// `Poll::Pending` when none has (yet), otherwise what
    /// [`next`](Iterator::next) would return.
    ///
    /// Part of a frame that has arrived stays buffered for the next call,
    /// so events are never split or lost, whichever way they are read.
    pub fn try_next(&mut self) -> Poll<Option<Result<Event, ClientError>>> {
        if let Err(e) = self.set_nonblocking(true) {
            return Poll::Ready(Some(Err(e)));
        }
        let item = wait(self.events.next());
        if let Err(e) = self.set_nonblocking(false) {
            // Reading on would block the caller's thread the wrong way.
            self.events.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        match item {
            Some(Err(ClientError::Frame(FrameError::Io(e)))) if would_block(&e) => Poll::Pending,
            item => Poll::Ready(item),
        }
    }

    fn set_nonblocking(&self, on: bool) -> Result<(), ClientError> {
        self.events
            .connection
            .stream()
            .set_nonblocking(on)
            .map_err(|e| ClientError::Frame(FrameError::Io(e)))
    }
}

/// The connection's socket, to wait for events with `poll(2)` before
/// taking them with [`try_next`](EventStream::try_next). Read nothing
/// from it directly: the stream's buffer holds what was read ahead.
impl AsFd for EventStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.events.connection.stream().as_fd()
    }
}

impl Iterator for EventStream {
    type Item = Result<Event, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        wait(self.events.next())
    }
}

impl std::iter::FusedIterator for EventStream {}

/// The events of an async connection, in the order the agent sent them.
///
/// Behaves as [`EventStream`] does: [`next`](AsyncEventStream::next)
/// returns `None` once the agent closed the connection.
#[derive(Debug)]
pub struct AsyncEventStream {
    events: Events<tokio::net::UnixStream>,
}

impl AsyncEventStream {
    pub(crate) fn new(connection: Connection<tokio::net::UnixStream>) -> Self {
        AsyncEventStream {
            events: Events::new(connection),
        }
    }

    /// The next event, or `None` when the agent closed the connection.
    ///
    /// Cancel-safe: it may be raced against a timeout or other work in
    /// `tokio::select!` without losing or splitting an event.
    pub async fn next(&mut self) -> Option<Result<Event, ClientError>> {
        self.events.next().await
    }
}

/// What both event streams do, over either transport.
#[derive(Debug)]
struct Events<T> {
    connection: Connection<T>,
    done: bool,
}

impl<T: Transport> Events<T> {
    fn new(connection: Connection<T>) -> Self {
        Events {
            connection,
            done: false,
        }
    }

    /// The next event; `None` once the agent closed the connection or
    /// the stream broke. Cancel-safe, as reading a response is, since
    /// `done` changes only once a frame was taken.
    async fn next(&mut self) -> Option<Result<Event, ClientError>> {
        if self.done {
            return None;
        }
        let item = match self.connection.response().await {
            Ok(response) => into_event(response),
            Err(FrameError::Closed) => {
                self.done = true;
                return None;
            }
            Err(e) => Err(e.into()),
        };
        self.done = ends_stream(&item);
        Some(item)
    }
}

/// The event a response carries; the agent's error answer, or any other
/// response, as an error.
fn into_event(response: Response) -> Result<Event, ClientError> {
    match response {
        Response::Event(event) => Ok(event),
        other => Err(crate::calls::unexpected(other)),
    }
}

/// Whether the stream cannot go on after `item`: an undecodable frame
/// leaves the framing, and so the stream, intact, and a read that would
/// have blocked (see [`EventStream::try_next`]) took nothing.
fn ends_stream(item: &Result<Event, ClientError>) -> bool {
    match item {
        Ok(_) | Err(ClientError::Frame(FrameError::Json(_))) => false,
        Err(ClientError::Frame(FrameError::Io(e))) => !would_block(e),
        Err(_) => true,
    }
}

/// Whether a read failed only because nothing had arrived.
fn would_block(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;
    use p11agent_proto::frame::{self, FrameDecoder, MAX_RESPONSE_FRAME};
    use p11agent_proto::{ErrorCode, EventKind};

    fn frame_of(response: &Response) -> Vec<u8> {
        frame::encode(response, MAX_RESPONSE_FRAME).expect("encode")
    }

    fn event(detail: &str) -> Response {
        Response::Event(Event::new(EventKind::Login, "t").detail(detail))
    }

    /// A decoder as the event streams keep one, holding `bytes`.
    fn buffer(bytes: &[u8]) -> FrameDecoder {
        let mut decoder = FrameDecoder::new(MAX_RESPONSE_FRAME);
        extend(&mut decoder, bytes);
        decoder
    }

    fn extend(decoder: &mut FrameDecoder, bytes: &[u8]) {
        decoder.read_space(false)[..bytes.len()].copy_from_slice(bytes);
        decoder.filled(bytes.len());
    }

    /// The next whole frame's body; `None` while it is incomplete.
    fn take_frame(decoder: &mut FrameDecoder) -> Result<Option<Vec<u8>>, FrameError> {
        Ok(decoder.next_frame()?.map(|frame| frame.to_vec()))
    }

    /// One frame's body as an event.
    fn decode(body: &[u8]) -> Result<Event, ClientError> {
        into_event(serde_json::from_slice(body).map_err(FrameError::from)?)
    }

    #[test]
    fn frames_are_taken_whole_and_in_order() {
        let mut wire = frame_of(&event("1"));
        wire.extend(frame_of(&event("2")));
        let mut buffer = buffer(&wire[..wire.len() - 3]);
        let first = take_frame(&mut buffer).expect("frame").expect("whole");
        assert_eq!(decode(&first).expect("event").detail.as_deref(), Some("1"));
        assert!(take_frame(&mut buffer).expect("no error").is_none());
        extend(&mut buffer, &wire[wire.len() - 3..]);
        let second = take_frame(&mut buffer).expect("frame").expect("whole");
        assert_eq!(decode(&second).expect("event").detail.as_deref(), Some("2"));
        assert!(!buffer.in_frame());
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(matches!(
            take_frame(&mut buffer(&[0, 0, 0, 0])),
            Err(FrameError::Empty)
        ));
        let huge = (MAX_RESPONSE_FRAME + 1).to_be_bytes().to_vec();
        assert!(matches!(
            take_frame(&mut buffer(&huge)),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn the_blocking_stream_ends_when_the_agent_closes() {
        let (ours, mut agent) = UnixStream::pair().expect("pair");
        use std::io::Write as _;
        agent.write_all(&frame_of(&event("1"))).expect("write");
        agent.write_all(b"{not json").expect("write");
        drop(agent);
        let mut stream = EventStream::new(Connection::new(ours));
        assert!(matches!(stream.next(), Some(Ok(e)) if e.detail.as_deref() == Some("1")));
        // The stray bytes are no frame: reported once, then the end.
        assert!(matches!(stream.next(), Some(Err(_))));
        assert!(stream.next().is_none());
        assert!(stream.next().is_none());
    }

    #[test]
    fn an_error_answer_or_an_undecodable_event_is_reported() {
        let (ours, mut agent) = UnixStream::pair().expect("pair");
        use std::io::Write as _;
        let mut garbled = frame::encode(&event("x"), MAX_RESPONSE_FRAME).expect("encode");
        let last = garbled.len() - 1;
        garbled[last] = b'!';
        agent.write_all(&garbled).expect("write");
        agent.write_all(&frame_of(&event("2"))).expect("write");
        agent
            .write_all(&frame_of(&Response::error(ErrorCode::Internal, "boom")))
            .expect("write");
        agent.write_all(&frame_of(&event("3"))).expect("write");
        let mut stream = EventStream::new(Connection::new(ours));
        assert!(matches!(
            stream.next(),
            Some(Err(ClientError::Frame(FrameError::Json(_))))
        ));
        assert!(matches!(stream.next(), Some(Ok(e)) if e.detail.as_deref() == Some("2")));
        assert!(matches!(
            stream.next(),
            Some(Err(ClientError::Agent {
                code: ErrorCode::Internal,
                ..
            }))
        ));
        assert!(stream.next().is_none(), "an error answer ends the stream");
    }

    #[test]
    fn try_next_takes_what_arrived_and_never_splits_a_frame() {
        use std::io::Write as _;
        let (ours, mut agent) = UnixStream::pair().expect("pair");
        let mut stream = EventStream::new(Connection::new(ours));
        assert!(stream.try_next().is_pending(), "nothing sent yet");
        let wire = frame_of(&event("1"));
        agent.write_all(&wire[..5]).expect("write");
        assert!(stream.try_next().is_pending(), "half a frame is no event");
        agent.write_all(&wire[5..]).expect("write");
        agent.write_all(&frame_of(&event("2"))).expect("write");
        for expected in ["1", "2"] {
            match stream.try_next() {
                Poll::Ready(Some(Ok(e))) => assert_eq!(e.detail.as_deref(), Some(expected)),
                other => panic!("expected event {expected}, got {other:?}"),
            }
        }
        assert!(stream.try_next().is_pending());
        // The stream still blocks for the iterator after a pending poll.
        agent.write_all(&frame_of(&event("3"))).expect("write");
        assert!(matches!(stream.next(), Some(Ok(e)) if e.detail.as_deref() == Some("3")));
        drop(agent);
        assert!(matches!(stream.try_next(), Poll::Ready(None)));
        assert!(matches!(stream.try_next(), Poll::Ready(None)));
    }

    #[tokio::test]
    async fn the_async_stream_survives_cancellation_mid_frame() {
        use tokio::io::AsyncWriteExt as _;
        let (ours, mut agent) = tokio::net::UnixStream::pair().expect("pair");
        let mut stream = AsyncEventStream::new(Connection::new(ours));
        let wire = frame_of(&event("1"));
        agent.write_all(&wire[..5]).await.expect("write");
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), stream.next()).await;
        assert!(waited.is_err(), "half a frame is no event");
        agent.write_all(&wire[5..]).await.expect("write");
        let got = stream.next().await.expect("event").expect("decoded");
        assert_eq!(got.detail.as_deref(), Some("1"));
        agent.write_all(&wire[..2]).await.expect("write");
        drop(agent);
        assert!(matches!(
            stream.next().await,
            Some(Err(ClientError::Frame(FrameError::Truncated)))
        ));
        assert!(stream.next().await.is_none());
    }
}
