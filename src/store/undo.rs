//! Triage with an undo log: `i`/`p`/`x` (single or bulk) record the previous status of every
//! mention they change, in the same atomic batch as the change, so `u` can put them back, also
//! after a restart.
//!
//! Layout (its own tag byte, in the one tree, see `keys.rs`):
//! - `U | 0 | action (u64 BE)` → [`UndoAction`] (what was done, how many chunks are left)
//! - `U | 1 | action | chunk (u32 BE)` → the previous states of up to one chunk of mentions
//!
//! A bulk action over a huge filter is applied a chunk at a time, each chunk its own batch, so
//! its undo record grows a chunk at a time too; undo walks the chunks back the same way. Only the
//! newest [`UNDO_DEPTH`] actions are kept.
//!
//! Each action records its person (issue 16): on a service several people triage through, `u`
//! undoes the caller's own newest action, never someone else's. A record written before perch
//! kept the person (its bytes end after `next_chunk`) is the owner's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Batch;

use super::{CounterUpdates, Result, Store, StoreError, codec, keys};
use crate::domain::team::OWNER_NAME;
use crate::domain::{Mention, MentionKey, MentionStatus};

/// The undo log's tag byte.
const UNDO: u8 = b'U';
const HEADER: u8 = 0;
const CHUNK: u8 = 1;

/// How many triage actions `u` can go back through.
pub const UNDO_DEPTH: usize = 50;

/// One triage action as the undo log remembers it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UndoAction {
    /// Chosen by the caller, increasing with time (newer actions are undone first).
    pub id: u64,
    /// The status the action set.
    pub status: MentionStatus,
    pub at: DateTime<Utc>,
    /// Mentions it changed (over all its chunks).
    pub changed: u64,
    /// Chunks recorded and not yet undone.
    pub chunks: u32,
    /// The next chunk number to write (chunks are numbered in the order they were applied).
    pub next_chunk: u32,
    /// Who did it (a team person's name); `None` in a record from before perch kept it, which
    /// is the owner's.
    #[serde(default)]
    pub person: Option<String>,
}

impl UndoAction {
    /// Whose action this is.
    pub fn person(&self) -> &str {
        self.person.as_deref().unwrap_or(OWNER_NAME)
    }
}

/// The fields every undo record starts with, as perch wrote them before it kept the person.
#[derive(Serialize, Deserialize)]
struct UndoFields {
    id: u64,
    status: MentionStatus,
    at: DateTime<Utc>,
    changed: u64,
    chunks: u32,
    next_chunk: u32,
}

/// An undo record: [`UndoFields`], then the person (bincode serde, as every format wrote the
/// fields). A record that ends after the fields is the owner's.
impl codec::Record for UndoAction {
    fn write_body(&self, out: &mut Vec<u8>) -> std::result::Result<(), String> {
        let fields = UndoFields {
            id: self.id,
            status: self.status,
            at: self.at,
            changed: self.changed,
            chunks: self.chunks,
            next_chunk: self.next_chunk,
        };
        codec::write_serde(&fields, out)?;
        codec::write_serde(&self.person, out)
    }

    fn read_body(_format: u8, body: &[u8]) -> std::result::Result<(Self, usize), String> {
        let (f, used): (UndoFields, usize) = codec::read_serde(body)?;
        let (person, more) = match body.get(used..) {
            Some(rest) if !rest.is_empty() => codec::read_serde::<Option<String>>(rest)?,
            _ => (None, 0),
        };
        let action = UndoAction {
            id: f.id,
            status: f.status,
            at: f.at,
            changed: f.changed,
            chunks: f.chunks,
            next_chunk: f.next_chunk,
            person,
        };
        Ok((action, used + more))
    }
}

/// What a mention was before a triage action changed it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Before {
    pub(crate) key: MentionKey,
    pub(crate) status: MentionStatus,
    pub(crate) error_message: Option<String>,
}

codec::serde_record!(Vec<Before>);

/// One step of an undo.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UndoStep {
    pub action: UndoAction,
    /// Mentions put back to their previous status in this step.
    pub restored: usize,
    /// Mentions left as they are because a reply or DM was sent for them meanwhile (undo never
    /// pretends a sent reply did not happen), or because one is being sent right now.
    pub kept_replied: usize,
    /// The whole action is undone (its record is gone).
    pub done: bool,
}

fn header_key(action: u64) -> [u8; 10] {
    let mut k = [0u8; 10];
    k[0] = UNDO;
    k[1] = HEADER;
    k[2..].copy_from_slice(&action.to_be_bytes());
    k
}

fn chunk_prefix(action: u64) -> [u8; 10] {
    let mut k = header_key(action);
    k[1] = CHUNK;
    k
}

fn chunk_key(action: u64, chunk: u32) -> [u8; 14] {
    let mut k = [0u8; 14];
    k[..10].copy_from_slice(&chunk_prefix(action));
    k[10..].copy_from_slice(&chunk.to_be_bytes());
    k
}

impl Store {
    /// Sets `status` on each of `keys` (one chunk of triage action `action`), recording what each
    /// changed mention was before, all in one atomic batch. Mentions already at `status`, missing
    /// ones and ones being sent (`processing`) are left alone and not recorded. Returns the
    /// mentions as they now are, changed ones only.
    pub fn triage(
        &self,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Mention>> {
        self.triage_as(OWNER_NAME, action, keys, status, now)
    }

    /// [`Store::triage`] by `person`: the action is theirs to undo.
    pub fn triage_as(
        &self,
        person: &str,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Mention>> {
        let mut writer = self.lock();
        let mut batch = Batch::default();
        // Several mentions of one batch can move the same counter: `updates` adds them up.
        let mut updates = CounterUpdates::default();
        let mut before = Vec::new();
        let mut changed = Vec::new();
        for &key in keys {
            let Some(old) = self.mention(key)? else {
                continue;
            };
            // The domain's transitions (a sent reply stays replied); a reply on its way is the
            // outbox's to finish.
            if old.status == status
                || old.status == MentionStatus::Processing
                || old.status_change_refused(status).is_some()
            {
                continue;
            }
            let mut new = old.clone();
            new.status = status;
            if status != MentionStatus::Error {
                new.error_message = None;
            }
            new.updated_at = now;
            self.stage_mention_update(&writer, &mut updates, &mut batch, &old, &new)?;
            before.push(Before {
                key,
                status: old.status,
                error_message: old.error_message,
            });
            changed.push(new);
        }
        if changed.is_empty() {
            return Ok(changed);
        }
        let mut header = match self.undo_action(action)? {
            Some(h) => h,
            None => {
                self.stage_prune(&mut batch, action)?;
                UndoAction {
                    id: action,
                    status,
                    at: now,
                    changed: 0,
                    chunks: 0,
                    next_chunk: 0,
                    person: Some(person.to_string()),
                }
            }
        };
        batch.insert(
            &chunk_key(action, header.next_chunk),
            codec::encode(&before, "undo chunk")?,
        );
        header.changed += changed.len() as u64;
        header.chunks += 1;
        header.next_chunk += 1;
        batch.insert(&header_key(action), codec::encode(&header, "undo action")?);
        self.apply_counted(&mut writer, batch, updates)?;
        Ok(changed)
    }

    /// The owner's newest triage action that can still be undone.
    pub fn last_undo_action(&self) -> Result<Option<UndoAction>> {
        self.last_undo_action_of(OWNER_NAME)
    }

    /// `person`'s newest triage action that can still be undone. Bounded: the log keeps at
    /// most [`UNDO_DEPTH`] actions.
    pub fn last_undo_action_of(&self, person: &str) -> Result<Option<UndoAction>> {
        for item in self.tree.scan_prefix([UNDO, HEADER]).rev() {
            let (_, v) = item.map_err(|e| self.err(e))?;
            let action: UndoAction = codec::decode(&v, || "an undo record".to_string())?;
            if action.person() == person {
                return Ok(Some(action));
            }
        }
        Ok(None)
    }

    fn undo_action(&self, action: u64) -> Result<Option<UndoAction>> {
        self.get(&header_key(action))?
            .map(|v| codec::decode(&v, || format!("undo record {action}")))
            .transpose()
    }

    /// Undoes the last recorded chunk of `action` (the newest action when `None`), in one atomic
    /// batch that also forgets that chunk, so an undo cut short by a crash can simply go on.
    /// `None` when there is nothing to undo.
    pub fn undo_step(&self, action: Option<u64>, now: DateTime<Utc>) -> Result<Option<UndoStep>> {
        self.undo_step_as(OWNER_NAME, action, now)
    }

    /// [`Store::undo_step`] for `person`: their newest action when `None`; a named action of
    /// someone else's is refused (`StoreError::Conflict`), since undo puts back what they saw.
    pub fn undo_step_as(
        &self,
        person: &str,
        action: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Option<UndoStep>> {
        let mut writer = self.lock();
        let header = match action {
            Some(id) => self.undo_action(id)?,
            None => self.last_undo_action_of(person)?,
        };
        let Some(mut header) = header else {
            return Ok(None);
        };
        if header.person() != person {
            return Err(StoreError::Conflict(format!(
                "that action ({}) is {}'s; only they can undo it",
                header.status,
                header.person()
            )));
        }
        let id = header.id;
        let mut batch = Batch::default();
        let mut updates = CounterUpdates::default();
        let mut step = UndoStep {
            action: header.clone(),
            restored: 0,
            kept_replied: 0,
            done: false,
        };
        let last_chunk = self
            .tree
            .scan_prefix(chunk_prefix(id))
            .next_back()
            .transpose()
            .map_err(|e| self.err(e))?;
        if let Some((chunk_key, value)) = last_chunk {
            let before: Vec<Before> = codec::decode(&value, || format!("undo chunk of {id}"))?;
            for b in before {
                let Some(current) = self.mention(b.key)? else {
                    continue;
                };
                let replied = current.public_response.is_some() || current.dm_response.is_some();
                if replied || current.status == MentionStatus::Processing {
                    step.kept_replied += 1;
                    continue;
                }
                let mut restored = current.clone();
                restored.status = b.status;
                restored.error_message = b.error_message;
                restored.updated_at = now;
                self.stage_mention_update(&writer, &mut updates, &mut batch, &current, &restored)?;
                step.restored += 1;
            }
            batch.remove(chunk_key);
            header.chunks = header.chunks.saturating_sub(1);
        } else {
            // A header whose chunks are all gone: nothing left to do but forget it.
            header.chunks = 0;
        }
        if header.chunks == 0 {
            batch.remove(&header_key(id));
            step.done = true;
        } else {
            batch.insert(&header_key(id), codec::encode(&header, "undo action")?);
        }
        self.apply_counted(&mut writer, batch, updates)?;
        Ok(Some(step))
    }

    /// Removes the oldest actions so that, with `new_action`, at most `UNDO_DEPTH` remain.
    fn stage_prune(&self, batch: &mut Batch, new_action: u64) -> Result<()> {
        let mut ids = Vec::new();
        for entry in self.tree.scan_prefix([UNDO, HEADER]) {
            let (k, _) = entry.map_err(|e| self.err(e))?;
            if let Some(id) = keys::trailing_tweet(&k) {
                ids.push(id);
            }
        }
        ids.retain(|id| *id != new_action);
        let excess = (ids.len() + 1).saturating_sub(UNDO_DEPTH);
        for id in ids.into_iter().take(excess) {
            batch.remove(&header_key(id));
            for entry in self.tree.scan_prefix(chunk_prefix(id)) {
                let (k, _) = entry.map_err(|e| self.err(e))?;
                batch.remove(k);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Account, Sender, SentTo};
    use crate::store::FeedFilter;

    fn mention(account: &Account, tweet: u64) -> Mention {
        let at = Utc::now();
        Mention {
            id: uuid::Uuid::new_v4(),
            tweet_id: tweet.to_string(),
            timestamp: at,
            text: format!("@{} hello {tweet}", account.twitter_username),
            sender: Sender::default(),
            sent_to: SentTo::account(account),
            status: MentionStatus::Pending,
            public_response: None,
            dm_response: None,
            conversation_id: None,
            referenced_posts: Vec::new(),
            error_message: None,
            created_at: at,
            updated_at: at,
        }
    }

    fn store_with(n: u64) -> (tempfile::TempDir, Store, Vec<MentionKey>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = Account::new("1".into(), "acme".into(), "Acme".into(), None, Utc::now());
        store.put_account(&a).unwrap();
        let ms: Vec<Mention> = (1..=n).map(|t| mention(&a, 1000 + t)).collect();
        store.commit_page(a.id, &ms, None).unwrap();
        let keys = ms.iter().map(Mention::key).collect();
        (dir, store, keys)
    }

    fn count(store: &Store, status: MentionStatus) -> u64 {
        store
            .count(&FeedFilter {
                account: None,
                status: Some(status),
            })
            .unwrap()
    }

    #[test]
    fn counters_add_up_when_one_batch_changes_many_mentions() {
        let (_dir, store, keys) = store_with(10);
        let changed = store
            .triage(1, &keys[..7], MentionStatus::Ignored, Utc::now())
            .unwrap();
        assert_eq!(changed.len(), 7);
        assert_eq!(count(&store, MentionStatus::Ignored), 7);
        assert_eq!(count(&store, MentionStatus::Pending), 3);
        let step = store.undo_step(None, Utc::now()).unwrap().unwrap();
        assert_eq!((step.restored, step.done), (7, true));
        assert_eq!(count(&store, MentionStatus::Pending), 10);
        assert_eq!(count(&store, MentionStatus::Ignored), 0);
    }

    #[test]
    fn a_chunked_action_is_undone_chunk_by_chunk_newest_first() {
        let (_dir, store, keys) = store_with(9);
        for chunk in keys.chunks(3) {
            store
                .triage(5, chunk, MentionStatus::Replied, Utc::now())
                .unwrap();
        }
        let header = store.last_undo_action().unwrap().unwrap();
        assert_eq!((header.changed, header.chunks), (9, 3));
        let mut restored = 0;
        let mut steps = 0;
        while let Some(step) = store.undo_step(Some(5), Utc::now()).unwrap() {
            restored += step.restored;
            steps += 1;
            if step.done {
                break;
            }
        }
        assert_eq!((restored, steps), (9, 3));
        assert_eq!(count(&store, MentionStatus::Pending), 9);
        assert_eq!(store.last_undo_action().unwrap(), None);
    }

    #[test]
    fn only_the_newest_actions_are_kept() {
        let (_dir, store, keys) = store_with(2);
        for id in 0..(UNDO_DEPTH as u64 + 5) {
            let status = if id % 2 == 0 {
                MentionStatus::Ignored
            } else {
                MentionStatus::Pending
            };
            store
                .triage(id + 1, &keys[..1], status, Utc::now())
                .unwrap();
        }
        let mut undone = 0;
        while store.undo_step(None, Utc::now()).unwrap().is_some() {
            undone += 1;
        }
        assert_eq!(undone, UNDO_DEPTH);
        assert_eq!(
            store.tree.scan_prefix([UNDO]).count(),
            0,
            "pruned actions leave no chunks behind"
        );
    }

    #[test]
    fn a_mention_being_sent_is_never_triaged() {
        let (_dir, store, keys) = store_with(1);
        let mut m = store.mention(keys[0]).unwrap().unwrap();
        m.status = MentionStatus::Processing;
        store.update_mention(&m).unwrap();
        let changed = store
            .triage(1, &keys, MentionStatus::Ignored, Utc::now())
            .unwrap();
        assert!(changed.is_empty());
        assert_eq!(store.last_undo_action().unwrap(), None, "nothing recorded");
    }

    #[test]
    fn each_person_undoes_their_own_newest_action_and_never_anyone_elses() {
        let (_dir, store, keys) = store_with(4);
        let now = Utc::now();
        store
            .triage_as("owner", 1, &keys[..1], MentionStatus::Ignored, now)
            .unwrap();
        store
            .triage_as("ben", 2, &keys[1..3], MentionStatus::Ignored, now)
            .unwrap();
        // The owner's newest is action 1, though ben's is newer.
        assert_eq!(store.last_undo_action().unwrap().unwrap().id, 1);
        assert_eq!(store.last_undo_action_of("ben").unwrap().unwrap().id, 2);
        assert_eq!(store.last_undo_action_of("ana").unwrap(), None);
        // Naming ben's action as the owner is refused; nothing changes.
        match store.undo_step_as("owner", Some(2), now) {
            Err(StoreError::Conflict(why)) => assert!(why.contains("ben's"), "{why}"),
            other => panic!("refused, not {other:?}"),
        }
        assert_eq!(
            store.mention(keys[1]).unwrap().unwrap().status,
            MentionStatus::Ignored
        );
        // The owner's `u` undoes the owner's action only.
        let step = store.undo_step_as("owner", None, now).unwrap().unwrap();
        assert_eq!((step.action.id, step.restored, step.done), (1, 1, true));
        assert_eq!(
            store.mention(keys[1]).unwrap().unwrap().status,
            MentionStatus::Ignored,
            "ben's triage stands"
        );
        assert_eq!(store.undo_step_as("owner", None, now).unwrap(), None);
        let step = store.undo_step_as("ben", None, now).unwrap().unwrap();
        assert_eq!((step.action.person(), step.restored), ("ben", 2));
    }

    #[test]
    fn an_undo_record_from_before_perch_kept_the_person_reads_as_the_owners() {
        // The bytes perch wrote before: the fields alone, in format 2 (and 1: the same bytes).
        let old = UndoFields {
            id: 7,
            status: MentionStatus::Ignored,
            at: Utc::now(),
            changed: 3,
            chunks: 1,
            next_chunk: 1,
        };
        for format in [1u8, 2] {
            let mut bytes = vec![format];
            codec::write_serde(&old, &mut bytes).unwrap();
            let action: UndoAction = codec::decode(&bytes, || "old".into()).unwrap();
            assert_eq!(
                (action.id, action.changed, action.person.as_deref()),
                (7, 3, None)
            );
            assert_eq!(action.person(), OWNER_NAME);
        }
        // And a new record round-trips its person.
        let mut new: UndoAction = {
            let mut bytes = vec![2u8];
            codec::write_serde(&old, &mut bytes).unwrap();
            codec::decode(&bytes, || "old".into()).unwrap()
        };
        new.person = Some("ana".into());
        let bytes = codec::encode(&new, "undo action").unwrap();
        let back: UndoAction = codec::decode(&bytes, || "new".into()).unwrap();
        assert_eq!(back, new);
    }
}
