//! The bearer token TCP clients of the API must send. Made at the first start (32 random bytes,
//! base64url), kept 0600 in the data directory, never logged; `perch service token` prints it.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use rand::RngCore as _;

use crate::domain::Secret;

/// Reads the token at `path`, or makes one and stores it there (owner-only).
pub fn load_or_create(path: &Path) -> std::io::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            // Tighten it if someone loosened it.
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            return Ok(Secret::new(text.trim().to_string()));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(token.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(Secret::new(token))
}

/// What every personal token starts with, so a token pasted in the wrong place is recognisable
/// (and a secret scanner can find one committed by mistake).
pub const PERSON_TOKEN_PREFIX: &str = "perch_p_";

/// A new personal API token (issue 16): the prefix and 32 random bytes, base64url. Shown once by
/// `perch team add`; the store keeps only [`hash`].
pub fn new_person_token() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(format!(
        "{PERSON_TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// The hex SHA-256 of a token, as the store keeps it. The token has 256 random bits, so a plain
/// hash (no salt, no slow KDF) is enough: there is no dictionary to try.
pub fn hash(token: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares a presented token with the real one in time independent of where they differ.
pub fn matches(presented: &str, real: &Secret) -> bool {
    let (a, b) = (presented.as_bytes(), real.expose().as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_made_once_owner_only_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service-token");
        let first = load_or_create(&path).unwrap();
        assert!(first.expose().len() >= 40);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = load_or_create(&path).unwrap();
        assert_eq!(first.expose(), again.expose());
        assert!(matches(first.expose(), &again));
        assert!(!matches("nope", &again));
        assert!(
            !format!("{first:?}").contains(first.expose()),
            "Debug must not show it"
        );
    }

    #[test]
    fn person_tokens_are_new_each_time_and_hash_to_64_hex_digits() {
        let (a, b) = (new_person_token(), new_person_token());
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().starts_with(PERSON_TOKEN_PREFIX) && a.expose().len() > 48);
        let h = hash(a.expose());
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash(a.expose()));
        assert_ne!(h, hash(b.expose()));
        assert!(!h.contains(a.expose()));
    }
}
