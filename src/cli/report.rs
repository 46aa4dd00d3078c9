//! What a command that talks to X did, account by account. Every such command ends with one
//! [`Report`]: one line per account on stdout (or one JSON document with `--json`), and exit
//! code 1 when any account failed, so a script never reads "0 new" where X was not reached.
//!
//! An account's outcome carries both what was stored and, when the command stopped early, why:
//! "@c: 3 new, then stopped: rate limited until 14:05". What was stored stays stored.
//!
//! Text:
//! ```text
//! @acme: 12 new
//! @brand: 0 new (X's rate limit for it is now spent: the next fetch can run at 14:05)
//! @help: 3 new, then stopped: rate limited until 14:05
//! @ops: failed: cannot reach X (mentions could not connect: …)
//! @paused: not fetched: @paused is paused (`perch accounts resume @paused` polls it again)
//! ```
//!
//! JSON (`--json`):
//! ```json
//! {"ok": false, "new_mentions": 15, "failed": 2,
//!  "accounts": [{"account": "@help", "account_id": "…", "ok": false, "new_mentions": 3,
//!                "note": null,
//!                "stopped": {"reason": "rate_limited", "message": "rate limited until 14:05",
//!                            "until": "2026-12-01T14:05:00Z"}}]}
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::Account;
use crate::sync::{FetchResult, FetchStop};

use super::{CliResult, Failure, print_json};

/// Why an account's part of a command stopped (or never started), as scripts see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// Network failure, timeout, 5xx.
    Unreachable,
    RateLimited,
    TokenExpired,
    /// Credits, enrolment, permissions: only the user can fix it.
    Blocked,
    /// X sent something perch cannot read.
    Malformed,
    /// Nothing was asked of X: the account is paused.
    Paused,
    /// Nothing (more) was asked of X: a monthly budget is reached.
    Budget,
    /// The disk under the store is (nearly) full: nothing was fetched.
    DiskFull,
}

/// Why it stopped, in words and for scripts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stopped {
    pub reason: StopReason,
    pub message: String,
    /// When it can work again, if X said.
    pub until: Option<DateTime<Utc>>,
}

/// One account's line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccountOutcome {
    /// `@handle`.
    pub account: String,
    pub account_id: String,
    /// The account's part was done in full.
    pub ok: bool,
    /// Mentions newly stored (also when it stopped early).
    pub new_mentions: usize,
    /// Why it stopped early or did not start; `None` when `ok`.
    pub stopped: Option<Stopped>,
    /// Something to know about a success ("the rate limit is now spent").
    pub note: Option<String>,
}

impl AccountOutcome {
    /// A fetch's outcome.
    pub fn fetched(account: &Account, result: &FetchResult) -> AccountOutcome {
        let stopped = result.stopped.as_ref().map(|stop| match stop {
            FetchStop::Unreachable(why) => Stopped {
                reason: StopReason::Unreachable,
                message: format!("cannot reach X ({why})"),
                until: None,
            },
            FetchStop::RateLimited { until } => Stopped {
                reason: StopReason::RateLimited,
                message: until.map_or_else(
                    || "X's rate limit is spent (X did not say until when)".to_string(),
                    crate::sync::rate_limited_message,
                ),
                until: *until,
            },
            FetchStop::TokenExpired(message) => Stopped {
                reason: StopReason::TokenExpired,
                message: message.clone(),
                until: None,
            },
            FetchStop::Blocked(message) => Stopped {
                reason: StopReason::Blocked,
                message: message.clone(),
                until: None,
            },
            FetchStop::Budget(message) => Stopped {
                reason: StopReason::Budget,
                message: message.clone(),
                until: None,
            },
            FetchStop::Malformed(message) => Stopped {
                reason: StopReason::Malformed,
                message: format!("{message}; that page was not stored"),
                until: None,
            },
            FetchStop::MalformedPagination(message) => Stopped {
                reason: StopReason::Malformed,
                message: format!(
                    "malformed pagination: {message}; what was read is stored, the next fetch starts again"
                ),
                until: None,
            },
            FetchStop::DiskFull(message) => Stopped {
                reason: StopReason::DiskFull,
                message: message.clone(),
                until: None,
            },
        });
        let note = match (&stopped, result.spent_until) {
            (None, Some(reset)) => Some(format!(
                "X's rate limit for it is now spent: the next fetch can run after {}",
                crate::sync::rate_limited_message(reset).trim_start_matches("rate limited until ")
            )),
            _ => None,
        };
        AccountOutcome {
            account: account.handle(),
            account_id: account.id.to_string(),
            ok: stopped.is_none(),
            new_mentions: result.stored,
            stopped,
            note,
        }
    }

    /// The command did nothing for this account, for a reason the user can act on.
    pub fn not_started(account: &Account, reason: StopReason, message: String) -> AccountOutcome {
        AccountOutcome {
            account: account.handle(),
            account_id: account.id.to_string(),
            ok: false,
            new_mentions: 0,
            stopped: Some(Stopped {
                reason,
                message,
                until: None,
            }),
            note: None,
        }
    }

    /// The account's line of text (untrusted parts made terminal-safe).
    pub fn line(&self) -> String {
        let clean = |s: &str| crate::text::sanitize(s, true);
        let account = clean(&self.account);
        let new = format!("{} new", self.new_mentions);
        match (&self.stopped, &self.note) {
            (None, None) => format!("{account}: {new}"),
            (None, Some(note)) => format!("{account}: {new} ({})", clean(note)),
            (Some(s), _) if s.reason == StopReason::Paused => {
                format!("{account}: not fetched: {}", clean(&s.message))
            }
            (Some(s), _) if self.new_mentions > 0 => {
                format!("{account}: {new}, then stopped: {}", clean(&s.message))
            }
            (Some(s), _) => format!("{account}: failed: {}", clean(&s.message)),
        }
    }
}

/// The whole command's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub accounts: Vec<AccountOutcome>,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.accounts.iter().filter(|a| !a.ok).count()
    }

    /// Prints the report and turns it into the exit status: 1 when any account failed.
    pub fn finish(&self, json: bool) -> CliResult {
        let failed = self.failed();
        if json {
            print_json(&serde_json::json!({
                "ok": failed == 0,
                "new_mentions": self.accounts.iter().map(|a| a.new_mentions).sum::<usize>(),
                "failed": failed,
                "accounts": self.accounts,
            }))?;
        } else {
            for a in &self.accounts {
                crate::outln!("{}", a.line());
            }
        }
        if failed == 0 {
            return Ok(());
        }
        let total = self.accounts.len();
        let mut failure = Failure::new(if total == 1 {
            "the account could not be done in full (see above)".to_string()
        } else {
            format!("{failed} of {total} accounts could not be done in full (see above)")
        });
        // With --json the document already says it all: no second message on stderr.
        failure.quiet = json;
        Err(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> Account {
        Account::new(
            "1".into(),
            "help".into(),
            "Help".into(),
            None,
            chrono::Utc::now(),
        )
    }

    #[test]
    fn a_fetch_that_stored_then_stopped_says_both() {
        let until = Utc::now() + chrono::Duration::minutes(10);
        let a = AccountOutcome::fetched(
            &account(),
            &FetchResult {
                stored: 3,
                stopped: Some(FetchStop::RateLimited { until: Some(until) }),
                spent_until: None,
            },
        );
        assert!(!a.ok);
        assert!(
            a.line()
                .starts_with("@help: 3 new, then stopped: rate limited until "),
            "{}",
            a.line()
        );
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["new_mentions"], 3);
        assert_eq!(json["stopped"]["reason"], "rate_limited");
    }

    #[test]
    fn a_complete_fetch_that_spent_the_budget_is_a_success_with_a_note() {
        let a = AccountOutcome::fetched(
            &account(),
            &FetchResult {
                stored: 3,
                stopped: None,
                spent_until: Some(Utc::now() + chrono::Duration::minutes(10)),
            },
        );
        assert!(a.ok);
        assert!(
            a.line().starts_with("@help: 3 new (X's rate limit"),
            "{}",
            a.line()
        );
    }

    #[test]
    fn an_unreachable_x_is_a_failure_never_zero_new() {
        let a = AccountOutcome::fetched(
            &account(),
            &FetchResult {
                stored: 0,
                stopped: Some(FetchStop::Unreachable("connection refused".into())),
                spent_until: None,
            },
        );
        assert_eq!(
            a.line(),
            "@help: failed: cannot reach X (connection refused)"
        );
        let report = Report { accounts: vec![a] };
        assert_eq!(report.failed(), 1);
    }
}
