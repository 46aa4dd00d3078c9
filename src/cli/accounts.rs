//! `perch login` and `perch accounts ...`.

use chrono::Utc;
use serde_json::json;

use crate::auth;
use crate::config::Config;
use crate::domain::{Account, MentionStatus, SyncStatus};
use crate::store::FeedFilter;

use super::{AccountsCommand, CliResult, Failure, find_account, print_json};

/// `perch login [--headless]`, also used by `accounts reauthorize`. `expect` is the account a
/// reauthorization is for: logging in as someone else is reported, not silently accepted.
pub async fn login(config: &Config, headless: bool, expect: Option<&Account>) -> CliResult {
    let oauth = auth::OAuthSettings::from_config(config)?;
    // sled (this process's, or the service's for a client), or the team's database.
    let store = super::open_shared_store(config).await?;
    let client = match super::console::remote() {
        Some(remote) => remote.hub.client.clone(),
        None => crate::x::XClient::new(&config.api_base),
    };
    // A reauthorization asks the authorize page for that account (`login_hint`) and refuses,
    // changing nothing, a login that comes back as anyone else.
    let (account, reauthorized) = if headless {
        let stdin = super::console::stdin_reader();
        let mut stdout = super::console::stdout();
        auth::login_headless_as(&oauth, &store, &client, expect, &mut stdout, stdin).await?
    } else {
        auth::login_with_listener_as(&oauth, &store, &client, expect, |url| {
            crate::outln!(
                "Opening your browser to authorize perch. If it does not open, visit:\n{url}"
            );
        })
        .await?
    };
    super::team::record(
        store.as_ref(),
        crate::domain::AuditEntry::login(crate::domain::team::OWNER_NAME, &account, reauthorized),
    );
    store.flush()?;
    // Run in the service: its engine polls the account now. On PostgreSQL the sync leader
    // (wherever it runs) hears of the login and does.
    if let Some(remote) = super::console::remote() {
        remote.hub.account_logged_in(account.id).await;
    } else {
        let announced = store.clone();
        let id = account.id;
        // The login is stored whatever this does: a lost announcement delays the first poll
        // (until the leader's next start or `perch fetch`), it does not undo the login.
        let told = tokio::task::spawn_blocking(move || announced.announce_login(id)).await;
        if let Ok(Err(e)) | Err(e) =
            told.map_err(|e| crate::store::StoreError::Invalid(e.to_string()))
        {
            crate::errln!(
                "perch: {} is added, but the sync leader could not be told to poll it now ({}); it is polled when the leader next starts",
                account.handle(),
                crate::text::sanitize(&e.to_string(), true)
            );
        }
    }
    crate::outln!(
        "{} {}",
        if reauthorized {
            "reauthorized"
        } else {
            "added"
        },
        account.handle()
    );
    Ok(())
}

pub async fn run(config: &Config, command: AccountsCommand) -> CliResult {
    if let AccountsCommand::Reauthorize { account, headless } = &command {
        let store = open_accounts_store(config, "R on the account").await?;
        let found = find_account(&store, account)?;
        drop(store);
        return login(config, *headless, Some(&found)).await;
    }
    let store = open_accounts_store(config, dashboard_key(&command)).await?;
    match command {
        AccountsCommand::List {
            include_inactive,
            json,
        } => {
            let all = store.accounts()?;
            let active_count = all.iter().filter(|a| a.is_active).count();
            let paused_count = all.len() - active_count;
            let shown: Vec<&Account> = all
                .iter()
                .filter(|a| include_inactive || a.is_active)
                .collect();
            if json {
                // `total` counts every tracked account, listed or not (= active + paused).
                return print_json(&json!({
                    "accounts": shown,
                    "total": all.len(),
                    "active_count": active_count,
                    "paused_count": paused_count,
                }));
            }
            if all.is_empty() {
                crate::outln!("No accounts yet. Add one with `perch login`.");
                return Ok(());
            }
            crate::outln!(
                "{:<18} {:<14} {:>8} {:>9}  LAST SYNCED",
                "ACCOUNT",
                "STATUS",
                "PENDING",
                "MENTIONS"
            );
            for a in &shown {
                let pending = store.count(&FeedFilter {
                    account: Some(a.id),
                    status: Some(MentionStatus::Pending),
                })?;
                let total = store.count(&FeedFilter {
                    account: Some(a.id),
                    status: None,
                })?;
                crate::outln!(
                    "{:<18} {:<14} {:>8} {:>9}  {}",
                    crate::text::sanitize(&a.handle(), true),
                    a.sync_status.as_str(),
                    pending,
                    total,
                    a.last_synced_at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "never".into())
                );
            }
            crate::outln!(
                "{}: {active_count} active, {paused_count} paused{}",
                crate::text::count(all.len() as u64, "account", "accounts"),
                if include_inactive || paused_count == 0 {
                    ""
                } else {
                    " (--include-inactive shows them)"
                }
            );
            Ok(())
        }
        AccountsCommand::Show { account, json } => {
            let a = find_account(&store, &account)?;
            if json {
                return print_json(&a);
            }
            crate::outln!(
                "{} ({})",
                crate::text::sanitize(&a.handle(), true),
                crate::text::sanitize(&a.display_name, true)
            );
            crate::outln!("  X user id      {}", a.twitter_id);
            crate::outln!("  perch id       {}", a.id);
            crate::outln!(
                "  status         {}{}",
                a.sync_status,
                if a.is_active { "" } else { " (not polled)" }
            );
            if let Some(e) = &a.error_message {
                crate::outln!("  last error     {}", crate::text::sanitize(e, true));
            }
            crate::outln!(
                "  added          {}",
                a.added_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            crate::outln!(
                "  last synced    {}",
                a.last_synced_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| "never".into())
            );
            crate::outln!("  mentions       {}", a.total_mentions_tracked);
            let unreadable = store.unreadable_posts(a.id)?;
            if unreadable.count > 0 {
                let ids: Vec<String> = unreadable.newest_ids.iter().map(u64::to_string).collect();
                crate::outln!(
                    "  unreadable     {} post(s) X sent could not be read and were skipped (newest: {})",
                    unreadable.count,
                    ids.join(", ")
                );
            }
            Ok(())
        }
        AccountsCommand::Pause { account } => set_active(&store, &account, false),
        AccountsCommand::Resume { account } => set_active(&store, &account, true),
        AccountsCommand::Remove {
            account,
            delete_mentions,
            yes,
        } => {
            let a = find_account(&store, &account)?;
            let mentions = store.count(&FeedFilter {
                account: Some(a.id),
                status: None,
            })?;
            if !yes {
                let what = if delete_mentions {
                    format!("and delete its {mentions} stored mentions")
                } else {
                    format!("and keep its {mentions} stored mentions")
                };
                if !super::console::stdin_is_terminal() {
                    return Err(Failure::new(format!(
                        "not removing {} without confirmation: add --yes to remove it {what}",
                        a.handle()
                    )));
                }
                crate::outp!("Remove {} {what}? [y/N] ", a.handle());
                let answer = super::console::read_line().await?.unwrap_or_default();
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    crate::outln!("kept {}", a.handle());
                    return Ok(());
                }
            }
            match super::console::remote() {
                // Run in the service: the engine removes it once any poll of it has finished
                // (never half-deleted under a running poll).
                Some(remote) => remove_through_engine(&remote.hub, a.id, delete_mentions).await?,
                None => {
                    let tokens = store.tokens(a.id).ok().flatten();
                    store.remove_account(a.id, delete_mentions)?;
                    store.flush()?;
                    if let Some(tokens) = tokens {
                        revoke_after_removal(config, &a.handle(), &tokens).await;
                    }
                }
            }
            super::team::record(
                &store,
                crate::domain::AuditEntry::new(
                    crate::domain::team::OWNER_NAME,
                    crate::domain::AuditAction::AccountRemove,
                    Utc::now(),
                    if delete_mentions {
                        format!("removed with its {mentions} mentions")
                    } else {
                        format!("removed, its {mentions} mentions kept")
                    },
                )
                .account(a.id, a.handle()),
            );
            crate::outln!(
                "removed {}{}",
                a.handle(),
                if delete_mentions {
                    format!(" and its {mentions} mentions")
                } else {
                    format!("; its {mentions} mentions are kept")
                }
            );
            Ok(())
        }
        AccountsCommand::Stats { account, json } => {
            let a = find_account(&store, &account)?;
            let stats = crate::stats::account_stats(&store, &a, Utc::now())?;
            if json {
                return print_json(&stats);
            }
            crate::outln!("{}", a.handle());
            crate::outln!("  total mentions     {}", stats.total_mentions);
            crate::outln!("  pending            {}", stats.pending_mentions);
            crate::outln!("  replied            {}", stats.replied_mentions);
            crate::outln!(
                "  tracked since      {} ({})",
                stats.tracked_since.format("%Y-%m-%d"),
                crate::text::count(stats.days_tracked, "day", "days")
            );
            crate::outln!(
                "  per day (average)  {:.2} ({} posted in those days)",
                stats.avg_mentions_per_day,
                crate::text::count(stats.mentions_while_tracked, "mention", "mentions")
            );
            crate::outln!("  status             {}", stats.sync_status);
            Ok(())
        }
        AccountsCommand::Reauthorize { .. } => Ok(()),
    }
}

fn set_active(store: &crate::store::Store, name: &str, active: bool) -> CliResult {
    let mut a = find_account(store, name)?;
    if a.sync_status == SyncStatus::TokenExpired && active {
        return Err(Failure::new(format!(
            "{} needs a new login before it can sync: run `perch accounts reauthorize {}`",
            a.handle(),
            a.handle()
        )));
    }
    a.is_active = active;
    a.sync_status = if active {
        SyncStatus::Active
    } else {
        SyncStatus::Paused
    };
    a.error_message = None;
    a.updated_at = Utc::now();
    store.put_account(&a)?;
    super::team::record(
        store,
        crate::domain::AuditEntry::new(
            crate::domain::team::OWNER_NAME,
            crate::domain::AuditAction::AccountChange,
            a.updated_at,
            if active { "resumed" } else { "paused" },
        )
        .account(a.id, a.handle()),
    );
    store.flush()?;
    // Run in the service: its engine takes the change at once (it schedules from its own view).
    if let Some(remote) = super::console::remote() {
        let command = if active {
            crate::sync::Command::Resume(a.id)
        } else {
            crate::sync::Command::Pause(a.id)
        };
        remote.hub.sync.try_send(command).map_err(|_| {
            Failure::new("the service's sync engine is busy or stopped; run the command again")
        })?;
    }
    if active {
        crate::outln!(
            "resumed {}; the dashboard fetches it at once when it runs (or now: `perch mentions fetch --account {}`)",
            a.handle(),
            a.handle()
        );
    } else {
        crate::outln!(
            "paused {}; it is not polled until `perch accounts resume {}`",
            a.handle(),
            a.handle()
        );
    }
    Ok(())
}

/// The dashboard key that does what `command` does, for the message a locked store gets.
fn dashboard_key(command: &AccountsCommand) -> &'static str {
    match command {
        AccountsCommand::List { .. } => "the accounts pane (H shows paused ones)",
        AccountsCommand::Show { .. } => "Enter on the account",
        AccountsCommand::Pause { .. } | AccountsCommand::Resume { .. } => "P on the account",
        AccountsCommand::Remove { .. } => "D on the account",
        AccountsCommand::Stats { .. } => "s on the account",
        AccountsCommand::Reauthorize { .. } => "R on the account",
    }
}

/// Revokes the removed account's grant at X (`auth::revoke`), as the engine does; a failure is
/// said on standard error in the engine's words, and the removal stands (exit 0).
async fn revoke_after_removal(config: &Config, handle: &str, tokens: &crate::domain::Tokens) {
    let outcome = match crate::auth::OAuthSettings::from_config(config) {
        Ok(settings) => crate::auth::revoke::revoke_on_removal(&settings, handle, tokens).await,
        Err(e) => Err(crate::auth::revoke::not_revoked_message(
            handle,
            &e.to_string(),
        )),
    };
    if let Err(message) = outcome {
        crate::errln!("perch: {}", crate::text::sanitize(&message, false));
    }
}

/// Asks the service's engine to remove the account and waits (bounded) until it has.
async fn remove_through_engine(
    hub: &crate::service::Hub,
    account_id: crate::domain::AccountId,
    delete_mentions: bool,
) -> Result<(), Failure> {
    use crate::service::ServiceEvent;
    use crate::sync::SyncEvent;
    let mut events = hub.subscribe();
    hub.sync
        .send(crate::sync::Command::Remove {
            account_id,
            delete_mentions,
        })
        .await
        .map_err(|_| Failure::new("the service's sync engine has stopped; restart the service"))?;
    let wait = async {
        loop {
            match events.recv().await {
                Ok(ServiceEvent::Sync(SyncEvent::AccountRemoved { account_id: id }))
                    if id == account_id =>
                {
                    return Ok(());
                }
                // The engine could not revoke the grant at X (it says so before the removal).
                Ok(ServiceEvent::Sync(SyncEvent::Notice {
                    account_id: Some(id),
                    message,
                })) if id == account_id => {
                    crate::errln!("perch: {}", crate::text::sanitize(&message, false));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(Failure::new(
                        "the service stopped before removing the account",
                    ));
                }
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), wait)
        .await
        .map_err(|_| {
            Failure::new(
                "the service has not removed the account within 60 s (a poll of it may be stuck); check `perch accounts list`",
            )
        })?
}

/// Opens the store; when a running dashboard holds it, says so and names the dashboard's key for
/// the same operation (sled allows one process per store).
async fn open_accounts_store(
    config: &Config,
    in_dashboard: &str,
) -> Result<crate::store::Store, Failure> {
    if let Some(remote) = super::console::remote() {
        return Ok(remote.hub.sled_store()?);
    }
    let dir = config.data_dir.clone();
    let token_key = config.token_key.clone();
    let opened = tokio::task::spawn_blocking(move || {
        crate::store::Store::open_with_token_key(&dir, token_key)
    })
    .await
    .map_err(|e| Failure::new(format!("store task failed: {e}")))?;
    match opened {
        Ok(store) => {
            super::warn_if_disk_full(&store);
            Ok(store)
        }
        Err(crate::store::StoreError::Locked { dir }) => Err(Failure::new(format!(
            "the perch store at {} is in use by another perch process (a running dashboard?). \
             Do it there ({in_dashboard}), or quit that perch and run this command again",
            dir.display()
        ))),
        Err(e) => Err(Failure::new(e.to_string())),
    }
}
