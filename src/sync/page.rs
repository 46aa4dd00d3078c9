//! What one mentions page lets perch store, and how far it lets the cursor move. Pure, so that
//! every hostile page can be tested (and property-tested) without a network or a store.
//!
//! The rule (issue 10): the cursor advances only to the newest id perch has actually stored.
//! `meta.newest_id` is never trusted for it: a page whose meta claims a newer post than it holds
//! would otherwise move the cursor past posts no one ever fetched. So:
//! - a page with items but no readable post stores nothing and accounts for nothing: the cursor
//!   stays and the next poll asks for it again;
//! - a page whose `meta.newest_id` disagrees with its own items is malformed: its readable posts
//!   are stored (storing never loses anything) but the poll stops there and the cursor stays;
//! - in a page that has readable posts, an unreadable one is skipped, and recorded by id.
//!
//! Strictly what is stored: a retweet (left out on purpose, it is not a mention to answer) does
//! not raise the cursor either, so a page of only retweets is simply asked for again (one request,
//! as any poll). Posts beyond the first sync's backfill cap are older than everything taken, so
//! they never raise the cursor.

use crate::x::{FetchedPost, MentionsPage};

/// Why a page cannot be taken as X's word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageFault {
    /// `data` held items and not one of them could be read.
    NoReadablePost { items: usize },
    /// `meta.newest_id` is not the newest post of the page (beyond it, or missing from it).
    NewestIdDisagrees { meta: u64, page: Option<u64> },
}

impl PageFault {
    /// For the account's error and the log: what X sent, in a sentence.
    pub fn describe(&self) -> String {
        match self {
            PageFault::NoReadablePost { items } => format!(
                "X sent a mentions page whose {items} post(s) could not be read, so none was stored"
            ),
            PageFault::NewestIdDisagrees {
                meta,
                page: Some(page),
            } => format!(
                "X sent a mentions page that says its newest post is {meta}, but its newest post is {page}"
            ),
            PageFault::NewestIdDisagrees { meta, page: None } => format!(
                "X sent a mentions page that says its newest post is {meta}, but it holds no post"
            ),
        }
    }
}

/// What a page means for the store and the cursor.
#[derive(Debug, PartialEq)]
pub struct PageReading<'a> {
    /// The posts to store (readable, not retweets, within the backfill room).
    pub to_store: Vec<&'a FetchedPost>,
    /// How many items of the page were taken against the backfill cap.
    pub taken: usize,
    /// The newest id of `to_store`: how far this page may move the cursor. `None` when it
    /// stores nothing: then it must not move the cursor.
    pub newest_stored: Option<u64>,
    /// Unreadable posts that are skipped (their ids, where readable).
    pub skipped_ids: Vec<u64>,
    /// Set when the page is malformed: the poll stops after storing `to_store`.
    pub fault: Option<PageFault>,
}

/// Reads `page`, taking at most `room` items (the backfill cap's room; `usize::MAX` otherwise).
pub fn read_page(page: &MentionsPage, room: usize) -> PageReading<'_> {
    let to_store: Vec<&FetchedPost> = page
        .posts
        .iter()
        .take(room)
        .filter(|p| !p.is_retweet)
        .collect();
    let newest_stored = to_store.iter().map(|p| p.tweet_id).max();
    let fault = if page.item_count > 0 && page.posts.is_empty() {
        Some(PageFault::NoReadablePost {
            items: page.item_count,
        })
    } else {
        let page_newest = page.item_ids.iter().copied().max();
        match page.newest_id {
            Some(meta) if Some(meta) != page_newest => Some(PageFault::NewestIdDisagrees {
                meta,
                page: page_newest,
            }),
            _ => None,
        }
    };
    PageReading {
        taken: page.posts.len().min(room),
        to_store,
        // A page with no readable post moves nothing, whatever its meta says.
        newest_stored,
        skipped_ids: page.skipped_ids.clone(),
        fault,
    }
}

/// The cursor after a complete poll: the newest id the poll stored, never backwards, and
/// unchanged when the poll stored nothing.
pub fn next_cursor(stored: Option<u64>, since_id: Option<u64>) -> Option<u64> {
    match (stored, since_id) {
        (Some(a), Some(s)) => Some(a.max(s)),
        (a, s) => a.or(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Sender;

    fn post(id: u64) -> FetchedPost {
        FetchedPost {
            tweet_id: id,
            created_at: None,
            text: "hi".into(),
            author: Sender::default(),
            conversation_id: None,
            in_reply_to_user_id: None,
            referenced_posts: vec![],
            is_retweet: false,
        }
    }

    fn page(ids: &[u64], newest: Option<u64>) -> MentionsPage {
        MentionsPage {
            posts: ids.iter().map(|id| post(*id)).collect(),
            newest_id: newest,
            item_ids: ids.to_vec(),
            item_count: ids.len(),
            ..MentionsPage::default()
        }
    }

    #[test]
    fn a_newest_id_beyond_the_page_is_malformed_and_never_the_cursor() {
        let p = page(&[30, 20], Some(9_223_372_036_854_775_807));
        let r = read_page(&p, usize::MAX);
        assert_eq!(r.newest_stored, Some(30));
        assert!(matches!(
            r.fault,
            Some(PageFault::NewestIdDisagrees { page: Some(30), .. })
        ));
        assert_eq!(r.to_store.len(), 2, "the readable posts are still stored");
    }

    #[test]
    fn a_page_of_unreadable_posts_accounts_for_nothing() {
        let p = MentionsPage {
            newest_id: Some(50),
            item_ids: vec![50, 40],
            skipped_ids: vec![50, 40],
            item_count: 2,
            ..MentionsPage::default()
        };
        let r = read_page(&p, usize::MAX);
        assert_eq!(r.newest_stored, None);
        assert_eq!(r.fault, Some(PageFault::NoReadablePost { items: 2 }));
        assert_eq!(next_cursor(r.newest_stored, Some(10)), Some(10));
        assert_eq!(next_cursor(r.newest_stored, None), None);
    }

    #[test]
    fn one_unreadable_post_in_a_good_page_is_skipped_by_id() {
        let mut p = page(&[30, 10], Some(30));
        p.item_ids = vec![30, 20, 10];
        p.skipped_ids = vec![20];
        p.item_count = 3;
        let r = read_page(&p, usize::MAX);
        assert_eq!(r.fault, None);
        assert_eq!(r.skipped_ids, vec![20]);
        assert_eq!(r.newest_stored, Some(30));
    }

    #[test]
    fn retweets_are_not_stored_and_do_not_move_the_cursor() {
        let mut p = page(&[30, 20], Some(30));
        p.posts[0].is_retweet = true;
        let r = read_page(&p, usize::MAX);
        assert_eq!(r.to_store.len(), 1);
        assert_eq!(r.newest_stored, Some(20));
    }

    #[test]
    fn the_backfill_room_bounds_what_is_taken() {
        let p = page(&[30, 20, 10], Some(30));
        let r = read_page(&p, 2);
        assert_eq!((r.taken, r.to_store.len()), (2, 2));
        assert_eq!(r.newest_stored, Some(30));
        let none = read_page(&p, 0);
        assert_eq!((none.taken, none.newest_stored), (0, None));
    }

    #[test]
    fn an_empty_page_is_not_malformed_and_moves_nothing() {
        let empty = MentionsPage::default();
        let r = read_page(&empty, usize::MAX);
        assert_eq!((r.fault, r.newest_stored), (None, None));
        let claims = page(&[], Some(5));
        assert!(matches!(
            read_page(&claims, usize::MAX).fault,
            Some(PageFault::NewestIdDisagrees { page: None, .. })
        ));
    }
}
