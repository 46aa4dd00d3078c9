//! Account tokens sealed at rest: XChaCha20-Poly1305 under the configured `token_key`.
//!
//! A sealed value is `SEALED_TAG`, a random 24-byte nonce, then the ciphertext of the tokens'
//! ordinary record (`codec::encode`) with its 16-byte tag. The associated data is the record's
//! store key, so a sealed value copied onto another account's key does not open. The tag byte is
//! above every record format, so a perch from before sealing says "written by a newer perch"
//! rather than misreading it.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::domain::TokenKey;

/// The first byte of a sealed value (record formats are 1 and 2).
pub const SEALED_TAG: u8 = 0xE5;
const NONCE_BYTES: usize = 24;
/// What the associated data starts with: names the use, so the key seals nothing else by accident.
const AAD_PREFIX: &[u8] = b"perch tokens v1:";

pub fn is_sealed(value: &[u8]) -> bool {
    value.first() == Some(&SEALED_TAG)
}

fn aad(store_key: &[u8]) -> Vec<u8> {
    [AAD_PREFIX, store_key].concat()
}

/// Seals `plain` (a record) for the store key `store_key`.
pub fn seal(key: &TokenKey, store_key: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
    let cipher = XChaCha20Poly1305::new(key.bytes().into());
    let mut nonce = [0u8; NONCE_BYTES];
    rand::fill(&mut nonce);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plain,
                aad: &aad(store_key),
            },
        )
        .map_err(|_| "sealing failed".to_string())?;
    let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
    out.push(SEALED_TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens a value made by [`seal`] for the same store key. Fails (never panics) on a short or
/// altered value, another record's value, or another key; the message does not say which, as
/// the cipher cannot tell them apart.
pub fn open(key: &TokenKey, store_key: &[u8], value: &[u8]) -> Result<Vec<u8>, String> {
    let rest = match value.split_first() {
        Some((&SEALED_TAG, rest)) if rest.len() >= NONCE_BYTES + 16 => rest,
        _ => return Err("it is not a sealed value".into()),
    };
    let (nonce, sealed) = rest.split_at(NONCE_BYTES);
    XChaCha20Poly1305::new(key.bytes().into())
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad(store_key),
            },
        )
        .map_err(|_| "it does not open with this token_key".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_its_record() {
        let key = TokenKey::generate();
        let plain = b"\x02access-token-value";
        let sealed = seal(&key, b"t/1", plain).unwrap();
        assert!(is_sealed(&sealed));
        assert!(
            !sealed.windows(plain.len() - 1).any(|w| w == &plain[1..]),
            "the plaintext is not in the sealed value"
        );
        assert_eq!(open(&key, b"t/1", &sealed).unwrap(), plain);
        assert!(open(&key, b"t/2", &sealed).is_err(), "another record's key");
        assert!(
            open(&TokenKey::generate(), b"t/1", &sealed).is_err(),
            "another token_key"
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(open(&key, b"t/1", &altered).is_err(), "an altered value");
        for n in 0..sealed.len() {
            assert!(open(&key, b"t/1", &sealed[..n]).is_err(), "cut at {n}");
        }
        assert_ne!(
            seal(&key, b"t/1", plain).unwrap(),
            sealed,
            "a fresh nonce each time"
        );
    }
}
