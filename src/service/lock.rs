//! One service per data directory: an exclusive `flock` on `service.lock`, held for the life of
//! the process. The kernel drops it when the process dies, however it dies, so a crash never
//! leaves a lock behind (unlike a pid file alone). The file also holds the pid, for messages.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::Path;

/// The held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct ServiceLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another live process holds it.
    Held {
        pid: Option<u32>,
    },
    Io(std::io::Error),
}

impl ServiceLock {
    pub fn acquire(path: &Path) -> Result<ServiceLock, LockError> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(LockError::Io)?;
        // SAFETY: flock on a valid open descriptor; LOCK_NB makes it return at once.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    pid: text.trim().parse().ok(),
                });
            }
            return Err(LockError::Io(err));
        }
        file.set_len(0).map_err(LockError::Io)?;
        file.rewind().map_err(LockError::Io)?;
        write!(file, "{}", std::process::id()).map_err(LockError::Io)?;
        file.flush().map_err(LockError::Io)?;
        Ok(ServiceLock { _file: file })
    }

    /// The pid written in the lock file if a live process holds the lock, without taking it.
    pub fn holder(path: &Path) -> Option<u32> {
        match ServiceLock::acquire(path) {
            Err(LockError::Held { pid }) => pid.or(Some(0)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_file_is_refused_with_the_first_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service.lock");
        let first = ServiceLock::acquire(&path).unwrap();
        match ServiceLock::acquire(&path) {
            Err(LockError::Held { pid }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("second lock taken: {other:?}"),
        }
        drop(first);
        ServiceLock::acquire(&path).expect("free again once the holder lets go");
    }
}
