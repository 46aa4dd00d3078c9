//! Starting a service in the background for the dashboard: `perch --data-dir D serve
//! --background`, detached from the terminal (its own session), with the dashboard's
//! environment (so its `PERCH_*` settings and config file) and no secret on its command line. It
//! says `ready` on its stdout once its socket answers, or its error on stderr and exits 1; then
//! it lets go of both pipes.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What the background service prints once it serves.
pub const READY: &str = "ready";

/// The longest a starting service may take (opening a large store, recovering it).
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the service for `data_dir` in the background and waits until it serves. The error is
/// the service's own message (it names the store and says what to do).
pub fn start_background(data_dir: &Path) -> Result<(), String> {
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the perch program to start the service: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg("--data-dir")
        .arg(data_dir)
        .arg("serve")
        .arg("--background")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; it detaches the child from the terminal's session, so
    // closing the terminal (SIGHUP) or Ctrl-C in it does not reach the service.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start the perch service: {e}"))?;
    let stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (tx, rx) = std::sync::mpsc::channel::<bool>();
    std::thread::spawn(move || {
        let ready = stdout.is_some_and(|out| {
            BufReader::new(out)
                .lines()
                .next()
                .and_then(Result::ok)
                .is_some_and(|line| line.trim() == READY)
        });
        let _ = tx.send(ready);
    });
    let ready = rx.recv_timeout(START_TIMEOUT).unwrap_or(false);
    if ready {
        // Reap it whenever it ends, so it never lingers as a zombie of this process.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        return Ok(());
    }
    let mut message = String::new();
    if let Some(err) = stderr.as_mut() {
        let _ = err.take(64 * 1024).read_to_string(&mut message);
    }
    let _ = child.kill();
    let _ = child.wait();
    let message = message
        .trim()
        .trim_start_matches("perch: ")
        .trim()
        .to_string();
    Err(if message.is_empty() {
        format!(
            "the perch service for {} did not start within {} s (see its log in the state directory)",
            data_dir.display(),
            START_TIMEOUT.as_secs()
        )
    } else {
        message
    })
}

/// In the background service, once it serves: say so to the dashboard that started it, then
/// point stdout and stderr at /dev/null, so nothing it writes later can fail on a closed pipe.
pub fn announce_ready_and_detach() {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{READY}");
    let _ = out.flush();
    drop(out);
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd as _;
        // SAFETY: dup2 onto the standard descriptors with a valid open descriptor.
        unsafe {
            libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO);
            libc::dup2(null.as_raw_fd(), libc::STDERR_FILENO);
        }
    }
}
