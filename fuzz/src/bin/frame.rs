//! A client's byte stream as the agent's connection reads it: the frame
//! decoder fed in pieces whose sizes the input's first byte chooses, each
//! whole frame's body parsed as a request. Never a panic, never a frame
//! over the limit.

use p11agent_proto::frame::FrameDecoder;
use p11agent_proto::{decode_request, MAX_REQUEST_FRAME};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Some((&piece, mut stream)) = data.split_first() else {
            return;
        };
        let piece = usize::from(piece % 64) + 1;
        let mut decoder = FrameDecoder::new(MAX_REQUEST_FRAME);
        loop {
            loop {
                match decoder.next_frame() {
                    Ok(Some(frame)) => {
                        assert!(frame.len() <= MAX_REQUEST_FRAME as usize);
                        let _ = decode_request(&frame);
                    }
                    Ok(None) => break,
                    // A refused length prefix ends the connection.
                    Err(_) => return,
                }
                // The frame is consumed when dropped; ask for the next.
            }
            if stream.is_empty() {
                return;
            }
            let space = decoder.read_space(false);
            let n = piece.min(space.len()).min(stream.len());
            space[..n].copy_from_slice(&stream[..n]);
            decoder.filled(n);
            stream = &stream[n..];
        }
    });
}
