//! Account tokens at rest under a `token_key`: never in the store's files in the clear, opened
//! only with the key they were sealed with, and a store from before the key sealed on opening.

mod store_fixtures;

use std::path::Path;

use perch::domain::{Secret, TokenKey, Tokens};
use perch::store::{Store, StoreError};
use store_fixtures::*;

const ACCESS: &str = "access-token-c2VjcmV0LWFjY2Vzcw";
const REFRESH: &str = "refresh-token-c2VjcmV0LXJlZnJlc2g";

fn tokens() -> Tokens {
    Tokens {
        access_token: Secret::new(ACCESS),
        refresh_token: Some(Secret::new(REFRESH)),
        expires_at: t0(),
        scope: "tweet.read users.read offline.access".into(),
    }
}

/// Every byte of every file under `dir` (sled's log, snapshots and config).
fn file_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                all.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn tokens_stored_under_a_key_are_not_in_the_store_files_in_the_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let key = TokenKey::generate();
    let a = account(1, "acme");
    {
        let store = Store::open_with_token_key(tmp.path(), Some(key.clone())).unwrap();
        assert!(store.seals_tokens());
        store.put_account(&a).unwrap();
        store.put_tokens(a.id, &tokens()).unwrap();
        assert_eq!(store.tokens(a.id).unwrap(), Some(tokens()));
        store.flush().unwrap();
    }
    let bytes = file_bytes(tmp.path());
    assert!(contains(&bytes, "acme"), "the dump does read the records");
    assert!(!contains(&bytes, ACCESS), "the access token is sealed");
    assert!(!contains(&bytes, REFRESH), "the refresh token is sealed");
    assert!(!contains(&bytes, &key.to_base64()), "the key is not stored");

    let store = Store::open_with_token_key(tmp.path(), Some(key)).unwrap();
    assert_eq!(
        store.tokens(a.id).unwrap(),
        Some(tokens()),
        "reopened with the key"
    );
}

#[test]
fn sealed_tokens_without_the_key_or_with_another_are_refused_with_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let a = account(1, "acme");
    {
        let store = Store::open_with_token_key(tmp.path(), Some(TokenKey::generate())).unwrap();
        store.put_account(&a).unwrap();
        store.put_tokens(a.id, &tokens()).unwrap();
    }
    {
        let store = Store::open(tmp.path()).unwrap();
        let err = store.tokens(a.id).unwrap_err();
        assert!(matches!(err, StoreError::TokenKey(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains("none is set") && text.contains("PERCH_TOKEN_KEY"),
            "{text}"
        );
        assert!(!text.contains(ACCESS));
    }
    // Another key: the store still opens (the account can be authorized again, the others
    // work), and reading these tokens says what to do.
    let store = Store::open_with_token_key(tmp.path(), Some(TokenKey::generate())).unwrap();
    let text = store.tokens(a.id).unwrap_err().to_string();
    assert!(
        text.contains("do not open with this token_key") && text.contains("reauthorize"),
        "{text}"
    );
    store.put_tokens(a.id, &tokens()).unwrap();
    assert_eq!(
        store.tokens(a.id).unwrap(),
        Some(tokens()),
        "authorized again"
    );
}

#[test]
fn a_store_from_before_the_key_is_sealed_when_opened_with_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (account(1, "acme"), account(2, "acme_help"));
    {
        let store = Store::open(tmp.path()).unwrap();
        assert!(!store.seals_tokens());
        store.put_account(&a).unwrap();
        store.put_account(&b).unwrap();
        store.put_tokens(a.id, &tokens()).unwrap();
    }
    let key = TokenKey::generate();
    {
        let store = Store::open_with_token_key(tmp.path(), Some(key.clone())).unwrap();
        assert_eq!(store.tokens(a.id).unwrap(), Some(tokens()));
        assert_eq!(
            store.tokens(b.id).unwrap(),
            None,
            "an account without tokens stays so"
        );
    }
    // Sealed now: without the key they no longer read.
    let store = Store::open(tmp.path()).unwrap();
    assert!(matches!(
        store.tokens(a.id).unwrap_err(),
        StoreError::TokenKey(_)
    ));
    drop(store);
    let store = Store::open_with_token_key(tmp.path(), Some(key)).unwrap();
    assert_eq!(store.tokens(a.id).unwrap(), Some(tokens()));
}
