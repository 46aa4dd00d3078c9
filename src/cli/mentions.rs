//! `perch mentions ...`, `perch reply` and `perch dm`.

use std::io::Read;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;

use crate::config::Config;
use crate::domain::{Mention, MentionKey, MentionStatus};
use crate::outbox::{self, OutboxEvent, ReplyKind, SendRequest};
use crate::store::{FeedFilter, Store};
use crate::sync::{self, Command, SyncEvent};

use super::runtime::App;
use super::{
    CliResult, Failure, MentionsCommand, find_account, open_store, parse_status, print_json,
};

pub async fn run(config: &Config, command: MentionsCommand) -> CliResult {
    match command {
        MentionsCommand::List {
            account,
            status,
            search,
            limit,
            json,
        } => {
            let store = open_store(config).await?;
            let filter = FeedFilter {
                account: match &account {
                    Some(name) => Some(find_account(&store, name)?.id),
                    None => None,
                },
                status: status.as_deref().map(parse_status).transpose()?,
            };
            let mentions = match search.as_deref().filter(|q| !q.trim().is_empty()) {
                Some(query) => search_all(&store, &filter, query, limit)?,
                None => store.page_after(&filter, None, limit)?,
            };
            if json {
                return print_json(&json!({
                    "mentions": mentions,
                    "count": mentions.len(),
                    "total_matching": if search.is_some() { None } else { Some(store.count(&filter)?) },
                }));
            }
            for m in &mentions {
                println!(
                    "{}  {:<10} {:<16} {:<16} {}",
                    m.tweet_id,
                    m.status.as_str(),
                    format!("@{}", m.sent_to.username),
                    m.sender.handle(),
                    crate::text::truncate_to_width(&crate::text::sanitize(&m.text, true), 80)
                );
            }
            if mentions.is_empty() {
                println!("No mentions match.");
            }
            Ok(())
        }
        MentionsCommand::SetStatus { id, status } => {
            let status = parse_status(&status)?;
            if status == MentionStatus::Processing {
                return Err(Failure::usage(
                    "processing is set by perch while a reply is being sent; use pending, replied, ignored or error",
                ));
            }
            let store = open_store(config).await?;
            let mention = resolve_mention(&store, &id)?;
            if mention.status == MentionStatus::Processing {
                return Err(Failure::new(format!(
                    "mention {id} has a reply on its way; wait for it to finish"
                )));
            }
            store.set_status(mention.key(), status, Utc::now())?;
            store.flush()?;
            println!("{} is now {status}", mention.tweet_id);
            Ok(())
        }
        MentionsCommand::Fetch { account } => fetch(config, account.as_deref()).await,
    }
}

/// Runs the sync engine until the requested accounts have been polled once.
async fn fetch(config: &Config, account: Option<&str>) -> CliResult {
    let app = App::open(config).await?;
    let targets: Vec<_> = match account {
        Some(name) => vec![find_account(&app.store, name)?],
        None => app
            .store
            .accounts()?
            .into_iter()
            .filter(|a| a.is_active)
            .collect(),
    };
    if targets.is_empty() {
        println!("No active accounts to fetch.");
        return Ok(());
    }
    let mut settings = sync::SyncSettings::from_config(config);
    // Only the explicit fetch: no scheduled polls while this command runs.
    settings.poll_interval = Duration::from_secs(24 * 3600);
    let mut engine = sync::spawn(
        app.store.clone(),
        app.client.clone(),
        app.tokens.clone(),
        settings,
    );
    let mut waiting: std::collections::HashSet<_> = targets.iter().map(|a| a.id).collect();
    let mut total = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let mut failed = false;
    while !waiting.is_empty() {
        let event = tokio::time::timeout_at(deadline, engine.events.recv()).await;
        match event {
            Err(_) => return Err(Failure::new("gave up waiting for X after 5 minutes")),
            Ok(None) => break,
            Ok(Some(SyncEvent::Finished {
                account_id,
                inserted,
                ..
            })) => {
                total += inserted;
                waiting.remove(&account_id);
            }
            Ok(Some(SyncEvent::AccountUpdated(a))) if waiting.contains(&a.id) => {
                if let Some(message) = &a.error_message {
                    eprintln!("{}: {}", a.handle(), message);
                    if a.sync_status != crate::domain::SyncStatus::Active {
                        failed = true;
                        waiting.remove(&a.id);
                    }
                }
            }
            Ok(Some(SyncEvent::Notice { message, .. })) => eprintln!("{message}"),
            Ok(Some(_)) => {}
        }
    }
    let _ = engine.commands.send(Command::Shutdown).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), engine.task).await;
    app.store.flush()?;
    println!("fetched {total} new mentions");
    if failed {
        return Err(Failure::new(
            "some accounts could not be fetched (see above)",
        ));
    }
    Ok(())
}

/// `perch reply ID TEXT` / `perch dm ID TEXT`: through the outbox, from the mention's account.
pub async fn reply(config: &Config, id: &str, text: &str, kind: ReplyKind) -> CliResult {
    let text = if text == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf)?;
        buf.trim_end_matches('\n').to_string()
    } else {
        text.to_string()
    };
    let app = App::open(config).await?;
    let mention = resolve_mention(&app.store, id)?;
    let request = SendRequest {
        key: mention.key(),
        kind,
        text,
    };
    match outbox::send(&app.store, &app.client, &app.tokens, &request, |_| {}).await {
        OutboxEvent::Sent { response, .. } => {
            println!(
                "{} as @{} (id {})",
                match kind {
                    ReplyKind::Public => "replied",
                    ReplyKind::Dm => "sent DM",
                },
                mention.sent_to.username,
                response.id
            );
            Ok(())
        }
        OutboxEvent::Failed { message, .. } => Err(Failure::new(message)),
        OutboxEvent::Sending { .. } => Err(Failure::new("send did not finish")),
    }
}

/// Finds a mention by post id (`1234`, or `@handle:1234` when the post mentions several tracked
/// accounts) or by its perch id (uuid).
pub(crate) fn resolve_mention(store: &Store, id: &str) -> Result<Mention, Failure> {
    let id = id.trim();
    let (account, tweet) = match id.split_once(':') {
        Some((handle, tweet)) => (Some(find_account(store, handle)?), tweet),
        None => (None, id),
    };
    if let Ok(tweet_id) = tweet.parse::<u64>() {
        let accounts = match account {
            Some(a) => vec![a],
            None => store.accounts()?,
        };
        let found: Vec<Mention> = accounts
            .iter()
            .filter_map(|a| {
                store
                    .mention(MentionKey {
                        account_id: a.id,
                        tweet_id,
                    })
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        return match found.len() {
            0 => Err(Failure::new(format!(
                "no stored mention with post id {tweet_id} (see `perch mentions list`)"
            ))),
            1 => Ok(found.into_iter().next().expect("one element")),
            _ => Err(Failure::new(format!(
                "post {tweet_id} mentions several tracked accounts; name one: {}",
                found
                    .iter()
                    .map(|m| format!("@{}:{tweet_id}", m.sent_to.username))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    }
    if let Ok(uuid) = uuid::Uuid::parse_str(tweet) {
        // perch ids are not indexed: walk the feed newest first (fine for scripts).
        let mut after = None;
        loop {
            let page = store.page_after(&FeedFilter::default(), after, 500)?;
            if let Some(m) = page.iter().find(|m| m.id == uuid) {
                return Ok(m.clone());
            }
            match page.last() {
                Some(last) => after = Some(last.key().into()),
                None => break,
            }
        }
        return Err(Failure::new(format!("no stored mention with id {uuid}")));
    }
    Err(Failure::usage(format!(
        "{id:?} is not a mention id: use the post id (e.g. 1578516295611748353), @handle:postid, or the uuid"
    )))
}

fn search_all(
    store: &Store,
    filter: &FeedFilter,
    query: &str,
    limit: usize,
) -> Result<Vec<Mention>, Failure> {
    let mut hits = Vec::new();
    let mut after = None;
    while hits.len() < limit {
        let page = store.search_page(filter, query, after, limit - hits.len(), 10_000)?;
        hits.extend(page.hits);
        if page.exhausted {
            break;
        }
        after = page.resume_after;
    }
    Ok(hits)
}
