//! The PostgreSQL store: the [`Backend`] interface on a database a team shares. (The service
//! does not run on it yet; README "The PostgreSQL store (in progress)".)
//!
//! The schema is versioned (`migrations/`, run by refinery at connect, so a service always
//! starts on the newest schema it knows). Records are the same bytes sled keeps
//! (`store/codec.rs`); the columns beside them are what the pages filter and sort on, with an
//! index for each page the feed reads: newest first, by account, by status, and by both.
//!
//! Account tokens are only ever stored sealed (`store/sealed.rs`): [`PgStore::connect`] refuses
//! to run without a `token_key`, because a shared database is read by more than this machine.
//!
//! The client is the synchronous `postgres` crate behind a mutex: one connection, one statement
//! at a time, which keeps each page's transaction simple. It blocks, so async callers reach it
//! through `spawn_blocking`. Every statement has a time limit (`STATEMENT_TIMEOUT`) and the
//! connection one for connecting (`CONNECT_TIMEOUT`), so nothing waits on the database forever.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use postgres::{Client, NoTls, Row};

use crate::store::{AssignRefusal, Assignment, Draft, UndoAction, UndoStep};

pub mod changes;
mod costs;
pub mod leader;
mod outbox;
mod search;
mod shared;
mod team;
mod triage;

use changes::{Change, notify};

use super::backend::Backend;
use super::{FeedFilter, FeedPos, PageCommit, ReadCharge, Result, StoreError, codec, sealed};
use crate::domain::{
    Account, AccountId, Arrival, Mention, MentionKey, MentionStatus, TokenKey, Tokens,
};

mod embedded {
    refinery::embed_migrations!("src/store/pg/migrations");
}

/// How long connecting may take before it is reported as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any one statement may run (a page read, a page commit).
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema version from which the database keeps a token_key check.
const KEY_CHECK_SCHEMA: u32 = 7;
/// What the check seals (and the associated data it is sealed with).
const KEY_CHECK_PLAIN: &[u8] = b"perch token_key check";
const KEY_CHECK_AAD: &[u8] = b"perch:token_key_check";

/// How long the check of a connection a call found broken may take.
const RECONNECT_CHECK: Duration = Duration::from_secs(2);
/// The advisory lock key held while migrating ("perch" and 1 in ASCII, so it is recognisable in
/// `pg_locks`).
const MIGRATION_LOCK: i64 = 0x7065_7263_6801;
/// How long connecting may wait for others' migrations, and the longest a migration may run
/// (an index on a large table takes a while; it must still end).
const MIGRATION_TIMEOUT: Duration = Duration::from_secs(600);
/// TCP keepalives: a database that vanished from the network is noticed in about a minute,
/// not after the kernel's two hours (the statement timeout is the server's, and cannot help).
/// See [`STORE_DEAD_PEER`].
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// Where a database is, for messages: the URL without its password.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            // libpq-style parameters may carry it too (`?password=…`, `?sslpassword=…`).
            if parsed.query().is_some() {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let secret = k.eq_ignore_ascii_case("password")
                            || k.eq_ignore_ascii_case("sslpassword");
                        let v = if secret {
                            "***".to_string()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => "(a database URL that does not parse)".to_string(),
    }
}

pub struct PgStore {
    client: Mutex<Client>,
    /// To connect again after the connection is lost (a database restart, a network cut): a
    /// secret, it may hold the password.
    url: crate::domain::Secret,
    /// A call failed without an answer from the server (a broken connection rather than a
    /// refused statement): the next call checks the connection first.
    suspect: std::sync::atomic::AtomicBool,
    key: TokenKey,
    /// The prices charges use (from config, COSTS.md's defaults until set).
    pricing: std::sync::RwLock<crate::costs::Pricing>,
    /// The database, without its password, for messages.
    target: String,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url`, brings the schema up to date, and returns the store. Without a
    /// `token_key` it refuses, and says how to make one.
    pub fn connect(url: &str, key: Option<TokenKey>) -> Result<PgStore> {
        PgStore::connect_at_schema(url, key, None)
    }

    /// [`PgStore::connect`], bringing the schema up to `version` and no further (`None`: the
    /// newest). The migration tests use it for a database as an older perch left it.
    pub fn connect_at_schema(
        url: &str,
        key: Option<TokenKey>,
        version: Option<u32>,
    ) -> Result<PgStore> {
        let target = redacted(url);
        let Some(key) = key else {
            return Err(no_token_key(&target));
        };
        let mut client = connect_client(url, &target)?;
        let runner = match version {
            Some(version) => {
                embedded::migrations::runner().set_target(refinery::Target::Version(version))
            }
            None => embedded::migrations::runner(),
        };
        // Services starting together on one database migrate one at a time: the first takes
        // this advisory lock and migrates, the others wait (at most STATEMENT_TIMEOUT) and
        // then find nothing left to do.
        let migration_ms = MIGRATION_TIMEOUT.as_millis();
        client
            .batch_execute(&format!(
                "SET statement_timeout = {migration_ms}; SET lock_timeout = {migration_ms}"
            ))
            .and_then(|_| client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]))
            .map_err(|e| {
                database(
                    &target,
                    format!("waiting to migrate the schema: {}", detail(&e)),
                )
            })?;
        // A database a newer perch migrated: this one would not know what its tables mean.
        let migrated = match newest_applied(&mut client, &target) {
            Ok(found) if found > PgStore::latest_schema_version() => Err(database(
                &target,
                format!(
                    "its schema is version {found}, written by a newer perch (this perch knows up to {}); upgrade perch",
                    PgStore::latest_schema_version()
                ),
            )),
            Ok(_) => runner
                .run(&mut client)
                .map(|_| ())
                .map_err(|e| database(&target, format!("migrating the schema: {e}"))),
            Err(e) => Err(e),
        };
        let unlocked = client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .and_then(|_| {
                client.batch_execute(&format!(
                    "SET statement_timeout = {}; SET lock_timeout = 0",
                    STATEMENT_TIMEOUT.as_millis()
                ))
            });
        migrated?;
        unlocked.map_err(|e| {
            database(
                &target,
                format!("after migrating the schema: {}", detail(&e)),
            )
        })?;
        let store = PgStore {
            client: Mutex::new(client),
            url: crate::domain::Secret::new(url.to_string()),
            suspect: std::sync::atomic::AtomicBool::new(false),
            key,
            pricing: Default::default(),
            target,
        };
        if version.is_none_or(|v| v >= KEY_CHECK_SCHEMA) {
            store.check_token_key()?;
        }
        Ok(store)
    }

    /// Refuses a token_key that is not the team's: the database keeps a value sealed with the
    /// key it was first used with. A database from before the check (its tokens already
    /// sealed) takes the key that opens them, and only that one.
    fn check_token_key(&self) -> Result<()> {
        let wrong_key = || {
            StoreError::TokenKey(format!(
                "the token_key is not the one the team's database at {} was set up with: set the key the team's other services use (token_key, PERCH_TOKEN_KEY)",
                self.target
            ))
        };
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        // One at a time: two services starting on a new database agree on one key.
        tx.execute("LOCK TABLE token_key_check IN EXCLUSIVE MODE", &[])
            .map_err(|e| self.err(e))?;
        let existing = tx
            .query_opt("SELECT sealed FROM token_key_check WHERE id = 1", &[])
            .map_err(|e| self.err(e))?;
        if let Some(row) = existing {
            let sealed: Vec<u8> = column(&row, 0, &self.target)?;
            return match sealed::open(&self.key, KEY_CHECK_AAD, &sealed) {
                Ok(plain) if plain == KEY_CHECK_PLAIN => Ok(()),
                _ => Err(wrong_key()),
            };
        }
        if let Some(row) = tx
            .query_opt("SELECT account_id, sealed FROM account_tokens LIMIT 1", &[])
            .map_err(|e| self.err(e))?
        {
            let id: AccountId = column(&row, 0, &self.target)?;
            let sealed: Vec<u8> = column(&row, 1, &self.target)?;
            if sealed::open(&self.key, &tokens_aad(id), &sealed).is_err() {
                return Err(wrong_key());
            }
        }
        let check = sealed::seal(&self.key, KEY_CHECK_AAD, KEY_CHECK_PLAIN).map_err(|detail| {
            StoreError::Decode {
                what: "the token_key check".to_string(),
                detail,
            }
        })?;
        tx.execute(
            "INSERT INTO token_key_check (id, sealed) VALUES (1, $1)",
            &[&check],
        )
        .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// Connects to `url` (refusing without a `token_key`, as [`PgStore::connect`] does) and
    /// returns the schema version the database is at, changing nothing: for a perch that will
    /// not run on it, so that it does not migrate a database other services use.
    pub fn inspect(url: &str, key: Option<TokenKey>) -> Result<u32> {
        let target = redacted(url);
        if key.is_none() {
            return Err(no_token_key(&target));
        }
        let mut client = connect_client(url, &target)?;
        newest_applied(&mut client, &target)
    }

    /// The newest schema version this perch knows.
    pub fn latest_schema_version() -> u32 {
        embedded::migrations::runner()
            .get_migrations()
            .iter()
            .map(|m| m.version())
            .max()
            .unwrap_or(0)
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<u32> {
        newest_applied(&mut self.lock(), &self.target)
    }

    /// A page (or one streamed post) with everything written beside it, in one transaction:
    /// the new mentions (duplicates skipped, an unknown sender filled in), the posts that could
    /// not be read, the cursor (never moved back), the read's charge, and the change notice.
    pub(crate) fn commit_page_from(
        &self,
        account: AccountId,
        mentions: &[Mention],
        unreadable: &[u64],
        new_cursor: Option<u64>,
        charge: Option<&ReadCharge>,
        arrival: Arrival,
    ) -> Result<PageCommit> {
        if let Some(m) = mentions.iter().find(|m| m.sent_to.account_id != account) {
            return Err(StoreError::Invalid(format!(
                "mention {} was sent to account {}, not to {account} whose page is being committed",
                m.tweet_id, m.sent_to.account_id
            )));
        }
        let mut result = PageCommit::default();
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        // The page's new posts in one statement (a round trip per mention made ingest a tenth
        // of sled's): the first copy of each tweet id, the others counted as duplicates.
        let mut seen = HashSet::with_capacity(mentions.len());
        let mut unique: Vec<(i64, &Mention)> = Vec::with_capacity(mentions.len());
        for m in mentions {
            let Some(tweet) = m.tweet_id.parse::<u64>().ok().and_then(tweet_column) else {
                tracing::warn!(tweet_id = %m.tweet_id, %account, "mention with a tweet id that is not a 63-bit number skipped");
                continue;
            };
            if seen.insert(tweet) {
                unique.push((tweet, m));
            } else {
                result.duplicates += 1;
            }
        }
        let tweets: Vec<i64> = unique.iter().map(|(t, _)| *t).collect();
        let statuses: Vec<i16> = unique.iter().map(|(_, m)| m.status.code() as i16).collect();
        let records = unique
            .iter()
            .map(|(_, m)| codec::encode(*m, "mention"))
            .collect::<Result<Vec<Vec<u8>>>>()?;
        let inserted: HashSet<i64> = tx
            .query(
                "INSERT INTO mentions (account_id, tweet_id, status, record, streamed)
                 SELECT $1, t, s, r, $5 FROM unnest($2::bigint[], $3::smallint[], $4::bytea[]) AS u(t, s, r)
                 ON CONFLICT (account_id, tweet_id) DO NOTHING
                 RETURNING tweet_id",
                &[&account, &tweets, &statuses, &records, &(arrival == Arrival::Stream)],
            )
            .map_err(|e| self.err(e))?
            .iter()
            .map(|row| column::<i64>(row, 0, &self.target))
            .collect::<Result<_>>()?;
        result.inserted = inserted.len();
        result.duplicates += unique.len() - inserted.len();
        // Stored before: only a copy that names an unknown sender changes anything.
        let naming: Vec<(i64, &Mention)> = unique
            .into_iter()
            .filter(|(t, m)| !inserted.contains(t) && m.sender.username.is_some())
            .collect();
        if !naming.is_empty() {
            let wanted: Vec<i64> = naming.iter().map(|(t, _)| *t).collect();
            let rows = tx
                .query(
                    "SELECT tweet_id, record FROM mentions
                     WHERE account_id = $1 AND tweet_id = ANY($2) FOR UPDATE",
                    &[&account, &wanted],
                )
                .map_err(|e| self.err(e))?;
            for row in rows {
                let tweet: i64 = column(&row, 0, &self.target)?;
                let Some((_, copy)) = naming.iter().find(|(t, _)| *t == tweet) else {
                    continue;
                };
                let key = MentionKey {
                    account_id: account,
                    tweet_id: unsigned(tweet, "tweet id", &self.target)?,
                };
                // As in sled: a stored record that does not decode is left alone, not the end
                // of the account's sync.
                let stored = match self.decode_mention(&row, key) {
                    Ok(stored) => stored,
                    Err(e) => {
                        tracing::warn!(tweet_id = tweet, %account, "cannot read a stored mention to fill in its sender: {e}");
                        continue;
                    }
                };
                if let Some(named) = super::sender_filled_in(stored, copy, Utc::now()) {
                    tx.execute(
                        "UPDATE mentions SET record = $3 WHERE account_id = $1 AND tweet_id = $2",
                        &[&account, &tweet, &codec::encode(&named, "mention")?],
                    )
                    .map_err(|e| self.err(e))?;
                    result.senders_filled += 1;
                }
            }
        }
        if let Some(cursor) = new_cursor.and_then(tweet_column) {
            // GREATEST: the cursor never moves backwards, also when two services commit pages
            // of one account at once.
            tx.execute(
                "INSERT INTO cursors (account_id, since_id) VALUES ($1, $2)
                 ON CONFLICT (account_id) DO UPDATE SET since_id = GREATEST(cursors.since_id, EXCLUDED.since_id)",
                &[&account, &cursor],
            )
            .map_err(|e| self.err(e))?;
        }
        let unreadable: Vec<i64> = unreadable.iter().filter_map(|t| tweet_column(*t)).collect();
        if !unreadable.is_empty() {
            // Counted once each, ever, as in sled.
            result.unreadable = tx
                .query(
                    "INSERT INTO unreadable_posts (account_id, tweet_id)
                     SELECT $1, t FROM unnest($2::bigint[]) AS u(t)
                     ON CONFLICT DO NOTHING
                     RETURNING tweet_id",
                    &[&account, &unreadable],
                )
                .map_err(|e| self.err(e))?
                .len();
        }
        if let Some(charge) = charge {
            result.cost = self.charge_in(&mut tx, account, charge)?;
        }
        if result.inserted > 0 || result.senders_filled > 0 {
            let inserted = result.inserted as u64;
            notify(
                &mut tx,
                &Change::Mentions { account, inserted },
                &self.target,
            )?;
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(result)
    }

    /// The rows of `q`, at most `limit`, in feed order `DESC` (older from a position) or `ASC`
    /// (newer from it).
    fn feed_rows(&self, mut q: FeedQuery, limit: usize, order: &str) -> Result<Vec<Mention>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        q.params.push(Box::new(limit));
        let sql = format!(
            "SELECT account_id, tweet_id, record FROM mentions {} ORDER BY tweet_id {order}, account_id {order} LIMIT ${}",
            q.where_sql(),
            q.params.len()
        );
        let rows = self
            .lock()
            .query(sql.as_str(), &q.params())
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| {
                let key = MentionKey {
                    account_id: column(row, 0, &self.target)?,
                    tweet_id: unsigned(column(row, 1, &self.target)?, "tweet id", &self.target)?,
                };
                self.decode_mention(row, key)
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, Client> {
        // A panic while holding the lock cannot leave the client mid-statement in a way that
        // matters: postgres rolls back a transaction that was not committed.
        let mut client = self.client.lock().unwrap_or_else(|p| p.into_inner());
        // A lost connection (the server restarted, the network cut it) is opened again here,
        // at the next call, rather than every call failing until the service restarts. While
        // the database does not answer, each call waits at most CONNECT_TIMEOUT and then fails
        // with the closed connection's error.
        let suspect = self
            .suspect
            .swap(false, std::sync::atomic::Ordering::AcqRel);
        if client.is_closed() || (suspect && client.is_valid(RECONNECT_CHECK).is_err()) {
            match connect_client(self.url.expose(), &self.target) {
                Ok(fresh) => {
                    tracing::warn!(store = %self.target, "the database connection was lost; connected again");
                    *client = fresh;
                }
                Err(e) => {
                    // Still gone: the next call looks again.
                    self.suspect
                        .store(true, std::sync::atomic::Ordering::Release);
                    tracing::warn!(
                        "the database connection is lost and connecting again failed: {e}"
                    );
                }
            }
        }
        client
    }

    fn err(&self, e: postgres::Error) -> StoreError {
        // No SQLSTATE: the server did not answer (the connection broke, a timeout), rather than
        // refusing the statement.
        if e.code().is_none() {
            self.suspect
                .store(true, std::sync::atomic::Ordering::Release);
        }
        database(&self.target, detail(&e))
    }

    /// An account from a row of `SELECT id, record FROM accounts`.
    fn decode_account(&self, row: &Row) -> Result<Account> {
        let id: AccountId = column(row, "id", &self.target)?;
        let bytes: Vec<u8> = column(row, "record", &self.target)?;
        codec::decode(&bytes, || format!("account {id} in {}", self.target))
    }

    fn decode_mention(&self, row: &Row, key: MentionKey) -> Result<Mention> {
        let bytes: Vec<u8> = column(row, "record", &self.target)?;
        codec::decode(&bytes, || {
            format!(
                "mention {} of account {} in {}",
                key.tweet_id, key.account_id, self.target
            )
        })
    }
}

/// How this side of a connection notices a database that vanished from the network.
#[derive(Clone, Copy)]
struct DeadPeer {
    /// Keepalive probes after this long without a byte from the server (a statement waiting
    /// for its answer counts), one every `interval`, `retries` unanswered end it.
    idle: Duration,
    interval: Duration,
    retries: u32,
    /// Data sent and not acknowledged for this long ends it.
    user_timeout: Duration,
}

/// The store's connections: a vanished database noticed in about a minute.
const STORE_DEAD_PEER: DeadPeer = DeadPeer {
    idle: KEEPALIVE_IDLE,
    interval: Duration::from_secs(10),
    retries: 3,
    user_timeout: Duration::from_secs(60),
};

fn no_token_key(target: &str) -> StoreError {
    StoreError::TokenKey(format!(
        "perch keeps account tokens in the PostgreSQL database at {target} only sealed, and no token_key is set: run `perch team keygen`, then set token_key in the config file (or PERCH_TOKEN_KEY) to what it prints, the same on every service of the team"
    ))
}

fn connect_client(url: &str, target: &str) -> Result<Client> {
    connect_client_with(url, target, STORE_DEAD_PEER)
}

fn connect_client_with(url: &str, target: &str, dead: DeadPeer) -> Result<Client> {
    let mut config: postgres::Config = url
        .parse()
        .map_err(|e| database(target, format!("the database URL is not valid: {e}")))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    config.keepalives(true);
    config.keepalives_idle(dead.idle);
    config.keepalives_interval(dead.interval);
    config.keepalives_retries(dead.retries);
    config.tcp_user_timeout(dead.user_timeout);
    config.options(&format!(
        "-c statement_timeout={}",
        STATEMENT_TIMEOUT.as_millis()
    ));
    config.application_name("perch");
    config
        .connect(NoTls)
        .map_err(|e| database(target, format!("cannot connect: {}", detail(&e))))
}

/// The newest schema version applied to the database (0 for an empty one).
fn newest_applied(client: &mut Client, target: &str) -> Result<u32> {
    let exists = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history') IS NOT NULL",
            &[],
        )
        .map_err(|e| database(target, detail(&e)))?;
    if !column::<bool>(&exists, 0, target)? {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
            &[],
        )
        .map_err(|e| database(target, detail(&e)))?;
    let version: i32 = column(&row, 0, target)?;
    Ok(version.max(0) as u32)
}

/// A column of a row, or a decode error (never a panic) when the database holds something else.
fn column<'a, T: postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: impl postgres::row::RowIndex + std::fmt::Display,
    target: &str,
) -> Result<T> {
    let what = format!("column {index} in {target}");
    row.try_get(index).map_err(|e| StoreError::Decode {
        what,
        detail: e.to_string(),
    })
}

/// A `bigint` id column as the u64 perch uses; a negative one (the schema forbids it) is an error.
fn unsigned(value: i64, what: &str, target: &str) -> Result<u64> {
    u64::try_from(value).map_err(|_| StoreError::Decode {
        what: format!("a {what} in {target}"),
        detail: format!("{value} is negative"),
    })
}

/// What went wrong, in the server's words when it said ("db error" alone says nothing).
fn detail(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

fn database(target: &str, detail: String) -> StoreError {
    StoreError::Database {
        target: target.to_string(),
        detail,
    }
}

/// A tweet id as the `bigint` column holds it; `None` for one above 2^63 - 1 (X's are below).
fn tweet_column(tweet: u64) -> Option<i64> {
    i64::try_from(tweet).ok()
}

fn tokens_aad(id: AccountId) -> Vec<u8> {
    [b"account_tokens/".as_slice(), id.as_bytes()].concat()
}

/// The WHERE clause and parameters of a feed filter and position, numbered from `$1`.
struct FeedQuery {
    clauses: Vec<String>,
    params: Vec<Box<dyn postgres::types::ToSql + Sync>>,
}

impl FeedQuery {
    fn new(filter: &FeedFilter, after: Option<FeedPos>) -> FeedQuery {
        let mut q = FeedQuery {
            clauses: Vec::new(),
            params: Vec::new(),
        };
        if let Some(account) = filter.account {
            q.push("account_id = $", Box::new(account));
        }
        if let Some(status) = filter.status {
            q.push("status = $", Box::new(status.code() as i16));
        }
        if let Some(after) = after {
            // A position above every bigint is newer than everything stored: no condition.
            if let Some(tweet) = tweet_column(after.tweet_id) {
                let n = q.params.len();
                q.clauses
                    .push(format!("(tweet_id, account_id) < (${}, ${})", n + 1, n + 2));
                q.params.push(Box::new(tweet));
                q.params.push(Box::new(after.account_id));
            }
        }
        q
    }

    /// The rows matching `filter` strictly newer than `before` (every row when `None`).
    fn newer(filter: &FeedFilter, before: Option<FeedPos>) -> FeedQuery {
        let mut q = FeedQuery::new(filter, None);
        if let Some(before) = before {
            match tweet_column(before.tweet_id) {
                Some(tweet) => {
                    let n = q.params.len();
                    q.clauses
                        .push(format!("(tweet_id, account_id) > (${}, ${})", n + 1, n + 2));
                    q.params.push(Box::new(tweet));
                    q.params.push(Box::new(before.account_id));
                }
                // Above every bigint: nothing stored is newer.
                None => q.clauses.push("false".to_string()),
            }
        }
        q
    }

    fn push(&mut self, clause: &str, param: Box<dyn postgres::types::ToSql + Sync>) {
        self.params.push(param);
        self.clauses.push(format!("{clause}{}", self.params.len()));
    }

    /// Closes the parenthesis of the last clause pushed (`account_id = ANY($n`).
    fn close_last(&mut self) {
        if let Some(last) = self.clauses.last_mut() {
            last.push(')');
        }
    }

    fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn params(&self) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref()).collect()
    }
}

impl Backend for PgStore {
    fn put_account(&self, account: &Account) -> Result<()> {
        let record = codec::encode(account, "account")?;
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let owner = tx
            .query_opt(
                "SELECT id FROM accounts WHERE twitter_id = $1 FOR UPDATE",
                &[&account.twitter_id],
            )
            .map_err(|e| self.err(e))?
            .map(|row| column::<AccountId>(&row, 0, &self.target))
            .transpose()?;
        if let Some(existing) = owner.filter(|id| *id != account.id) {
            return Err(StoreError::DuplicateAccount {
                twitter_id: account.twitter_id.clone(),
                existing,
            });
        }
        let written = tx.execute(
            "INSERT INTO accounts (id, twitter_id, record) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET twitter_id = EXCLUDED.twitter_id, record = EXCLUDED.record",
            &[&account.id, &account.twitter_id, &record],
        );
        match written {
            Ok(_) => {
                notify(
                    &mut tx,
                    &Change::Account {
                        account: account.id,
                    },
                    &self.target,
                )?;
                tx.commit().map_err(|e| self.err(e))
            }
            // Another service added this X user as another account since the check above (no
            // row existed to lock): the unique twitter_id refuses this one. Say which it is.
            Err(e) if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) => {
                drop(tx);
                let existing = client
                    .query_opt(
                        "SELECT id FROM accounts WHERE twitter_id = $1",
                        &[&account.twitter_id],
                    )
                    .map_err(|e| self.err(e))?
                    .map(|row| column::<AccountId>(&row, 0, &self.target))
                    .transpose()?;
                match existing {
                    Some(existing) => Err(StoreError::DuplicateAccount {
                        twitter_id: account.twitter_id.clone(),
                        existing,
                    }),
                    None => Err(self.err(e)),
                }
            }
            Err(e) => Err(self.err(e)),
        }
    }

    fn account(&self, id: AccountId) -> Result<Option<Account>> {
        let row = self
            .lock()
            .query_opt("SELECT id, record FROM accounts WHERE id = $1", &[&id])
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_account(&row)).transpose()
    }

    fn account_by_twitter_id(&self, twitter_id: &str) -> Result<Option<Account>> {
        let row = self
            .lock()
            .query_opt(
                "SELECT id, record FROM accounts WHERE twitter_id = $1",
                &[&twitter_id],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_account(&row)).transpose()
    }

    fn accounts(&self) -> Result<Vec<Account>> {
        let rows = self
            .lock()
            .query("SELECT id, record FROM accounts", &[])
            .map_err(|e| self.err(e))?;
        let mut out = rows
            .iter()
            .map(|row| self.decode_account(row))
            .collect::<Result<Vec<_>>>()?;
        // The same order as sled's (by handle ignoring case), not the database's collation.
        out.sort_by_cached_key(|a| (a.twitter_username.to_lowercase(), a.id));
        Ok(out)
    }

    fn put_tokens(&self, id: AccountId, tokens: &Tokens) -> Result<()> {
        let plain = codec::encode(tokens, "tokens")?;
        let sealed = sealed::seal(&self.key, &tokens_aad(id), &plain).map_err(|detail| {
            StoreError::Decode {
                what: format!("tokens of account {id}"),
                detail,
            }
        })?;
        self.lock()
            .execute(
                "INSERT INTO account_tokens (account_id, sealed) VALUES ($1, $2)
                 ON CONFLICT (account_id) DO UPDATE SET sealed = EXCLUDED.sealed",
                &[&id, &sealed],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn tokens(&self, id: AccountId) -> Result<Option<Tokens>> {
        let row = self
            .lock()
            .query_opt(
                "SELECT sealed FROM account_tokens WHERE account_id = $1",
                &[&id],
            )
            .map_err(|e| self.err(e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let value: Vec<u8> = column(&row, 0, &self.target)?;
        let plain = sealed::open(&self.key, &tokens_aad(id), &value).map_err(|_| {
            StoreError::TokenKey(format!(
                "the tokens of account {id} in {} do not open with this token_key: set the key the team's services use, or authorize the account again (`perch accounts reauthorize @handle`)",
                self.target
            ))
        })?;
        codec::decode(&plain, || format!("tokens of account {id}")).map(Some)
    }

    fn cursor(&self, id: AccountId) -> Result<Option<u64>> {
        let row = self
            .lock()
            .query_opt("SELECT since_id FROM cursors WHERE account_id = $1", &[&id])
            .map_err(|e| self.err(e))?;
        row.map(|row| unsigned(column(&row, 0, &self.target)?, "cursor", &self.target))
            .transpose()
    }

    fn commit_page(
        &self,
        account: AccountId,
        mentions: &[Mention],
        new_cursor: Option<u64>,
    ) -> Result<PageCommit> {
        self.commit_page_from(account, mentions, &[], new_cursor, None, Arrival::Poll)
    }

    fn mention(&self, key: MentionKey) -> Result<Option<Mention>> {
        let Some(tweet) = tweet_column(key.tweet_id) else {
            return Ok(None);
        };
        let row = self
            .lock()
            .query_opt(
                "SELECT record FROM mentions WHERE account_id = $1 AND tweet_id = $2",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        row.map(|row| self.decode_mention(&row, key)).transpose()
    }

    fn set_status(
        &self,
        key: MentionKey,
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<Mention>> {
        let Some(tweet) = tweet_column(key.tweet_id) else {
            return Ok(None);
        };
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        let Some(row) = tx
            .query_opt(
                "SELECT record FROM mentions WHERE account_id = $1 AND tweet_id = $2 FOR UPDATE",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?
        else {
            return Ok(None);
        };
        let mut m = self.decode_mention(&row, key)?;
        m.status = status;
        m.updated_at = now;
        tx.execute(
            "UPDATE mentions SET status = $3, record = $4 WHERE account_id = $1 AND tweet_id = $2",
            &[
                &key.account_id,
                &tweet,
                &(status.code() as i16),
                &codec::encode(&m, "mention")?,
            ],
        )
        .map_err(|e| self.err(e))?;
        let change = Change::Mention {
            account: key.account_id,
            tweet: key.tweet_id,
        };
        notify(&mut tx, &change, &self.target)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(Some(m))
    }

    fn page_after(
        &self,
        filter: &FeedFilter,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        self.feed_rows(FeedQuery::new(filter, after), limit, "DESC")
    }

    fn count(&self, filter: &FeedFilter) -> Result<u64> {
        self.count_rows(FeedQuery::new(filter, None))
    }
}

impl PgStore {
    /// How many mentions `q`'s filter (account and status only) matches: the sum of the
    /// count deltas (schema version 9), not a count of rows.
    fn count_rows(&self, q: FeedQuery) -> Result<u64> {
        let sql = format!(
            "SELECT COALESCE(SUM(n), 0)::bigint FROM mention_counts {}",
            q.where_sql()
        );
        let row = self
            .lock()
            .query_one(sql.as_str(), &q.params())
            .map_err(|e| self.err(e))?;
        let n: i64 = column(&row, 0, &self.target)?;
        Ok(n.max(0) as u64)
    }
}

impl PgStore {
    /// Folds the count deltas (schema version 9) into one row per account and status, so a
    /// count sums a handful of rows. Safe beside writers: it removes only the rows it read,
    /// and deltas committed meanwhile stay for the next fold. Run by the sync leader.
    pub fn fold_counts(&self) -> Result<()> {
        self.lock()
            .batch_execute(
                "WITH folded AS (DELETE FROM mention_counts RETURNING account_id, status, n)
                 INSERT INTO mention_counts (account_id, status, n)
                 SELECT account_id, status, SUM(n) FROM folded
                 GROUP BY account_id, status HAVING SUM(n) <> 0",
            )
            .map_err(|e| self.err(e))
    }
}

impl super::backend::ServiceBackend for PgStore {
    fn maintain(&self) -> Result<()> {
        self.fold_counts()
    }
    fn cost_rows_among(
        &self,
        first: NaiveDate,
        last: NaiveDate,
        account: Option<AccountId>,
    ) -> Result<Vec<super::costs::CostRow>> {
        PgStore::cost_rows_of(self, first, last, account)
    }
    fn put_draft(&self, key: MentionKey, draft: &Draft) -> Result<()> {
        PgStore::put_draft(self, key, draft)
    }
    fn delete_draft(&self, key: MentionKey) -> Result<()> {
        PgStore::delete_draft(self, key)
    }
    fn triage_as(
        &self,
        person: &str,
        action: u64,
        keys: &[MentionKey],
        status: MentionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Mention>> {
        PgStore::triage_as(self, person, action, keys, status, now)
    }
    fn undo_step_as(
        &self,
        person: &str,
        action: Option<u64>,
        now: DateTime<Utc>,
    ) -> Result<Option<UndoStep>> {
        PgStore::undo_step_as(self, person, action, now)
    }
    fn last_undo_action_of(&self, person: &str) -> Result<Option<UndoAction>> {
        PgStore::last_undo_action_of(self, person)
    }
    fn assign_as(
        &self,
        by: &str,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Option<Assignment>, AssignRefusal>> {
        PgStore::assign_as(self, by, key, handle, person, now)
    }
    fn assignments(&self) -> Result<(Vec<(MentionKey, Assignment)>, bool)> {
        PgStore::assignments_upto(self, super::ASSIGNMENT_SCAN)
    }
    fn daily_counts(
        &self,
        account: AccountId,
        today: NaiveDate,
        days: u32,
    ) -> Result<Vec<(NaiveDate, u64)>> {
        PgStore::daily_counts(self, account, today, days)
    }
    fn commit_fetched_page_charged(
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
    fn commit_streamed_post(
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
    fn page_after_among(
        &self,
        filter: &FeedFilter,
        among: &[AccountId],
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        let mut q = FeedQuery::new(filter, after);
        q.push("account_id = ANY($", Box::new(among.to_vec()));
        q.close_last();
        self.feed_rows(q, limit, "DESC")
    }
    fn count_among(&self, filter: &FeedFilter, among: &[AccountId]) -> Result<u64> {
        let mut q = FeedQuery::new(filter, None);
        q.push("account_id = ANY($", Box::new(among.to_vec()));
        q.close_last();
        self.count_rows(q)
    }
    fn mention_with_outbox(&self, m: Mention) -> Result<(Mention, Option<super::OutboxEntry>)> {
        let entry = super::backend::OutboxBackend::outbox_current(self, m.key())?;
        Ok((m, entry))
    }
    fn assignment(&self, key: MentionKey) -> Result<Option<super::Assignment>> {
        PgStore::assignment(self, key)
    }
    fn search_page_among(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<super::SearchPage> {
        self.scan_where(filter, among, query, &|_| true, after, limit, max_scan)
    }
    fn assigned_page(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        assigned: &super::AssignedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
        count_scan: usize,
    ) -> Result<(super::SearchPage, Option<u64>)> {
        let scan = |filter: &FeedFilter,
                    among: Option<&[AccountId]>,
                    query: &str,
                    keep: &dyn Fn(FeedPos) -> bool,
                    after: Option<FeedPos>,
                    limit: usize,
                    max_scan: usize| {
            self.scan_where(filter, among, query, keep, after, limit, max_scan)
        };
        super::team::assigned_page_with(
            self, &scan, filter, among, assigned, query, after, limit, max_scan, count_scan,
        )
    }
    fn arrival(&self, key: MentionKey) -> Result<Arrival> {
        let Some(tweet) = tweet_column(key.tweet_id) else {
            return Ok(Arrival::Poll);
        };
        let row = self
            .lock()
            .query_opt(
                "SELECT streamed FROM mentions WHERE account_id = $1 AND tweet_id = $2",
                &[&key.account_id, &tweet],
            )
            .map_err(|e| self.err(e))?;
        let streamed = match row {
            Some(row) => column::<bool>(&row, 0, &self.target)?,
            None => false,
        };
        Ok(if streamed {
            Arrival::Stream
        } else {
            Arrival::Poll
        })
    }
    /// As sled's: the account, its tokens, cursor, drafts and unreadable posts go in one
    /// transaction; with `delete_mentions` its mentions too. Its outbox entries stay (they are
    /// the record of what was said from it).
    fn remove_account(&self, id: AccountId, delete_mentions: bool) -> Result<()> {
        let mut client = self.lock();
        let mut tx = client.transaction().map_err(|e| self.err(e))?;
        for sql in [
            "DELETE FROM account_tokens WHERE account_id = $1",
            "DELETE FROM cursors WHERE account_id = $1",
            "DELETE FROM drafts WHERE account_id = $1",
            "DELETE FROM unreadable_posts WHERE account_id = $1",
            "DELETE FROM accounts WHERE id = $1",
        ] {
            tx.execute(sql, &[&id]).map_err(|e| self.err(e))?;
        }
        if delete_mentions {
            tx.execute("DELETE FROM mentions WHERE account_id = $1", &[&id])
                .map_err(|e| self.err(e))?;
            tx.execute("DELETE FROM assignments WHERE account_id = $1", &[&id])
                .map_err(|e| self.err(e))?;
        }
        // Nobody keeps a grant to an account that is gone (a new login is a new grant), as in
        // sled; the people's rows are locked while their records change.
        let people = tx
            .query("SELECT name, record FROM people FOR UPDATE", &[])
            .map_err(|e| self.err(e))?;
        for row in people {
            let name: String = column(&row, 0, &self.target)?;
            let bytes: Vec<u8> = column(&row, 1, &self.target)?;
            let mut person: crate::domain::Person =
                codec::decode(&bytes, || format!("person {name} in {}", self.target))?;
            if person.grants.remove(&id).is_some() {
                tx.execute(
                    "UPDATE people SET record = $2 WHERE name = $1",
                    &[&name, &codec::encode(&person, "person")?],
                )
                .map_err(|e| self.err(e))?;
            }
        }
        notify(&mut tx, &Change::Account { account: id }, &self.target)?;
        tx.commit().map_err(|e| self.err(e))
    }
    fn ensure_room(&self) -> Result<()> {
        // The database server's disk is its operator's to watch; a full one fails the write
        // with PostgreSQL's own error, which is reported as it is.
        Ok(())
    }
    fn flush(&self) -> Result<()> {
        Ok(())
    }
    fn pricing(&self) -> crate::costs::Pricing {
        PgStore::pricing(self)
    }
    fn set_pricing(&self, pricing: crate::costs::Pricing) {
        PgStore::set_pricing(self, pricing)
    }
    fn record_read(&self, account: AccountId, charge: &ReadCharge) -> Result<crate::costs::Use> {
        PgStore::record_read(self, account, charge)
    }
    fn month_spend(
        &self,
        month: crate::costs::Month,
    ) -> Result<(u64, std::collections::HashMap<AccountId, u64>)> {
        PgStore::month_spend(self, month)
    }
    fn cost_by_kind(
        &self,
        first: chrono::NaiveDate,
        last: chrono::NaiveDate,
        account: Option<AccountId>,
    ) -> Result<crate::costs::ByKind> {
        PgStore::cost_by_kind(self, first, last, account)
    }
    fn note_budget_warning(&self, scope: &str, month: crate::costs::Month) -> Result<bool> {
        PgStore::note_budget_warning(self, scope, month)
    }
    fn put_x_usage(&self, usage: &crate::costs::XUsage) -> Result<()> {
        PgStore::put_x_usage(self, usage)
    }
    fn x_usage(&self) -> Result<Option<crate::costs::XUsage>> {
        PgStore::x_usage(self)
    }
    fn add_person(&self, person: &crate::domain::Person) -> Result<()> {
        PgStore::add_person(self, person)
    }
    fn update_person(&self, person: &crate::domain::Person) -> Result<()> {
        PgStore::update_person(self, person)
    }
    fn person(&self, name: &str) -> Result<Option<crate::domain::Person>> {
        PgStore::person(self, name)
    }
    fn people(&self) -> Result<Vec<crate::domain::Person>> {
        PgStore::people(self)
    }
    fn person_by_token_hash(&self, token_hash: &str) -> Result<Option<crate::domain::Person>> {
        PgStore::person_by_token_hash(self, token_hash)
    }
    fn remove_person(&self, name: &str) -> Result<Option<Vec<MentionKey>>> {
        PgStore::remove_person(self, name)
    }
    fn append_audit(&self, entry: crate::domain::AuditEntry) -> Result<crate::domain::AuditEntry> {
        PgStore::append_audit(self, entry)
    }
    fn audit(&self, query: &super::AuditQuery) -> Result<super::AuditPage> {
        PgStore::audit(self, query)
    }
    fn page_before(
        &self,
        filter: &FeedFilter,
        before: Option<FeedPos>,
        limit: usize,
    ) -> Result<Vec<Mention>> {
        let mut rows = self.feed_rows(FeedQuery::newer(filter, before), limit, "ASC")?;
        rows.reverse();
        Ok(rows)
    }
    fn announce_login(&self, account: AccountId) -> Result<()> {
        notify(
            &mut *self.lock(),
            &Change::LoggedIn { account },
            &self.target,
        )
    }
    fn share_presence(
        &self,
        key: MentionKey,
        person: &str,
        replying: bool,
        origin: uuid::Uuid,
    ) -> Result<()> {
        let change = Change::Presence {
            account: key.account_id,
            tweet: key.tweet_id,
            person: person.to_string(),
            replying,
            origin,
        };
        notify(&mut *self.lock(), &change, &self.target)
    }
    fn sled(&self) -> Option<&super::Store> {
        None
    }
    fn location(&self) -> String {
        format!("the PostgreSQL database at {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn a_database_url_in_a_message_never_shows_a_password() {
        let shown = redacted("postgres://perch:hunter2@db.example:5432/perch?sslmode=require");
        assert!(
            !shown.contains("hunter2") && shown.contains("db.example"),
            "{shown}"
        );
        // libpq-style parameters carry it too.
        let shown = redacted(
            "postgres://db.example/perch?password=hunter2&sslpassword=s3cret&application_name=x",
        );
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert!(shown.contains("application_name=x"), "{shown}");
        assert!(!redacted("not a url with hunter2").contains("hunter2"));
    }
}
