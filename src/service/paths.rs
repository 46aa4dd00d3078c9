//! Where a service's files live. The socket goes in a runtime directory (`$XDG_RUNTIME_DIR/perch`,
//! or `/tmp/perch-<uid>` when that is unset), named by a hash of the data directory: a Unix socket
//! path is limited to about 108 bytes, and joining a long data-dir path would pass it. The lock and
//! the API token live in the data directory itself (they belong to that store); the log and the
//! first-quit marker in the state directory.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The files of the service for one data directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePaths {
    pub data_dir: PathBuf,
    /// Owner-only (0700): the socket's mode is only protection inside a private directory.
    pub runtime_dir: PathBuf,
    pub socket: PathBuf,
    /// Held (flock) for as long as the service runs; holds its pid.
    pub lock: PathBuf,
    /// The bearer token TCP clients must send (0600).
    pub token: PathBuf,
    pub log: PathBuf,
    /// Present once the dashboard has said "perch keeps watching in the background".
    pub first_quit_marker: PathBuf,
}

/// The longest socket path the kernel takes (`sun_path` is 108 bytes with its NUL).
pub const MAX_SOCKET_PATH: usize = 107;

impl ServicePaths {
    /// The paths for `data_dir`, with the runtime directory taken from the environment.
    pub fn new(data_dir: &Path, state_dir: &Path) -> ServicePaths {
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute());
        ServicePaths::with_runtime(data_dir, state_dir, runtime.as_deref())
    }

    /// As [`ServicePaths::new`], with `$XDG_RUNTIME_DIR` given (`None`: unset).
    pub fn with_runtime(
        data_dir: &Path,
        state_dir: &Path,
        xdg_runtime_dir: Option<&Path>,
    ) -> ServicePaths {
        // The same store reached by two spellings of its path is one service: hash the
        // canonical path when the directory exists.
        let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| absolute(data_dir));
        let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let runtime_dir = match xdg_runtime_dir {
            Some(dir) => dir.join("perch"),
            None => PathBuf::from(format!("/tmp/perch-{}", current_uid())),
        };
        let mut runtime_dir = runtime_dir;
        // A very long XDG_RUNTIME_DIR would still overflow: fall back to the short one.
        if runtime_dir.join(format!("{name}.sock")).as_os_str().len() > MAX_SOCKET_PATH {
            runtime_dir = PathBuf::from(format!("/tmp/perch-{}", current_uid()));
        }
        ServicePaths {
            socket: runtime_dir.join(format!("{name}.sock")),
            runtime_dir,
            lock: canonical.join("service.lock"),
            token: canonical.join("service-token"),
            log: state_dir.join(format!("service-{name}.log")),
            first_quit_marker: state_dir.join("background-notice-shown"),
            data_dir: canonical,
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub fn current_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// Creates `dir` owner-only if it is missing; refuses one that exists and is not ours or is open
/// to others (the socket inside would be reachable). The message names the directory.
pub fn ensure_private_runtime_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.recursive(true);
            builder.create(dir).map_err(|e| {
                format!("cannot create the socket directory {}: {e}", dir.display())
            })?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                format!(
                    "cannot make the socket directory {} private: {e}",
                    dir.display()
                )
            })
        }
        Err(e) => Err(format!(
            "cannot read the socket directory {}: {e}",
            dir.display()
        )),
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(format!(
                    "the socket directory {} is not a directory; remove it and start again",
                    dir.display()
                ));
            }
            if meta.uid() != current_uid() {
                return Err(format!(
                    "the socket directory {} belongs to another user; perch will not put its socket there (set XDG_RUNTIME_DIR to a private directory)",
                    dir.display()
                ));
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(format!(
                    "the socket directory {} is open to other users (mode {mode:o}); make it owner-only with `chmod 700 {}`, then start again",
                    dir.display(),
                    dir.display()
                ));
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_stays_under_the_limit_for_a_long_data_dir() {
        let long = PathBuf::from(format!("/tmp/{}", "d".repeat(300)));
        let paths = ServicePaths::with_runtime(&long, Path::new("/tmp/state"), None);
        assert!(
            paths.socket.as_os_str().len() <= MAX_SOCKET_PATH,
            "{paths:?}"
        );
        let deep = PathBuf::from(format!("/run/user/{}", "r".repeat(200)));
        let paths = ServicePaths::with_runtime(&long, Path::new("/tmp/state"), Some(&deep));
        assert!(
            paths.socket.as_os_str().len() <= MAX_SOCKET_PATH,
            "{paths:?}"
        );
    }

    #[test]
    fn two_data_dirs_get_two_sockets_and_one_dir_one() {
        let a = ServicePaths::with_runtime(Path::new("/tmp/a"), Path::new("/s"), None);
        let b = ServicePaths::with_runtime(Path::new("/tmp/b"), Path::new("/s"), None);
        let a2 = ServicePaths::with_runtime(Path::new("/tmp/a"), Path::new("/s"), None);
        assert_ne!(a.socket, b.socket);
        assert_eq!(a.socket, a2.socket);
    }

    #[test]
    fn xdg_runtime_dir_is_used_when_set_and_a_fallback_when_not() {
        let p = ServicePaths::with_runtime(
            Path::new("/tmp/a"),
            Path::new("/s"),
            Some(Path::new("/run/user/1000")),
        );
        assert!(p.socket.starts_with("/run/user/1000/perch"), "{p:?}");
        let p = ServicePaths::with_runtime(Path::new("/tmp/a"), Path::new("/s"), None);
        assert!(
            p.socket
                .starts_with(format!("/tmp/perch-{}", current_uid())),
            "{p:?}"
        );
    }

    #[test]
    fn an_open_runtime_dir_is_refused_by_name() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = ensure_private_runtime_dir(&open).unwrap_err();
        assert!(err.contains(&open.display().to_string()), "{err}");
        let fresh = dir.path().join("fresh");
        ensure_private_runtime_dir(&fresh).unwrap();
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
