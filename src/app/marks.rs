//! Marks for bulk actions. `Space` marks single mentions (a set of keys); `V` marks everything
//! that matches the current filter, kept as the filter itself ("all matching F, except these"),
//! never as a list of a million keys. The bulk action walks the index for it, a chunk at a time.

use std::collections::{BTreeSet, HashSet};

use crate::app::feed::matches;
use crate::domain::{Mention, MentionKey};
use crate::store::{FeedFilter, FeedPos};

/// "Everything matching this filter (and search) when `V` was pressed, except these".
#[derive(Clone, Debug, PartialEq)]
pub struct MarkedFilter {
    pub filter: FeedFilter,
    /// The search that was active, if any.
    pub query: Option<String>,
    /// The newest matching position when `V` was pressed: mentions that arrive later are not
    /// marked (the user has not seen them).
    pub newest: Option<FeedPos>,
    /// Unmarked again with `Space`.
    pub except: HashSet<MentionKey>,
    /// How many matched when `V` was pressed (for a search still counting, at least this many).
    pub matched: u64,
    pub matched_is_lower_bound: bool,
}

impl MarkedFilter {
    fn covers(&self, m: &Mention) -> bool {
        matches(&self.filter, m)
            && self
                .query
                .as_deref()
                .is_none_or(|q| crate::store::search_matches(q, m))
            && self.newest.is_none_or(|newest| FeedPos::from(m) <= newest)
    }
}

/// What is marked.
#[derive(Clone, Debug, PartialEq)]
pub enum Marks {
    Keys(BTreeSet<MentionKey>),
    Matching(MarkedFilter),
}

impl Default for Marks {
    fn default() -> Marks {
        Marks::Keys(BTreeSet::new())
    }
}

impl Marks {
    pub fn is_empty(&self) -> bool {
        match self {
            Marks::Keys(keys) => keys.is_empty(),
            // Everything matching, minus exceptions: empty only if all were unmarked again.
            Marks::Matching(f) => f.except.len() as u64 >= f.matched && !f.matched_is_lower_bound,
        }
    }

    pub fn contains(&self, m: &Mention) -> bool {
        match self {
            Marks::Keys(keys) => keys.contains(&m.key()),
            Marks::Matching(f) => f.covers(m) && !f.except.contains(&m.key()),
        }
    }

    /// Marks every mention of a row, or unmarks them all when the row is already marked.
    /// Returns false when the row cannot be toggled (outside the marked filter).
    pub fn toggle(&mut self, row: &[Mention]) -> bool {
        let marked = row.iter().any(|m| self.contains(m));
        match self {
            Marks::Keys(keys) => {
                for m in row {
                    if marked {
                        keys.remove(&m.key());
                    } else {
                        keys.insert(m.key());
                    }
                }
                true
            }
            Marks::Matching(f) => {
                let inside: Vec<&Mention> = row.iter().filter(|m| f.covers(m)).collect();
                if inside.is_empty() {
                    return false;
                }
                for m in inside {
                    if marked {
                        f.except.insert(m.key());
                    } else {
                        f.except.remove(&m.key());
                    }
                }
                true
            }
        }
    }

    /// How many are marked, and whether that is a lower bound ("120+").
    pub fn count(&self) -> (u64, bool) {
        match self {
            Marks::Keys(keys) => (keys.len() as u64, false),
            Marks::Matching(f) => (
                f.matched.saturating_sub(f.except.len() as u64),
                f.matched_is_lower_bound,
            ),
        }
    }

    /// "37" or "120+".
    pub fn count_label(&self) -> String {
        match self.count() {
            (n, true) => format!("{n}+"),
            (n, false) => n.to_string(),
        }
    }
}
