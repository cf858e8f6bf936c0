//! A request body as the agent parses it (`proto::decode_request`):
//! never a panic; a request that parses re-encodes to one that parses
//! back equal.

use p11agent_proto::decode_request;

fn main() {
    afl::fuzz!(|body: &[u8]| {
        if let Ok(request) = decode_request(body) {
            let encoded = serde_json::to_vec(&request).expect("a parsed request encodes");
            let again = decode_request(&encoded).expect("an encoded request parses");
            assert_eq!(again, request);
        }
    });
}
