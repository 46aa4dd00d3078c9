//! The sled store: the source of truth for accounts, tokens, mentions, indexes, counters, cursors
//! and drafts. Blocking (sled is): async callers use `spawn_blocking` for bulk work.
//!
//! Layout and why: see `keys.rs`. Records are encoded by `codec.rs` (a format byte + bincode 2).
//! Newest-first pages are merged walks over per-account ranges: see `feed.rs`.
//!
//! Concurrency: sled locks its directory, so one process holds a store, and within it every
//! `Store` clone shares one database. Writers that read-modify-write (counters, duplicate checks)
//! hold `writer` from their reads to their `apply_batch`; readers never take it. Because this
//! process is the store's only writer, the writer also keeps the counter values it last committed
//! in memory, and a page commit need not read its counters back from sled.

pub mod backend;
pub(crate) mod codec;
mod costs;
mod feed;
mod import;
pub mod keys;
pub mod lookup;
mod outbox;
mod perms;
pub mod pg;
pub mod recover;
pub mod sealed;
pub mod space;
mod team;
mod undo;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sled::{Batch, IVec};

use crate::domain::ReplyKind;
use crate::domain::{
    Account, AccountId, Arrival, Mention, MentionKey, MentionStatus, TokenKey, Tokens,
};

pub use backend::{Backend, OutboxBackend, ServiceBackend, SharedStore, not_on_postgres};
pub use codec::RECORD_FORMAT;
pub use costs::{CostRow, ReadCharge, send_kind};
use feed::{FeedWalk, Walk};
pub use import::{AccountImport, MentionImport, MentionOutcome};
pub use outbox::{OutboxEntry, OutboxState};
pub use pg::PgStore;
pub use team::{
    ASSIGNMENT_SCAN, AUDIT_SCAN, AssignRefusal, AssignedFilter, Assignment, AuditPage, AuditQuery,
    search_page_as, team_words,
};
pub use undo::{UNDO_DEPTH, UndoAction, UndoStep};

/// The store format this perch reads and writes (kept in the store's meta key). Format 2 (issue
/// 13) is the key layout of format 1 with records in record format 2; a format-1 store is
/// stamped 2 when opened, and its format-1 records are read forward (see `codec.rs`). The marker
/// moves so that a perch that knows only format 1 refuses the store at open, instead of failing
/// on each new record.
pub const STORE_FORMAT: u8 = 2;

/// sled's page cache. sled's default is 1 GiB; the feed reads a window of rows, so a small cache
/// keeps memory near what sled itself needs after opening (issue 6: ≤ sled's RSS + 64 MB).
pub const CACHE_CAPACITY: u64 = 32 * 1024 * 1024;

/// How many mentions `remove_account` deletes per atomic batch (each batch keeps records, index
/// entries and counters consistent with each other).
const DELETE_CHUNK: usize = 5_000;

/// Why the store could not be opened or used. Each message names the directory and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the perch store at {dir} is in use by another perch process; close it (or pass --data-dir to use another store)"
    )]
    Locked { dir: PathBuf },
    /// Only reported once the recoveries perch knows (see `recover.rs`) have not helped, so the
    /// advice starts with keeping a copy: nothing in it should be thrown away unseen.
    #[error(
        "the perch store at {dir} cannot be read ({detail}). First keep a copy of it (for example `cp -a {dir} {dir}.copy`); then restore it from a backup, or move it aside to start afresh"
    )]
    Corrupt { dir: PathBuf, detail: String },
    /// Less than `space::WRITE_MARGIN` is free: nothing was written. Clears by itself.
    #[error(
        "disk full: {} free at {dir}; perch stores nothing until there is room, and carries on by itself when there is",
        space::megabytes(*free)
    )]
    DiskFull { dir: PathBuf, free: u64 },
    #[error(
        "the perch store at {dir} was written by a newer perch (format {found}, this perch reads up to {supported}); upgrade perch"
    )]
    NewerVersion {
        dir: PathBuf,
        found: u8,
        supported: u8,
    },
    #[error("store I/O error at {dir}: {detail}")]
    Io { dir: PathBuf, detail: String },
    #[error("a stored record could not be decoded ({what}): {detail}")]
    Decode { what: String, detail: String },
    #[error("not found: {0}")]
    NotFound(String),
    /// An account's tokens are sealed and cannot be opened: no `token_key` is set, or another.
    #[error("{0}")]
    TokenKey(String),
    /// The PostgreSQL store (`pg/`) could not do what was asked; `target` has no password.
    #[error("the PostgreSQL database at {target}: {detail}")]
    Database { target: String, detail: String },
    /// Read or written through the perch service, which could not be reached or answered with
    /// this message (the dashboard is a client of the service).
    #[error("{0}")]
    Service(String),
    /// Another account already tracks this X user (accounts are unique by X user id).
    #[error(
        "X user {twitter_id} is already tracked as account {existing}; reauthorize that account instead of adding it again"
    )]
    DuplicateAccount {
        twitter_id: String,
        existing: AccountId,
    },
    /// The change conflicts with what is stored (a person of that name exists, or none does);
    /// the message says what to do.
    #[error("{0}")]
    Conflict(String),
    /// The store is PostgreSQL and this part of perch does not run there yet (issue 16 is on
    /// its way); the message names the part.
    #[error("{0}")]
    NotOnPostgres(String),
    /// A caller passed something the store cannot accept (a programming error, reported, not
    /// panicked on).
    #[error("invalid store request: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A stored mention whose sender is unknown, with the sender a later copy names (see
/// [`Store::commit_page`]); `None` when there is nothing to fill in. Both backends use it.
pub(crate) fn sender_filled_in(
    mut stored: Mention,
    copy: &Mention,
    now: DateTime<Utc>,
) -> Option<Mention> {
    copy.sender.username.as_ref()?;
    if stored.sender.username.is_some() {
        return None;
    }
    let twitter_id = stored.sender.twitter_id.take();
    stored.sender = copy.sender.clone();
    stored.sender.twitter_id = stored.sender.twitter_id.take().or(twitter_id);
    stored.updated_at = now;
    Some(stored)
}

/// Maps a sled error on the store in `dir` to what the user should hear.
pub(crate) fn sled_error(dir: &Path, e: sled::Error) -> StoreError {
    let dir = dir.to_path_buf();
    match e {
        sled::Error::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => StoreError::DiskFull {
            free: space::free_bytes(&dir).unwrap_or(0),
            dir,
        },
        sled::Error::Io(io) => {
            let text = io.to_string();
            if io.kind() == std::io::ErrorKind::WouldBlock
                || text.contains("could not acquire lock")
            {
                StoreError::Locked { dir }
            } else {
                StoreError::Io { dir, detail: text }
            }
        }
        sled::Error::Corruption { .. } => StoreError::Corrupt {
            dir,
            detail: "sled found corrupted data".into(),
        },
        sled::Error::Unsupported(s) => StoreError::Corrupt { dir, detail: s },
        // sled words some failures with Rust debug text (`Os { code: 28, kind: StorageFull, .. }`
        // after a failed flush): the user hears what it means, the log keeps the text.
        sled::Error::ReportableBug(s) if is_disk_full_text(&s) => StoreError::DiskFull {
            free: space::free_bytes(&dir).unwrap_or(0),
            dir,
        },
        sled::Error::ReportableBug(s) => {
            tracing::warn!(dir = %dir.display(), "sled reported an internal error: {s}");
            StoreError::Corrupt {
                dir,
                detail: "sled reported an internal error, written to the log file".into(),
            }
        }
        sled::Error::CollectionNotFound(_) => StoreError::Corrupt {
            dir,
            detail: "a sled tree is missing".into(),
        },
    }
}

/// Whether an error text (sled's, often an `io::Error` in debug form) says the disk is full.
fn is_disk_full_text(text: &str) -> bool {
    text.contains("StorageFull") || text.contains("code: 28") || text.contains("No space left")
}

/// Which mentions the feed shows. `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedFilter {
    pub account: Option<AccountId>,
    pub status: Option<MentionStatus>,
}

/// A position in a feed ordering (newest first): the (tweet id, account) of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FeedPos {
    pub tweet_id: u64,
    pub account_id: AccountId,
}

impl From<MentionKey> for FeedPos {
    fn from(k: MentionKey) -> FeedPos {
        FeedPos {
            tweet_id: k.tweet_id,
            account_id: k.account_id,
        }
    }
}

impl From<&Mention> for FeedPos {
    fn from(m: &Mention) -> FeedPos {
        FeedPos::from(m.key())
    }
}

/// What a page commit did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageCommit {
    /// Mentions that were new and are now stored.
    pub inserted: usize,
    /// Mentions that were already stored (their triage state is kept).
    pub duplicates: usize,
    /// Of the duplicates, stored mentions whose sender was unknown and that this page's copy
    /// named: the sender is filled in, nothing else changes (see `Store::commit_page`).
    pub senders_filled: usize,
    /// Unreadable posts recorded for the first time.
    pub unreadable: usize,
    /// What the page's read was charged (see `store/costs.rs`), in the same batch.
    pub cost: crate::costs::Use,
}

/// The unreadable posts X sent for one account and perch skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnreadablePosts {
    /// How many were skipped, ever.
    pub count: u64,
    /// The newest of their ids (at most [`UNREADABLE_SHOWN`]), newest first.
    pub newest_ids: Vec<u64>,
}

/// How many unreadable post ids `Store::unreadable_posts` lists.
pub const UNREADABLE_SHOWN: usize = 10;

/// A reply being written, kept per mention so it survives a crash or a failed send.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Draft {
    pub kind: ReplyKind,
    pub text: String,
    pub updated_at: DateTime<Utc>,
}

codec::serde_record!(Draft);

/// One step of a search: the hits found, and where to continue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    /// Matching mentions, newest first.
    pub hits: Vec<Mention>,
    /// The last index position examined; pass it as `after` to continue. `None` when nothing was
    /// examined.
    pub resume_after: Option<FeedPos>,
    /// The whole filter has been searched: there is nothing more to find.
    pub exhausted: bool,
}

#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
    tree: sled::Db,
    writer: Arc<Mutex<WriterState>>,
    /// The cost meter's pricing and pruning state (`costs.rs`).
    costs: Arc<costs::CostState>,
    /// Seals account tokens at rest when set (`sealed.rs`, [`Store::with_token_key`]).
    token_key: Option<Arc<TokenKey>>,
}

/// What only writers touch, behind the write lock. This process is the store's only writer, so
/// what it last committed is what sled holds: page commits need not read it back.
#[derive(Default)]
struct WriterState {
    /// Counter values as last committed (read from sled on first use).
    counters: HashMap<Vec<u8>, u64>,
    /// Each account's sync cursor as last committed (`None`: none stored). Read on first use.
    cursors: HashMap<AccountId, Option<u64>>,
    /// Accounts whose first-seen time is known to be stored.
    first_seen: HashSet<AccountId>,
    /// One encoding buffer reused for every record a commit writes.
    buf: Vec<u8>,
}

impl WriterState {
    /// Remembers what a batch just applied stored for `account`.
    fn remember(&mut self, account: AccountId, first_seen: bool, cursor: Option<u64>) {
        if first_seen {
            self.first_seen.insert(account);
        }
        if let Some(cursor) = cursor {
            self.cursors.insert(account, Some(cursor));
        }
    }

    /// Forgets everything remembered (after a write that removes counters, cursors or first-seen
    /// times, which is rare).
    fn forget(&mut self) {
        self.counters.clear();
        self.cursors.clear();
        self.first_seen.clear();
    }
}

/// Counter values a batch being built will write; they join `WriterState::counters` only once
/// the batch is applied.
#[derive(Default)]
struct CounterUpdates(HashMap<Vec<u8>, u64>);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

/// Opens sled in `dir`. A lock held by a process that is just exiting (or a forked child that has
/// not yet exec'd) goes away within moments, so `Locked` is only reported after a short retry.
fn open_sled(dir: &Path) -> Result<sled::Db> {
    const LOCK_RETRIES: u32 = 5;
    let config = sled::Config::new().path(dir).cache_capacity(CACHE_CAPACITY);
    let mut attempt = 0;
    let mut recovered = false;
    loop {
        // sled 0.34 can panic on some corrupt files instead of returning an error; a damaged
        // store must become a message, never a crash.
        let opened = catch_unwind(AssertUnwindSafe(|| config.open()));
        match opened {
            Ok(Ok(db)) => return Ok(db),
            Ok(Err(e)) => match sled_error(dir, e) {
                StoreError::Locked { .. } if attempt < LOCK_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                StoreError::Corrupt { .. } if !recovered && recover_unfinished(dir) => {
                    recovered = true;
                }
                other => return Err(other),
            },
            Err(_) if !recovered && recover_unfinished(dir) => recovered = true,
            Err(_) => {
                return Err(StoreError::Corrupt {
                    dir: dir.to_path_buf(),
                    detail: "sled failed while reading its files".into(),
                });
            }
        }
    }
}

/// Moves aside the snapshots a full disk left unfinished (see `recover.rs`); true when there
/// were any, so that opening is worth one more try.
fn recover_unfinished(dir: &Path) -> bool {
    match recover::move_aside_unfinished_snapshots(dir) {
        Ok(moved) if !moved.is_empty() => {
            tracing::warn!(
                dir = %dir.display(),
                "the store had {} unfinished snapshot(s) (a full disk?); moved them to {} and opening again",
                moved.len(),
                recover::ASIDE_DIR
            );
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), "could not move an unfinished snapshot aside: {e}");
            false
        }
    }
}

fn mention_what(key: MentionKey) -> String {
    format!("mention {} of account {}", key.tweet_id, key.account_id)
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, created 0700 with files 0600.
    pub fn open(dir: &Path) -> Result<Store> {
        let io_err = |e: std::io::Error| StoreError::Io {
            dir: dir.to_path_buf(),
            detail: e.to_string(),
        };
        if dir.exists() && !dir.is_dir() {
            return Err(StoreError::Corrupt {
                dir: dir.to_path_buf(),
                detail: "it is a file, not a directory".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io_err)?;
        perms::secure_dir(dir).map_err(io_err)?;
        // sled recovers a damaged log by dropping what it cannot read, which can leave an empty
        // tree. A store that had data before opening must not come back silently empty.
        let had_data = std::fs::metadata(dir.join("db")).is_ok_and(|m| m.len() > 0)
            && dir.join("conf").exists();

        let db = open_sled(dir)?;
        let store = Store {
            dir: dir.to_path_buf(),
            tree: db,
            writer: Arc::new(Mutex::new(WriterState::default())),
            costs: Arc::default(),
            token_key: None,
        };
        store.check_format(had_data)?;
        if let Err(e) = perms::secure_tree(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not set store file permissions");
        }
        Ok(store)
    }

    /// Opens the store in `dir` and, when a key is given, seals its tokens under it
    /// ([`Store::with_token_key`]): what every process that uses the config opens.
    pub fn open_with_token_key(dir: &Path, key: Option<TokenKey>) -> Result<Store> {
        let store = Store::open(dir)?;
        match key {
            Some(key) => store.with_token_key(key),
            None => Ok(store),
        }
    }

    /// Refuses a store written by a newer perch; stamps a new store with this perch's format.
    fn check_format(&self, had_data: bool) -> Result<()> {
        match self.tree.get(keys::FORMAT_KEY).map_err(|e| self.err(e))? {
            Some(v) => match v.as_ref() {
                [found] if *found > STORE_FORMAT => Err(StoreError::NewerVersion {
                    dir: self.dir.clone(),
                    found: *found,
                    supported: STORE_FORMAT,
                }),
                [found] if *found == STORE_FORMAT => Ok(()),
                // Format 1 → 2: the layout is the same and old records are read as they are.
                [1] => {
                    self.tree
                        .insert(keys::FORMAT_KEY, &[STORE_FORMAT])
                        .map_err(|e| self.err(e))?;
                    self.tree.flush().map_err(|e| self.err(e))?;
                    tracing::info!(dir = %self.dir.display(), "store format 1 migrated to 2");
                    Ok(())
                }
                other => Err(StoreError::Corrupt {
                    dir: self.dir.clone(),
                    detail: format!("unknown format marker {other:?}"),
                }),
            },
            None => {
                let empty = self.tree.first().map_err(|e| self.err(e))?.is_none();
                if !empty {
                    return Err(StoreError::Corrupt {
                        dir: self.dir.clone(),
                        detail: "it holds data but no perch format marker".into(),
                    });
                }
                if had_data {
                    return Err(StoreError::Corrupt {
                        dir: self.dir.clone(),
                        detail: "its data file exists but nothing in it could be recovered".into(),
                    });
                }
                self.tree
                    .insert(keys::FORMAT_KEY, &[STORE_FORMAT])
                    .map_err(|e| self.err(e))?;
                self.tree.flush().map_err(|e| self.err(e))?;
                Ok(())
            }
        }
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Flushes everything to disk (sled flushes in the background too).
    pub fn flush(&self) -> Result<()> {
        self.tree.flush().map_err(|e| self.err(e))?;
        if let Err(e) = perms::secure_tree(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not set store file permissions");
        }
        Ok(())
    }

    fn err(&self, e: sled::Error) -> StoreError {
        sled_error(&self.dir, e)
    }

    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // The counter cache only ever receives values after their batch was applied, so a panic
        // elsewhere while holding the lock cannot leave it wrong: a poisoned lock is safe to take.
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, key: &[u8]) -> Result<Option<IVec>> {
        self.tree.get(key).map_err(|e| self.err(e))
    }

    fn get_u64(&self, key: &[u8], what: impl FnOnce() -> String) -> Result<Option<u64>> {
        match self.get(key)? {
            None => Ok(None),
            Some(v) => keys::read_u64(&v)
                .map(Some)
                .ok_or_else(|| StoreError::Decode {
                    what: what(),
                    detail: format!("expected 8 bytes, found {}", v.len()),
                }),
        }
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        self.tree.apply_batch(batch).map_err(|e| self.err(e))
    }

    // ---- accounts -------------------------------------------------------------------------

    /// Inserts or replaces an account (by `id`); accounts are unique by `twitter_id`: another
    /// account with the same X user id is refused with `StoreError::DuplicateAccount`.
    pub fn put_account(&self, account: &Account) -> Result<()> {
        let _guard = self.lock();
        let id_key = keys::twitter_id_key(&account.twitter_id);
        if let Some(owner) = self.get(&id_key)? {
            let owner = uuid_from(&owner, || format!("owner of X user {}", account.twitter_id))?;
            if owner != account.id {
                return Err(StoreError::DuplicateAccount {
                    twitter_id: account.twitter_id.clone(),
                    existing: owner,
                });
            }
        }
        let mut batch = Batch::default();
        // The X user id of an account does not change in practice, but if it did the old
        // uniqueness entry must not keep pointing here.
        if let Some(old) = self.account(account.id)?
            && old.twitter_id != account.twitter_id
        {
            batch.remove(keys::twitter_id_key(&old.twitter_id));
        }
        batch.insert(
            &keys::account_key(keys::ACCOUNT, account.id),
            codec::encode(account, "account")?,
        );
        batch.insert(id_key, account.id.as_bytes());
        self.apply(batch)
    }

    pub fn account(&self, id: AccountId) -> Result<Option<Account>> {
        self.get(&keys::account_key(keys::ACCOUNT, id))?
            .map(|v| codec::decode(&v, || format!("account {id}")))
            .transpose()
    }

    pub fn account_by_twitter_id(&self, twitter_id: &str) -> Result<Option<Account>> {
        match self.get(&keys::twitter_id_key(twitter_id))? {
            None => Ok(None),
            Some(v) => {
                let id = uuid_from(&v, || format!("owner of X user {twitter_id}"))?;
                self.account(id)
            }
        }
    }

    /// All accounts, ordered by handle (case-insensitive). Accounts are few: this is a small read.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([keys::ACCOUNT]) {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let what = || match keys::key_account(&key) {
                Some(id) => format!("account {id}"),
                None => "an account".to_string(),
            };
            out.push(codec::decode::<Account>(&value, what)?);
        }
        out.sort_by_cached_key(|a| (a.twitter_username.to_lowercase(), a.id));
        Ok(out)
    }

    /// Removes an account, its tokens, cursor and drafts. When `delete_mentions`, its mentions,
    /// their index entries and its counters go too. Otherwise the mentions (and the counters that
    /// count them) stay, readable under "All accounts" and by their account id.
    ///
    /// Mentions are deleted in batches of a few thousand so a huge account does not build one
    /// enormous batch in memory. Each batch removes records, their index entries and the matching
    /// counter amounts together, so after a crash mid-way the store is consistent, with some of
    /// the account's mentions still present; the account record goes last, so the removal can
    /// simply be run again.
    pub fn remove_account(&self, id: AccountId, delete_mentions: bool) -> Result<()> {
        if delete_mentions {
            while self.delete_mention_chunk(id)? > 0 {}
        }
        let mut writer = self.lock();
        let mut batch = Batch::default();
        if let Some(account) = self.account(id)? {
            let id_key = keys::twitter_id_key(&account.twitter_id);
            if let Some(owner) = self.get(&id_key)?
                && owner.as_ref() == id.as_bytes()
            {
                batch.remove(id_key);
            }
        }
        batch.remove(&keys::account_key(keys::ACCOUNT, id));
        batch.remove(&keys::account_key(keys::TOKENS, id));
        batch.remove(&keys::account_key(keys::CURSOR, id));
        batch.remove(&keys::account_key(keys::UNREADABLE_COUNT, id));
        for entry in self
            .tree
            .scan_prefix(keys::account_key(keys::UNREADABLE, id))
            .chain(self.tree.scan_prefix(keys::account_key(keys::DRAFT, id)))
        {
            let (key, _) = entry.map_err(|e| self.err(e))?;
            batch.remove(key);
        }
        // Nobody keeps a grant to an account that is gone (a new login is a new grant).
        self.stage_forget_grants(&mut batch, id)?;
        if delete_mentions {
            batch.remove(&keys::account_key(keys::FIRST_SEEN, id));
            for status in MentionStatus::ALL {
                batch.remove(&keys::status_count_key(id, status));
            }
            for entry in self
                .tree
                .scan_prefix(keys::account_key(keys::DAY_COUNT, id))
            {
                let (key, _) = entry.map_err(|e| self.err(e))?;
                batch.remove(key);
            }
        }
        self.apply(batch)?;
        // Its counters, cursor and first-seen time may have been removed: forget every
        // remembered value (this is rare).
        writer.forget();
        Ok(())
    }

    /// Deletes up to `DELETE_CHUNK` mentions of `id` with their index entries and counter
    /// amounts, in one batch. Returns how many it deleted.
    fn delete_mention_chunk(&self, id: AccountId) -> Result<usize> {
        let mut writer = self.lock();
        let mut updates = CounterUpdates::default();
        let mut batch = Batch::default();
        let mut by_status = [0u64; 5];
        let mut by_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        let mut deleted = 0;
        for entry in self
            .tree
            .scan_prefix(keys::account_key(keys::MENTION, id))
            .take(DELETE_CHUNK)
        {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let Some(tweet) = keys::trailing_tweet(&key) else {
                batch.remove(key);
                continue;
            };
            let mkey = MentionKey {
                account_id: id,
                tweet_id: tweet,
            };
            match codec::decode::<Mention>(&value, || mention_what(mkey)) {
                Ok(m) => {
                    by_status[m.status.code() as usize] += 1;
                    *by_day.entry(keys::day_of(m.timestamp)).or_default() += 1;
                }
                // An unreadable record is still deleted; its counter amounts cannot be known.
                Err(e) => tracing::warn!(error = %e, "deleting an undecodable mention"),
            }
            batch.remove(&key);
            batch.remove(&keys::streamed_key(id, tweet));
            for status in MentionStatus::ALL {
                batch.remove(&keys::status_index_key(id, status, tweet));
            }
            batch.remove(&keys::draft_key(id, tweet));
            batch.remove(&keys::assigned_key(id, tweet));
            deleted += 1;
        }
        if deleted == 0 {
            return Ok(0);
        }
        for status in MentionStatus::ALL {
            let n = by_status[status.code() as usize];
            if n > 0 {
                self.add_to_counter(
                    &writer,
                    &mut updates,
                    &mut batch,
                    &keys::status_count_key(id, status),
                    -(n as i64),
                )?;
                self.add_to_counter(
                    &writer,
                    &mut updates,
                    &mut batch,
                    &keys::global_count_key(status),
                    -(n as i64),
                )?;
            }
        }
        for (day, n) in by_day {
            self.add_to_counter(
                &writer,
                &mut updates,
                &mut batch,
                &keys::day_count_key(id, day),
                -(n as i64),
            )?;
        }
        self.apply_counted(&mut writer, batch, updates)?;
        Ok(deleted)
    }

    /// From now on, seals account tokens under `key`, and seals the tokens already stored in
    /// the clear (a store from before the key was set) before returning. Tokens sealed under
    /// another key do not stop the store from opening (the other accounts, and
    /// `perch accounts reauthorize` for this one, must still work): they are logged here, and
    /// reading them fails with what to do.
    pub fn with_token_key(mut self, key: TokenKey) -> Result<Store> {
        self.token_key = Some(Arc::new(key));
        let mut resealed = 0;
        for account in self.accounts()? {
            let store_key = keys::account_key(keys::TOKENS, account.id);
            let Some(value) = self.get(&store_key)? else {
                continue;
            };
            if sealed::is_sealed(&value) {
                if let Err(e) = self.tokens(account.id) {
                    tracing::warn!(account = %account.id, "{e}");
                }
                continue;
            }
            // Plain: the record itself, already read.
            let tokens: Tokens =
                codec::decode(&value, || format!("tokens of account {}", account.id))?;
            self.put_tokens(account.id, &tokens)?;
            resealed += 1;
        }
        if resealed > 0 {
            tracing::info!(accounts = resealed, "sealed stored tokens under token_key");
        }
        Ok(self)
    }

    /// Whether tokens are sealed at rest (a `token_key` is set).
    pub fn seals_tokens(&self) -> bool {
        self.token_key.is_some()
    }

    /// Stores an account's tokens (sealed when a `token_key` is set) and flushes before
    /// returning (a rotated refresh token must be durable before the new access token is used).
    pub fn put_tokens(&self, id: AccountId, tokens: &Tokens) -> Result<()> {
        let store_key = keys::account_key(keys::TOKENS, id);
        let mut value = codec::encode(tokens, "tokens")?;
        if let Some(key) = &self.token_key {
            value = sealed::seal(key, &store_key, &value).map_err(|detail| StoreError::Decode {
                what: format!("tokens of account {id}"),
                detail,
            })?;
        }
        self.tree
            .insert(store_key, value)
            .map_err(|e| self.err(e))?;
        self.flush()
    }

    pub fn tokens(&self, id: AccountId) -> Result<Option<Tokens>> {
        let store_key = keys::account_key(keys::TOKENS, id);
        let Some(value) = self.get(&store_key)? else {
            return Ok(None);
        };
        let what = || format!("tokens of account {id}");
        if !sealed::is_sealed(&value) {
            return codec::decode(&value, what).map(Some);
        }
        let Some(key) = &self.token_key else {
            return Err(StoreError::TokenKey(format!(
                "the tokens of account {id} are sealed under a token_key, and none is set: set token_key in the config file (or PERCH_TOKEN_KEY) to the key they were sealed with"
            )));
        };
        let plain = sealed::open(key, &store_key, &value).map_err(|_| {
            StoreError::TokenKey(format!(
                "the tokens of account {id} do not open with this token_key: set the key they were sealed with, or authorize the account again (`perch accounts reauthorize @handle`) to store new ones"
            ))
        })?;
        codec::decode(&plain, what).map(Some)
    }

    /// The newest tweet id committed for this account (the next poll's `since_id`).
    /// The unreadable posts skipped for account `id` (see [`Store::commit_fetched_page`]).
    pub fn unreadable_posts(&self, id: AccountId) -> Result<UnreadablePosts> {
        let count = self
            .get_u64(&keys::account_key(keys::UNREADABLE_COUNT, id), || {
                format!("unreadable-post count of account {id}")
            })?
            .unwrap_or(0);
        let mut newest_ids = Vec::new();
        for entry in self
            .tree
            .scan_prefix(keys::account_key(keys::UNREADABLE, id))
            .rev()
            .take(UNREADABLE_SHOWN)
        {
            let (key, _) = entry.map_err(|e| self.err(e))?;
            newest_ids.extend(keys::trailing_tweet(&key));
        }
        Ok(UnreadablePosts { count, newest_ids })
    }

    pub fn cursor(&self, id: AccountId) -> Result<Option<u64>> {
        self.get_u64(&keys::account_key(keys::CURSOR, id), || {
            format!("sync cursor of account {id}")
        })
    }

    // ---- mentions -------------------------------------------------------------------------

    /// Commits one fetched page atomically: new mention records, their index entries, the
    /// per-account/per-status/per-day counters, and (when given) the account's cursor. Mentions
    /// already stored are skipped, never overwritten, with one exception: a stored mention whose
    /// sender is unknown takes the sender of a later copy that names it (a post that arrived as a
    /// stream's reply or quote event comes without its author, ACTIVITY.md §5.2, and the poll
    /// that returns it again has the author). The cursor never moves backwards (a page
    /// older than the cursor leaves it where it is). Every mention must be `sent_to` `account`;
    /// a mention whose tweet id is not a decimal number is skipped with a warning.
    pub fn commit_page(
        &self,
        account: AccountId,
        mentions: &[Mention],
        new_cursor: Option<u64>,
    ) -> Result<PageCommit> {
        self.commit_fetched_page(account, mentions, &[], new_cursor)
    }

    /// Fails with `DiskFull` when less than [`space::WRITE_MARGIN`] is free under the store.
    /// Called before bulk writes, so a full disk stops them before sled runs out of room.
    pub fn ensure_room(&self) -> Result<()> {
        match space::free_bytes(&self.dir) {
            Ok(free) if free < space::WRITE_MARGIN => Err(StoreError::DiskFull {
                dir: self.dir.clone(),
                free,
            }),
            Ok(_) => Ok(()),
            // Not knowing is no reason to stop: sled's own error still comes if the disk is full.
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), "cannot read the free space: {e}");
                Ok(())
            }
        }
    }

    /// As [`Store::commit_page`], and also records `unreadable`: ids of posts X sent in this page
    /// that could not be read and were skipped (each counted once per account), in the same
    /// batch. This is the sync engine's page commit: refused with `DiskFull` below the margin.
    pub fn commit_fetched_page(
        &self,
        account: AccountId,
        mentions: &[Mention],
        unreadable: &[u64],
        new_cursor: Option<u64>,
    ) -> Result<PageCommit> {
        self.commit_fetched_page_charged(account, mentions, unreadable, new_cursor, None)
    }

    /// [`Store::commit_page`] with the read that returned the page charged in the same batch.
    pub fn commit_page_charged(
        &self,
        account: AccountId,
        mentions: &[Mention],
        new_cursor: Option<u64>,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit> {
        self.commit_fetched_page_charged(account, mentions, &[], new_cursor, charge)
    }

    /// [`Store::commit_fetched_page`], with the read that returned the page charged in the same
    /// batch (the cost meter: a crash can neither keep the page without its charge nor the
    /// charge without the page).
    pub fn commit_fetched_page_charged(
        &self,
        account: AccountId,
        mentions: &[Mention],
        unreadable: &[u64],
        new_cursor: Option<u64>,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit> {
        self.commit_page_from(
            account,
            mentions,
            unreadable,
            new_cursor,
            charge,
            Arrival::Poll,
        )
    }

    /// A post delivered by the Activity stream, committed as a one-post page: the same record,
    /// indexes, counters and batch as a polled page, never a cursor (the poll alone moves it,
    /// see `sync/engine_stream.rs`), and a note that it arrived by stream.
    pub fn commit_streamed_post(
        &self,
        account: AccountId,
        mention: &Mention,
        charge: Option<&ReadCharge>,
    ) -> Result<PageCommit> {
        self.commit_page_from(
            account,
            std::slice::from_ref(mention),
            &[],
            None,
            charge,
            Arrival::Stream,
        )
    }

    /// How a stored mention first arrived.
    pub fn arrival(&self, key: MentionKey) -> Result<Arrival> {
        let streamed = self
            .tree
            .contains_key(keys::streamed_key(key.account_id, key.tweet_id))
            .map_err(|e| self.err(e))?;
        Ok(if streamed {
            Arrival::Stream
        } else {
            Arrival::Poll
        })
    }

    fn commit_page_from(
        &self,
        account: AccountId,
        mentions: &[Mention],
        unreadable: &[u64],
        new_cursor: Option<u64>,
        charge: Option<&ReadCharge>,
        arrival: Arrival,
    ) -> Result<PageCommit> {
        self.ensure_room()?;
        if let Some(m) = mentions.iter().find(|m| m.sent_to.account_id != account) {
            return Err(StoreError::Invalid(format!(
                "mention {} was sent to account {}, not to {account} whose page is being committed",
                m.tweet_id, m.sent_to.account_id
            )));
        }
        let mut writer = self.lock();
        let mut updates = CounterUpdates::default();
        let mut batch = Batch::default();
        let mut result = PageCommit::default();
        let mut seen = HashSet::with_capacity(mentions.len());
        let mut by_status = [0u64; 5];
        let mut by_day: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        let mut earliest: Option<DateTime<Utc>> = None;
        let tweets: Vec<u64> = mentions
            .iter()
            .filter_map(|m| m.tweet_id.parse::<u64>().ok())
            .collect();
        let stored = self.stored_among(account, &tweets)?;
        for m in mentions {
            let Ok(tweet) = m.tweet_id.parse::<u64>() else {
                tracing::warn!(tweet_id = %m.tweet_id, %account, "mention with a non-numeric tweet id skipped");
                continue;
            };
            if !seen.insert(tweet) || stored.contains(&tweet) {
                result.duplicates += 1;
                if stored.contains(&tweet)
                    && let Some(named) = self.sender_named_by(account, tweet, m)
                {
                    codec::encode_into(&named, &mut writer.buf, "mention")?;
                    batch.insert(&keys::mention_key(account, tweet), writer.buf.as_slice());
                    result.senders_filled += 1;
                }
                continue;
            }
            stage_new_mention(&mut batch, &mut writer.buf, m)?;
            if arrival == Arrival::Stream {
                batch.insert(&keys::streamed_key(account, tweet), &[]);
            }
            by_status[m.status.code() as usize] += 1;
            *by_day.entry(keys::day_of(m.timestamp)).or_default() += 1;
            earliest = Some(earliest.map_or(m.created_at, |e| e.min(m.created_at)));
            result.inserted += 1;
        }
        for status in MentionStatus::ALL {
            let n = by_status[status.code() as usize] as i64;
            if n > 0 {
                self.add_to_status_counts(&writer, &mut updates, &mut batch, account, status, n)?;
            }
        }
        for (day, n) in by_day {
            self.add_to_counter(
                &writer,
                &mut updates,
                &mut batch,
                &keys::day_count_key(account, day),
                n as i64,
            )?;
        }
        let mut new_unreadable = 0i64;
        for &tweet in unreadable.iter().collect::<HashSet<_>>() {
            let key = keys::unreadable_key(account, tweet);
            if !self.tree.contains_key(key).map_err(|e| self.err(e))? {
                batch.insert(&key, codec::encode(&Utc::now(), "unreadable post")?);
                new_unreadable += 1;
            }
        }
        if new_unreadable > 0 {
            self.add_to_counter(
                &writer,
                &mut updates,
                &mut batch,
                &keys::account_key(keys::UNREADABLE_COUNT, account),
                new_unreadable,
            )?;
            result.unreadable = new_unreadable as usize;
        }
        let first_seen = match earliest {
            Some(t) => self.stage_first_seen(&mut writer, &mut batch, account, t, false)?,
            None => false,
        };
        let cursor = match new_cursor {
            Some(c) => Some(self.stage_cursor(&mut writer, &mut batch, account, c)?),
            None => None,
        };
        let mut staged = costs::StagedUses::default();
        if let Some(charge) = charge {
            result.cost = self.stage_read_charge(&mut staged, &mut batch, account, charge)?;
        }
        self.apply_counted(&mut writer, batch, updates)?;
        writer.remember(account, first_seen, cursor);
        self.note_applied(&staged);
        Ok(result)
    }

    /// Adds the account's first-seen time `t` to `batch` when none is stored (or, with
    /// `earlier_wins`, when `t` is earlier than the stored one). Returns whether one is stored
    /// once the batch is applied. The writer remembers which accounts have one, so a sync page
    /// never reads it.
    fn stage_first_seen(
        &self,
        writer: &mut WriterState,
        batch: &mut Batch,
        account: AccountId,
        t: DateTime<Utc>,
        earlier_wins: bool,
    ) -> Result<bool> {
        if writer.first_seen.contains(&account) && !earlier_wins {
            return Ok(true);
        }
        let stored = self.first_seen(account)?;
        if stored.is_none_or(|old| earlier_wins && t < old) {
            codec::encode_into(&t, &mut writer.buf, "first-seen time")?;
            batch.insert(
                &keys::account_key(keys::FIRST_SEEN, account),
                writer.buf.as_slice(),
            );
        }
        Ok(true)
    }

    /// Adds the account's cursor to `batch` when `cursor` is ahead of the stored one (the cursor
    /// never moves backwards). Returns the cursor stored once the batch is applied.
    fn stage_cursor(
        &self,
        writer: &mut WriterState,
        batch: &mut Batch,
        account: AccountId,
        cursor: u64,
    ) -> Result<u64> {
        let old = match writer.cursors.get(&account) {
            Some(known) => *known,
            None => self.cursor(account)?,
        };
        match old {
            Some(old) if old >= cursor => Ok(old),
            _ => {
                batch.insert(
                    &keys::account_key(keys::CURSOR, account),
                    &cursor.to_be_bytes(),
                );
                Ok(cursor)
            }
        }
    }

    /// The stored mention `tweet` of `account` with its sender taken from `copy`, when the stored
    /// one's sender is unknown (no username) and `copy` names it; `None` otherwise. Only the
    /// sender and `updated_at` change: the triage state is the stored one. A stored record that
    /// cannot be read is left alone here (the page's other mentions must not fail with it).
    fn sender_named_by(&self, account: AccountId, tweet: u64, copy: &Mention) -> Option<Mention> {
        copy.sender.username.as_ref()?;
        let key = MentionKey {
            account_id: account,
            tweet_id: tweet,
        };
        match self.mention(key) {
            Ok(Some(stored)) => sender_filled_in(stored, copy, Utc::now()),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(tweet_id = tweet, %account, "cannot read a stored mention to fill in its sender: {e}");
                None
            }
        }
    }

    /// Which of `tweets` (of one account) are already stored. A new page is usually newer than
    /// everything stored, so one range read over the page's span (empty in that case) replaces a
    /// lookup per mention; when the span holds many stored mentions (a backfill interleaving
    /// with them), it falls back to one lookup per mention so the cost stays bounded by the page.
    fn stored_among(&self, account: AccountId, tweets: &[u64]) -> Result<HashSet<u64>> {
        let mut stored = HashSet::new();
        let (Some(&lo), Some(&hi)) = (tweets.iter().min(), tweets.iter().max()) else {
            return Ok(stored);
        };
        let wanted: HashSet<u64> = tweets.iter().copied().collect();
        let budget = 2 * tweets.len();
        let range = keys::mention_key(account, lo)..=keys::mention_key(account, hi);
        for (examined, entry) in self.tree.range(range).enumerate() {
            if examined >= budget {
                stored.clear();
                for &t in &wanted {
                    let key = keys::mention_key(account, t);
                    if self.tree.contains_key(key).map_err(|e| self.err(e))? {
                        stored.insert(t);
                    }
                }
                return Ok(stored);
            }
            let (key, _) = entry.map_err(|e| self.err(e))?;
            if let Some(t) = keys::trailing_tweet(&key)
                && wanted.contains(&t)
            {
                stored.insert(t);
            }
        }
        Ok(stored)
    }

    /// Adds `delta` to the counter at `key` (written with `batch`). Counters never go below zero:
    /// a negative result means they were already wrong, and zero is the best repair.
    /// Adds `delta` mentions of `status` to the account's count and to the all-accounts count,
    /// which always move together.
    fn add_to_status_counts(
        &self,
        writer: &WriterState,
        updates: &mut CounterUpdates,
        batch: &mut Batch,
        account: uuid::Uuid,
        status: MentionStatus,
        delta: i64,
    ) -> Result<()> {
        self.add_to_counter(
            writer,
            updates,
            batch,
            &keys::status_count_key(account, status),
            delta,
        )?;
        self.add_to_counter(
            writer,
            updates,
            batch,
            &keys::global_count_key(status),
            delta,
        )
    }

    fn add_to_counter(
        &self,
        writer: &WriterState,
        updates: &mut CounterUpdates,
        batch: &mut Batch,
        key: &[u8],
        delta: i64,
    ) -> Result<()> {
        let old = match updates.0.get(key).or_else(|| writer.counters.get(key)) {
            Some(v) => *v,
            None => self
                .get_u64(key, || format!("counter {key:?}"))?
                .unwrap_or(0),
        };
        let new = (old as i64).saturating_add(delta).max(0) as u64;
        batch.insert(key, &new.to_be_bytes());
        updates.0.insert(key.to_vec(), new);
        Ok(())
    }

    /// Applies a batch that carries counter `updates`, then remembers their values.
    fn apply_counted(
        &self,
        writer: &mut WriterState,
        batch: Batch,
        updates: CounterUpdates,
    ) -> Result<()> {
        self.apply(batch)?;
        writer.counters.extend(updates.0);
        Ok(())
    }

    pub fn mention(&self, key: MentionKey) -> Result<Option<Mention>> {
        self.get(&keys::mention_key(key.account_id, key.tweet_id))?
            .map(|v| codec::decode(&v, || mention_what(key)))
            .transpose()
    }

    /// Replaces a stored mention (same key), moving its index entries and counters if its status
    /// (or day) changed, in one atomic batch. Returns the previous version; `None` means no such
    /// mention is stored, and nothing was written.
    pub fn update_mention(&self, mention: &Mention) -> Result<Option<Mention>> {
        let key = mention.key();
        if mention.tweet_id.parse::<u64>().is_err() {
            return Err(StoreError::Invalid(format!(
                "mention tweet id {:?} is not a number",
                mention.tweet_id
            )));
        }
        let mut writer = self.lock();
        let mut updates = CounterUpdates::default();
        let Some(old) = self.mention(key)? else {
            return Ok(None);
        };
        let mut batch = Batch::default();
        self.stage_mention_update(&writer, &mut updates, &mut batch, &old, mention)?;
        self.apply_counted(&mut writer, batch, updates)?;
        Ok(Some(old))
    }

    /// Adds to `batch` the writes that replace `old` with `mention` (same key): the record, and
    /// the index entries and counters that move with its status and day. The caller holds
    /// `write_lock` from reading `old` until the batch is applied.
    fn stage_mention_update(
        &self,
        writer: &WriterState,
        updates: &mut CounterUpdates,
        batch: &mut Batch,
        old: &Mention,
        mention: &Mention,
    ) -> Result<()> {
        let key = mention.key();
        let (a, t) = (key.account_id, key.tweet_id);
        batch.insert(&keys::mention_key(a, t), codec::encode(mention, "mention")?);
        if old.status != mention.status {
            batch.remove(&keys::status_index_key(a, old.status, t));
            batch.insert(&keys::status_index_key(a, mention.status, t), &[]);
            self.add_to_counter(
                writer,
                updates,
                batch,
                &keys::status_count_key(a, old.status),
                -1,
            )?;
            self.add_to_counter(
                writer,
                updates,
                batch,
                &keys::status_count_key(a, mention.status),
                1,
            )?;
            self.add_to_counter(
                writer,
                updates,
                batch,
                &keys::global_count_key(old.status),
                -1,
            )?;
            self.add_to_counter(
                writer,
                updates,
                batch,
                &keys::global_count_key(mention.status),
                1,
            )?;
        }
        let (old_day, new_day) = (keys::day_of(old.timestamp), keys::day_of(mention.timestamp));
        if old_day != new_day {
            self.add_to_counter(writer, updates, batch, &keys::day_count_key(a, old_day), -1)?;
            self.add_to_counter(writer, updates, batch, &keys::day_count_key(a, new_day), 1)?;
        }
        Ok(())
    }

    /// Sets a mention's status (and `updated_at`), returning the updated mention, or `None` when
    /// no such mention is stored.
    pub fn set_status(
        &self,
        key: MentionKey,
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Mention>> {
        let Some(mut m) = self.mention(key)? else {
            return Ok(None);
        };
        m.status = status;
        m.updated_at = now;
        match self.update_mention(&m)? {
            Some(_) => Ok(Some(m)),
            None => Ok(None),
        }
    }

    fn decode_row(&self, pos: FeedPos, bytes: &[u8]) -> Result<Mention> {
        codec::decode(bytes, || {
            mention_what(MentionKey {
                account_id: pos.account_id,
                tweet_id: pos.tweet_id,
            })
        })
    }

    fn walk_among(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        walk: Walk,
    ) -> Result<FeedWalk> {
        FeedWalk::among(&self.dir, &self.tree, filter, among, walk)
    }

    /// Up to `limit` mentions matching `filter`, newest first, strictly older than `after`
    /// (from the newest when `None`). Reads an index range: cost depends on `limit`, not the store.
    pub fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        self.read_rows(filter, None, Walk::Older(after), limit)
    }

    /// [`Store::page_after`] over the accounts in `among` only (a member's feed, issue 16).
    pub fn page_after_among(
        &self,
        filter: &FeedFilter,
        among: &[AccountId],
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        self.read_rows(filter, Some(among), Walk::Older(after), limit)
    }

    /// Up to `limit` mentions matching `filter` strictly newer than `before`, returned newest
    /// first (the rows just above `before`). With `None`, the oldest `limit` mentions (the end).
    pub fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        let mut out = self.read_rows(filter, None, Walk::Newer(before), limit)?;
        out.reverse();
        Ok(out)
    }

    /// Up to `limit` decoded rows of `filter`'s feed, in the walk's own order.
    fn read_rows(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        walk: Walk,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        let mut out = Vec::with_capacity(limit.min(1024));
        if limit == 0 {
            return Ok(out);
        }
        let mut walk = self.walk_among(filter, among, walk)?;
        while out.len() < limit {
            let Some((pos, bytes)) = walk.next_row()? else {
                break;
            };
            out.push(self.decode_row(pos, &bytes)?);
        }
        Ok(out)
    }

    /// Searches `filter`'s feed newest first, strictly older than `after`, for mentions whose
    /// text, sender username or sender display name contains `query` (case-insensitive; an empty
    /// query matches everything). Stops after `limit` hits or `max_scan` rows examined, whichever
    /// comes first, so a caller can show a screen of results quickly and continue from
    /// `resume_after` in the background.
    pub fn search_page(
        &self,
        filter: &FeedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage> {
        self.search_page_among(filter, None, query, after, limit, max_scan)
    }

    /// [`Store::search_page`] over the accounts in `among` only, when given (issue 16).
    pub fn search_page_among(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage> {
        self.scan_page_where(filter, among, query, |_| true, after, limit, max_scan)
    }

    /// [`Store::search_page_among`] keeping only the rows for which `keep` holds (the assignment
    /// filter's "nobody", issue 16). `keep` sees the position only, before any decoding.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn scan_page_where(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        query: &str,
        keep: impl Fn(FeedPos) -> bool,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage> {
        let matcher = Matcher::new(query);
        let mut page = SearchPage {
            hits: Vec::new(),
            resume_after: after,
            exhausted: false,
        };
        if limit == 0 || max_scan == 0 {
            return Ok(page);
        }
        let mut walk = self.walk_among(filter, among, Walk::Older(after))?;
        let mut scanned = 0;
        while page.hits.len() < limit && scanned < max_scan {
            let Some((pos, bytes)) = walk.next_row()? else {
                page.exhausted = true;
                break;
            };
            scanned += 1;
            page.resume_after = Some(pos);
            // Most rows do not match: skip decoding them when the raw record cannot match.
            if !keep(pos) || !matcher.may_match_record(&bytes) {
                continue;
            }
            let m = self.decode_row(pos, &bytes)?;
            if matcher.matches(&m) {
                page.hits.push(m);
            }
        }
        Ok(page)
    }

    /// [`Store::count`] over the accounts in `among` only (issue 16): the sum of their counters.
    pub fn count_among(&self, filter: &FeedFilter, among: &[AccountId]) -> Result<u64> {
        let mut total = 0;
        for &account in among {
            if filter.account.is_some_and(|a| a != account) {
                continue;
            }
            total += self.count(&FeedFilter {
                account: Some(account),
                status: filter.status,
            })?;
        }
        Ok(total)
    }

    /// How many mentions match `filter`, from counters (never a scan).
    pub fn count(&self, filter: &FeedFilter) -> Result<u64> {
        let statuses: Vec<MentionStatus> = match filter.status {
            Some(s) => vec![s],
            None => MentionStatus::ALL.to_vec(),
        };
        let mut total = 0u64;
        for status in statuses {
            let key: Vec<u8> = match filter.account {
                Some(a) => keys::status_count_key(a, status).to_vec(),
                None => keys::global_count_key(status).to_vec(),
            };
            total += self
                .get_u64(&key, || format!("{status} counter"))?
                .unwrap_or(0);
        }
        Ok(total)
    }

    /// Mentions per day for one account over the `days` days ending at `today` (oldest first),
    /// from per-day counters. A day is the UTC date of the post's timestamp.
    pub fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>> {
        if days == 0 {
            return Ok(Vec::new());
        }
        let first = today
            .checked_sub_days(chrono::Days::new(u64::from(days - 1)))
            .unwrap_or(NaiveDate::MIN);
        let mut found: BTreeMap<u32, u64> = BTreeMap::new();
        let range = keys::day_count_key(account, first)..=keys::day_count_key(account, today);
        for entry in self.tree.range(range) {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let day = key
                .get(17..21)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
            let n = keys::read_u64(&value);
            if let (Some(day), Some(n)) = (day, n) {
                found.insert(day, n);
            }
        }
        Ok(first
            .iter_days()
            .take_while(|d| *d <= today)
            .map(|d| (d, found.get(&keys::day_number(d)).copied().unwrap_or(0)))
            .collect())
    }

    /// When the first mention of this account was stored (for "days tracked").
    pub fn first_seen(&self, account: AccountId) -> Result<Option<DateTime<Utc>>> {
        self.get(&keys::account_key(keys::FIRST_SEEN, account))?
            .map(|v| codec::decode(&v, || format!("first-seen time of account {account}")))
            .transpose()
    }

    // ---- drafts ---------------------------------------------------------------------------

    /// Saves the draft reply to a mention (replacing any earlier one).
    pub fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<()> {
        self.tree
            .insert(
                keys::draft_key(key.account_id, key.tweet_id),
                codec::encode(draft, "draft")?,
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn draft(&self, key: MentionKey) -> Result<Option<Draft>> {
        self.get(&keys::draft_key(key.account_id, key.tweet_id))?
            .map(|v| codec::decode(&v, || format!("draft for {}", mention_what(key))))
            .transpose()
    }

    pub fn delete_draft(&self, key: MentionKey) -> Result<()> {
        self.tree
            .remove(keys::draft_key(key.account_id, key.tweet_id))
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// Adds a new mention's record and index entry to `batch`, encoding into the reused `buf`.
fn stage_new_mention(batch: &mut Batch, buf: &mut Vec<u8>, m: &Mention) -> Result<()> {
    let key = m.key();
    codec::encode_into(m, buf, "mention")?;
    batch.insert(
        &keys::mention_key(key.account_id, key.tweet_id),
        buf.as_slice(),
    );
    batch.insert(
        &keys::status_index_key(key.account_id, m.status, key.tweet_id),
        &[],
    );
    Ok(())
}

/// The key/value pairs the store writes for one new mention (its record and its index entry),
/// exactly as `commit_page` writes them. Public so the benchmark's plain-sled baseline can write
/// the very same bytes.
pub fn mention_entries(m: &Mention) -> Result<[(Vec<u8>, Vec<u8>); 2]> {
    let key = m.key();
    let record = codec::encode(m, "mention")?;
    Ok([
        (
            keys::mention_key(key.account_id, key.tweet_id).to_vec(),
            record,
        ),
        (
            keys::status_index_key(key.account_id, m.status, key.tweet_id).to_vec(),
            Vec::new(),
        ),
    ])
}

fn uuid_from(bytes: &[u8], what: impl FnOnce() -> String) -> Result<AccountId> {
    let arr: [u8; 16] = bytes.try_into().map_err(|_| StoreError::Decode {
        what: what(),
        detail: format!("expected a 16-byte account id, found {} bytes", bytes.len()),
    })?;
    Ok(AccountId::from_bytes(arr))
}

/// Does the search `query` match this mention? The rule `search_page` applies: case-insensitive
/// substring of the post text, the sender's handle or their name; an empty query matches all.
/// A query that starts with `@` searches handles only: the sender's, and the tracked account's
/// the post was sent to (`@chenwei` finds @chenwei_dev).
pub fn search_matches(query: &str, m: &Mention) -> bool {
    Matcher::new(query).matches(m)
}

/// Case-insensitive substring matching over the searchable fields of a mention.
struct Matcher {
    needle: String,
    ascii: bool,
    /// The query started with `@`: only handles are searched.
    handles_only: bool,
}

impl Matcher {
    fn new(query: &str) -> Matcher {
        let q = query.trim();
        let (handles_only, q) = match q.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, q),
        };
        Matcher {
            ascii: q.is_ascii(),
            needle: q.to_lowercase(),
            handles_only,
        }
    }

    fn matches(&self, m: &Mention) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        if self.handles_only {
            let handles = [
                m.sender.username.as_deref(),
                Some(m.sent_to.username.as_str()),
            ];
            return handles.into_iter().flatten().any(|f| self.contains(f));
        }
        let fields = [
            Some(m.text.as_str()),
            m.sender.username.as_deref(),
            m.sender.display_name.as_deref(),
        ];
        fields.into_iter().flatten().any(|f| self.contains(f))
    }

    /// False only when the encoded record certainly does not match. Strings are stored as their
    /// UTF-8 bytes (bincode writes a length, then the bytes), so an ASCII needle found in a field
    /// is also found in the record; a hit elsewhere in the record is a false positive that the
    /// exact check after decoding rejects. Decoding is most of a search's cost, and most rows
    /// are not hits.
    fn may_match_record(&self, record: &[u8]) -> bool {
        !self.ascii || self.needle.is_empty() || contains_ascii_ci(record, self.needle.as_bytes())
    }

    fn contains(&self, haystack: &str) -> bool {
        if self.ascii {
            // An ASCII needle can only match ASCII bytes, so a byte-wise ASCII case-insensitive
            // search is exact here and needs no allocation per post.
            contains_ascii_ci(haystack.as_bytes(), self.needle.as_bytes())
        } else {
            haystack.to_lowercase().contains(&self.needle)
        }
    }
}

/// Does `haystack` contain `needle` (lowercase ASCII), ignoring ASCII case?
fn contains_ascii_ci(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if haystack.len() < needle.len() {
        return false;
    }
    let last_start = haystack.len() - needle.len();
    haystack[..=last_start]
        .iter()
        .enumerate()
        .filter(|(_, b)| b.to_ascii_lowercase() == first)
        .any(|(i, _)| haystack[i + 1..i + needle.len()].eq_ignore_ascii_case(rest))
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn a_full_disk_in_sled_debug_text_is_told_as_disk_full() {
        let dir = std::env::temp_dir();
        let bug = sled::Error::ReportableBug(
            "failed to flush: Os { code: 28, kind: StorageFull, message: \"No space left on device\" }"
                .into(),
        );
        let e = sled_error(&dir, bug);
        assert!(matches!(e, StoreError::DiskFull { .. }), "{e:?}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("disk full: ") && !shown.contains("Os {"),
            "{shown}"
        );
        let io = sled::Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(matches!(sled_error(&dir, io), StoreError::DiskFull { .. }));
        let other = sled_error(&dir, sled::Error::ReportableBug("Os { code: 5 }".into()));
        assert!(!other.to_string().contains("Os {"), "{other}");
    }
}
