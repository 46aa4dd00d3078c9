//! `perch mentions ...`, `perch reply` and `perch dm`.

use chrono::Utc;
use serde_json::json;

use crate::config::Config;
use crate::domain::team::OWNER_NAME;
use crate::domain::{AuditAction, AuditEntry, Mention, MentionStatus, SyncStatus, TeamEvent};
use crate::outbox::{
    self, OutboxCommand, OutboxEntry, OutboxEvent, OutboxState, ReplyKind, SendRequest,
};
use crate::store::{AssignedFilter, FeedFilter, Store};
use crate::sync;

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
            assigned,
            json,
        } => {
            let store = open_store(config).await?;
            recover_outbox(&store).await?;
            let filter = FeedFilter {
                account: match &account {
                    Some(name) => Some(find_account(&store, name)?.id),
                    None => None,
                },
                status: status.as_deref().map(parse_status).transpose()?,
            };
            let query = search.as_deref().filter(|q| !q.trim().is_empty());
            let assigned = assigned.as_deref().map(assigned_filter);
            let mut assigned_total = None;
            let mentions = match (&assigned, query) {
                (Some(assigned), _) => {
                    let (page, total) = store.assigned_page(
                        &filter,
                        None,
                        assigned,
                        query.unwrap_or(""),
                        None,
                        limit,
                        SEARCH_SCAN,
                        SEARCH_SCAN,
                    )?;
                    assigned_total = total;
                    page.hits
                }
                (None, Some(query)) => search_all(&store, &filter, query, limit)?,
                (None, None) => store.page_after(&filter, None, limit)?,
            };
            let mut rows = Vec::with_capacity(mentions.len());
            for m in mentions {
                let entry = store.outbox_current(m.key())?;
                let assignment = store.assignment(m.key())?;
                rows.push((m, entry, assignment));
            }
            if json {
                let listed: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(m, entry, assignment)| {
                        let mut value = serde_json::to_value(m).unwrap_or_default();
                        // The original system writes handles with their `@` ("@user"), and so
                        // do the REST API and this output.
                        with_at(&mut value["sender"]["username"]);
                        with_at(&mut value["sent_to"]["username"]);
                        if let Some(object) = value.as_object_mut() {
                            // How it arrived (stream or poll): a store note beside the record.
                            let arrived = store.arrival(m.key()).ok();
                            object.insert(
                                "arrived_by".into(),
                                arrived.map_or(serde_json::Value::Null, |a| a.as_str().into()),
                            );
                            object.insert(
                                "outbox".into(),
                                entry.as_ref().map_or(serde_json::Value::Null, entry_json),
                            );
                            object.insert(
                                "assigned_to".into(),
                                assignment.as_ref().map_or(
                                    serde_json::Value::Null,
                                    |a| json!({"person": a.person, "at": a.at}),
                                ),
                            );
                        }
                        value
                    })
                    .collect();
                return print_json(&json!({
                    "mentions": listed,
                    "count": listed.len(),
                    "total_matching": match (&assigned, &search) {
                        (Some(_), _) => assigned_total,
                        (None, Some(_)) => None,
                        (None, None) => Some(store.count(&filter)?),
                    },
                }));
            }
            for (m, entry, assignment) in &rows {
                // An unconfirmed reply says so instead of the bare `error` status.
                let shown = match entry {
                    Some(e) if e.state == OutboxState::Unconfirmed => "unconfirmed",
                    _ => m.status.as_str(),
                };
                // Who has it, when someone does ("→ana"), after the status.
                let shown = match assignment {
                    Some(a) => format!("{shown} →{}", clean(&a.person)),
                    None => shown.to_string(),
                };
                crate::outln!(
                    "{}  {:<11} {:<16} {:<16} {}",
                    m.tweet_id,
                    shown,
                    format!("@{}", crate::text::shown_field(&m.sent_to.username)),
                    crate::text::shown_field(&m.sender.handle()),
                    crate::text::truncate_to_width(
                        &crate::text::sanitize(&crate::text::bounded(&m.text, 200), true),
                        80
                    )
                );
            }
            if rows.is_empty() {
                crate::outln!("No mentions match.");
            }
            Ok(())
        }
        MentionsCommand::SetStatus { id, status } => {
            let status = parse_status(&status)?;
            if matches!(status, MentionStatus::Processing | MentionStatus::Error) {
                return Err(Failure::usage(
                    crate::domain::StatusRefusal::SetByPerch(status).to_string(),
                ));
            }
            let store = open_store(config).await?;
            recover_outbox(&store).await?;
            let mention = resolve_mention(&store, &id)?;
            // The same transitions as the dashboard's keys.
            if let Some(why) = mention.status_change_refused(status) {
                return Err(Failure::new(format!(
                    "{} not changed: {why}",
                    mention.tweet_id
                )));
            }
            let key = mention.key();
            let now = Utc::now();
            // A reply still in the outbox is resolved by the new status: "replied" says the
            // unconfirmed one is on X; any other status says it is not (the entry is cancelled,
            // its text kept as the draft).
            if let Some(entry) = store.outbox_current(key)? {
                let noun = entry.kind.noun();
                if status == MentionStatus::Replied && entry.state == OutboxState::Unconfirmed {
                    store.outbox_mark_sent(key, now)?;
                    super::team::record(
                        &store,
                        AuditEntry::new(
                            OWNER_NAME,
                            AuditAction::Status,
                            now,
                            "replied (the unconfirmed reply recorded as sent)",
                        )
                        .mention(key, format!("@{}", mention.sent_to.username)),
                    );
                    crate::outln!(
                        "{} is now replied (the unconfirmed {noun} is recorded as sent; X's id for it is unknown)",
                        mention.tweet_id
                    );
                    return Ok(());
                }
                store.outbox_cancel(key, now)?;
                crate::errln!(
                    "perch: the {} {noun} to {} is cancelled; its text is kept as the draft",
                    entry.state,
                    mention.tweet_id
                );
            }
            store.set_status(key, status, now)?;
            super::team::record(
                &store,
                AuditEntry::new(OWNER_NAME, AuditAction::Status, now, status.to_string())
                    .mention(key, format!("@{}", mention.sent_to.username)),
            );
            store.flush()?;
            crate::outln!("{} is now {status}", mention.tweet_id);
            Ok(())
        }
        MentionsCommand::Fetch { account, json } => fetch(config, account.as_deref(), json).await,
        MentionsCommand::Assign { id, person } => assign(config, &id, &person).await,
    }
}

/// `perch mentions fetch`: one poll of each requested account (no schedule, no back-off
/// retries: a failure is reported, not retried), several accounts at once up to the configured
/// number of requests in flight. Each request is bounded by the X client's timeout, so the
/// command ends within a few timeouts whatever X does. An account that cannot be fetched at all
/// (paused, token expired) is reported at once, without asking X.
async fn fetch(config: &Config, account: Option<&str>, json: bool) -> CliResult {
    use super::report::{AccountOutcome, Report, StopReason};
    use futures::StreamExt as _;

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
        let any = !app.store.accounts()?.is_empty();
        return Err(Failure::new(if any {
            "no active accounts to fetch: every account is paused (`perch accounts resume @handle`)"
        } else {
            "no accounts to fetch: perch tracks no accounts yet (add one with `perch login`)"
        }));
    }
    let backfill_cap = config.backfill_cap;
    let in_flight = config.max_in_flight.max(1);
    // One gate for every account fetched at once: the budget is checked before each request.
    let spend = sync::spend::SpendGate::new(app.store.shared(), config.budgets.clone());
    let shared = app.store.shared();
    let outcomes: Vec<AccountOutcome> = futures::stream::iter(targets)
        .map(|a| {
            let (app, spend, shared) = (&app, &spend, &shared);
            async move {
                // A budget pause is the budget's to lift (a new month, a raised budget).
                use crate::sync::spend::{BudgetPause, lift_budget_pause};
                let a = match lift_budget_pause(shared, spend, a) {
                    BudgetPause::Go(a) => a,
                    BudgetPause::Holds(a, message) => {
                        return AccountOutcome::not_started(&a, StopReason::Budget, message);
                    }
                };
                if !a.is_active || a.sync_status == SyncStatus::Paused {
                    let message = format!(
                        "{h} is paused (`perch accounts resume {h}` polls it again)",
                        h = a.handle()
                    );
                    return AccountOutcome::not_started(&a, StopReason::Paused, message);
                }
                if a.sync_status == SyncStatus::TokenExpired {
                    let message = crate::auth::token_expired_message(&a.twitter_username);
                    return AccountOutcome::not_started(&a, StopReason::TokenExpired, message);
                }
                let result = sync::fetch_once(
                    shared,
                    &app.client,
                    &app.tokens,
                    a.clone(),
                    backfill_cap,
                    spend,
                )
                .await;
                AccountOutcome::fetched(&a, &result)
            }
        })
        .buffered(in_flight)
        .collect()
        .await;
    app.store.flush()?;
    Report { accounts: outcomes }.finish(json)
}

/// `perch reply ID TEXT` / `perch dm ID TEXT`: through the durable outbox, from the account the
/// mention was sent to (there is no way to name another). Exit codes: 0 sent; 1 not sent, or
/// unconfirmed; 2 the command itself is wrong (bad id, empty or over-long text).
///
/// Running the same command again after an unconfirmed send is a retry of that entry: when X
/// answers that the text is a duplicate, the first attempt did go out, and it is recorded as sent.
pub async fn reply(config: &Config, id: &str, text: &str, kind: ReplyKind) -> CliResult {
    let text = read_text(text).await?;
    let problem = match kind {
        ReplyKind::Public => crate::text::check_post(&text),
        ReplyKind::Dm => crate::text::check_dm(&text),
    };
    if let Some(problem) = problem {
        return Err(Failure::usage(format!("not sent: {problem}")));
    }
    let app = App::open(config).await?;
    // Entries a killed perch left `sending` must read as unconfirmed before deciding anything.
    recover_outbox(&app.store).await?;
    let mention = resolve_mention(&app.store, id)?;
    let key = mention.key();
    // Replies and DMs are allowed over the budget; a script is told, on standard error.
    let (send_kind, price) = crate::app::costs::send_price(&app.store, kind, &text, &mention);
    let month = crate::costs::Month::of(crate::costs::billing_day(chrono::Utc::now()));
    let (spent, per_account) = app.store.month_spend(month)?;
    let spent_account = per_account.get(&key.account_id).copied().unwrap_or(0);
    if let Some(reached) =
        config
            .budgets
            .reached(month, &mention.sent_to.username, spent, spent_account)
    {
        crate::errln!(
            "perch: over budget ({}): sending anyway, as asked (this {} costs {})",
            reached.message(),
            send_kind.describe(),
            crate::costs::format_usd(price)
        );
    } else if send_kind == crate::costs::CostKind::ReplyWithUrl {
        crate::errln!(
            "perch: this reply costs {}: it contains a link",
            crate::costs::format_usd_cents(price)
        );
    }
    let command = match app.store.outbox_current(key)? {
        Some(entry)
            if entry.state == OutboxState::Unconfirmed
                && entry.kind == kind
                && entry.text == text =>
        {
            crate::errln!(
                "perch: the last {} to this mention is unconfirmed; sending it again",
                kind.noun()
            );
            OutboxCommand::Retry(key)
        }
        _ => OutboxCommand::Send(SendRequest {
            key,
            kind,
            text: text.clone(),
            send_anyway: false,
        }),
    };
    // In the service, its outbox sends it (there is one sender per store); this command owns
    // the send until X answers, so a client that goes away abandons it.
    let remote = super::console::remote();
    let (commands, mut events) = match &remote {
        Some(remote) => {
            super::console::own_send(key);
            // The service's hub records it in the audit log when it is on X.
            remote.hub.note_send(key, OWNER_NAME, kind, &text);
            (remote.hub.outbox.clone(), outbox_events(&remote.hub))
        }
        None => outbox::spawn(app.store.clone(), app.client.clone(), app.tokens.clone()),
    };
    commands
        .send(command)
        .await
        .map_err(|_| Failure::new("the outbox stopped before it could take the reply"))?;
    // Who said what as the account, without a service: recorded when the outcome says it is on
    // X (or may be), never for a send refused, cancelled or failed (in the service, its hub
    // records it).
    let action = match kind {
        ReplyKind::Public => AuditAction::Reply,
        ReplyKind::Dm => AuditAction::Dm,
    };
    let record = |detail: String| {
        if remote.is_none() {
            super::team::record(
                &app.store,
                AuditEntry::new(OWNER_NAME, action, Utc::now(), detail)
                    .mention(key, format!("@{}", mention.sent_to.username)),
            );
        }
    };
    let from = format!("@{}", clean(&mention.sent_to.username));
    let to = clean(&mention.sender.handle());
    let mut cancelled = false;
    let mut rate_limited = None;
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            // A client's Ctrl-C ends its connection instead (and the service abandons the send).
            _ = tokio::signal::ctrl_c(), if !cancelled && remote.is_none() => {
                cancelled = true;
                crate::errln!("perch: cancelling (a request already on its way cannot be called back)");
                let _ = commands.send(OutboxCommand::Cancel(key)).await;
                continue;
            }
        };
        let Some(event) = event else {
            return Err(Failure::new(
                "the outbox stopped unexpectedly; run `perch mentions list --json` to see the reply's state",
            ));
        };
        if event.key() != key {
            continue;
        }
        match event {
            OutboxEvent::Sending { .. } => {}
            // A command waits for nothing it cannot end: X's limit may not reset for hours
            // (DMs count per day), so the send is called back and the command says when to
            // run it again.
            OutboxEvent::Waiting { until, .. } => {
                if rate_limited.is_none() {
                    rate_limited = Some(until);
                    let _ = commands.send(OutboxCommand::Cancel(key)).await;
                }
            }
            OutboxEvent::Sent { response, .. } => {
                record(text.clone());
                let what = match kind {
                    ReplyKind::Public => "replied",
                    ReplyKind::Dm => "sent DM",
                };
                if response.id.is_empty() {
                    crate::outln!(
                        "{what} as {from} to {to}: X already had it (the earlier unconfirmed attempt went out); recorded as sent, X's id for it is unknown"
                    );
                } else if kind == ReplyKind::Public {
                    crate::outln!(
                        "{what} as {from} to {to}: https://x.com/{}/status/{}",
                        clean(&mention.sent_to.username),
                        clean(&response.id)
                    );
                } else {
                    crate::outln!(
                        "{what} as {from} to {to} (DM event {})",
                        clean(&response.id)
                    );
                }
                return Ok(());
            }
            OutboxEvent::Failed { message, .. } | OutboxEvent::Refused { message, .. } => {
                return Err(Failure::new(message));
            }
            OutboxEvent::Unconfirmed { message, .. } => {
                record(format!("{text} (unconfirmed: it may be on X)"));
                let again = match kind {
                    ReplyKind::Public => {
                        "run this same command again (if X already has it, it is recorded as sent)"
                    }
                    ReplyKind::Dm => {
                        "run this same command again (X cannot tell a repeated DM from a new one: check the conversation first)"
                    }
                };
                return Err(Failure::new(format!(
                    "{message}\nCheck on X: {url}\nIf it is there: perch mentions set-status {id} replied\nIf it is not: {again}, or perch mentions set-status {id} pending",
                    url = mention.url(),
                )));
            }
            OutboxEvent::Cancelled { .. } => {
                if let Some(until) = rate_limited {
                    return Err(Failure::new(format!(
                        "not sent: X's rate limit for {from} is spent until {}; the text is kept as the draft: run this command again then",
                        until.with_timezone(&chrono::Local).format("%H:%M")
                    )));
                }
                return Err(Failure::new(format!(
                    "cancelled: the {} was not sent; the mention is pending again",
                    kind.noun()
                )));
            }
        }
    }
}

/// TEXT as given, or standard input for `-` (one trailing line break dropped).
async fn read_text(text: &str) -> Result<String, Failure> {
    let text = if text == "-" {
        let buf = super::console::read_all()
            .await
            .map_err(|e| Failure::new(format!("cannot read the text from standard input: {e}")))?;
        let trimmed = buf.strip_suffix('\n').unwrap_or(&buf);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_string()
    } else {
        text.to_string()
    };
    if text.trim().is_empty() {
        return Err(Failure::usage(
            "not sent: the text is empty (give it as an argument, or `-` to read standard input)",
        ));
    }
    Ok(text)
}

/// Finds a mention by post id (`1234`, or `@handle:1234` when the post mentions several tracked
/// accounts) or by its perch id (uuid): the REST API's resolver, with the CLI's hint.
pub(crate) fn resolve_mention(store: &Store, id: &str) -> Result<Mention, Failure> {
    use crate::store::lookup::{LookupError, find_mention};
    find_mention(store, id).map_err(|e| match e {
        LookupError::NotFound(m) => Failure::new(format!("{m} (see `perch mentions list`)")),
        e => Failure::from_lookup(e),
    })
}

/// Entries a killed perch left `sending` become unconfirmed (this process holds the store).
/// The service's outbox events, as a receiver like the one `outbox::spawn` returns.
fn outbox_events(hub: &crate::service::Hub) -> tokio::sync::mpsc::Receiver<OutboxEvent> {
    let mut all = hub.subscribe();
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            match all.recv().await {
                Ok(crate::service::ServiceEvent::Outbox(event)) => {
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    rx
}

async fn recover_outbox(store: &Store) -> Result<(), Failure> {
    // In the service, its outbox worker did this when it started; doing it again would call a
    // send that is out right now unconfirmed.
    if super::console::remote().is_some() {
        return Ok(());
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || outbox::recover(&store))
        .await
        .map_err(|e| Failure::new(format!("store task failed: {e}")))??;
    Ok(())
}

/// A handle as the original system writes it: one leading `@` (nothing for `null`).
fn with_at(value: &mut serde_json::Value) {
    if let Some(name) = value.as_str() {
        *value = crate::api::rest::shapes::at(name).into();
    }
}

/// An outbox entry for `--json` (ids as strings, as everywhere in perch's JSON).
fn entry_json(e: &OutboxEntry) -> serde_json::Value {
    json!({
        "seq": e.seq.to_string(),
        "kind": e.kind,
        "state": e.state,
        "text": e.text,
        "attempts": e.attempts,
        "last_error": e.last_error,
        "response_id": e.response_id,
        "not_before": e.not_before,
        "updated_at": e.updated_at,
    })
}

/// How many rows `--assigned none` examines for its page, and to count a search's matches.
const SEARCH_SCAN: usize = 200_000;

/// `--assigned` / `assign`'s person: `none` (nobody), `me` (the owner: the CLI's person), or a
/// name (a leading `@` allowed).
fn assigned_filter(name: &str) -> AssignedFilter {
    match name.trim().trim_start_matches('@') {
        "none" => AssignedFilter::Nobody,
        "me" => AssignedFilter::To(OWNER_NAME.to_string()),
        other => AssignedFilter::To(other.to_string()),
    }
}

/// `perch mentions assign ID PERSON`: as the owner, recorded in the audit log, and told to
/// every client of the service when one runs.
async fn assign(config: &Config, id: &str, person: &str) -> CliResult {
    let store = open_store(config).await?;
    let mention = resolve_mention(&store, id)?;
    let person = match assigned_filter(person) {
        AssignedFilter::To(name) => Some(name),
        AssignedFilter::Nobody => None,
    };
    let key = mention.key();
    let handle = format!("@{}", mention.sent_to.username);
    let now = Utc::now();
    let before = store
        .assign_as(OWNER_NAME, key, &handle, person.as_deref(), now)?
        .map_err(|refusal| Failure::new(clean(&refusal.to_string())))?;
    store.flush()?;
    if let Some(remote) = super::console::remote() {
        remote.hub.publish_assigned(TeamEvent::Assigned {
            key,
            mention_id: mention.id,
            handle: handle.clone(),
            assigned_to: person.clone(),
            by: OWNER_NAME.to_string(),
            at: now,
        });
    }
    let was = before.map_or(String::new(), |a| format!(" (it was {})", clean(&a.person)));
    match person {
        Some(name) => crate::outln!(
            "{} is now assigned to {}{was}",
            mention.tweet_id,
            clean(&name)
        ),
        None => crate::outln!("{} is now assigned to nobody{was}", mention.tweet_id),
    }
    Ok(())
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

/// Names and messages that came from X (or from a stored copy of what X sent), made safe to
/// print on one terminal line.
fn clean(text: &str) -> String {
    crate::text::sanitize(text, true)
}
