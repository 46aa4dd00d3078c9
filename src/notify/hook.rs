//! The `on_new_mentions` hook: one command per burst, run with `sh -c`, given the burst in its
//! environment and as JSON on its stdin, killed (with everything it started) when it runs past
//! its timeout.
//!
//! Hooks run one at a time on their own task, fed through a small queue ([`HookQueue`]): the
//! notifier only ever appends to it, so a slow or stuck hook never holds up the sync engine or
//! anyone else. When hooks fall behind, a burst for an account that already has one waiting is
//! merged into it (one run with the total count); when [`HOOK_QUEUE`] accounts are waiting, the
//! oldest waiting burst is dropped, and the log says so.
//!
//! A failing hook (it cannot start, exits non-zero, is killed by a signal or runs out of time) is
//! reported once ([`FailureLatch`]): the first failure is shown (log and status bar), later
//! ones are only logged at debug level, and the next success says it works again.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::notify::burst::Burst;

/// At most this many bursts wait for the hook (one per account: later ones merge).
pub const HOOK_QUEUE: usize = 32;
/// How much of a failing hook's stderr goes to the log.
const STDERR_KEEP: usize = 2_000;

/// How one run of a hook ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    Succeeded,
    /// It exited with a non-zero code.
    Exited {
        code: i32,
        stderr: String,
    },
    /// A signal ended it (not ours).
    Killed {
        signal: i32,
        stderr: String,
    },
    /// It ran past the timeout and was killed.
    TimedOut(Duration),
    /// It could not be started at all.
    CannotStart(String),
}

impl HookOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, HookOutcome::Succeeded)
    }

    /// What went wrong, in a few words with the exit code (`None` on success).
    pub fn problem(&self) -> Option<String> {
        Some(match self {
            HookOutcome::Succeeded => return None,
            HookOutcome::Exited { code: 127, .. } => {
                "exit code 127: the shell could not find the command".to_string()
            }
            HookOutcome::Exited { code, .. } => format!("exit code {code}"),
            HookOutcome::Killed { signal, .. } => format!("killed by signal {signal}"),
            HookOutcome::TimedOut(after) => format!(
                "no exit within {} s (hook_timeout_secs): killed",
                after.as_secs()
            ),
            HookOutcome::CannotStart(why) => format!("could not start: {why}"),
        })
    }

    fn stderr(&self) -> &str {
        match self {
            HookOutcome::Exited { stderr, .. } | HookOutcome::Killed { stderr, .. } => stderr,
            _ => "",
        }
    }
}

/// Runs `command` with `sh -c`, with `env` added to perch's environment and `stdin` written to
/// its standard input, and waits for it at most `timeout`. Its stdout is discarded; its stderr is
/// kept (the start of it) for the log. It runs in a process group of its own, so a timeout kills
/// whatever it started too.
pub async fn run_hook(
    command: &str,
    env: &[(&'static str, String)],
    stdin: Vec<u8>,
    timeout: Duration,
) -> HookOutcome {
    let mut cmd = tokio::process::Command::new("sh");
    // The hook sees perch's environment without perch's own settings (some of which are
    // secrets: PERCH_CLIENT_SECRET, PERCH_APP_BEARER_TOKEN...), plus the variables made for it.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PERCH_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return HookOutcome::CannotStart(e.to_string()),
    };
    // Whatever happens from here (a timeout, this task aborted with the service), the group dies.
    let _group = GroupGuard(child.id());
    if let Some(mut input) = child.stdin.take() {
        // A hook that does not read its stdin is fine: the write just fails (broken pipe).
        tokio::spawn(async move {
            let _ = input.write_all(&stdin).await;
            let _ = input.shutdown().await;
        });
    }
    let stderr_task = child.stderr.take().map(|mut err| {
        tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut buf = [0u8; 1024];
            // Read it all (so the hook never blocks on a full pipe), keep the start.
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let room = STDERR_KEEP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            String::from_utf8_lossy(&kept).into_owned()
        })
    });
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return HookOutcome::CannotStart(format!("could not wait for it: {e}")),
        Err(_) => return HookOutcome::TimedOut(timeout),
    };
    // Something the hook left running may hold stderr open: do not wait for it long.
    let stderr = match stderr_task {
        Some(task) => {
            let abort = task.abort_handle();
            match tokio::time::timeout(Duration::from_secs(1), task).await {
                Ok(Ok(text)) => text,
                _ => {
                    abort.abort();
                    String::new()
                }
            }
        }
        None => String::new(),
    };
    let stderr = crate::text::sanitize(stderr.trim(), false);
    if status.success() {
        return HookOutcome::Succeeded;
    }
    if let Some(code) = status.code() {
        return HookOutcome::Exited { code, stderr };
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return HookOutcome::Killed { signal, stderr };
        }
    }
    HookOutcome::Exited { code: -1, stderr }
}

/// Kills a hook's whole process group when dropped (a finished hook's group is usually empty by
/// then; killing an empty group is harmless).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.and_then(|p| libc::pid_t::try_from(p).ok())
            && pid > 0
        {
            // SAFETY: killpg only sends a signal; the group is the one the hook leads
            // (process_group(0) made its pid the group id).
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
            }
        }
    }
}

/// Turns a series of outcomes into what the user is told: the first failure (with its exit
/// code), then nothing until a success, which says the hook works again.
#[derive(Debug, Default)]
pub struct FailureLatch {
    failing: bool,
}

/// What to tell the user after one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookNews {
    /// The first failure after a success (or since the start): show it.
    Failed(String),
    /// It works again after failing.
    Recovered,
}

impl FailureLatch {
    pub fn observe(&mut self, outcome: &HookOutcome) -> Option<HookNews> {
        match (outcome.problem(), self.failing) {
            (Some(problem), false) => {
                self.failing = true;
                Some(HookNews::Failed(problem))
            }
            (Some(_), true) => None,
            (None, true) => {
                self.failing = false;
                Some(HookNews::Recovered)
            }
            (None, false) => None,
        }
    }
}

/// One hook run to do.
#[derive(Clone, Debug)]
pub struct HookJob {
    pub command: String,
    /// The account's stored username (no `@`).
    pub account_username: String,
    pub burst: Burst,
}

/// The bursts waiting for the hook: bounded, merging per account. Pushing never waits.
#[derive(Debug, Default)]
pub struct HookQueue {
    waiting: Mutex<VecDeque<HookJob>>,
    wake: tokio::sync::Notify,
}

/// What [`HookQueue::push`] did with a job.
#[derive(Debug, PartialEq, Eq)]
pub enum Queued {
    Added,
    /// Merged into the burst already waiting for the same account and command.
    Merged,
    /// The queue was full: the oldest waiting burst (of this account) was dropped for it.
    DroppedOldest {
        account_username: String,
    },
}

impl HookQueue {
    pub fn push(&self, job: HookJob) -> Queued {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let queued = if let Some(same) = waiting
            .iter_mut()
            .find(|w| w.burst.account_id == job.burst.account_id && w.command == job.command)
        {
            same.burst.absorb(job.burst);
            Queued::Merged
        } else if waiting.len() >= HOOK_QUEUE {
            let dropped = waiting.pop_front();
            waiting.push_back(job);
            Queued::DroppedOldest {
                account_username: dropped.map(|d| d.account_username).unwrap_or_default(),
            }
        } else {
            waiting.push_back(job);
            Queued::Added
        };
        drop(waiting);
        self.wake.notify_one();
        queued
    }

    /// The next job, waiting for one.
    pub async fn next(&self) -> HookJob {
        loop {
            let notified = self.wake.notified();
            if let Some(job) = self
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front()
            {
                return job;
            }
            notified.await;
        }
    }

    pub fn len(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs one job with `stdin` (the burst as the caller's JSON document) and the burst's
/// environment, and logs how it went.
pub async fn run_job(job: &HookJob, stdin: Vec<u8>, timeout: Duration) -> HookOutcome {
    let env = crate::notify::message::hook_env(&job.account_username, &job.burst);
    let outcome = run_hook(&job.command, &env, stdin, timeout).await;
    match outcome.problem() {
        None => tracing::debug!(
            account = %job.account_username,
            count = job.burst.count,
            "the on_new_mentions hook ran"
        ),
        Some(problem) => tracing::debug!(
            account = %job.account_username,
            stderr = %outcome.stderr(),
            "the on_new_mentions hook failed: {problem}"
        ),
    }
    outcome
}

/// The log line for a failure worth showing (with the start of its stderr, which only the log
/// gets: it is the user's own program's output, and may be long).
pub fn log_failure(job: &HookJob, outcome: &HookOutcome) {
    if let Some(problem) = outcome.problem() {
        tracing::warn!(
            account = %job.account_username,
            stderr = %outcome.stderr(),
            "the on_new_mentions hook failed: {problem}; later failures are logged at debug level until it succeeds"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(account: u8, count: usize) -> HookJob {
        HookJob {
            command: "true".into(),
            account_username: format!("a{account}"),
            burst: Burst::new(uuid::Uuid::from_bytes([account; 16]), count, vec![]),
        }
    }

    #[test]
    fn a_failure_is_shown_once_until_the_hook_works_again() {
        let mut latch = FailureLatch::default();
        let fail = HookOutcome::Exited {
            code: 3,
            stderr: String::new(),
        };
        assert_eq!(latch.observe(&HookOutcome::Succeeded), None);
        assert_eq!(
            latch.observe(&fail),
            Some(HookNews::Failed("exit code 3".into()))
        );
        assert_eq!(latch.observe(&fail), None);
        assert_eq!(
            latch.observe(&HookOutcome::TimedOut(Duration::from_secs(2))),
            None
        );
        assert_eq!(
            latch.observe(&HookOutcome::Succeeded),
            Some(HookNews::Recovered)
        );
        assert!(matches!(latch.observe(&fail), Some(HookNews::Failed(_))));
    }

    #[test]
    fn a_queue_that_falls_behind_merges_per_account_and_stays_bounded() {
        let queue = HookQueue::default();
        assert_eq!(queue.push(job(1, 2)), Queued::Added);
        assert_eq!(queue.push(job(1, 3)), Queued::Merged);
        for a in 2..=HOOK_QUEUE as u8 {
            assert_eq!(queue.push(job(a, 1)), Queued::Added);
        }
        assert_eq!(queue.len(), HOOK_QUEUE);
        assert_eq!(
            queue.push(job(200, 1)),
            Queued::DroppedOldest {
                account_username: "a1".into()
            }
        );
        assert_eq!(queue.len(), HOOK_QUEUE);
    }

    #[tokio::test]
    async fn the_merged_burst_carries_the_total() {
        let queue = HookQueue::default();
        queue.push(job(1, 2));
        queue.push(job(1, 3));
        assert_eq!(queue.next().await.burst.count, 5);
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn outcomes_carry_the_exit_code_and_a_timeout_kills() {
        let t = Duration::from_secs(60);
        assert_eq!(
            run_hook("exit 0", &[], vec![], t).await,
            HookOutcome::Succeeded
        );
        assert_eq!(
            run_hook("echo oops >&2; exit 3", &[], vec![], t).await,
            HookOutcome::Exited {
                code: 3,
                stderr: "oops".into()
            }
        );
        let env = [("PERCH_COUNT", "4".to_string())];
        assert_eq!(
            run_hook(
                "test \"$PERCH_COUNT\" = 4 && test \"$(cat)\" = hi",
                &env,
                b"hi".to_vec(),
                t
            )
            .await,
            HookOutcome::Succeeded
        );
        // No timed assertion: only that a hook that never ends is reported as timed out.
        assert_eq!(
            run_hook("sleep 600", &[], vec![], Duration::from_millis(200)).await,
            HookOutcome::TimedOut(Duration::from_millis(200))
        );
    }
}
