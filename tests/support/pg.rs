//! A real PostgreSQL server for the tests (issue 16: no mock and no in-memory fake stands in).
//!
//! `.ci/run` starts a throwaway cluster and sets `PERCH_TEST_DATABASE_URL` to it (a server URL
//! without a database name). When that is unset (a developer's `cargo test`), the first test
//! that asks starts one itself: `initdb` into a new directory under the temp dir, as the
//! `postgres` user when the tests run as root (initdb refuses root), `postgres` on a free
//! loopback port, killed when this test binary exits (PR_SET_PDEATHSIG, set from a thread that
//! lives as long as the process). Each test gets a fresh, empty database of its own.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a cluster may take to accept connections after it is started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

static SERVER: OnceLock<Result<String, String>> = OnceLock::new();

/// The URL of a new, empty database on the test server.
pub fn fresh_database() -> String {
    let base = match SERVER.get_or_init(server) {
        Ok(base) => base.clone(),
        Err(e) => panic!(
            "these tests need PostgreSQL 15 (issue 16): {e}. Install it (apt-get install postgresql-15) or set PERCH_TEST_DATABASE_URL to a server"
        ),
    };
    let name = format!("perch_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls)
        .unwrap_or_else(|e| panic!("cannot connect to the test server {base}: {e}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create a test database on {base}: {e}"));
    format!("{base}/{name}")
}

fn server() -> Result<String, String> {
    if let Ok(url) = std::env::var("PERCH_TEST_DATABASE_URL") {
        return Ok(url.trim_end_matches('/').to_string());
    }
    let bin = bin_dir().ok_or("no initdb found (looked in /usr/lib/postgresql/*/bin and PATH)")?;
    remove_stale_clusters();
    let dir = tempfile::Builder::new()
        .prefix("perch-test-pg-")
        .tempdir()
        .map_err(|e| format!("cannot make a cluster directory: {e}"))?
        .keep();
    let owner = run_as();
    if let Some((uid, gid)) = owner {
        chown(&dir, uid, gid)?;
    }
    let data = dir.join("data");
    let mut initdb = Command::new(bin.join("initdb"));
    initdb
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "-D",
        ])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // The postgres user must be able to read the directory it runs in (initdb goes back to
        // it while finding its programs), which a checkout under /root is not.
        .current_dir(&dir);
    if let Some((uid, gid)) = owner {
        initdb.uid(uid).gid(gid);
    }
    let out = initdb
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let log = std::fs::File::create(dir.join("postgres.log"))
        .map_err(|e| format!("cannot make the server log: {e}"))?;
    if let Some((uid, gid)) = owner {
        chown(&dir.join("postgres.log"), uid, gid)?;
    }
    let mut postgres = Command::new(bin.join("postgres"));
    postgres
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
        .arg("-k")
        .arg(&dir)
        // A throwaway cluster: durability is not what these tests check.
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
        .stdin(Stdio::null())
        .current_dir(&dir)
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log);
    if let Some((uid, gid)) = owner {
        postgres.uid(uid).gid(gid);
    }
    unsafe {
        // Runs in the child after the uid change, so it survives the exec of postgres: the
        // server gets a fast shutdown when the thread below (and so this process) ends.
        postgres.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGINT) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (exited_tx, exited) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The death signal is tied to this thread: it waits for the server, so it lives as
        // long as the server does (or the process ends first, and the signal stops it).
        match postgres.spawn() {
            Ok(mut child) => {
                let _ = tx.send(Ok(()));
                let status = child.wait();
                let _ = exited_tx.send(format!("{status:?}"));
            }
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
            }
        }
    });
    rx.recv()
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot start postgres: {e}"))?;
    let base = format!("postgres://postgres@127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(status) = exited.try_recv() {
            let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
            return Err(format!("postgres exited at once ({status}):\n{log}"));
        }
        match postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls) {
            Ok(_) => return Ok(base),
            Err(_) if started.elapsed() < START_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => {
                let log = std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default();
                return Err(format!(
                    "postgres did not start in {START_TIMEOUT:?}: {e}\n{log}"
                ));
            }
        }
    }
}

/// Where initdb and postgres are: `PERCH_PG_BIN`, the newest /usr/lib/postgresql/N/bin, or PATH.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PERCH_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).find(|d| d.join("initdb").exists() && d.join("postgres").exists())
}

/// The postgres user's ids when the tests run as root; `None` to run as ourselves.
fn run_as() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").ok()?;
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("cannot give {} to the postgres user: {e}", path.display()))
}

/// Earlier runs' cluster directories whose server is gone (their process died with its test
/// binary; the directory stays).
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("perch-test-pg-"));
        // Only old ones: a directory of a few minutes may be another binary's starting cluster.
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > Duration::from_secs(3600)));
        if !is_ours || !old {
            continue;
        }
        let pid = std::fs::read_to_string(path.join("data/postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok());
        let alive = pid.is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        if !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}
