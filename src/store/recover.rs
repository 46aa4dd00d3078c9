//! Recovering a store that sled left unopenable after a full disk.
//!
//! sled writes a snapshot as `snap.<lsn>.generating`, syncs it, then renames it to
//! `snap.<lsn>`: the rename is what finishes it. When the disk fills mid-write, the
//! `.generating` file stays behind, empty or cut short, and because sled opens the
//! highest-named `snap.*` file it finds, every later open fails with "corrupted data" although
//! the log and the previous snapshot are intact. Such a file is recognised by sled's own marks:
//! the `.generating` name (never renamed, so never finished) *and* a body that fails sled's own
//! check (12 bytes or fewer, or a CRC32 trailer that does not match, exactly as sled's
//! `read_snapshot` tests it). Only those are moved aside (never deleted) into
//! `unfinished-snapshots/` inside the store, and the open is tried again. A `.generating` file
//! that passes sled's check is left alone: sled can read it.

use std::path::{Path, PathBuf};

/// Where unfinished snapshots are kept, inside the store directory.
pub const ASIDE_DIR: &str = "unfinished-snapshots";

/// Whether `bytes` (a snapshot file) fails sled 0.34.7's own completeness check.
pub fn snapshot_is_unfinished(bytes: &[u8]) -> bool {
    let len = bytes.len();
    if len <= 12 {
        return true;
    }
    let (body, trailer) = bytes.split_at(len - 4);
    let body = &body[..body.len() - 8];
    let mut expected = [0u8; 4];
    expected.copy_from_slice(trailer);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(body);
    hasher.finalize() != u32::from_le_bytes(expected)
}

/// The unfinished `snap.*.generating` files in `dir`.
pub fn unfinished_snapshots(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap.") && n.ends_with(".generating"))
        })
        .filter(|p| std::fs::read(p).is_ok_and(|bytes| snapshot_is_unfinished(&bytes)))
        .collect()
}

/// Moves the unfinished snapshots of `dir` into [`ASIDE_DIR`]; returns where they went.
pub fn move_aside_unfinished_snapshots(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let found = unfinished_snapshots(dir);
    if found.is_empty() {
        return Ok(found);
    }
    let aside = dir.join(ASIDE_DIR);
    std::fs::create_dir_all(&aside)?;
    let mut moved = Vec::new();
    for path in found {
        let Some(name) = path.file_name() else {
            continue;
        };
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3f");
        let target = aside.join(format!("{}.{stamp}", name.to_string_lossy()));
        // A rename within one directory tree needs no free space, which is the point.
        std::fs::rename(&path, &target)?;
        moved.push(target);
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(body: &[u8]) -> Vec<u8> {
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(body);
        bytes.extend_from_slice(&hasher.finalize().to_le_bytes());
        bytes
    }

    #[test]
    fn empty_short_and_cut_snapshots_are_unfinished_whole_ones_are_not() {
        assert!(snapshot_is_unfinished(b""));
        assert!(snapshot_is_unfinished(&[0; 12]));
        let whole = finished(b"a snapshot body");
        assert!(!snapshot_is_unfinished(&whole));
        assert!(snapshot_is_unfinished(&whole[..whole.len() - 3]));
    }

    #[test]
    fn only_unfinished_generating_files_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("snap.0000000000000100.generating"), b"").unwrap();
        std::fs::write(dir.path().join("snap.0000000000000050"), b"").unwrap();
        std::fs::write(
            dir.path().join("snap.0000000000000200.generating"),
            finished(b"complete"),
        )
        .unwrap();
        let moved = move_aside_unfinished_snapshots(dir.path()).unwrap();
        assert_eq!(moved.len(), 1, "{moved:?}");
        assert!(!dir.path().join("snap.0000000000000100.generating").exists());
        assert!(dir.path().join("snap.0000000000000050").exists());
        assert!(dir.path().join("snap.0000000000000200.generating").exists());
        assert!(moved[0].starts_with(dir.path().join(ASIDE_DIR)));
    }
}
