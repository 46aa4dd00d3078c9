//! Free space under the store. sled cannot be trusted to fail cleanly when its disk fills (it can
//! leave an unfinished snapshot behind, see `recover.rs`), so perch refuses bulk writes while the
//! file system has less than [`WRITE_MARGIN`] left: a full disk becomes a clear, temporary state
//! ("disk full: N MB free at <dir>") that ends by itself once space returns, instead of a damaged
//! store. Small writes (an account's status) are let through: the margin is there for them.

use std::path::Path;

/// What must stay free for a page to be written: 1 MiB for sled's own bookkeeping (a snapshot,
/// the next log segment's header) plus one page of mentions (100 posts of at most a few KB each,
/// with their index entries).
pub const WRITE_MARGIN: u64 = 1024 * 1024 + 256 * 1024;

/// Bytes available to this (unprivileged) process on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("the store path contains a NUL byte"))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a valid NUL-terminated string and `stat` points to writable memory of
    // the right type; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// "1.2 MB" for messages (decimal megabytes, one decimal).
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}
