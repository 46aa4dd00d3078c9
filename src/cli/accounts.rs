//! `perch login` and `perch accounts ...`.

use std::io::{BufRead, IsTerminal, Write};

use chrono::Utc;
use serde_json::json;

use crate::auth;
use crate::config::Config;
use crate::domain::{Account, MentionStatus, SyncStatus};
use crate::store::FeedFilter;

use super::runtime::App;
use super::{AccountsCommand, CliResult, Failure, find_account, print_json};

/// `perch login [--headless]`, also used by `accounts reauthorize`. `expect` is the account a
/// reauthorization is for: logging in as someone else is reported, not silently accepted.
pub async fn login(config: &Config, headless: bool, expect: Option<&Account>) -> CliResult {
    let app = App::open(config).await?;
    // A reauthorization asks the authorize page for that account (`login_hint`) and refuses,
    // changing nothing, a login that comes back as anyone else.
    let (account, reauthorized) = if headless {
        let stdin = tokio::io::BufReader::new(tokio::io::stdin());
        let mut stdout = std::io::stdout();
        auth::login_headless_as(
            &app.oauth,
            &app.store,
            &app.client,
            expect,
            &mut stdout,
            stdin,
        )
        .await?
    } else {
        auth::login_with_listener_as(&app.oauth, &app.store, &app.client, expect, |url| {
            println!("Opening your browser to authorize perch. If it does not open, visit:\n{url}");
        })
        .await?
    };
    app.store.flush()?;
    println!(
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
                println!("No accounts yet. Add one with `perch login`.");
                return Ok(());
            }
            println!(
                "{:<18} {:<14} {:>8} {:>9}  LAST SYNCED",
                "ACCOUNT", "STATUS", "PENDING", "MENTIONS"
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
                println!(
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
            println!(
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
            println!(
                "{} ({})",
                crate::text::sanitize(&a.handle(), true),
                crate::text::sanitize(&a.display_name, true)
            );
            println!("  X user id      {}", a.twitter_id);
            println!("  perch id       {}", a.id);
            println!(
                "  status         {}{}",
                a.sync_status,
                if a.is_active { "" } else { " (not polled)" }
            );
            if let Some(e) = &a.error_message {
                println!("  last error     {}", crate::text::sanitize(e, true));
            }
            println!(
                "  added          {}",
                a.added_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            println!(
                "  last synced    {}",
                a.last_synced_at
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_else(|| "never".into())
            );
            println!("  mentions       {}", a.total_mentions_tracked);
            let unreadable = store.unreadable_posts(a.id)?;
            if unreadable.count > 0 {
                let ids: Vec<String> = unreadable.newest_ids.iter().map(u64::to_string).collect();
                println!(
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
                if !std::io::stdin().is_terminal() {
                    return Err(Failure::new(format!(
                        "not removing {} without confirmation: add --yes to remove it {what}",
                        a.handle()
                    )));
                }
                print!("Remove {} {what}? [y/N] ", a.handle());
                std::io::stdout().flush()?;
                let mut answer = String::new();
                std::io::stdin().lock().read_line(&mut answer)?;
                if !matches!(answer.trim(), "y" | "Y" | "yes") {
                    println!("kept {}", a.handle());
                    return Ok(());
                }
            }
            store.remove_account(a.id, delete_mentions)?;
            store.flush()?;
            println!(
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
            println!("{}", a.handle());
            println!("  total mentions     {}", stats.total_mentions);
            println!("  pending            {}", stats.pending_mentions);
            println!("  replied            {}", stats.replied_mentions);
            println!(
                "  tracked since      {} ({})",
                stats.tracked_since.format("%Y-%m-%d"),
                crate::text::count(stats.days_tracked, "day", "days")
            );
            println!(
                "  per day (average)  {:.2} ({} posted in those days)",
                stats.avg_mentions_per_day,
                crate::text::count(stats.mentions_while_tracked, "mention", "mentions")
            );
            println!("  status             {}", stats.sync_status);
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
    store.flush()?;
    if active {
        println!(
            "resumed {}; the dashboard fetches it at once when it runs (or now: `perch mentions fetch --account {}`)",
            a.handle(),
            a.handle()
        );
    } else {
        println!(
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

/// Opens the store; when a running dashboard holds it, says so and names the dashboard's key for
/// the same operation (sled allows one process per store).
async fn open_accounts_store(
    config: &Config,
    in_dashboard: &str,
) -> Result<crate::store::Store, Failure> {
    let dir = config.data_dir.clone();
    let opened = tokio::task::spawn_blocking(move || crate::store::Store::open(&dir))
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
