//! The team's records (issue 16): people and their grants, who each mention is assigned to, and
//! the append-only audit log. Layout: `keys::PERSON`, `keys::ASSIGNED`, `keys::AUDIT`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Batch;

use std::collections::HashSet;

use super::{
    FeedFilter, FeedPos, Result, SearchPage, Store, StoreError, codec, keys, search_matches,
};
use crate::domain::team::OWNER_NAME;
use crate::domain::{AccountId, AuditAction, AuditEntry, MentionKey, Person};

codec::serde_record!(Person, AuditEntry, Assignment);

/// Who a mention is assigned to, and since when.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    pub person: String,
    pub at: DateTime<Utc>,
}

/// Which mentions the assignment filter keeps (`?assigned=`, `perch mentions list --assigned`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignedFilter {
    /// The ones assigned to this person.
    To(String),
    /// The ones assigned to nobody.
    Nobody,
}

/// Why [`Store::assign_as`] changed nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignRefusal {
    NoSuchPerson(String),
    MayNotSee { person: String, handle: String },
}

impl std::fmt::Display for AssignRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssignRefusal::NoSuchPerson(name) => write!(
                f,
                "there is no person called {name:?} (`perch team list` shows the team)"
            ),
            AssignRefusal::MayNotSee { person, handle } => write!(
                f,
                "{person} may not see {handle}'s mentions: grant it first (`perch team grant {person} {handle} read`)"
            ),
        }
    }
}

/// A search query's leading team words: `is:mine` (assigned to `me`), `is:unassigned`, and
/// [`Store::search_page_as`] on any store.
pub fn search_page_as<S: super::ServiceBackend + ?Sized>(
    store: &S,
    me: &str,
    filter: &FeedFilter,
    query: &str,
    after: Option<FeedPos>,
    limit: usize,
    max_scan: usize,
) -> Result<SearchPage> {
    match team_words(query, me) {
        (Some(assigned), rest) => Ok(store
            .assigned_page(filter, None, &assigned, rest, after, limit, max_scan, 0)?
            .0),
        (None, _) => store.search_page_among(filter, None, query, after, limit, max_scan),
    }
}

/// `assigned:NAME` (`assigned:none` too). Returns the assignment filter they ask for (the last
/// one wins) and the rest of the query, searched as text. `/is:mine invoice` in the dashboard.
pub fn team_words<'q>(query: &'q str, me: &str) -> (Option<AssignedFilter>, &'q str) {
    let mut rest = query.trim_start();
    let mut filter = None;
    loop {
        let (word, after) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let found = match word {
            "is:mine" => AssignedFilter::To(me.to_string()),
            "is:unassigned" | "assigned:none" | "assigned:nobody" => AssignedFilter::Nobody,
            w => match w.strip_prefix("assigned:") {
                Some("me") => AssignedFilter::To(me.to_string()),
                Some(name) if !name.is_empty() => {
                    AssignedFilter::To(name.trim_start_matches('@').to_string())
                }
                _ => return (filter, rest),
            },
        };
        filter = Some(found);
        rest = after.trim_start();
    }
}

/// How many assignments one assignment-filtered read examines at most. People assign by hand,
/// so a store holds far fewer than this; a read that meets more says its count is not known.
pub const ASSIGNMENT_SCAN: usize = 100_000;

/// Which audit entries to read: newest first, strictly older than `before` (a `seq`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub person: Option<String>,
    pub mention: Option<u64>,
    pub account: Option<AccountId>,
    /// Only the entries about these accounts (a member's view); `None`: every entry.
    pub among: Option<Vec<AccountId>>,
    pub before: Option<u64>,
    pub limit: usize,
}

/// How many entries one audit read examines at most, so a filter that matches little never walks
/// a long log in one request; the page then says where to go on.
pub const AUDIT_SCAN: usize = 100_000;

#[derive(Clone, Debug, PartialEq)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` to read on; `None`: the log has been read to its start.
    pub next_before: Option<u64>,
}

fn person_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(keys::PERSON);
    k.extend_from_slice(name.as_bytes());
    k
}

fn audit_key(seq: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = keys::AUDIT;
    k[1..].copy_from_slice(&seq.to_be_bytes());
    k
}

impl Store {
    // ---- people ---------------------------------------------------------------------------

    /// Adds a person; refused if one of that name exists (`StoreError::Conflict`).
    pub fn add_person(&self, person: &Person) -> Result<()> {
        let _guard = self.lock();
        if self.person(&person.name)?.is_some() {
            return Err(StoreError::Conflict(format!(
                "there is already a person called {}; `perch team remove {}` first to make a new token",
                person.name, person.name
            )));
        }
        self.put_person_locked(person)
    }

    /// Replaces a person's record (role, grants); refused if there is none by that name.
    pub fn update_person(&self, person: &Person) -> Result<()> {
        let _guard = self.lock();
        if self.person(&person.name)?.is_none() {
            return Err(StoreError::Conflict(format!(
                "there is no person called {} (`perch team list` shows the team)",
                person.name
            )));
        }
        self.put_person_locked(person)
    }

    fn put_person_locked(&self, person: &Person) -> Result<()> {
        let mut batch = Batch::default();
        batch.insert(person_key(&person.name), codec::encode(person, "person")?);
        self.apply(batch)
    }

    pub fn person(&self, name: &str) -> Result<Option<Person>> {
        self.get(&person_key(name))?
            .map(|v| codec::decode(&v, || format!("person {name}")))
            .transpose()
    }

    /// Everyone, by name. A team is small: this is a short read.
    pub fn people(&self) -> Result<Vec<Person>> {
        let mut out = Vec::new();
        for entry in self.tree.scan_prefix([keys::PERSON]) {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let name = String::from_utf8_lossy(&key[1..]).into_owned();
            out.push(codec::decode(&value, || format!("person {name}"))?);
        }
        Ok(out)
    }

    /// The person whose token hashes to `token_hash`, if any. Reads the whole (small) team; the
    /// comparison of each hash does not stop at the first differing byte.
    pub fn person_by_token_hash(&self, token_hash: &str) -> Result<Option<Person>> {
        Ok(with_token_hash(self.people()?, token_hash))
    }

    /// Removes a person (their token stops working at once).
    ///
    /// Their assignments go with them, in the same write: the mentions are nobody's again (and a
    /// later person of that name starts with none). Returns the mentions unassigned, `None` when
    /// there is no such person.
    pub fn remove_person(&self, name: &str) -> Result<Option<Vec<MentionKey>>> {
        let _guard = self.lock();
        if self.person(name)?.is_none() {
            return Ok(None);
        }
        let mut batch = Batch::default();
        batch.remove(person_key(name));
        let (assignments, _) = self.assignments()?;
        let theirs: Vec<MentionKey> = assignments
            .into_iter()
            .filter(|(_, a)| a.person == name)
            .map(|(k, _)| k)
            .collect();
        for key in &theirs {
            batch.remove(&keys::assigned_key(key.account_id, key.tweet_id));
        }
        self.apply(batch)?;
        Ok(Some(theirs))
    }

    /// Stages the removal of every grant to `account` (the account is being removed).
    pub(super) fn stage_forget_grants(&self, batch: &mut Batch, account: AccountId) -> Result<()> {
        for mut person in self.people()? {
            if person.grants.remove(&account).is_some() {
                batch.insert(person_key(&person.name), codec::encode(&person, "person")?);
            }
        }
        Ok(())
    }

    // ---- assignments ----------------------------------------------------------------------

    /// `by` assigns the mention `key` (of the account `handle`) to `person`, or to nobody with
    /// `None`, and records it in the audit log in the same write. Refused, changing nothing, when
    /// `person` is not on the team or may not see the account. Returns the assignment it
    /// replaced. Whether `by` may assign to `person` is the caller's rule (the API's).
    pub fn assign_as(
        &self,
        by: &str,
        key: MentionKey,
        handle: &str,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<Option<Assignment>, AssignRefusal>> {
        if let Some(name) = person
            && name != OWNER_NAME
        {
            let Some(p) = self.person(name)? else {
                return Ok(Err(AssignRefusal::NoSuchPerson(name.to_string())));
            };
            if !p.may_read(key.account_id) {
                return Ok(Err(AssignRefusal::MayNotSee {
                    person: name.to_string(),
                    handle: handle.to_string(),
                }));
            }
        }
        let _guard = self.lock();
        let before = self.assignment(key)?;
        let mut batch = Batch::default();
        self.stage_assignment(&mut batch, key, person, now)?;
        self.stage_audit_locked(
            &mut batch,
            AuditEntry::new(by, AuditAction::Assign, now, person.unwrap_or("nobody"))
                .mention(key, handle),
        )?;
        self.apply(batch)?;
        Ok(Ok(before))
    }

    /// Assigns `key` to `person`, or to nobody with `None`, with no check and no audit entry
    /// (imports, tests). Returns the assignment it replaced.
    pub fn assign(
        &self,
        key: MentionKey,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Assignment>> {
        let _guard = self.lock();
        let before = self.assignment(key)?;
        let mut batch = Batch::default();
        self.stage_assignment(&mut batch, key, person, now)?;
        self.apply(batch)?;
        Ok(before)
    }

    fn stage_assignment(
        &self,
        batch: &mut Batch,
        key: MentionKey,
        person: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let k = keys::assigned_key(key.account_id, key.tweet_id);
        match person {
            Some(name) => batch.insert(
                &k,
                codec::encode(
                    &Assignment {
                        person: name.to_string(),
                        at: now,
                    },
                    "assignment",
                )?,
            ),
            None => batch.remove(&k),
        }
        Ok(())
    }

    pub fn assignment(&self, key: MentionKey) -> Result<Option<Assignment>> {
        self.get(&keys::assigned_key(key.account_id, key.tweet_id))?
            .map(|v| codec::decode(&v, || format!("assignment of post {}", key.tweet_id)))
            .transpose()
    }

    /// [`Store::search_page`] for `me`, reading the query's leading team words
    /// ([`team_words`]): `is:mine`, `is:unassigned`, `assigned:NAME`.
    pub fn search_page_as(
        &self,
        me: &str,
        filter: &FeedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage> {
        search_page_as(self, me, filter, query, after, limit, max_scan)
    }

    /// The assignments, in key order (account, then post): at most [`ASSIGNMENT_SCAN`], and
    /// whether that was all of them.
    pub fn assignments(&self) -> Result<(Vec<(MentionKey, Assignment)>, bool)> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix([keys::ASSIGNED]) {
            if out.len() >= ASSIGNMENT_SCAN {
                return Ok((out, false));
            }
            let (k, v) = item.map_err(|e| self.err(e))?;
            let (Some(account_id), Some(tweet_id)) =
                (keys::key_account(&k), keys::trailing_tweet(&k))
            else {
                continue;
            };
            let assignment: Assignment =
                codec::decode(&v, || format!("assignment of post {tweet_id}"))?;
            out.push((
                MentionKey {
                    account_id,
                    tweet_id,
                },
                assignment,
            ));
        }
        Ok((out, true))
    }

    /// A page of `filter`'s feed (newest first, strictly older than `after`, among the accounts
    /// in `among` when given, whose text matches `query`), keeping only what `assigned` keeps.
    ///
    /// "Assigned to NAME" reads the assignments and then those mentions, so its cost follows the
    /// number of assignments, not the store, and its page is `exhausted` when it ends. "Nobody"
    /// walks the feed like a search, skipping the assigned rows, examining at most `max_scan`
    /// (and `count_scan` to count a query's matches: `None` beyond that). Returns the page and
    /// the number of matching mentions when it is known.
    #[allow(clippy::too_many_arguments)]
    pub fn assigned_page(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        assigned: &AssignedFilter,
        query: &str,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
        count_scan: usize,
    ) -> Result<(SearchPage, Option<u64>)> {
        let scan = |filter: &FeedFilter,
                    among: Option<&[AccountId]>,
                    query: &str,
                    keep: &dyn Fn(FeedPos) -> bool,
                    after: Option<FeedPos>,
                    limit: usize,
                    max_scan: usize| {
            self.scan_page_where(filter, among, query, keep, after, limit, max_scan)
        };
        assigned_page_with(
            self, &scan, filter, among, assigned, query, after, limit, max_scan, count_scan,
        )
    }

    // ---- the audit log --------------------------------------------------------------------

    /// Appends an entry (its `seq` is chosen here, increasing) and returns it as stored.
    pub fn append_audit(&self, entry: AuditEntry) -> Result<AuditEntry> {
        let _guard = self.lock();
        let mut batch = Batch::default();
        let entry = self.stage_audit_locked(&mut batch, entry)?;
        self.apply(batch)?;
        Ok(entry)
    }

    /// Stages `entry` in `batch` with its `seq`. The caller holds the writer lock and applies
    /// the batch before releasing it: one past the newest entry, so the log only grows, with no
    /// gaps a reader could mistake for lost entries.
    fn stage_audit_locked(&self, batch: &mut Batch, mut entry: AuditEntry) -> Result<AuditEntry> {
        let last = self
            .tree
            .scan_prefix([keys::AUDIT])
            .next_back()
            .transpose()
            .map_err(|e| self.err(e))?
            .and_then(|(k, _)| keys::read_u64(&k[1..]));
        entry.seq = last.map_or(1, |s| s + 1);
        batch.insert(&audit_key(entry.seq), codec::encode(&entry, "audit entry")?);
        Ok(entry)
    }

    /// Entries matching `query`, newest first, examining at most [`AUDIT_SCAN`] entries.
    pub fn audit(&self, query: &AuditQuery) -> Result<AuditPage> {
        let end = query
            .before
            .map_or(audit_key(u64::MAX).to_vec(), |b| audit_key(b).to_vec());
        let range = self.tree.range(vec![keys::AUDIT]..end);
        let mut page = AuditPage {
            entries: Vec::new(),
            next_before: None,
        };
        let mut last_seq = None;
        let mut ended = true;
        for (scanned, item) in range.rev().enumerate() {
            if page.entries.len() >= query.limit || scanned >= AUDIT_SCAN {
                ended = false;
                break;
            }
            let (key, value) = item.map_err(|e| self.err(e))?;
            let seq = keys::read_u64(&key[1..]).unwrap_or(0);
            last_seq = Some(seq);
            let entry: AuditEntry = codec::decode(&value, || format!("audit entry {seq}"))?;
            if matches(query, &entry) {
                page.entries.push(entry);
            }
        }
        if !ended {
            page.next_before = last_seq;
        }
        Ok(page)
    }
}

fn matches(query: &AuditQuery, entry: &AuditEntry) -> bool {
    query.person.as_ref().is_none_or(|p| *p == entry.person)
        && query.mention.is_none_or(|m| entry.mention == Some(m))
        && query.account.is_none_or(|a| entry.account_id == Some(a))
        && query
            .among
            .as_ref()
            .is_none_or(|among| entry.account_id.is_some_and(|a| among.contains(&a)))
}

/// The one of `people` whose token hashes to `token_hash`: every hash is compared in full, so the
/// time taken does not tell how much of a guess was right (either backend).
pub(crate) fn with_token_hash(people: Vec<Person>, token_hash: &str) -> Option<Person> {
    let mut found = None;
    for person in people {
        if constant_time_eq(person.token_hash.as_bytes(), token_hash.as_bytes()) {
            found = Some(person);
        }
    }
    found
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The scan of a text search keeping only the rows `keep` lets through (each backend's own:
/// sled's reads raw records, PostgreSQL's pages of rows).
pub(crate) type ScanWhere<'a> = dyn Fn(
        &FeedFilter,
        Option<&[AccountId]>,
        &str,
        &dyn Fn(FeedPos) -> bool,
        Option<FeedPos>,
        usize,
        usize,
    ) -> Result<SearchPage>
    + 'a;

/// [`Store::assigned_page`] on any store, with its scan.
#[allow(clippy::too_many_arguments)]
pub(crate) fn assigned_page_with<S: super::ServiceBackend + ?Sized>(
    store: &S,
    scan: &ScanWhere<'_>,
    filter: &FeedFilter,
    among: Option<&[AccountId]>,
    assigned: &AssignedFilter,
    query: &str,
    after: Option<FeedPos>,
    limit: usize,
    max_scan: usize,
    count_scan: usize,
) -> Result<(SearchPage, Option<u64>)> {
    let (all, complete) = store.assignments()?;
    let wanted = |key: MentionKey| {
        filter.account.is_none_or(|a| a == key.account_id)
            && among.is_none_or(|only| only.contains(&key.account_id))
    };
    match assigned {
        AssignedFilter::To(person) => {
            let mut hits = Vec::new();
            for (key, a) in all {
                if a.person != *person || !wanted(key) {
                    continue;
                }
                let Some(m) = store.mention(key)? else {
                    continue;
                };
                if filter.status.is_none_or(|s| s == m.status) && search_matches(query, &m) {
                    hits.push(m);
                }
            }
            hits.sort_by_key(|m| std::cmp::Reverse(FeedPos::from(m.key())));
            let total = complete.then_some(hits.len() as u64);
            hits.retain(|m| after.is_none_or(|a| FeedPos::from(m.key()) < a));
            let exhausted = hits.len() <= limit;
            hits.truncate(limit);
            let page = SearchPage {
                resume_after: hits.last().map(|m| FeedPos::from(m.key())).or(after),
                hits,
                exhausted,
            };
            Ok((page, total))
        }
        AssignedFilter::Nobody => {
            let taken: HashSet<FeedPos> = all.iter().map(|(k, _)| FeedPos::from(*k)).collect();
            let page = scan(
                filter,
                among,
                query,
                &|pos| !taken.contains(&pos),
                after,
                limit,
                max_scan,
            )?;
            // With a query: counted by scanning, up to `count_scan` rows (unknown beyond).
            // Without: the filter's count less its assigned mentions.
            let total = if !complete {
                None
            } else if !query.trim().is_empty() {
                let all = scan(
                    filter,
                    among,
                    query,
                    &|pos| !taken.contains(&pos),
                    None,
                    usize::MAX,
                    count_scan,
                )?;
                all.exhausted.then_some(all.hits.len() as u64)
            } else {
                let everything = match among {
                    None => store.count(filter)?,
                    Some(only) => store.count_among(filter, only)?,
                };
                let mut assigned_here = 0u64;
                for (key, _) in &all {
                    if !wanted(*key) {
                        continue;
                    }
                    let counts = match filter.status {
                        None => store.mention(*key)?.is_some(),
                        Some(s) => store.mention(*key)?.is_some_and(|m| m.status == s),
                    };
                    assigned_here += u64::from(counts);
                }
                Some(everything.saturating_sub(assigned_here))
            };
            Ok((page, total))
        }
    }
}
