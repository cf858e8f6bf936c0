//! The one frame decoder, [`FrameDecoder`]: buffer-based and free of
//! I/O, so that the blocking and async readers, the clients, their event
//! streams and the agent all apply the framing rules through the same
//! code.

use std::io::Read;
use std::ops::Deref;

use zeroize::Zeroize as _;

use super::error::FrameError;

/// How much more than the current frame needs a non-`exact` read asks
/// for, so that one `read()` usually brings a whole small frame, or the
/// next frame's start with the end of this one.
const READ_CHUNK: usize = 8 * 1024;

/// A buffer larger than this is given up once it is empty, so that one
/// big answer (a 700 KB listing) does not pin its memory for the life of
/// the connection.
const KEEP_AT_MOST: usize = 64 * 1024;

/// The read loop of [`FrameDecoder::read_frame`] and
/// [`FrameDecoder::read_frame_async`], written once for both: `$read`
/// reads into the decoder's read space, blocking or awaiting.
macro_rules! read_until_frame {
    ($decoder:ident, $read:expr) => {
        loop {
            if let Some(ready) = $decoder.ready() {
                return ready.map(|len| Frame {
                    decoder: $decoder,
                    len,
                });
            }
            let read = $read;
            $decoder.received(read)?;
        }
    };
}

/// Reassembles length-prefixed frames from bytes read in pieces of any
/// size.
///
/// The decoder does no I/O. The caller asks [`read_space`](Self::read_space)
/// for room, reads into it with whatever I/O it has, reports the count
/// with [`received`](Self::received), and takes whole frames with
/// [`next_frame`](Self::next_frame). [`read_frame`](Self::read_frame)
/// (blocking `Read`) and [`read_frame_async`](Self::read_frame_async)
/// (tokio) run that loop:
///
/// ```
/// use p11agent_proto::frame::{FrameDecoder, FrameError, MAX_REQUEST_FRAME};
///
/// let mut wire = &b"\0\0\0\x0f{\"op\":\"status\"}\0\0\0\x0f{\"op\":\"tokens\"}"[..];
/// let mut decoder = FrameDecoder::new(MAX_REQUEST_FRAME);
/// assert_eq!(&*decoder.read_frame(&mut wire, false)?, br#"{"op":"status"}"#);
/// assert_eq!(&*decoder.read_frame(&mut wire, false)?, br#"{"op":"tokens"}"#);
/// assert!(matches!(decoder.read_frame(&mut wire, false), Err(FrameError::Closed)));
/// # Ok::<(), FrameError>(())
/// ```
///
/// Nothing is lost between calls: a read that is abandoned (an async read
/// dropped by `select!` or a timeout) never reached `received`, and what
/// earlier reads brought stays in the decoder. A reader that keeps its
/// decoder across calls is therefore cancel-safe.
///
/// A length prefix is judged as soon as its four bytes are in: zero is
/// [`FrameError::Empty`], more than the limit [`FrameError::TooLarge`],
/// before the buffer grows for the body. Either error consumes the
/// prefix, so a reader that goes on finds the bytes after it, as a
/// stream reader that had read the prefix would.
///
/// Bytes a frame occupied are overwritten with zeros when the frame is
/// consumed (a request may carry a PIN), the buffer leaves no copies of
/// them behind when it moves or grows its contents, and what is still
/// buffered is wiped when the decoder is dropped.
pub struct FrameDecoder {
    /// Storage, every byte initialised: `buf[start..end]` holds the bytes
    /// received and not consumed, the rest is zeros.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The length of the last read space, the most `filled` may record.
    offered: usize,
    max: u32,
}

impl std::fmt::Debug for FrameDecoder {
    // The contents may be a PIN: sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("buffered", &self.buffered())
            .field("capacity", &self.buf.len())
            .field("max", &self.max)
            .finish()
    }
}

impl FrameDecoder {
    /// A decoder for frames of at most `max` bytes of body. It allocates
    /// nothing until the first [`read_space`](Self::read_space).
    pub fn new(max: u32) -> Self {
        FrameDecoder {
            buf: Vec::new(),
            start: 0,
            end: 0,
            offered: 0,
            max,
        }
    }

    fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// The buffered prefix judged against the limits: the body length
    /// it announces, or why that is refused; `None` until all four of its
    /// bytes are in. The framing rules live here alone.
    fn prefix(&self) -> Option<Result<usize, FrameError>> {
        let head = self.buf.get(self.start..self.end)?.first_chunk::<4>()?;
        Some(match u32::from_be_bytes(*head) {
            0 => Err(FrameError::Empty),
            len if len > self.max => Err(FrameError::TooLarge { len, max: self.max }),
            len => Ok(len as usize),
        })
    }

    /// Bytes still needed to complete the frame being read: 4 for a
    /// prefix when nothing is buffered, 0 when [`next_frame`] has a frame
    /// or an error to give.
    ///
    /// [`next_frame`]: Self::next_frame
    pub fn needed(&self) -> usize {
        match self.prefix() {
            None => 4 - self.buffered(),
            Some(Ok(len)) => (4 + len).saturating_sub(self.buffered()),
            Some(Err(_)) => 0,
        }
    }

    /// Space to read into, after the bytes buffered so far.
    ///
    /// With `exact` it is exactly [`needed`](Self::needed) bytes long, so
    /// that a reader without a buffer of its own never takes bytes of the
    /// next frame from its stream (and reads a prefix alone before the
    /// body's space exists). Otherwise it is a read chunk (8 KiB) longer,
    /// so that one read usually brings a whole small frame.
    ///
    /// The buffer grows to hold the whole frame once its prefix is known,
    /// in one step: a 700 KB listing is one allocation. Call
    /// [`next_frame`](Self::next_frame) first: a prefix that announces
    /// too much is refused there, and until it is, no space is made for
    /// its body.
    pub fn read_space(&mut self, exact: bool) -> &mut [u8] {
        let want = self.needed() + if exact { 0 } else { READ_CHUNK };
        if self.buf.len() - self.end < want {
            self.make_room(want);
        }
        self.offered = want;
        &mut self.buf[self.end..self.end + want]
    }

    /// Makes `want` bytes of room after the buffered bytes: by moving them
    /// to the front when that is enough, else into a larger buffer.
    fn make_room(&mut self, want: usize) {
        let have = self.buffered();
        if self.buf.len() >= have + want {
            self.buf.copy_within(self.start..self.end, 0);
            // The tail of the old position is a second copy of bytes now
            // at the front; those bytes are wiped when consumed, so the
            // copy must not outlive them.
            let stale = have.max(self.start)..self.end;
            self.buf[stale].fill(0);
        } else {
            // Not `Vec::reserve`: a reallocation would free the old
            // storage with the bytes still in it.
            let mut bigger = vec![0; have + want];
            bigger[..have].copy_from_slice(&self.buf[self.start..self.end]);
            let mut old = std::mem::replace(&mut self.buf, bigger);
            old.zeroize();
        }
        self.start = 0;
        self.end = have;
    }

    /// Records that the first `n` bytes of the last
    /// [`read_space`](Self::read_space) were written.
    ///
    /// # Panics
    ///
    /// When `n` exceeds the space handed out, which no correct reader
    /// reports.
    pub fn filled(&mut self, n: usize) {
        assert!(n <= self.offered, "filled more than the read space");
        self.offered -= n;
        self.end += n;
    }

    /// Takes the outcome of a read into the last
    /// [`read_space`](Self::read_space): records the bytes, or turns an end
    /// of stream into [`eof`](Self::eof)'s error and a failure into
    /// [`FrameError::Io`]. An interrupted read is no error: read again.
    ///
    /// The decoder is unchanged by an error, so [`in_frame`](Self::in_frame)
    /// still tells whether any of the frame had arrived.
    pub fn received(&mut self, read: std::io::Result<usize>) -> Result<(), FrameError> {
        match read {
            Ok(0) => Err(self.eof()),
            Ok(n) => {
                self.filled(n);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(FrameError::Io(e)),
        }
    }

    /// The next whole frame, when one is buffered; `Ok(None)` while it is
    /// incomplete.
    ///
    /// A prefix of zero or above the limit is an error as soon as its
    /// four bytes are in, before any space is made for the body; the
    /// prefix is consumed with the error.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        self.ready()
            .transpose()
            .map(|len| len.map(|len| Frame { decoder: self, len }))
    }

    /// What the buffered bytes make: the body length of a whole frame,
    /// the error of a refused prefix (consumed with it), or `None` while
    /// more must be read.
    fn ready(&mut self) -> Option<Result<usize, FrameError>> {
        match self.prefix()? {
            Ok(len) => (self.buffered() >= 4 + len).then_some(Ok(len)),
            Err(refused) => {
                self.consume(4);
                Some(Err(refused))
            }
        }
    }

    /// Reads from a blocking stream until a frame is whole, and returns it.
    ///
    /// `exact` as for [`read_space`](Self::read_space): a caller that
    /// reads its stream only through this decoder passes `false`, one
    /// that must leave the stream at the next frame `true`. An end of
    /// stream is [`eof`](Self::eof)'s error.
    pub fn read_frame<R: Read + ?Sized>(
        &mut self,
        r: &mut R,
        exact: bool,
    ) -> Result<Frame<'_>, FrameError> {
        read_until_frame!(self, r.read(self.read_space(exact)))
    }

    /// Reads from an async stream until a frame is whole, and returns it,
    /// as [`read_frame`](Self::read_frame) does.
    ///
    /// Cancel-safe: dropped while waiting, it has consumed nothing that
    /// the next call will not find in the decoder.
    #[cfg(feature = "tokio")]
    pub async fn read_frame_async<R: tokio::io::AsyncRead + Unpin + ?Sized>(
        &mut self,
        r: &mut R,
        exact: bool,
    ) -> Result<Frame<'_>, FrameError> {
        use tokio::io::AsyncReadExt as _;
        read_until_frame!(self, r.read(self.read_space(exact)).await)
    }

    /// Wipes and drops the first `n` buffered bytes.
    fn consume(&mut self, n: usize) {
        self.buf[self.start..self.start + n].fill(0);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            if self.buf.len() > KEEP_AT_MOST {
                // Every byte is zero by now (see `buf`).
                self.buf = Vec::new();
            }
        }
    }

    /// The error for an end of stream now: [`FrameError::Closed`] between
    /// frames, [`FrameError::Truncated`] inside one.
    pub fn eof(&self) -> FrameError {
        if self.in_frame() {
            FrameError::Truncated
        } else {
            FrameError::Closed
        }
    }

    /// Whether part of a frame is buffered: some bytes arrived and the
    /// frame they begin has not been taken.
    pub fn in_frame(&self) -> bool {
        self.end > self.start
    }
}

impl Drop for FrameDecoder {
    fn drop(&mut self) {
        self.buf[self.start..self.end].fill(0);
    }
}

/// A whole frame in a [`FrameDecoder`]'s buffer: derefs to the body.
///
/// Dropping it consumes the frame and overwrites its bytes with zeros;
/// copy out (or decode) what must outlive it.
pub struct Frame<'a> {
    decoder: &'a mut FrameDecoder,
    len: usize,
}

impl Frame<'_> {
    /// Decodes the body as JSON.
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<T, FrameError> {
        Ok(serde_json::from_slice(self)?)
    }
}

impl Deref for Frame<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let body = self.decoder.start + 4;
        &self.decoder.buf[body..body + self.len]
    }
}

impl std::fmt::Debug for Frame<'_> {
    // A request body may hold a PIN.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame").field("len", &self.len).finish()
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        self.decoder.consume(4 + self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of `bodies`, back to back.
    fn wire(bodies: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for body in bodies {
            out.extend_from_slice(&(body.len() as u32).to_be_bytes());
            out.extend_from_slice(body);
        }
        out
    }

    /// Hands `bytes` to the decoder as one read (which must fit the
    /// space it offers).
    fn feed(decoder: &mut FrameDecoder, bytes: &[u8]) {
        let space = decoder.read_space(false);
        space[..bytes.len()].copy_from_slice(bytes);
        decoder.filled(bytes.len());
    }

    /// Every frame the decoder can give now, as bodies.
    fn drain(decoder: &mut FrameDecoder) -> Vec<Vec<u8>> {
        let mut bodies = Vec::new();
        while let Some(frame) = decoder.next_frame().expect("frame") {
            bodies.push(frame.to_vec());
        }
        bodies
    }

    /// Whether every byte of the buffer outside the unconsumed ones is
    /// zero: no copy of a consumed or moved byte is left behind.
    fn clean_outside_live(decoder: &FrameDecoder) -> bool {
        let (live_start, live_end) = (decoder.start, decoder.end);
        decoder
            .buf
            .iter()
            .enumerate()
            .all(|(i, &b)| (live_start..live_end).contains(&i) || b == 0)
    }

    #[test]
    fn frames_split_at_every_byte_boundary() {
        let bodies: [&[u8]; 3] = [b"{\"a\":1}", b"x", b"{\"op\":\"status\"}"];
        let input = wire(&bodies);
        for cut in 0..=input.len() {
            let mut decoder = FrameDecoder::new(64);
            let mut got = Vec::new();
            for piece in [&input[..cut], &input[cut..]] {
                feed(&mut decoder, piece);
                got.extend(drain(&mut decoder));
            }
            assert_eq!(got, bodies, "split at {cut}");
            assert!(!decoder.in_frame());
        }
        // And one byte at a time, through exact reads.
        let mut decoder = FrameDecoder::new(64);
        let mut got = Vec::new();
        for &byte in &input {
            let space = decoder.read_space(true);
            assert!(!space.is_empty());
            space[0] = byte;
            decoder.filled(1);
            got.extend(drain(&mut decoder));
        }
        assert_eq!(got, bodies);
    }

    #[test]
    fn several_frames_arrive_in_one_read() {
        let bodies: [&[u8]; 4] = [b"1", b"22", b"333", b"4444"];
        let input = wire(&bodies);
        let mut decoder = FrameDecoder::new(64);
        // The first read space is room for several small frames.
        assert!(decoder.read_space(false).len() >= input.len());
        feed(&mut decoder, &input[..input.len() - 1]);
        assert_eq!(drain(&mut decoder), &bodies[..3]);
        assert!(decoder.in_frame());
        assert_eq!(decoder.needed(), 1);
        feed(&mut decoder, &input[input.len() - 1..]);
        assert_eq!(drain(&mut decoder), &bodies[3..]);
    }

    #[test]
    fn needed_counts_down_the_prefix_then_the_body() {
        let mut decoder = FrameDecoder::new(64);
        assert_eq!(decoder.needed(), 4);
        assert_eq!(decoder.read_space(true).len(), 4);
        feed(&mut decoder, &[0, 0]);
        assert_eq!(decoder.needed(), 2);
        feed(&mut decoder, &[0, 10, b'{']);
        assert_eq!(decoder.needed(), 9);
        assert_eq!(decoder.read_space(true).len(), 9);
        assert_eq!(decoder.read_space(false).len(), 9 + READ_CHUNK);
    }

    #[test]
    fn a_lying_4_gib_prefix_is_refused_without_allocating() {
        let mut decoder = FrameDecoder::new(crate::frame::MAX_REQUEST_FRAME);
        let space = decoder.read_space(true);
        assert_eq!(space.len(), 4, "only the prefix is read");
        space.copy_from_slice(&u32::MAX.to_be_bytes());
        decoder.filled(4);
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::TooLarge { len: u32::MAX, .. })
        ));
        assert_eq!(decoder.buf.len(), 4, "no room was made for the body");
        // A reader that ignores the error and asks for room again gets
        // a prefix's worth, not the announced body.
        assert_eq!(decoder.read_space(true).len(), 4);

        // The same with a buffered reader whose read brought more.
        let mut decoder = FrameDecoder::new(crate::frame::MAX_REQUEST_FRAME);
        let mut input = u32::MAX.to_be_bytes().to_vec();
        input.extend_from_slice(b"{\"op\":\"status\"}");
        feed(&mut decoder, &input);
        assert_eq!(decoder.needed(), 0, "nothing more is wanted for it");
        assert!(matches!(
            decoder.next_frame(),
            Err(FrameError::TooLarge { len: u32::MAX, .. })
        ));
        assert!(decoder.buf.len() <= 4 + READ_CHUNK);
    }

    #[test]
    fn an_empty_frame_is_an_error_and_what_follows_is_read() {
        let mut decoder = FrameDecoder::new(64);
        let mut input = vec![0, 0, 0, 0];
        input.extend(wire(&[b"after"]));
        feed(&mut decoder, &input);
        assert!(matches!(decoder.next_frame(), Err(FrameError::Empty)));
        assert_eq!(drain(&mut decoder), [b"after"]);
    }

    #[test]
    fn eof_is_closed_between_frames_and_truncated_inside_one() {
        let mut decoder = FrameDecoder::new(64);
        assert!(matches!(decoder.eof(), FrameError::Closed));
        feed(&mut decoder, &[0, 0]);
        assert!(matches!(decoder.eof(), FrameError::Truncated));
        feed(&mut decoder, &[0, 1, b'x']);
        assert!(matches!(decoder.eof(), FrameError::Truncated));
        assert_eq!(drain(&mut decoder), [b"x"]);
        assert!(matches!(decoder.eof(), FrameError::Closed));
    }

    #[test]
    fn received_classifies_reads() {
        use std::io::{Error, ErrorKind};
        let mut decoder = FrameDecoder::new(64);
        decoder.read_space(false)[..3].copy_from_slice(&[0, 0, 0]);
        assert!(matches!(decoder.received(Ok(0)), Err(FrameError::Closed)));
        decoder
            .received(Err(Error::from(ErrorKind::Interrupted)))
            .expect("an interrupted read is no error");
        decoder.received(Ok(3)).expect("three bytes");
        assert_eq!(decoder.needed(), 1);
        let reset = decoder.received(Err(Error::from(ErrorKind::ConnectionReset)));
        assert!(matches!(reset, Err(FrameError::Io(_))));
        assert!(decoder.in_frame(), "an error leaves what arrived");
        assert!(matches!(
            decoder.received(Ok(0)),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn consumed_bytes_are_zeroed_and_leave_no_copies() {
        let secret = br#"{"op":"login","pin":"123456"}"#;
        let input = wire(&[secret, secret]);
        let mut decoder = FrameDecoder::new(64);
        // The first frame and part of the second in one read.
        feed(&mut decoder, &input[..input.len() - 5]);
        let first = decoder.next_frame().expect("ok").expect("frame");
        assert_eq!(&*first, secret);
        drop(first);
        assert!(decoder.start > 0 && decoder.in_frame());
        assert!(clean_outside_live(&decoder), "the first frame is wiped");
        // Room for the rest by moving the partial frame to the front.
        decoder.make_room(decoder.buf.len() - decoder.buffered());
        assert_eq!(decoder.start, 0);
        assert!(clean_outside_live(&decoder), "the moved bytes' old place");
        feed(&mut decoder, &input[input.len() - 5..]);
        assert_eq!(drain(&mut decoder), [secret]);
        assert!(decoder.buf.iter().all(|&b| b == 0), "both frames wiped");
    }

    #[test]
    fn a_large_buffer_is_given_up_once_empty() {
        let body = vec![b'x'; 700 * 1024];
        let input = wire(&[&body]);
        let mut decoder = FrameDecoder::new(crate::frame::MAX_RESPONSE_FRAME);
        let mut allocations = 0;
        let mut rest = &input[..];
        let got = loop {
            if let Some(frame) = decoder.next_frame().expect("frame") {
                break frame.len();
            }
            let before = decoder.buf.as_ptr();
            let space = decoder.read_space(false);
            let n = space.len().min(rest.len());
            assert!(n > 0, "the frame is complete, so it must be given");
            space[..n].copy_from_slice(&rest[..n]);
            decoder.filled(n);
            rest = &rest[n..];
            allocations += usize::from(decoder.buf.as_ptr() != before);
        };
        assert_eq!(got, body.len());
        assert_eq!(allocations, 2, "a first chunk, then the whole frame");
        assert!(decoder.buf.capacity() <= KEEP_AT_MOST);
        feed(&mut decoder, &wire(&[b"small"]));
        assert_eq!(drain(&mut decoder), [b"small"]);
    }

    /// Reads the next frame's body the way a cancel-safe async reader
    /// does: the decoder outlives each call.
    #[cfg(feature = "tokio")]
    async fn next_body<R: tokio::io::AsyncRead + Unpin>(
        decoder: &mut FrameDecoder,
        r: &mut R,
    ) -> Result<Vec<u8>, FrameError> {
        Ok(decoder.read_frame_async(r, false).await?.to_vec())
    }

    #[cfg(feature = "tokio")]
    #[tokio::test]
    async fn a_read_abandoned_mid_frame_loses_nothing() {
        use std::time::Duration;
        use tokio::io::AsyncWriteExt as _;
        let (mut ours, mut theirs) = tokio::io::duplex(1024);
        let input = wire(&[b"first", b"second"]);
        let mut decoder = FrameDecoder::new(64);
        // Cut inside the first prefix, inside the first body, inside the
        // second prefix: each wait is abandoned with part of a frame read.
        let mut sent = 0;
        let mut got = Vec::new();
        for cut in [2, 6, 11, input.len()] {
            theirs.write_all(&input[sent..cut]).await.expect("write");
            sent = cut;
            loop {
                let wait = tokio::time::timeout(
                    Duration::from_millis(20),
                    next_body(&mut decoder, &mut ours),
                );
                match wait.await {
                    Ok(body) => got.push(body.expect("body")),
                    Err(_) => break,
                }
            }
        }
        assert_eq!(got, [b"first".to_vec(), b"second".to_vec()]);
        drop(theirs);
        assert!(matches!(
            next_body(&mut decoder, &mut ours).await,
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn debug_shows_no_contents() {
        let mut decoder = FrameDecoder::new(64);
        feed(&mut decoder, &wire(&[b"secret"]));
        assert!(!format!("{decoder:?}").contains("115"));
        let frame = decoder.next_frame().expect("ok").expect("frame");
        assert_eq!(format!("{frame:?}"), "Frame { len: 6 }");
    }
}
