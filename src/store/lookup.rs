//! Finding an account or a mention by what a person types: the names the CLI and the REST API
//! accept. An account by `@handle`, handle, X user id or perch id; a mention by post id
//! (`1578516295611748353`), `@handle:postid` (when a post mentions several tracked accounts) or
//! perch's id (a uuid).

use super::{FeedFilter, StoreError};
use crate::domain::{Account, Mention, MentionKey};

/// Why a lookup found nothing (or too much). The messages say what to type instead.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// Nothing by that name is stored.
    #[error("{0}")]
    NotFound(String),
    /// A post id that mentions several tracked accounts: name one.
    #[error("{0}")]
    Ambiguous(String),
    /// What was given is not an id of the kind asked for.
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many feed rows a lookup by perch id reads at most (perch ids are not indexed; a uuid
/// lookup walks the feed newest first, a page at a time).
const UUID_WALK_PAGE: usize = 500;

/// An account by `@handle`, handle (any case), X user id or perch id.
pub fn find_account(store: &dyn super::Backend, name: &str) -> Result<Account, LookupError> {
    let accounts = store.accounts()?;
    let wanted = name.trim().trim_start_matches('@');
    let found = accounts.iter().find(|a| {
        a.twitter_username.eq_ignore_ascii_case(wanted)
            || a.twitter_id == wanted
            || a.id.to_string() == wanted
    });
    match found {
        Some(a) => Ok(a.clone()),
        None if accounts.is_empty() => Err(LookupError::NotFound(format!(
            "no account {name}: perch tracks no accounts yet (add one with `perch login`)"
        ))),
        None => Err(LookupError::NotFound(format!(
            "no account {name}; known accounts: {}",
            accounts
                .iter()
                .map(Account::handle)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// A mention by post id, `@handle:postid` or perch id.
pub fn find_mention(store: &dyn super::Backend, id: &str) -> Result<Mention, LookupError> {
    find_mention_among(store, id, |_| true)
}

/// [`find_mention`] for someone who sees only some accounts (a team member, issue 16): a bare
/// post id is looked up among the accounts `visible` lets through, so one that also mentions an
/// account they may not see neither is ambiguous nor names that account.
pub fn find_mention_among(
    store: &dyn super::Backend,
    id: &str,
    visible: impl Fn(crate::domain::AccountId) -> bool,
) -> Result<Mention, LookupError> {
    let id = id.trim();
    let (account, tweet) = match id.split_once(':') {
        Some((handle, tweet)) => (Some(find_account(store, handle)?), tweet),
        None => (None, id),
    };
    if let Ok(tweet_id) = tweet.parse::<u64>() {
        let accounts = match account {
            Some(a) => vec![a],
            None => store
                .accounts()?
                .into_iter()
                .filter(|a| visible(a.id))
                .collect(),
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
            0 => Err(LookupError::NotFound(format!(
                "no stored mention with post id {tweet_id}"
            ))),
            1 => Ok(found.into_iter().next().expect("one element")),
            _ => Err(LookupError::Ambiguous(format!(
                "post {tweet_id} mentions several tracked accounts; name one: {}",
                found
                    .iter()
                    .map(|m| format!("@{}:{tweet_id}", m.sent_to.username))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        };
    }
    if account.is_none()
        && let Ok(uuid) = uuid::Uuid::parse_str(tweet)
    {
        let mut after = None;
        loop {
            let page = store.page_after(&FeedFilter::default(), after, UUID_WALK_PAGE)?;
            if let Some(m) = page.iter().find(|m| m.id == uuid) {
                return Ok(m.clone());
            }
            match page.last() {
                Some(last) => after = Some(last.key().into()),
                None => break,
            }
        }
        return Err(LookupError::NotFound(format!(
            "no stored mention with id {uuid}"
        )));
    }
    Err(LookupError::Malformed(format!(
        "{id:?} is not a mention id: use the post id (e.g. 1578516295611748353), @handle:postid, or perch's id (a uuid)"
    )))
}
