//! The feed is a window over the store, never a copy of it: a short run of consecutive rows (in
//! newest-first order) around the selection, read with `Store::page_after` / `page_before`, or,
//! while a text search is active, with `Store::search_page`. Moving past either end of the window
//! reads the next index range; the window is trimmed so it stays a few screens long however far
//! the user scrolls.
//!
//! Under "All accounts" a post that mentions several tracked accounts is several mentions that
//! sit next to each other in the index (same tweet id): they are merged into one [`FeedRow`], so
//! the post shows once with every account it was sent to.

use crate::app::source::FeedSource;
use crate::domain::{Mention, MentionKey};
use crate::store::{FeedFilter, FeedPos, Result};

/// Rows read per store call, at least (a screen's worth more when the screen is tall).
const MIN_CHUNK: usize = 50;
/// "▲ N new" counts at most this many rows (reading more only to print a bigger number is waste).
pub const NEW_ABOVE_CAP: usize = 999;
/// Rows a search step examines at most, so one step never holds up the screen for long.
pub const SEARCH_SCAN_STEP: usize = 1_000;

/// Does this mention belong in a feed with this filter?
pub fn matches(filter: &FeedFilter, m: &Mention) -> bool {
    filter.account.is_none_or(|a| a == m.sent_to.account_id)
        && filter.status.is_none_or(|s| s == m.status)
}

fn pos(m: &Mention) -> FeedPos {
    m.key().into()
}

/// One line of the feed: a post, and the mentions of it the filter shows (one per tracked account
/// it was sent to, in feed order). Never empty.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedRow {
    mentions: Vec<Mention>,
}

impl FeedRow {
    pub fn new(first: Mention) -> FeedRow {
        FeedRow {
            mentions: vec![first],
        }
    }

    /// The mention the row is drawn from (the first account it was sent to, in feed order).
    pub fn primary(&self) -> &Mention {
        // `mentions` is never empty: rows are only made by `new` and only grow.
        &self.mentions[0]
    }

    pub fn mentions(&self) -> &[Mention] {
        &self.mentions
    }

    pub fn keys(&self) -> Vec<MentionKey> {
        self.mentions.iter().map(Mention::key).collect()
    }

    pub fn contains(&self, key: MentionKey) -> bool {
        self.mentions.iter().any(|m| m.key() == key)
    }

    /// The same post (tweet id) as `m`?
    fn same_post(&self, m: &Mention) -> bool {
        self.primary().tweet_id == m.tweet_id
    }

    fn first_pos(&self) -> FeedPos {
        pos(self.primary())
    }

    fn last_pos(&self) -> FeedPos {
        pos(self.mentions.last().unwrap_or(self.primary()))
    }
}

/// Groups newest-first mentions into rows; with `merge`, neighbours with the same tweet id share
/// a row. Returns the rows and, for each mention, the row it went into.
fn group(mentions: Vec<Mention>, merge: bool) -> (Vec<FeedRow>, Vec<usize>) {
    let mut rows: Vec<FeedRow> = Vec::with_capacity(mentions.len());
    let mut row_of = Vec::with_capacity(mentions.len());
    for m in mentions {
        match rows.last_mut() {
            Some(last) if merge && last.same_post(&m) => last.mentions.push(m),
            _ => rows.push(FeedRow::new(m)),
        }
        row_of.push(rows.len() - 1);
    }
    (rows, row_of)
}

/// The text search over the feed: its query, and how far the background count has got.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchScan {
    pub query: String,
    /// Where loading rows continues (the last position examined for the window).
    pub load_after: Option<FeedPos>,
    /// Matches counted so far (the count runs from the top, in steps, in the background).
    pub counted: u64,
    pub count_after: Option<FeedPos>,
    /// The count has been through the whole filter: `counted` is exact.
    pub count_done: bool,
}

/// The loaded part of the feed and where the user is in it.
#[derive(Clone, Debug, Default)]
pub struct FeedWindow {
    pub filter: FeedFilter,
    /// The text search, when one is active: rows are its hits, in the same order.
    pub search: Option<SearchScan>,
    /// Consecutive feed rows, newest first. Never the whole feed.
    pub rows: Vec<FeedRow>,
    /// Index in `rows` of the selected row (meaningless while `rows` is empty).
    pub selected: usize,
    /// Index in `rows` of the first visible row.
    pub scroll: usize,
    /// `rows[0]` is the newest mention that matches the filter.
    pub at_top: bool,
    /// The last row is the oldest mention that matches the filter.
    pub at_end: bool,
    /// How many mentions match the filter (from the store's counters; for a search, the count so
    /// far).
    pub total: u64,
    /// The newest row the user has had on screen at the top of the feed.
    pub newest_seen: Option<FeedPos>,
    /// Rows newer than `newest_seen` that are not on screen yet ("▲ N new").
    pub new_above: usize,
    /// How many rows the feed pane shows.
    pub height: usize,
    /// No key has been pressed yet. While that holds (the first seconds after start, while the
    /// first sync backfills), the selection stays on the top row and new mentions come in there.
    /// The first key press ends it for the session (`AppState` clears it on every key): from then
    /// on arrivals never move the selection, whatever the key was (`g` included).
    pub untouched: bool,
}

impl FeedWindow {
    fn chunk(&self) -> usize {
        (self.height * 2).max(MIN_CHUNK)
    }

    /// The window never grows beyond this many rows.
    fn max_rows(&self) -> usize {
        self.chunk() * 4
    }

    /// Rows of one post are merged only when several accounts can be in the feed.
    fn merge(&self) -> bool {
        self.filter.account.is_none()
    }

    pub fn selected_row(&self) -> Option<&FeedRow> {
        self.rows.get(self.selected)
    }

    /// The selected row's first mention.
    pub fn selected_mention(&self) -> Option<&Mention> {
        self.selected_row().map(FeedRow::primary)
    }

    pub fn selected_pos(&self) -> Option<FeedPos> {
        self.selected_row().map(FeedRow::first_pos)
    }

    /// The rows on screen, top to bottom.
    pub fn visible(&self) -> &[FeedRow] {
        let start = self.scroll.min(self.rows.len());
        let end = (start + self.height.max(1)).min(self.rows.len());
        &self.rows[start..end]
    }

    /// The selection's line on screen (0 = top row of the pane).
    pub fn selected_line(&self) -> usize {
        self.selected.saturating_sub(self.scroll)
    }

    /// The search is still counting: `total` is a lower bound ("120+ matches").
    pub fn searching(&self) -> bool {
        self.search.as_ref().is_some_and(|s| !s.count_done)
    }

    /// The window of a search wants more rows near the selection.
    fn search_wants_rows(&self) -> bool {
        self.search.is_some() && !self.at_end && self.rows.len() < self.selected + 2 * self.chunk()
    }

    /// The background search has something left to do (count further, or load more rows).
    pub fn search_wants_work(&self) -> bool {
        self.searching() || self.search_wants_rows()
    }

    /// Up to `limit` matching mentions older than `after`, and whether the walk reached the end.
    fn fetch_older(
        &mut self,
        store: &dyn FeedSource,
        after: Option<FeedPos>,
        limit: usize,
    ) -> Result<(Vec<Mention>, bool)> {
        match &mut self.search {
            None => {
                let rows = store.page_after(&self.filter, after, limit)?;
                let end = rows.len() < limit;
                Ok((rows, end))
            }
            Some(search) => {
                let page = store.search_page(
                    &self.filter,
                    &search.query,
                    after,
                    limit,
                    SEARCH_SCAN_STEP,
                )?;
                search.load_after = page.resume_after.or(after);
                Ok((page.hits, page.exhausted))
            }
        }
    }

    /// Reads the newest rows and selects the first.
    pub fn load_top(&mut self, store: &dyn FeedSource) -> Result<()> {
        if let Some(search) = &mut self.search {
            search.load_after = None;
        }
        let chunk = self.chunk();
        if self.search.is_none() {
            // The page and the count in one read (one round trip through the service).
            let (mentions, total) = store.end_page(&self.filter, true, chunk)?;
            self.at_end = mentions.len() < chunk;
            self.rows = group(mentions, self.merge()).0;
            self.total = total;
        } else {
            let (mentions, end) = self.fetch_older(store, None, chunk)?;
            self.rows = group(mentions, self.merge()).0;
            self.at_end = end;
            self.update_total(store)?;
        }
        self.at_top = true;
        self.selected = 0;
        self.scroll = 0;
        self.mark_seen_if_at_top();
        Ok(())
    }

    fn update_total(&mut self, store: &dyn FeedSource) -> Result<()> {
        self.total = match &self.search {
            None => store.count(&self.filter)?,
            Some(s) => {
                let loaded: usize = self.rows.iter().map(|r| r.mentions.len()).sum();
                s.counted.max(loaded as u64)
            }
        };
        Ok(())
    }

    /// Reads the oldest rows and selects the last. A search has no oldest end until it has
    /// looked everywhere, so there this goes to the last row found so far.
    pub fn load_bottom(&mut self, store: &dyn FeedSource) -> Result<()> {
        if self.search.is_some() {
            let last = self.rows.len().saturating_sub(1) as isize;
            return self.move_by(store, last - self.selected as isize);
        }
        let chunk = self.chunk();
        let (mentions, total) = store.end_page(&self.filter, false, chunk)?;
        self.total = total;
        self.at_end = true;
        self.at_top = mentions.len() < chunk;
        self.rows = group(mentions, self.merge()).0;
        self.selected = self.rows.len().saturating_sub(1);
        self.scroll = self.rows.len().saturating_sub(self.height.max(1));
        self.mark_seen_if_at_top();
        Ok(())
    }

    /// Re-reads the window around the selected row after the store changed (new mentions, a
    /// status change), keeping that row selected. New rows come in above it and are counted in
    /// `new_above` (`g` goes to them). The view does not follow them: a view at the top of the
    /// feed stays at the top (the new rows are drawn there, pushing the selection down, and the
    /// view scrolls only as far as keeping the selection visible needs); a view scrolled down
    /// keeps its rows on the same lines, the new ones staying above the screen. If the selected
    /// row no longer matches the filter (say it was ignored while the filter shows pending), the
    /// next older row takes its place.
    pub fn reload_around_selection(&mut self, store: &dyn FeedSource) -> Result<()> {
        if self.search.is_some() {
            return self.reload_search_rows(store);
        }
        let Some(anchor) = self.selected_pos() else {
            return self.load_top(store);
        };
        // Until the first key press the feed follows the newest row, wherever the selection
        // is: a window read while mentions streamed in (a resize reads what is above its first
        // row) can have its selection one row down without the user having moved it.
        if self.untouched {
            return self.load_top(store);
        }
        let line = self.selected_line();
        let view_at_top = self.at_top && self.scroll == 0;
        self.total = store.count(&self.filter)?;
        // Enough rows above to fill the screen above the selection however many arrived.
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
        // The flat index of the selected mention (or of the next older one when it is gone).
        let flat_selected = above.len();
        let mut flat = above;
        flat.extend(current);
        flat.extend(below);
        if flat.is_empty() {
            self.rows.clear();
            self.selected = 0;
            self.scroll = 0;
            return Ok(());
        }
        let (rows, row_of) = group(flat, self.merge());
        // At the very end of the feed, fall back to the row just above.
        self.selected = row_of.get(flat_selected).copied().unwrap_or(rows.len() - 1);
        self.rows = rows;
        if view_at_top && self.at_top {
            self.scroll = 0;
            self.keep_selection_visible();
        } else if view_at_top {
            // More arrived than fit above the selection: it sits on the bottom line.
            self.scroll = self.selected.saturating_sub(self.height.max(1) - 1);
        } else {
            self.scroll = self.selected.saturating_sub(line);
        }
        self.count_new_above(store)?;
        Ok(())
    }

    /// A search's rows are re-read one by one (a status may have changed); rows that no longer
    /// match the filter drop out, the selection staying on its line. New posts are not added
    /// while the search is shown: running it again (`/`, Enter) finds them.
    fn reload_search_rows(&mut self, store: &dyn FeedSource) -> Result<()> {
        let mut flat = Vec::new();
        let mut selected_flat = None;
        let mut dropped = 0u64;
        for (i, row) in self.rows.iter().enumerate() {
            if i == self.selected {
                selected_flat = Some(flat.len());
            }
            for m in &row.mentions {
                match store.mention(m.key())? {
                    Some(now) if matches(&self.filter, &now) => flat.push(now),
                    _ => dropped += 1,
                }
            }
        }
        let line = self.selected_line();
        let (rows, row_of) = group(flat, self.merge());
        self.selected = selected_flat
            .and_then(|i| row_of.get(i).copied())
            .unwrap_or(rows.len().saturating_sub(1));
        self.rows = rows;
        self.scroll = self.selected.saturating_sub(line);
        if let Some(s) = &mut self.search {
            s.counted = s.counted.saturating_sub(dropped);
        }
        self.update_total(store)?;
        self.keep_selection_visible();
        Ok(())
    }

    /// Moves the selection by `delta` rows, reading more of the feed when it runs off the window.
    pub fn move_by(&mut self, store: &dyn FeedSource, delta: isize) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if delta != 0 {
            self.untouched = false;
        }
        if delta > 0 {
            let target = self.selected + delta.unsigned_abs();
            while target >= self.rows.len() && !self.at_end {
                self.extend_down(store)?;
                if self.search.is_some() {
                    // One bounded search step per key; the background search finds the rest.
                    break;
                }
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
    pub fn set_height(&mut self, store: &dyn FeedSource, height: usize) -> Result<()> {
        self.height = height;
        self.keep_selection_visible();
        self.ensure_margin(store)?;
        self.mark_seen_if_at_top();
        Ok(())
    }

    /// Selects the row holding `key`, if it is in the window. The view scrolls only as far as
    /// keeping it visible needs.
    pub fn select_key(&mut self, key: MentionKey) -> bool {
        match self.rows.iter().position(|r| r.contains(key)) {
            Some(i) => {
                self.selected = i;
                self.keep_selection_visible();
                self.shrink_new_above();
                true
            }
            None => false,
        }
    }

    /// Puts a re-read mention in place of its row's copy, if the row is in the window.
    pub fn replace(&mut self, mention: Mention) {
        if let Some(m) = self.row_mut(mention.key()) {
            *m = mention;
        }
    }

    pub fn row_mut(&mut self, key: MentionKey) -> Option<&mut Mention> {
        self.rows
            .iter_mut()
            .flat_map(|r| r.mentions.iter_mut())
            .find(|m| m.key() == key)
    }

    /// The background search's next step: loads more hits while the window wants them, else
    /// counts further.
    pub fn search_step(&mut self, store: &dyn FeedSource) -> Result<()> {
        if self.search_wants_rows() {
            self.extend_down(store)?;
        } else if let Some(search) = self.search.as_ref().filter(|s| !s.count_done) {
            let (query, after) = (search.query.clone(), search.count_after);
            let page =
                store.search_page(&self.filter, &query, after, usize::MAX, SEARCH_SCAN_STEP)?;
            if let Some(s) = &mut self.search {
                s.counted += page.hits.len() as u64;
                s.count_after = page.resume_after.or(after);
                s.count_done = page.exhausted;
            }
        }
        self.update_total(store)
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
    fn ensure_margin(&mut self, store: &dyn FeedSource) -> Result<()> {
        let height = self.height.max(1);
        if !self.at_end && self.rows.len() < self.scroll + 2 * height {
            self.extend_down(store)?;
        }
        if !self.at_top && self.scroll < height {
            self.extend_up(store)?;
        }
        Ok(())
    }

    fn extend_down(&mut self, store: &dyn FeedSource) -> Result<()> {
        let after = match &self.search {
            Some(s) => s.load_after,
            None => self.rows.last().map(FeedRow::last_pos),
        };
        let chunk = self.chunk();
        let (more, end) = self.fetch_older(store, after, chunk)?;
        self.at_end = end;
        let merge = self.merge();
        let mut more = more.into_iter().peekable();
        // The first new mentions may belong to the last row's post (a page split it).
        if let Some(last) = self.rows.last_mut() {
            while let Some(m) = more.next_if(|m| merge && last.same_post(m)) {
                last.mentions.push(m);
            }
        }
        self.rows.extend(group(more.collect(), merge).0);
        Ok(())
    }

    fn extend_up(&mut self, store: &dyn FeedSource) -> Result<()> {
        if self.search.is_some() {
            // A search window is never trimmed at the top, so there is nothing above it.
            self.at_top = true;
            return Ok(());
        }
        let before = self.rows.first().map(FeedRow::first_pos);
        let chunk = self.chunk();
        let more = store.page_before(&self.filter, before, chunk)?;
        self.at_top = more.len() < chunk;
        let (mut above, _) = group(more, self.merge());
        // The last new mentions may belong to the first row's post (a page split it).
        if self.merge()
            && let (Some(last_above), Some(first)) = (above.last_mut(), self.rows.first())
            && first.same_post(last_above.primary())
        {
            let first = self.rows.remove(0);
            last_above.mentions.extend(first.mentions);
            self.selected = self.selected.saturating_sub(1);
            self.scroll = self.scroll.saturating_sub(1);
        }
        let n = above.len();
        self.rows.splice(0..0, above);
        self.selected += n;
        self.scroll += n;
        Ok(())
    }

    /// Drops rows far from the screen so the window stays small. A search window is kept whole
    /// (there is no reading backwards through a search).
    fn trim(&mut self) {
        let max = self.max_rows();
        if self.search.is_some() || self.rows.len() <= max {
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

    /// The user is on the newest row: everything up to it has been seen.
    fn mark_seen_if_at_top(&mut self) {
        if self.at_top && self.selected == 0 && self.search.is_none() {
            self.newest_seen = self.rows.first().map(FeedRow::first_pos);
            self.new_above = 0;
        }
    }

    /// After a move up, new rows the selection has passed are no longer "new above".
    fn shrink_new_above(&mut self) {
        if self.new_above == 0 || !self.at_top {
            return;
        }
        if let Some(seen) = self.newest_seen {
            let still_above = self.rows[..self.selected.min(self.rows.len())]
                .iter()
                .filter(|r| r.primary().tweet_id_u64() > seen.tweet_id)
                .count();
            self.new_above = self.new_above.min(still_above);
        }
    }

    /// Counts rows newer than the newest one the user has had selected at the top.
    fn count_new_above(&mut self, store: &dyn FeedSource) -> Result<()> {
        if self.at_top && self.selected == 0 {
            self.mark_seen_if_at_top();
            return Ok(());
        }
        if let Some(seen) = self.newest_seen {
            let newer = store.page_before(&self.filter, Some(seen), NEW_ABOVE_CAP)?;
            self.new_above = group(newer, self.merge()).0.len();
        }
        Ok(())
    }
}
