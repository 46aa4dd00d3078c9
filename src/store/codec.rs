//! The record codec: one format-version byte followed by bincode 2 (serde, standard config).
//! Every record the store writes goes through [`encode`] and every record it reads through
//! [`decode`], so the on-disk format can change in one place (with a migration).

use serde::{Serialize, de::DeserializeOwned};

use super::{Result, StoreError};

/// The record format this perch writes. Records (and the store's format marker) with a higher
/// number were written by a newer perch and are refused, never misread.
pub const RECORD_FORMAT: u8 = 1;

/// Upper bound on any one length prefix inside a record. Stored bytes are untrusted: without a
/// limit, a corrupt length could make bincode try to allocate exabytes and abort the process.
/// The limit changes no encoded byte; it only bounds what decoding will believe.
const DECODE_LIMIT: usize = 16 * 1024 * 1024;

fn config() -> bincode::config::Configuration<
    bincode::config::LittleEndian,
    bincode::config::Varint,
    bincode::config::Limit<DECODE_LIMIT>,
> {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

/// Encodes a record: the format byte, then the value.
pub fn encode<T: Serialize>(value: &T, what: &str) -> Result<Vec<u8>> {
    // Most mention records are 300-600 bytes: one allocation, rarely a second.
    let mut bytes = Vec::with_capacity(512);
    bytes.push(RECORD_FORMAT);
    bincode::serde::encode_into_std_write(value, &mut bytes, config()).map_err(|e| {
        StoreError::Decode {
            what: what.to_string(),
            detail: format!("cannot encode: {e}"),
        }
    })?;
    Ok(bytes)
}

/// Decodes a record written by [`encode`]. `what` names the record in the error (e.g. "mention
/// 1578516295611748353 of account …"); it is only evaluated when decoding fails.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: impl FnOnce() -> String) -> Result<T> {
    decode_body(bytes).map_err(|detail| StoreError::Decode {
        what: what(),
        detail,
    })
}

fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    let Some((&format, body)) = bytes.split_first() else {
        return Err("the record is empty".into());
    };
    if format > RECORD_FORMAT {
        return Err(format!(
            "record format {format} was written by a newer perch (this perch reads up to {RECORD_FORMAT}); upgrade perch"
        ));
    }
    if format == 0 {
        return Err("record format 0 does not exist".into());
    }
    let (value, used) =
        bincode::serde::decode_from_slice::<T, _>(body, config()).map_err(|e| e.to_string())?;
    if used != body.len() {
        return Err(format!("{} unexpected trailing bytes", body.len() - used));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_value_and_leads_with_format_byte() {
        let bytes = encode(&("hello".to_string(), 42u64), "pair").unwrap();
        assert_eq!(bytes[0], RECORD_FORMAT);
        let back: (String, u64) = decode(&bytes, || "pair".into()).unwrap();
        assert_eq!(back, ("hello".to_string(), 42));
    }

    #[test]
    fn newer_format_is_refused_with_what_it_was() {
        let mut bytes = encode(&7u32, "n").unwrap();
        bytes[0] = RECORD_FORMAT + 1;
        let err = decode::<u32>(&bytes, || "the test number".into()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("the test number") && msg.contains("newer perch"),
            "{msg}"
        );
    }

    #[test]
    fn garbage_never_panics() {
        // A huge length prefix (varint 0xFD + u64::MAX) must be an error, not an allocation.
        let mut bytes = vec![RECORD_FORMAT, 0xFD];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode::<String>(&bytes, || "s".into()).is_err());
        assert!(decode::<Vec<String>>(&bytes, || "v".into()).is_err());
        assert!(decode::<String>(&[], || "empty".into()).is_err());
        for seed in 0u8..=255 {
            let junk: Vec<u8> = (0..64u32)
                .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
                .collect();
            let mut rec = vec![RECORD_FORMAT];
            rec.extend_from_slice(&junk);
            let _ = decode::<crate::domain::Mention>(&rec, || "junk".into());
        }
    }

    #[test]
    fn trailing_bytes_are_corruption() {
        let mut bytes = encode(&1u8, "n").unwrap();
        bytes.push(0);
        assert!(decode::<u8>(&bytes, || "n".into()).is_err());
    }
}
