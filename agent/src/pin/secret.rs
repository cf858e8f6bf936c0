//! Buffers for PIN bytes that never leave unzeroized copies behind.
//!
//! `Vec::push`/`extend` reallocate without wiping the old allocation, so
//! growing a `Zeroizing<Vec<u8>>` naively can leak PIN bytes into freed
//! memory. [`extend`] grows into a fresh zeroizing buffer instead, and
//! [`into_secret_string`] builds the `SecretString` without a reallocation.

use secrecy::SecretString;
use zeroize::Zeroizing;

/// Appends `data` to `buf`; when `buf` must grow, its contents move to a
/// new allocation and the old one is zeroized.
pub(crate) fn extend(buf: &mut Zeroizing<Vec<u8>>, data: &[u8]) {
    let needed = buf.len() + data.len();
    if needed > buf.capacity() {
        let mut bigger = Zeroizing::new(Vec::with_capacity(needed.max(buf.capacity() * 2).max(64)));
        bigger.extend_from_slice(buf);
        *buf = bigger; // the old buffer is zeroized as it drops
    }
    buf.extend_from_slice(data);
}

/// Turns PIN bytes into a `SecretString`; `None` when they are not UTF-8.
///
/// The `String` is allocated with exactly the needed capacity, so the
/// conversion into `SecretString`'s `Box<str>` does not reallocate and
/// leave a copy behind.
pub(crate) fn into_secret_string(bytes: &[u8]) -> Option<SecretString> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut owned = String::with_capacity(text.len());
    owned.push_str(text);
    Some(SecretString::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn extend_grows_and_keeps_contents() {
        let mut buf = Zeroizing::new(Vec::new());
        for _ in 0..100 {
            extend(&mut buf, b"0123456789");
        }
        assert_eq!(buf.len(), 1000);
        assert!(buf.chunks(10).all(|c| c == b"0123456789"));
    }

    #[test]
    fn secret_string_from_utf8_only() {
        let s = into_secret_string("päss 1".as_bytes()).expect("utf-8");
        assert_eq!(s.expose_secret(), "päss 1");
        assert!(into_secret_string(&[0xff, 0xfe]).is_none());
    }
}
