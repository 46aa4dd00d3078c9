//! The key that seals account tokens at rest (`token_key`, `PERCH_TOKEN_KEY`): 32 random bytes,
//! written as standard base64. The sealing itself is the store's (`store/sealed.rs`); this is the
//! value type, so that the config can parse it and nothing can print it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The number of bytes in a key (XChaCha20-Poly1305 takes a 256-bit key).
pub const TOKEN_KEY_BYTES: usize = 32;

/// A token-sealing key. `Debug` and `Display` never show it; `to_base64` is for `perch team
/// keygen` only.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenKey([u8; TOKEN_KEY_BYTES]);

impl TokenKey {
    /// A new key from rand's thread-local CSPRNG (ChaCha, seeded from the operating system).
    pub fn generate() -> TokenKey {
        let mut bytes = [0u8; TOKEN_KEY_BYTES];
        rand::fill(&mut bytes);
        TokenKey(bytes)
    }

    /// Parses a key as `perch team keygen` prints it. The error says what was wrong without
    /// repeating the value.
    pub fn from_base64(text: &str) -> Result<TokenKey, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "is not base64 (make one with `perch team keygen`)".to_string())?;
        let bytes: [u8; TOKEN_KEY_BYTES] = bytes.try_into().map_err(|b: Vec<u8>| {
            format!(
                "is {} bytes, not {TOKEN_KEY_BYTES} (make one with `perch team keygen`)",
                b.len()
            )
        })?;
        Ok(TokenKey(bytes))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn bytes(&self) -> &[u8; TOKEN_KEY_BYTES] {
        &self.0
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_base64_and_never_prints() {
        let key = TokenKey::generate();
        let text = key.to_base64();
        assert_eq!(TokenKey::from_base64(&format!(" {text}\n")).unwrap(), key);
        assert_eq!(format!("{key:?}"), "TokenKey([redacted])");
        assert!(!format!("{key:?}").contains(&text));
        assert_ne!(
            TokenKey::generate(),
            key,
            "two keys from the random source differ"
        );
    }

    #[test]
    fn a_wrong_key_is_refused_without_echoing_it() {
        let short = STANDARD.encode([7u8; 16]);
        let err = TokenKey::from_base64(&short).unwrap_err();
        assert!(err.contains("16 bytes, not 32"), "{err}");
        assert!(!err.contains(&short));
        let err = TokenKey::from_base64("not base64 at all!").unwrap_err();
        assert!(err.contains("not base64"), "{err}");
    }
}
