//! `perch import mongo`: brings a `mongoexport` of the old tracker's `accounts` (or `users`) and
//! `messages` collections into a store, as one library call the CLI (and later the service)
//! makes. Streaming: accounts are few and read first; messages are read and parsed one document
//! at a time on a second thread, and committed in atomic batches through
//! `Store::import_mentions` on the calling one, with a bounded channel between them, so memory
//! is bounded by a batch and a few chunks in flight, whatever the file's size.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::documents::DocumentReader;
use super::mongo::{self, AccountLink, ImportedAccount};
use crate::domain::{Account, AccountId, Mention, MentionStatus};
use crate::store::{AccountImport, FeedFilter, MentionImport, Store, StoreError};

/// Mentions per atomic batch. Large enough that the per-batch work (counters, cursor, one
/// range read per account) is spread thin; small enough to keep memory small: sled holds every
/// node version a batch replaces until the batch is applied, so an import's peak memory grows
/// with its batch (100k messages: 60–67 MB at 100, 59–76 at 250, 79–139 at 1 000, against 52–68
/// for perch's own ingest of them in pages of 100), while its speed did not measurably change.
pub const IMPORT_BATCH: usize = 250;

/// Mentions between flushes. sled 0.34.7 can deadlock under long bursts of writes (README, "sled
/// 0.34.7 and bursts of writes"); a flush every so often paces them like bulk triage does.
const FLUSH_EVERY_MENTIONS: usize = 20_000;

/// At most this many skipped lines are listed in the report (all are counted).
pub const MAX_LISTED_SKIPS: usize = 1_000;

/// The files of one import.
#[derive(Clone, Debug)]
pub struct MongoSources {
    /// The `accounts` collection (after the old system's migration).
    pub accounts: Option<PathBuf>,
    /// The legacy `users` collection.
    pub users: Option<PathBuf>,
    pub messages: PathBuf,
}

/// How an import goes.
#[derive(Clone, Copy, Debug)]
pub struct ImportOptions {
    /// Decide and count everything, write nothing.
    pub dry_run: bool,
    /// Mentions per atomic batch.
    pub batch: usize,
}

impl Default for ImportOptions {
    fn default() -> ImportOptions {
        ImportOptions {
            dry_run: false,
            batch: IMPORT_BATCH,
        }
    }
}

/// Told how far the reading of each file has got (the CLI draws a progress bar with it).
pub trait ImportProgress {
    fn file(&mut self, _name: &str, _total_bytes: u64) {}
    fn advanced(&mut self, _bytes_done: u64) {}
    fn finished(&mut self) {}
}

/// No progress shown.
pub struct Quiet;
impl ImportProgress for Quiet {}

/// Why an import could not run at all (bad lines are not errors: they are in the report).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A named file cannot be opened: the command line is wrong (exit code 2).
    #[error("cannot open {path}: {detail}")]
    Input { path: PathBuf, detail: String },
    /// Reading stopped part-way (the batches before it are committed).
    #[error(
        "reading {path} failed at line {line}: {detail}; what was read before it is imported, and running the import again resumes safely"
    )]
    Read {
        path: PathBuf,
        line: u64,
        detail: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One line that was not imported.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SkippedLine {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

/// Counts per mention status (of what was imported).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StatusCounts {
    pub pending: u64,
    pub processing: u64,
    pub replied: u64,
    pub ignored: u64,
    pub error: u64,
}

impl StatusCounts {
    fn from_codes(codes: [u64; 5]) -> StatusCounts {
        let at = |s: MentionStatus| codes[s.code() as usize];
        StatusCounts {
            pending: at(MentionStatus::Pending),
            processing: at(MentionStatus::Processing),
            replied: at(MentionStatus::Replied),
            ignored: at(MentionStatus::Ignored),
            error: at(MentionStatus::Error),
        }
    }

    fn describe(&self) -> String {
        let parts: Vec<String> = [
            (self.pending, "pending"),
            (self.processing, "processing"),
            (self.replied, "replied"),
            (self.ignored, "ignored"),
            (self.error, "error"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, name)| format!("{n} {name}"))
        .collect();
        parts.join(", ")
    }
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AccountCounts {
    /// Added or updated.
    pub imported: u64,
    pub added: u64,
    pub updated: u64,
    /// Already in perch as imported.
    pub unchanged: u64,
    /// perch's version was newer and was kept.
    pub kept_newer: u64,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct MessageCounts {
    /// Added or updated.
    pub imported: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// perch had a newer version (by `updated_at`) and kept it.
    pub kept_newer: u64,
    /// Statuses of the imported (added or updated) messages.
    pub by_status: StatusCounts,
}

/// What an import did (or, with `dry_run`, would do). `--json` prints this object.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Something was (or would be) written.
    pub changed: bool,
    pub accounts: AccountCounts,
    pub messages: MessageCounts,
    /// `processing` messages imported as `error` ("imported while sending: check on X").
    pub processing_imported_as_error: u64,
    /// Lines not imported (all of them counted; the first `MAX_LISTED_SKIPS` listed).
    pub skipped: u64,
    pub skipped_lines: Vec<SkippedLine>,
}

impl ImportReport {
    fn skip(&mut self, file: &str, line: u64, reason: String) {
        self.skipped += 1;
        if self.skipped_lines.len() < MAX_LISTED_SKIPS {
            self.skipped_lines.push(SkippedLine {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }

    /// The report in words, ending with the counts, e.g. "imported 3 accounts, 30 messages (14
    /// pending, 8 replied, 5 ignored, 3 error); skipped 1 (messages.json line 17: not JSON)".
    pub fn summary(&self) -> String {
        let mut lines = Vec::new();
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        let (a, m) = (&self.accounts, &self.messages);
        if self.processing_imported_as_error > 0 {
            lines.push(format!(
                "{} `processing` in the old system (a reply was being sent): {} as error with \"{}\"",
                plural(self.processing_imported_as_error, "message was", "messages were"),
                if self.dry_run { "would be imported" } else { "imported" },
                mongo::PROCESSING_MESSAGE
            ));
        }
        if a.kept_newer + m.kept_newer > 0 {
            lines.push(format!(
                "kept perch's newer version of {} and {} (compared by updated_at)",
                plural(a.kept_newer, "account", "accounts"),
                plural(m.kept_newer, "message", "messages")
            ));
        }
        if a.unchanged + m.unchanged > 0 && self.changed {
            lines.push(format!(
                "already in perch: {} and {}",
                plural(a.unchanged, "account", "accounts"),
                plural(m.unchanged, "message", "messages")
            ));
        }
        let mut last = if !self.changed {
            format!(
                "nothing to change: {} and {} are already in perch{}",
                plural(a.unchanged + a.kept_newer, "account", "accounts"),
                plural(m.unchanged + m.kept_newer, "message", "messages"),
                if self.dry_run { " (dry run)" } else { "" }
            )
        } else {
            let breakdown = m.by_status.describe();
            format!(
                "{} {}, {}{}",
                if self.dry_run {
                    "dry run, nothing written: would import"
                } else {
                    "imported"
                },
                plural(a.imported, "account", "accounts"),
                plural(m.imported, "message", "messages"),
                if breakdown.is_empty() {
                    String::new()
                } else {
                    format!(" ({breakdown})")
                }
            )
        };
        if self.skipped > 0 {
            const SHOWN: usize = 3;
            let mut shown: Vec<String> = self
                .skipped_lines
                .iter()
                .take(SHOWN)
                .map(|s| format!("{} line {}: {}", s.file, s.line, s.reason))
                .collect();
            if self.skipped > SHOWN as u64 {
                shown.push(format!("{} more", self.skipped - SHOWN as u64));
            }
            last.push_str(&format!(
                "; skipped {} ({})",
                self.skipped,
                shown.join("; ")
            ));
        }
        lines.push(last);
        lines.join("\n")
    }
}

/// The accounts messages can be tied to: those in the files (as stored) and those perch had.
#[derive(Default)]
struct AccountIndex {
    accounts: Vec<Account>,
    by_source_id: HashMap<String, usize>,
    by_twitter_id: HashMap<String, usize>,
    by_perch_id: HashMap<AccountId, usize>,
}

impl AccountIndex {
    fn add(&mut self, account: Account, source_id: Option<&str>) {
        let i = match self.by_twitter_id.get(&account.twitter_id) {
            Some(&i) => {
                self.accounts[i] = account;
                i
            }
            None => {
                self.accounts.push(account);
                self.accounts.len() - 1
            }
        };
        let a = &self.accounts[i];
        self.by_twitter_id.insert(a.twitter_id.clone(), i);
        self.by_perch_id.insert(a.id, i);
        if let Some(s) = source_id {
            self.by_source_id.insert(s.trim().to_string(), i);
        }
    }

    fn by_any_id(&self, s: &str) -> Option<usize> {
        let s = s.trim();
        self.by_source_id.get(s).copied().or_else(|| {
            uuid::Uuid::parse_str(s)
                .ok()
                .and_then(|u| self.by_perch_id.get(&u).copied())
        })
    }

    /// `sent_to.account_id`, then `sent_to.twitter_id`, then the legacy `user` (a twitter_id,
    /// or an account id).
    fn resolve(&self, link: &AccountLink) -> Option<&Account> {
        let i = link
            .account_id
            .as_deref()
            .and_then(|s| self.by_any_id(s))
            .or_else(|| {
                link.twitter_id
                    .as_deref()
                    .and_then(|t| self.by_twitter_id.get(t.trim()).copied())
            })
            .or_else(|| {
                link.user.as_deref().and_then(|u| {
                    self.by_twitter_id
                        .get(u.trim())
                        .copied()
                        .or_else(|| self.by_any_id(u))
                })
            })?;
        self.accounts.get(i)
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn open(path: &Path) -> Result<(BufReader<File>, u64), ImportError> {
    let file = File::open(path).map_err(|e| ImportError::Input {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(ImportError::Input {
            path: path.to_path_buf(),
            detail: "it is a directory; pass the file mongoexport wrote".into(),
        });
    }
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((BufReader::with_capacity(256 * 1024, file), len))
}

/// Checks that every named file can be opened, before anything is written.
pub fn check_sources(sources: &MongoSources) -> Result<(), ImportError> {
    for path in [&sources.users, &sources.accounts]
        .into_iter()
        .flatten()
        .chain(std::iter::once(&sources.messages))
    {
        open(path)?;
    }
    Ok(())
}

/// Runs an import into `store` (see the module doc). `now` fills account times the files lack.
pub fn import_mongo(
    store: &Store,
    sources: &MongoSources,
    options: ImportOptions,
    now: DateTime<Utc>,
    progress: &mut dyn ImportProgress,
) -> Result<ImportReport, ImportError> {
    check_sources(sources)?;
    let mut report = ImportReport {
        dry_run: options.dry_run,
        ..ImportReport::default()
    };

    // Accounts: users first, then accounts; one X user in both is the newer document (the
    // accounts one on a tie: it is the migrated form).
    let mut wanted: Vec<ImportedAccount> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    for path in [&sources.users, &sources.accounts].into_iter().flatten() {
        let name = file_name(path);
        let (input, len) = open(path)?;
        progress.file(&name, len);
        let mut reader = DocumentReader::new(input);
        while let Some(doc) = next(&mut reader, path)? {
            let line = doc.line;
            let read = doc
                .json
                .and_then(super::documents::parse_document)
                .and_then(|d| mongo::account_from(&d, now));
            progress.advanced(reader.consumed());
            match read {
                Err(reason) => report.skip(&name, line, reason),
                Ok(acc) => match position.get(&acc.account.twitter_id) {
                    Some(&i) if wanted[i].account.updated_at > acc.account.updated_at => {}
                    Some(&i) => wanted[i] = acc,
                    None => {
                        position.insert(acc.account.twitter_id.clone(), wanted.len());
                        wanted.push(acc);
                    }
                },
            }
        }
        progress.finished();
    }

    let mut index = AccountIndex::default();
    for a in store.accounts()? {
        index.add(a, None);
    }
    let mut imported_accounts: Vec<AccountId> = Vec::new();
    for acc in &wanted {
        let (outcome, stored) =
            store.import_account(&acc.account, acc.tokens.as_ref(), options.dry_run)?;
        let counts = &mut report.accounts;
        match outcome {
            AccountImport::Added => counts.added += 1,
            AccountImport::Updated => counts.updated += 1,
            AccountImport::Unchanged => counts.unchanged += 1,
            AccountImport::KeptNewer => counts.kept_newer += 1,
        }
        imported_accounts.push(stored.id);
        index.add(stored, acc.source_id.as_deref());
    }
    report.accounts.imported = report.accounts.added + report.accounts.updated;

    // Messages, streamed in batches.
    let totals = import_messages(
        store,
        &sources.messages,
        &index,
        options,
        progress,
        &mut report,
    )?;
    progress.finished();

    // The accounts' own mention totals count at least what is now stored for them.
    if !options.dry_run {
        for id in imported_accounts {
            let Some(mut a) = store.account(id)? else {
                continue;
            };
            let stored = store.count(&FeedFilter {
                account: Some(id),
                status: None,
            })?;
            if stored > a.total_mentions_tracked {
                a.total_mentions_tracked = stored;
                store.put_account(&a)?;
            }
        }
        store.flush()?;
    }

    let m = &mut report.messages;
    m.added = totals.added_total();
    m.updated = totals.updated_total();
    m.imported = m.added + m.updated;
    m.unchanged = totals.unchanged;
    m.kept_newer = totals.kept_newer;
    let mut by_status = totals.added;
    for (a, b) in by_status.iter_mut().zip(totals.updated) {
        *a += b;
    }
    m.by_status = StatusCounts::from_codes(by_status);
    report.changed = report.accounts.imported + report.messages.imported > 0;
    Ok(report)
}

/// Documents per chunk the reading thread hands to the committing one.
const CHUNK: usize = 256;

/// Chunks in flight between the two threads: the reader runs at most this far ahead, so memory
/// stays bounded by `(CHUNKS_AHEAD + 2) × CHUNK` read messages plus one batch, whatever the
/// file's size.
const CHUNKS_AHEAD: usize = 4;

/// One `messages` document as the reading thread hands it over: tied to its account (and
/// whether it was `processing`), or why its line is skipped.
struct ReadMessage {
    line: u64,
    read: Result<(Mention, bool), String>,
}

/// What the reading thread sends: documents in file order, each chunk with how far into the
/// file it got; or why reading stopped.
enum Ahead {
    Chunk {
        messages: Vec<ReadMessage>,
        consumed: u64,
    },
    Failed(ImportError),
}

/// Reads, parses and ties each document to its account (the CPU-heavy part: ~870 bytes of
/// Extended JSON a message) on a second thread, while this one commits the batches, so an import
/// uses two cores. The channel between them is bounded, so a slow store holds the reader back
/// instead of letting read messages pile up. Batches, skips and the report are exactly those of
/// reading and committing in turn: chunks arrive in file order.
fn import_messages(
    store: &Store,
    path: &Path,
    index: &AccountIndex,
    options: ImportOptions,
    progress: &mut dyn ImportProgress,
    report: &mut ImportReport,
) -> Result<MentionImport, ImportError> {
    let name = file_name(path);
    let (input, len) = open(path)?;
    progress.file(&name, len);
    let reader = DocumentReader::new(input);
    let batch_size = options.batch.max(1);
    let mut batch: Vec<Mention> = Vec::with_capacity(batch_size);
    // Which of the batch were `processing` (counted only if they are written).
    let mut processing: Vec<bool> = Vec::with_capacity(batch_size);
    let mut totals = MentionImport::default();
    let mut processing_written = 0u64;
    let mut since_flush = 0usize;
    let mut commit = |batch: &mut Vec<Mention>,
                      processing: &mut Vec<bool>,
                      totals: &mut MentionImport,
                      processing_written: &mut u64|
     -> Result<(), ImportError> {
        if batch.is_empty() {
            return Ok(());
        }
        let done = store.import_mentions(batch, options.dry_run)?;
        *processing_written += done
            .outcomes
            .iter()
            .zip(processing.iter())
            .filter(|(o, p)| **p && o.written())
            .count() as u64;
        totals.add(&done);
        since_flush += batch.len();
        batch.clear();
        processing.clear();
        if !options.dry_run && since_flush >= FLUSH_EVERY_MENTIONS {
            store.flush()?;
            since_flush = 0;
        }
        Ok(())
    };
    let mut consumed = 0;
    std::thread::scope(|scope| -> Result<(), ImportError> {
        let (to_commit, from_reader) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
        std::thread::Builder::new()
            .name("perch-import-read".into())
            .spawn_scoped(scope, move || read_messages(reader, path, index, to_commit))
            .map_err(|e| ImportError::Read {
                path: path.to_path_buf(),
                line: 1,
                detail: format!("cannot start the thread that reads it ({e})"),
            })?;
        // Returning early (a store error) drops `from_reader`: the reader's next send fails and
        // it stops, and the scope waits for it.
        for ahead in &from_reader {
            let messages = match ahead {
                Ahead::Chunk {
                    messages,
                    consumed: c,
                } => {
                    consumed = c;
                    messages
                }
                Ahead::Failed(e) => return Err(e),
            };
            for m in messages {
                match m.read {
                    Err(reason) => report.skip(&name, m.line, reason),
                    Ok((mention, was_processing)) => {
                        processing.push(was_processing);
                        batch.push(mention);
                        if batch.len() >= batch_size {
                            commit(
                                &mut batch,
                                &mut processing,
                                &mut totals,
                                &mut processing_written,
                            )?;
                        }
                    }
                }
            }
            progress.advanced(consumed);
        }
        Ok(())
    })?;
    commit(
        &mut batch,
        &mut processing,
        &mut totals,
        &mut processing_written,
    )?;
    report.processing_imported_as_error = processing_written;
    progress.advanced(consumed);
    Ok(totals)
}

/// The reading thread of [`import_messages`]: sends the file's documents in chunks until the
/// end, a read error, or the committing side hanging up.
fn read_messages(
    mut reader: DocumentReader<BufReader<File>>,
    path: &Path,
    index: &AccountIndex,
    to_commit: std::sync::mpsc::SyncSender<Ahead>,
) {
    loop {
        let mut messages = Vec::with_capacity(CHUNK);
        let mut failed = None;
        let mut at_end = false;
        while messages.len() < CHUNK {
            match next(&mut reader, path) {
                Ok(Some(doc)) => messages.push(ReadMessage {
                    line: doc.line,
                    read: doc.json.and_then(|json| read_message(json, index)),
                }),
                Ok(None) => {
                    at_end = true;
                    break;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let chunk = Ahead::Chunk {
            messages,
            consumed: reader.consumed(),
        };
        if to_commit.send(chunk).is_err() {
            return; // The committing side stopped (its error is the import's).
        }
        if let Some(e) = failed {
            let _ = to_commit.send(Ahead::Failed(e));
            return;
        }
        if at_end {
            return;
        }
    }
}

/// One `messages` document: read, and tied to the perch account it was sent to.
fn read_message(json: &[u8], index: &AccountIndex) -> Result<(Mention, bool), String> {
    let message = mongo::message_from_json(json)?;
    let Some(account) = index.resolve(&message.link) else {
        return Err(unknown_account(&message.link));
    };
    let was_processing = message.was_processing;
    Ok((message.send_to(account), was_processing))
}

fn next<'r>(
    reader: &'r mut DocumentReader<BufReader<File>>,
    path: &Path,
) -> Result<Option<super::documents::RawDocument<'r>>, ImportError> {
    let line = reader.line();
    reader.next_document().map_err(|e| ImportError::Read {
        path: path.to_path_buf(),
        line,
        detail: e.to_string(),
    })
}

fn unknown_account(link: &AccountLink) -> String {
    let named = [
        link.account_id
            .as_ref()
            .map(|s| format!("sent_to.account_id {s}")),
        link.twitter_id
            .as_ref()
            .map(|s| format!("sent_to.twitter_id {s}")),
        link.user.as_ref().map(|s| format!("user {s}")),
    ];
    let named: Vec<String> = named.into_iter().flatten().collect();
    format!(
        "its account ({}) is neither in the files nor in perch; pass --accounts or --users",
        named.join(", ")
    )
}
