//! Newest-first (and oldest-first) walks over the feed orders, as a k-way merge of per-account key
//! ranges. See `keys.rs` for why "all accounts" and "one status" are merges rather than their own
//! index: a page reads `limit` entries from at most one range per account, whatever the store holds.

use std::ops::Bound;
use std::path::{Path, PathBuf};

use sled::IVec;

use super::keys::{self, MENTION};
use super::{FeedFilter, FeedPos, Result, StoreError, sled_error};
use crate::domain::AccountId;

/// Which way a walk goes, and from where (exclusive).
#[derive(Clone, Copy, Debug)]
pub enum Walk {
    /// Newest first, strictly older than the position (from the newest when `None`).
    Older(Option<FeedPos>),
    /// Oldest first, strictly newer than the position (from the oldest when `None`).
    Newer(Option<FeedPos>),
}

/// One account's key range, in walk order.
type RangeIter = Box<dyn Iterator<Item = sled::Result<(IVec, IVec)>> + Send>;

struct Stream {
    account: AccountId,
    iter: RangeIter,
    head: Option<(u64, IVec)>,
}

/// A merged walk over one filter. Yields each row's position and its record bytes.
pub struct FeedWalk {
    dir: PathBuf,
    tree: sled::Tree,
    newest_first: bool,
    /// Records are the range values (`m` ranges), or must be fetched by key (`s` index ranges).
    inline_records: bool,
    streams: Vec<Stream>,
}

/// The accounts that have mention records, found by skipping from one account's range to the
/// next (one seek per account), so that mentions of a removed account stay reachable under "All".
pub fn mention_owners(tree: &sled::Tree) -> sled::Result<Vec<AccountId>> {
    let mut owners = Vec::new();
    let mut from = Bound::Included(vec![MENTION]);
    let end = Bound::Excluded(vec![MENTION + 1]);
    while let Some(entry) = tree.range::<Vec<u8>, _>((from.clone(), end.clone())).next() {
        let (key, _) = entry?;
        let Some(account) = keys::key_account(&key) else {
            break;
        };
        owners.push(account);
        let mut last = keys::account_key(MENTION, account).to_vec();
        last.extend_from_slice(&[0xFF; 8]);
        from = Bound::Excluded(last);
    }
    Ok(owners)
}

impl FeedWalk {
    /// A walk over `filter`, limited to the accounts in `among` when given (a member's view of
    /// "all accounts", issue 16): the merge then has one range per account of theirs.
    pub fn among(
        dir: &Path,
        tree: &sled::Tree,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        walk: Walk,
    ) -> Result<FeedWalk> {
        let accounts = match (filter.account, among) {
            (Some(a), Some(only)) => only.iter().copied().filter(|o| *o == a).collect(),
            (Some(a), None) => vec![a],
            (None, Some(only)) => only.to_vec(),
            (None, None) => mention_owners(tree).map_err(|e| sled_error(dir, e))?,
        };
        let mut streams = Vec::with_capacity(accounts.len());
        for account in accounts {
            let prefix: Vec<u8> = match filter.status {
                None => keys::account_key(MENTION, account).to_vec(),
                Some(status) => keys::status_prefix(account, status).to_vec(),
            };
            if let Some(iter) = range_for(tree, &prefix, account, walk) {
                streams.push(Stream {
                    account,
                    iter,
                    head: None,
                });
            }
        }
        let mut feed = FeedWalk {
            dir: dir.to_path_buf(),
            tree: tree.clone(),
            newest_first: matches!(walk, Walk::Older(_)),
            inline_records: filter.status.is_none(),
            streams,
        };
        for i in 0..feed.streams.len() {
            feed.advance(i)?;
        }
        Ok(feed)
    }

    fn advance(&mut self, i: usize) -> Result<()> {
        let stream = &mut self.streams[i];
        stream.head = match stream.iter.next() {
            None => None,
            Some(Err(e)) => return Err(sled_error(&self.dir, e)),
            Some(Ok((key, value))) => {
                let tweet = keys::trailing_tweet(&key).ok_or_else(|| StoreError::Decode {
                    what: format!("a feed key of account {}", stream.account),
                    detail: format!("key of {} bytes is too short", key.len()),
                })?;
                Some((tweet, value))
            }
        };
        Ok(())
    }

    /// The next row: its position and record bytes. Index entries whose record is missing are
    /// skipped with a warning (they cannot be shown, and one bad entry must not hide the rest).
    pub fn next_row(&mut self) -> Result<Option<(FeedPos, IVec)>> {
        loop {
            let mut best: Option<(usize, FeedPos)> = None;
            for (i, s) in self.streams.iter().enumerate() {
                if let Some((tweet, _)) = &s.head {
                    let pos = FeedPos {
                        tweet_id: *tweet,
                        account_id: s.account,
                    };
                    let better = match best {
                        None => true,
                        Some((_, b)) => {
                            if self.newest_first {
                                pos > b
                            } else {
                                pos < b
                            }
                        }
                    };
                    if better {
                        best = Some((i, pos));
                    }
                }
            }
            let Some((i, pos)) = best else {
                return Ok(None);
            };
            let value = self.streams[i].head.take().map(|(_, v)| v);
            self.advance(i)?;
            if self.inline_records {
                if let Some(v) = value {
                    return Ok(Some((pos, v)));
                }
                continue;
            }
            let record = self
                .tree
                .get(keys::mention_key(pos.account_id, pos.tweet_id))
                .map_err(|e| sled_error(&self.dir, e))?;
            match record {
                Some(r) => return Ok(Some((pos, r))),
                None => tracing::warn!(
                    account = %pos.account_id,
                    tweet = pos.tweet_id,
                    "status index entry without a mention record; skipped"
                ),
            }
        }
    }
}

/// The key range of one account's stream that lies beyond `walk`'s position, in walk order.
/// `None` when nothing can lie beyond it.
fn range_for(
    tree: &sled::Tree,
    prefix: &[u8],
    account: AccountId,
    walk: Walk,
) -> Option<RangeIter> {
    let with_tweet = |t: u64| {
        let mut k = prefix.to_vec();
        k.extend_from_slice(&t.to_be_bytes());
        k
    };
    match walk {
        Walk::Older(after) => {
            // Rows strictly before `after` in (tweet, account) order, read backwards.
            let last_tweet = match after {
                None => u64::MAX,
                Some(p) if account < p.account_id => p.tweet_id,
                Some(p) => p.tweet_id.checked_sub(1)?,
            };
            let range = (
                Bound::Included(with_tweet(0)),
                Bound::Included(with_tweet(last_tweet)),
            );
            Some(Box::new(tree.range::<Vec<u8>, _>(range).rev()))
        }
        Walk::Newer(before) => {
            let first_tweet = match before {
                None => 0,
                Some(p) if account > p.account_id => p.tweet_id,
                Some(p) => p.tweet_id.checked_add(1)?,
            };
            let range = (
                Bound::Included(with_tweet(first_tweet)),
                Bound::Included(with_tweet(u64::MAX)),
            );
            Some(Box::new(tree.range::<Vec<u8>, _>(range)))
        }
    }
}
