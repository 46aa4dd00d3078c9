//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The X API reference material (`../shared/x-api/` beside the crate, or `PERCH_X_API_REFERENCE`).
/// Returns `None` (after saying so on stderr) when it is not there; CI always has it.
pub fn x_api_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PERCH_X_API_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/x-api"));
    if dir.join("CONTRACT.md").is_file() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: X API reference material not found at {} (set PERCH_X_API_REFERENCE)",
            dir.display()
        );
        None
    }
}

/// Reads and parses one JSON file of the reference material.
pub fn read_json(dir: &std::path::Path, relative: &str) -> serde_json::Value {
    let path = dir.join(relative);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}
