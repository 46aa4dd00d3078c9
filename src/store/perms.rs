//! Owner-only permissions: the store holds OAuth tokens. The directory is 0700 (which already
//! keeps every file inside away from other users, including snapshot files sled creates later with
//! the process umask); the files sled has created are tightened to 0600 at open and at flush.

use std::io;
use std::path::Path;

#[cfg(unix)]
pub fn secure_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
pub fn secure_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Sets 0700 on `dir` and every directory below it, 0600 on every file.
#[cfg(unix)]
pub fn secure_tree(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    secure_dir(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // sled removes old snapshot files in the background: a file gone by now needs nothing.
        let result = entry.file_type().and_then(|kind| {
            if kind.is_dir() {
                secure_tree(&path)
            } else if kind.is_file() {
                let mode = entry.metadata()?.permissions().mode() & 0o777;
                if mode != 0o600 {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
                Ok(())
            } else {
                Ok(())
            }
        });
        match result {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn secure_tree(_dir: &Path) -> io::Result<()> {
    Ok(())
}
