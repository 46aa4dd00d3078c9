//! The feed is a window over the store, never a copy of it: a short run of consecutive rows (in
//! newest-first order) around the selection, read with `Store::page_after` / `page_before`.
//! Moving past either end of the window reads the next index range; the window is trimmed so it
//! stays a few screens long however far the user scrolls.

use crate::domain::{Mention, MentionKey};
use crate::store::{FeedFilter, FeedPos, Result, Store};

/// Rows read per store call, at least (a screen's worth more when the screen is tall).
const MIN_CHUNK: usize = 50;
/// "▲ N new" counts at most this many rows (reading more only to print a bigger number is waste).
pub const NEW_ABOVE_CAP: usize = 999;

/// Does this mention belong in a feed with this filter?
pub fn matches(filter: &FeedFilter, m: &Mention) -> bool {
    filter.account.is_none_or(|a| a == m.sent_to.account_id)
        && filter.status.is_none_or(|s| s == m.status)
}

fn pos(m: &Mention) -> FeedPos {
    m.key().into()
}

/// The loaded part of the feed and where the user is in it.
#[derive(Clone, Debug, Default)]
pub struct FeedWindow {
    pub filter: FeedFilter,
    /// Consecutive feed rows, newest first. Never the whole feed.
    pub rows: Vec<Mention>,
    /// Index in `rows` of the selected row (meaningless while `rows` is empty).
    pub selected: usize,
    /// Index in `rows` of the first visible row.
    pub scroll: usize,
    /// `rows[0]` is the newest mention that matches the filter.
    pub at_top: bool,
    /// The last row is the oldest mention that matches the filter.
    pub at_end: bool,
    /// How many mentions match the filter (from the store's counters).
    pub total: u64,
    /// The newest row the user has had on screen at the top of the feed.
    pub newest_seen: Option<FeedPos>,
    /// Rows newer than `newest_seen` that are not on screen yet ("▲ N new").
    pub new_above: usize,
    /// How many rows the feed pane shows.
    pub height: usize,
}

impl FeedWindow {
    fn chunk(&self) -> usize {
        (self.height * 2).max(MIN_CHUNK)
    }

    /// The window never grows beyond this many rows.
    fn max_rows(&self) -> usize {
        self.chunk() * 4
    }

    pub fn selected_mention(&self) -> Option<&Mention> {
        self.rows.get(self.selected)
    }

    pub fn selected_pos(&self) -> Option<FeedPos> {
        self.selected_mention().map(pos)
    }

    /// The rows on screen, top to bottom.
    pub fn visible(&self) -> &[Mention] {
        let start = self.scroll.min(self.rows.len());
        let end = (start + self.height.max(1)).min(self.rows.len());
        &self.rows[start..end]
    }

    /// The selection's line on screen (0 = top row of the pane).
    pub fn selected_line(&self) -> usize {
        self.selected.saturating_sub(self.scroll)
    }

    /// Reads the newest rows and selects the first.
    pub fn load_top(&mut self, store: &Store) -> Result<()> {
        self.total = store.count(&self.filter)?;
        self.rows = store.page_after(&self.filter, None, self.chunk())?;
        self.at_top = true;
        self.at_end = self.rows.len() < self.chunk();
        self.selected = 0;
        self.scroll = 0;
        self.mark_seen_if_at_top();
        Ok(())
    }

    /// Reads the oldest rows and selects the last.
    pub fn load_bottom(&mut self, store: &Store) -> Result<()> {
        self.total = store.count(&self.filter)?;
        self.rows = store.page_before(&self.filter, None, self.chunk())?;
        self.at_end = true;
        self.at_top = self.rows.len() < self.chunk();
        self.selected = self.rows.len().saturating_sub(1);
        self.scroll = self.rows.len().saturating_sub(self.height.max(1));
        self.mark_seen_if_at_top();
        Ok(())
    }

    /// Re-reads the window around the selected row after the store changed (new mentions, a
    /// status change), keeping that row selected on the same screen line. New rows above it stay
    /// above the screen and are counted in `new_above`. If the selected row no longer matches the
    /// filter (say it was ignored while the filter shows pending), the next older row takes its
    /// place.
    pub fn reload_around_selection(&mut self, store: &Store) -> Result<()> {
        let Some(anchor) = self.selected_pos() else {
            return self.load_top(store);
        };
        let line = self.selected_line();
        self.total = store.count(&self.filter)?;
        let want_above = line + self.height.max(1);
        let above = store.page_before(&self.filter, Some(anchor), want_above)?;
        let key = MentionKey {
            account_id: anchor.account_id,
            tweet_id: anchor.tweet_id,
        };
        let current = store.mention(key)?.filter(|m| matches(&self.filter, m));
        let below = store.page_after(&self.filter, Some(anchor), self.chunk())?;

        self.at_top = above.len() < want_above;
        self.at_end = below.len() < self.chunk();
        let selected = above.len();
        let has_current = current.is_some();
        let mut rows = above;
        rows.extend(current);
        rows.extend(below);
        if rows.is_empty() {
            self.rows = rows;
            self.selected = 0;
            self.scroll = 0;
            return Ok(());
        }
        // Without the current row, `selected` already points at the next older row; at the very
        // end of the feed, fall back to the row just above.
        self.selected = if has_current || selected < rows.len() {
            selected
        } else {
            rows.len() - 1
        };
        self.rows = rows;
        self.scroll = self.selected.saturating_sub(line);
        self.mark_seen_if_at_top();
        self.count_new_above(store)?;
        Ok(())
    }

    /// Moves the selection by `delta` rows, reading more of the feed when it runs off the window.
    pub fn move_by(&mut self, store: &Store, delta: isize) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if delta > 0 {
            let target = self.selected + delta.unsigned_abs();
            while target >= self.rows.len() && !self.at_end {
                self.extend_down(store)?;
            }
            self.selected = target.min(self.rows.len() - 1);
        } else {
            let back = delta.unsigned_abs();
            while back > self.selected && !self.at_top {
                self.extend_up(store)?;
            }
            self.selected = self.selected.saturating_sub(back);
        }
        self.keep_selection_visible();
        self.ensure_margin(store)?;
        self.trim();
        self.mark_seen_if_at_top();
        self.shrink_new_above();
        Ok(())
    }

    /// The pane's height changed.
    pub fn set_height(&mut self, store: &Store, height: usize) -> Result<()> {
        self.height = height;
        self.keep_selection_visible();
        self.ensure_margin(store)?;
        self.mark_seen_if_at_top();
        Ok(())
    }

    /// Puts a re-read mention in place of its row, if the row is in the window.
    pub fn replace(&mut self, mention: Mention) {
        let key = mention.key();
        if let Some(row) = self.rows.iter_mut().find(|m| m.key() == key) {
            *row = mention;
        }
    }

    pub fn row_mut(&mut self, key: MentionKey) -> Option<&mut Mention> {
        self.rows.iter_mut().find(|m| m.key() == key)
    }

    fn keep_selection_visible(&mut self) {
        let height = self.height.max(1);
        if self.selected < self.scroll {
            self.scroll = self.selected;
        } else if self.selected >= self.scroll + height {
            self.scroll = self.selected + 1 - height;
        }
        // No empty space at the bottom when there are rows above to fill it.
        if self.at_end && self.rows.len() >= height && self.scroll + height > self.rows.len() {
            self.scroll = self.rows.len() - height;
        }
    }

    /// Keeps at least a screen of rows loaded beyond what is visible, so the next move rarely
    /// waits for the store.
    fn ensure_margin(&mut self, store: &Store) -> Result<()> {
        let height = self.height.max(1);
        if !self.at_end && self.rows.len() < self.scroll + 2 * height {
            self.extend_down(store)?;
        }
        if !self.at_top && self.scroll < height {
            self.extend_up(store)?;
        }
        Ok(())
    }

    fn extend_down(&mut self, store: &Store) -> Result<()> {
        let after = self.rows.last().map(pos);
        let chunk = self.chunk();
        let more = store.page_after(&self.filter, after, chunk)?;
        self.at_end = more.len() < chunk;
        self.rows.extend(more);
        Ok(())
    }

    fn extend_up(&mut self, store: &Store) -> Result<()> {
        let before = self.rows.first().map(pos);
        let chunk = self.chunk();
        let more = store.page_before(&self.filter, before, chunk)?;
        self.at_top = more.len() < chunk;
        let n = more.len();
        self.rows.splice(0..0, more);
        self.selected += n;
        self.scroll += n;
        Ok(())
    }

    /// Drops rows far from the screen so the window stays small.
    fn trim(&mut self) {
        let max = self.max_rows();
        if self.rows.len() <= max {
            return;
        }
        let chunk = self.chunk();
        let drop_front = self.scroll.saturating_sub(chunk).min(self.rows.len() - max);
        if drop_front > 0 {
            self.rows.drain(..drop_front);
            self.selected -= drop_front;
            self.scroll -= drop_front;
            self.at_top = false;
        }
        if self.rows.len() > max {
            let keep = (self.scroll + self.height.max(1) + chunk).max(max);
            if keep < self.rows.len() {
                self.rows.truncate(keep);
                self.at_end = false;
            }
        }
    }

    fn mark_seen_if_at_top(&mut self) {
        if self.at_top && self.scroll == 0 {
            self.newest_seen = self.rows.first().map(pos);
            self.new_above = 0;
        }
    }

    /// After a move, new rows that scrolled into view are no longer "new above".
    fn shrink_new_above(&mut self) {
        if self.new_above == 0 || !self.at_top {
            return;
        }
        if let Some(seen) = self.newest_seen {
            let still_above = self.rows[..self.scroll.min(self.rows.len())]
                .iter()
                .filter(|m| m.tweet_id_u64() > seen.tweet_id)
                .count();
            self.new_above = self.new_above.min(still_above);
        }
    }

    /// Counts rows newer than the newest one the user has seen at the top.
    fn count_new_above(&mut self, store: &Store) -> Result<()> {
        if self.at_top && self.scroll == 0 {
            self.new_above = 0;
            return Ok(());
        }
        if let Some(seen) = self.newest_seen {
            self.new_above = store
                .page_before(&self.filter, Some(seen), NEW_ABOVE_CAP)?
                .len();
        }
        Ok(())
    }
}
