//! The outbox: one record per reply or DM perch sends, so that a send is never lost and never
//! doubled. The sending itself is `crate::outbox`'s; this file keeps its records consistent with
//! the mentions they answer: every transition writes the entry, its "current" pointer, the
//! mention (status, response, error) and the draft in ONE sled batch.
//!
//! Keys (beside those in `keys.rs`; the tags are distinct from every tag there):
//! - `o | account | tweet | seq` → [`OutboxEntry`]. `seq` comes from sled's id generator, so a
//!   mention's entries sort in the order they were made.
//! - `O | account | tweet` → seq (u64 BE): the mention's current entry, while it is unfinished
//!   (queued, waiting, sending, unconfirmed or failed). Listing what needs attention is a scan of
//!   these few keys, never of the whole history.
//!
//! States: `queued` → `sending` (flushed before the request leaves) → `sent` | `failed` |
//! `unconfirmed` | `waiting` (429: back to `sending` at the reset). `unconfirmed` means the request
//! may have reached X and no answer came back: it is never sent again without the user saying so.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Batch;

use super::{CounterUpdates, Draft, FeedFilter, Result, Store, StoreError, codec, keys};
use crate::domain::ReplyKind;
use crate::domain::{Mention, MentionKey, MentionStatus, Response};

/// Outbox entry record: `o | account | tweet | seq`.
pub const ENTRY: u8 = b'o';
/// A mention's current (unfinished) entry: `O | account | tweet` → seq.
pub const CURRENT: u8 = b'O';

/// Where one send is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Recorded; the request has not left.
    Queued,
    /// X rate-limited the account: sent again at `not_before` unless cancelled.
    Waiting,
    /// The request is (or was) on its way to X. Committed and flushed before it leaves.
    Sending,
    /// X accepted it; the mention is `replied`.
    Sent,
    /// X refused it, or it could not leave: nothing was posted. The draft is kept.
    Failed,
    /// perch stopped (or lost the connection) after the request left and before X answered: it
    /// may or may not be on X. Only the user resolves it (mark sent, retry, or cancel).
    Unconfirmed,
    /// The user cancelled it (or said it is not on X); the mention is back to `pending`.
    Cancelled,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Queued => "queued",
            OutboxState::Waiting => "waiting",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Unconfirmed => "unconfirmed",
            OutboxState::Cancelled => "cancelled",
        }
    }

    /// Nothing more will happen to it.
    pub fn is_finished(self) -> bool {
        matches!(self, OutboxState::Sent | OutboxState::Cancelled)
    }

    /// A new send for the same mention must wait until this one is resolved.
    pub fn blocks_new_send(self) -> bool {
        matches!(
            self,
            OutboxState::Queued
                | OutboxState::Waiting
                | OutboxState::Sending
                | OutboxState::Unconfirmed
        )
    }
}

impl std::fmt::Display for OutboxState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One send: a reply or DM answering one mention, always from the mention's `sent_to` account
/// (`key.account_id`). There is no account field: there is nothing else it could be sent from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub seq: u64,
    pub key: MentionKey,
    pub kind: ReplyKind,
    pub text: String,
    pub state: OutboxState,
    /// Requests that left for X.
    pub attempts: u32,
    /// An earlier attempt may have reached X (it ended `unconfirmed`): if a retry is refused as
    /// duplicate content, that earlier attempt is what X already has.
    pub may_have_been_sent: bool,
    /// `waiting`: when X's rate limit resets and the entry goes again.
    pub not_before: Option<DateTime<Utc>>,
    /// Why the last attempt failed or is unconfirmed, in words for the user.
    pub last_error: Option<String>,
    /// X's id for the post or DM event, once sent; `None` when sent but X's answer was lost.
    pub response_id: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

codec::serde_record!(OutboxEntry);

/// What a transition does to the mention's stored draft (both backends).
#[derive(Clone, Copy)]
pub(crate) enum DraftChange {
    Keep,
    Save,
    Delete,
}

fn entry_key(key: MentionKey, seq: u64) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[..25].copy_from_slice(&keys::mention_key(key.account_id, key.tweet_id));
    k[0] = ENTRY;
    k[25..].copy_from_slice(&seq.to_be_bytes());
    k
}

fn mention_prefix(tag: u8, key: MentionKey) -> [u8; 25] {
    let mut k = keys::mention_key(key.account_id, key.tweet_id);
    k[0] = tag;
    k
}

fn current_key(key: MentionKey) -> [u8; 25] {
    mention_prefix(CURRENT, key)
}

/// The mention key inside `O | account | tweet`.
fn key_of_current(k: &[u8]) -> Option<MentionKey> {
    if k.len() != 25 {
        return None;
    }
    Some(MentionKey {
        account_id: keys::key_account(k)?,
        tweet_id: keys::trailing_tweet(k)?,
    })
}

pub(crate) fn entry_what(key: MentionKey, seq: u64) -> String {
    format!(
        "outbox entry {seq} for mention {} of account {}",
        key.tweet_id, key.account_id
    )
}

/// The mention's state while an entry is in flight, and after each outcome.
pub(crate) fn set_processing(m: &mut Mention, now: DateTime<Utc>) {
    m.status = MentionStatus::Processing;
    m.error_message = None;
    m.updated_at = now;
}

/// The entry `sent` (X's id `response_id`, `None` when its answer was lost), and the response
/// to record on the mention. Both backends use it.
pub(crate) fn mark_sent(
    entry: &mut OutboxEntry,
    response_id: Option<String>,
    now: DateTime<Utc>,
) -> Response {
    let response = Response {
        // An empty id means "sent, X's id unknown" (the answer was lost): the UI and the CLI
        // say so rather than show an id.
        id: response_id.clone().unwrap_or_default(),
        text: entry.text.clone(),
        sent_at: entry.last_attempt_at.unwrap_or(now),
    };
    entry.state = OutboxState::Sent;
    entry.response_id = response_id;
    entry.last_error = None;
    entry.not_before = None;
    entry.updated_at = now;
    response
}

/// The mention `replied`, with `response` recorded as its answer of `kind`.
pub(crate) fn set_answered(
    m: &mut Mention,
    kind: ReplyKind,
    response: Response,
    now: DateTime<Utc>,
) {
    m.status = MentionStatus::Replied;
    m.error_message = None;
    match kind {
        ReplyKind::Public => m.public_response = Some(response),
        ReplyKind::Dm => m.dm_response = Some(response),
    }
    m.updated_at = now;
}

pub(crate) fn set_error(m: &mut Mention, message: &str, now: DateTime<Utc>) {
    m.status = MentionStatus::Error;
    m.error_message = Some(message.to_string());
    m.updated_at = now;
}

impl Store {
    /// One entry by mention and seq.
    pub fn outbox_entry(&self, key: MentionKey, seq: u64) -> Result<Option<OutboxEntry>> {
        self.get(&entry_key(key, seq))?
            .map(|v| codec::decode(&v, || entry_what(key, seq)))
            .transpose()
    }

    /// The mention's unfinished entry (queued, waiting, sending, unconfirmed or failed), if any.
    pub fn outbox_current(&self, key: MentionKey) -> Result<Option<OutboxEntry>> {
        let Some(seq) = self.get_u64(&current_key(key), || {
            format!("current outbox entry of mention {}", key.tweet_id)
        })?
        else {
            return Ok(None);
        };
        self.outbox_entry(key, seq)
    }

    /// A mention as it is now, with its unfinished outbox entry, read as one consistent pair.
    /// Two plain reads can straddle an outbox change and pair an old mention with a new entry
    /// (a mention still `processing` whose send was just cancelled, shown with no entry at all).
    /// The entry is read between two reads of the mention: when both give the same mention, the
    /// store held that mention when the entry was read, so the pair is one the store really held
    /// (outbox changes that matter, like a cancel, rewrite the mention in the same batch).
    /// Otherwise it is read again, a few times at most: changes are rare and quick.
    pub fn mention_with_outbox(&self, m: Mention) -> Result<(Mention, Option<OutboxEntry>)> {
        let key = m.key();
        let mut m = m;
        for _ in 0..8 {
            let entry = self.outbox_current(key)?;
            match self.mention(key)? {
                Some(now) if now == m => return Ok((m, entry)),
                Some(now) => m = now,
                // Removed meanwhile: what was read is the last there was.
                None => return Ok((m, entry)),
            }
        }
        let entry = self.outbox_current(key)?;
        Ok((m, entry))
    }

    /// Every unfinished entry, oldest first: what the outbox still has to do or the user still
    /// has to resolve.
    pub fn outbox_open(&self) -> Result<Vec<OutboxEntry>> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([CURRENT]) {
            let (k, _) = item.map_err(|e| self.err(e))?;
            let Some(key) = key_of_current(&k) else {
                tracing::warn!("skipping a malformed outbox pointer key {k:?}");
                continue;
            };
            if let Some(entry) = self.outbox_current(key)? {
                out.push(entry);
            }
        }
        out.sort_by_key(|e| e.seq);
        Ok(out)
    }

    /// Every entry ever made for one mention, oldest first.
    pub fn outbox_history(&self, key: MentionKey) -> Result<Vec<OutboxEntry>> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(mention_prefix(ENTRY, key)) {
            let (k, v) = item.map_err(|e| self.err(e))?;
            let seq = keys::trailing_tweet(&k).unwrap_or(0);
            out.push(codec::decode(&v, || entry_what(key, seq))?);
        }
        Ok(out)
    }

    /// Records a new send for `key`: the entry `queued`, the mention `processing`, the text kept
    /// as the mention's draft. Refused while another send for the mention is unresolved.
    pub fn outbox_enqueue(
        &self,
        key: MentionKey,
        kind: ReplyKind,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        if let Some(current) = self.outbox_current(key)?
            && current.state.blocks_new_send()
        {
            return Err(StoreError::Invalid(format!(
                "mention {} already has a reply that is {}",
                key.tweet_id, current.state
            )));
        }
        let seq = self.tree.generate_id().map_err(|e| self.err(e))?;
        let entry = OutboxEntry {
            seq,
            key,
            kind,
            text: text.to_string(),
            state: OutboxState::Queued,
            attempts: 0,
            may_have_been_sent: false,
            not_before: None,
            last_error: None,
            response_id: None,
            last_attempt_at: None,
            created_at: now,
            updated_at: now,
        };
        self.outbox_commit(&entry, |m| set_processing(m, now), DraftChange::Save)?;
        Ok(entry)
    }

    /// The request is about to leave: `sending`, one more attempt. Flushed to disk before it
    /// returns, so a crash from here on finds the entry `sending` (and never sends it again).
    pub fn outbox_begin_send(
        &self,
        key: MentionKey,
        seq: u64,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        let mut entry = self.entry_in(key, seq, &[OutboxState::Queued, OutboxState::Waiting])?;
        entry.state = OutboxState::Sending;
        entry.attempts = entry.attempts.saturating_add(1);
        entry.not_before = None;
        entry.last_attempt_at = Some(now);
        entry.updated_at = now;
        self.outbox_commit(&entry, |m| set_processing(m, now), DraftChange::Keep)?;
        self.flush()?;
        Ok(entry)
    }

    /// X accepted it (`response_id` is X's id, `None` when its answer was lost): the entry
    /// `sent`, the mention `replied` with the response recorded, the draft gone. Returns the
    /// recorded response.
    pub fn outbox_sent(
        &self,
        key: MentionKey,
        seq: u64,
        response_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Response> {
        let entry = self.entry_in(
            key,
            seq,
            &[
                OutboxState::Sending,
                OutboxState::Unconfirmed,
                OutboxState::Failed,
            ],
        )?;
        self.record_sent(entry, response_id, now)
    }

    /// X refused it or it could not leave: the entry `failed`, the mention `error` with
    /// `message`, the draft kept.
    pub fn outbox_failed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        // `Unconfirmed`: its client went away while it was out (see `outbox_abandon_sending`) and
        // X's answer, a refusal, came after all: it is known not to be on X.
        let mut entry = self.entry_in(
            key,
            seq,
            &[
                OutboxState::Sending,
                OutboxState::Queued,
                OutboxState::Unconfirmed,
            ],
        )?;
        entry.state = OutboxState::Failed;
        entry.last_error = Some(message.to_string());
        entry.updated_at = now;
        self.outbox_commit(&entry, |m| set_error(m, message, now), DraftChange::Keep)?;
        self.flush()?;
        Ok(entry)
    }

    /// The request left and no answer came back: the entry `unconfirmed`, the mention `error`
    /// with `message`, the draft kept.
    pub fn outbox_unconfirmed(
        &self,
        key: MentionKey,
        seq: u64,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        // Already `Unconfirmed` when its client went away while it was out: the lost answer
        // changes nothing.
        let mut entry =
            self.entry_in(key, seq, &[OutboxState::Sending, OutboxState::Unconfirmed])?;
        entry.state = OutboxState::Unconfirmed;
        entry.may_have_been_sent = true;
        entry.last_error = Some(message.to_string());
        entry.updated_at = now;
        self.outbox_commit(&entry, |m| set_error(m, message, now), DraftChange::Keep)?;
        self.flush()?;
        Ok(entry)
    }

    /// X rate-limited the account (the request was not executed): `waiting` until `until`.
    pub fn outbox_waiting(
        &self,
        key: MentionKey,
        seq: u64,
        until: DateTime<Utc>,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<OutboxEntry> {
        // `Unconfirmed`: abandoned while out, and X said 429 (not executed); the worker cancels
        // it straight after, since nobody is left to want it sent later.
        let mut entry =
            self.entry_in(key, seq, &[OutboxState::Sending, OutboxState::Unconfirmed])?;
        entry.state = OutboxState::Waiting;
        entry.not_before = Some(until);
        entry.last_error = Some(message.to_string());
        entry.updated_at = now;
        self.outbox_commit(&entry, |m| set_processing(m, now), DraftChange::Keep)?;
        self.flush()?;
        Ok(entry)
    }

    /// The user says the mention's unconfirmed (or failed) reply IS on X: recorded as sent, with
    /// X's id unknown. Returns the entry and the recorded response.
    pub fn outbox_mark_sent(
        &self,
        key: MentionKey,
        now: DateTime<Utc>,
    ) -> Result<(OutboxEntry, Response)> {
        let entry = self.current_in(key, &[OutboxState::Unconfirmed, OutboxState::Failed])?;
        let response = self.record_sent(entry.clone(), None, now)?;
        let entry = self.outbox_entry(key, entry.seq)?.unwrap_or(entry);
        Ok((entry, response))
    }

    /// The user asks to send the mention's unconfirmed (or failed) reply again: `queued` again,
    /// the mention `processing`. An unconfirmed entry keeps `may_have_been_sent`, so a
    /// duplicate-content refusal on the retry is recorded as already sent.
    pub fn outbox_retry(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        let mut entry = self.current_in(key, &[OutboxState::Unconfirmed, OutboxState::Failed])?;
        entry.state = OutboxState::Queued;
        entry.not_before = None;
        entry.updated_at = now;
        self.outbox_commit(&entry, |m| set_processing(m, now), DraftChange::Save)?;
        self.flush()?;
        Ok(entry)
    }

    /// The user cancels the mention's queued or waiting reply, or says an unconfirmed one is not
    /// on X: `cancelled`, the mention back to `pending`, the text kept as its draft.
    pub fn outbox_cancel(&self, key: MentionKey, now: DateTime<Utc>) -> Result<OutboxEntry> {
        let mut entry = self.current_in(
            key,
            &[
                OutboxState::Queued,
                OutboxState::Waiting,
                OutboxState::Unconfirmed,
                OutboxState::Failed,
            ],
        )?;
        entry.state = OutboxState::Cancelled;
        entry.not_before = None;
        entry.updated_at = now;
        self.outbox_commit(
            &entry,
            |m| {
                if matches!(m.status, MentionStatus::Processing | MentionStatus::Error) {
                    m.status = MentionStatus::Pending;
                    m.error_message = None;
                    m.updated_at = now;
                }
            },
            DraftChange::Save,
        )?;
        self.flush()?;
        Ok(entry)
    }

    /// Start-up repair, for the one process that holds the store: an entry still `sending` was
    /// cut off by a crash or kill after its request may have left, so it becomes `unconfirmed`
    /// (with `unconfirmed_message`), never sent again by itself. An entry `queued` or `waiting`
    /// never left: it becomes `failed` with `not_sent_message` (sending it hours later, unasked,
    /// would surprise). A mention left `processing` with no entry (written by an older perch)
    /// becomes `error` with `unconfirmed_message`. Returns the entries it changed.
    pub fn outbox_recover(
        &self,
        now: DateTime<Utc>,
        unconfirmed_message: &str,
        not_sent_message: &str,
    ) -> Result<Vec<OutboxEntry>> {
        let mut changed = Vec::new();
        for entry in self.outbox_open()? {
            let updated = match entry.state {
                OutboxState::Sending => {
                    self.outbox_unconfirmed(entry.key, entry.seq, unconfirmed_message, now)?
                }
                OutboxState::Queued | OutboxState::Waiting => {
                    let mut e = entry.clone();
                    e.state = OutboxState::Failed;
                    e.not_before = None;
                    e.last_error = Some(not_sent_message.to_string());
                    e.updated_at = now;
                    self.outbox_commit(
                        &e,
                        |m| set_error(m, not_sent_message, now),
                        DraftChange::Keep,
                    )?;
                    e
                }
                _ => continue,
            };
            changed.push(updated);
        }
        let processing = FeedFilter {
            account: None,
            status: Some(MentionStatus::Processing),
        };
        let mut orphans = Vec::new();
        let mut after = None;
        loop {
            let page = self.page_after(&processing, after, 200)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key().into());
            for m in page {
                let busy = self
                    .outbox_current(m.key())?
                    .is_some_and(|e| e.state.blocks_new_send());
                if !busy {
                    orphans.push(m);
                }
            }
        }
        for mut m in orphans {
            tracing::warn!(tweet_id = %m.tweet_id, "mention left processing with no outbox entry");
            set_error(&mut m, unconfirmed_message, now);
            self.update_mention(&m)?;
        }
        self.flush()?;
        Ok(changed)
    }

    // ---- internals ------------------------------------------------------------------------

    fn record_sent(
        &self,
        mut entry: OutboxEntry,
        response_id: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<Response> {
        let response = mark_sent(&mut entry, response_id, now);
        let (kind, recorded) = (entry.kind, response.clone());
        self.outbox_commit(
            &entry,
            move |m| set_answered(m, kind, recorded, now),
            DraftChange::Delete,
        )?;
        self.flush()?;
        Ok(response)
    }

    /// The entry `seq` of `key`, which must be in one of `states`.
    fn entry_in(&self, key: MentionKey, seq: u64, states: &[OutboxState]) -> Result<OutboxEntry> {
        let entry = self
            .outbox_entry(key, seq)?
            .ok_or_else(|| StoreError::NotFound(entry_what(key, seq)))?;
        if states.contains(&entry.state) {
            Ok(entry)
        } else {
            Err(StoreError::Invalid(format!(
                "{} is {}, not {}",
                entry_what(key, seq),
                entry.state,
                list(states)
            )))
        }
    }

    /// The mention's current entry, which must be in one of `states`.
    fn current_in(&self, key: MentionKey, states: &[OutboxState]) -> Result<OutboxEntry> {
        match self.outbox_current(key)? {
            Some(entry) if states.contains(&entry.state) => Ok(entry),
            Some(entry) => Err(StoreError::Invalid(format!(
                "the reply to mention {} is {}, not {}",
                key.tweet_id,
                entry.state,
                list(states)
            ))),
            None => Err(StoreError::NotFound(format!(
                "a reply in the outbox for mention {}",
                key.tweet_id
            ))),
        }
    }

    /// Writes `entry`, its current pointer, the mention as `edit` changes it, and the draft, in
    /// one atomic batch. A mention no longer stored (its account was removed) is left alone.
    fn outbox_commit(
        &self,
        entry: &OutboxEntry,
        edit: impl FnOnce(&mut Mention),
        draft: DraftChange,
    ) -> Result<()> {
        let key = entry.key;
        let mut writer = self.lock();
        let mut batch = Batch::default();
        let mut updates = CounterUpdates::default();
        batch.insert(
            &entry_key(key, entry.seq)[..],
            codec::encode(entry, "outbox entry")?,
        );
        let pointer = current_key(key);
        if entry.state.is_finished() {
            let points_here = self
                .get_u64(&pointer, || "current outbox entry".into())?
                .is_some_and(|seq| seq == entry.seq);
            if points_here {
                batch.remove(&pointer);
            }
        } else {
            batch.insert(&pointer, &entry.seq.to_be_bytes());
        }
        let mention = self.mention(key)?;
        let mut charged = super::costs::StagedUses::default();
        if entry.state == OutboxState::Sent {
            self.stage_send_charge(&mut charged, &mut batch, entry, mention.as_ref())?;
        }
        if let Some(old) = mention {
            let mut m = old.clone();
            edit(&mut m);
            if m != old {
                self.stage_mention_update(&writer, &mut updates, &mut batch, &old, &m)?;
            }
        }
        let draft_key = keys::draft_key(key.account_id, key.tweet_id);
        match draft {
            DraftChange::Keep => {}
            DraftChange::Save => {
                let draft = Draft {
                    kind: entry.kind,
                    text: entry.text.clone(),
                    updated_at: entry.updated_at,
                };
                batch.insert(&draft_key, codec::encode(&draft, "draft")?);
            }
            DraftChange::Delete => batch.remove(&draft_key),
        }
        self.apply_counted(&mut writer, batch, updates)?;
        self.note_applied(&charged);
        Ok(())
    }
}

impl Store {
    /// The cost meter's hook: the transition of an entry to `sent` charges its reply or DM, in
    /// the same batch (X bills the request that created it; a failed one costs nothing). An entry
    /// reaches `sent` once, so it is charged once.
    fn stage_send_charge(
        &self,
        staged: &mut super::costs::StagedUses,
        batch: &mut Batch,
        entry: &OutboxEntry,
        mention: Option<&Mention>,
    ) -> Result<()> {
        let already_sent = self
            .outbox_entry(entry.key, entry.seq)?
            .is_some_and(|stored| stored.state == OutboxState::Sent);
        if already_sent {
            return Ok(());
        }
        let kind = super::costs::sent_entry_kind(entry, mention);
        let price = self.pricing().prices.of(kind);
        self.stage_use(
            staged,
            batch,
            crate::costs::billing_day(entry.updated_at),
            entry.key.account_id,
            kind,
            crate::costs::Use {
                count: 1,
                micros: price,
            },
        )
    }
}

/// Why a new answer of `kind` to `m` is refused unless the sender says "send anyway": the mention
/// already has one, sent by `person` (when known) at its time. `None` when it has none. Both
/// backends use it, so the words are the same on each.
pub(crate) fn already_answered(
    m: &Mention,
    kind: ReplyKind,
    person: Option<&str>,
) -> Option<String> {
    let (response, verb) = match kind {
        ReplyKind::Public => (m.public_response.as_ref()?, "replied to"),
        ReplyKind::Dm => (m.dm_response.as_ref()?, "sent a DM about"),
    };
    let who = match person {
        Some(p) => plain_name(p),
        None => "someone".to_string(),
    };
    Some(format!(
        "{who} already {verb} mention {} at {}; send anyway to post a second one",
        m.tweet_id,
        response.sent_at.format("%Y-%m-%d %H:%M:%S UTC")
    ))
}

/// A person's name as read back from a store, for a message a terminal may show: only the
/// characters `perch team add` allows (a-z, 0-9, `_`, `-`), so a record changed behind perch's
/// back cannot carry terminal controls.
pub(crate) fn plain_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(64)
        .collect()
}

/// The states' names in a refusal ("queued or waiting").
pub(crate) fn list_states(states: &[OutboxState]) -> String {
    list(states)
}

fn list(states: &[OutboxState]) -> String {
    states
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_tags_do_not_collide_with_the_store_layout() {
        let taken = [
            keys::META,
            keys::ACCOUNT,
            keys::TWITTER_ID,
            keys::TOKENS,
            keys::CURSOR,
            keys::FIRST_SEEN,
            keys::MENTION,
            keys::BY_STATUS,
            keys::STATUS_COUNT,
            keys::GLOBAL_COUNT,
            keys::DAY_COUNT,
            keys::DRAFT,
        ];
        for tag in [ENTRY, CURRENT] {
            assert!(!taken.contains(&tag), "tag {:?} is taken", tag as char);
        }
        // The format marker is the only META key; it must never be read as an outbox key.
        assert_ne!(keys::FORMAT_KEY[0], ENTRY);
    }

    #[test]
    fn entry_keys_sort_by_mention_then_seq() {
        let key = MentionKey {
            account_id: uuid::Uuid::from_u128(7),
            tweet_id: 42,
        };
        assert!(entry_key(key, 9) < entry_key(key, 10));
        assert!(entry_key(key, 10).starts_with(&mention_prefix(ENTRY, key)));
        assert_eq!(key_of_current(&current_key(key)), Some(key));
    }
}
