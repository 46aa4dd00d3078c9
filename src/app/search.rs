//! Text search over the feed (`/`): it narrows the feed like the account and status filters do,
//! combined with them. The first screen of hits is read at once (a bounded scan of the index,
//! newest first); the rest is found, and counted, in steps when the loop is idle.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::app::keymap::SearchKey;

use crate::app::Job;
use crate::app::feed::SearchScan;
use crate::app::source::FeedSource;
use crate::app::state::{AppState, Mode};
use crate::app::update::Effect;
use crate::store::StoreError;
use crate::text;

/// The search query as the status bar shows it (sanitised, quoted).
pub fn label(query: &str) -> String {
    format!("\"{}\"", text::sanitize(query, true))
}

/// `/`: start typing a search (editing the current one, if any).
pub fn open(state: &mut AppState) {
    state.mode = Mode::Search;
}

/// A key while typing the search.
pub fn on_key(
    state: &mut AppState,
    store: &dyn FeedSource,
    key: KeyEvent,
) -> Result<(), StoreError> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let mut query = state
        .feed
        .search
        .as_ref()
        .map(|s| s.query.clone())
        .unwrap_or_default();
    match state.keymap.search.of_event(&key) {
        Some(SearchKey::Clear) => {
            state.mode = Mode::Normal;
            return clear(state, store);
        }
        Some(SearchKey::Keep) => {
            state.mode = Mode::Normal;
            if query.trim().is_empty() {
                return clear(state, store);
            }
            return Ok(());
        }
        Some(SearchKey::ClearQuery) => query.clear(),
        None => {}
    }
    // Every other key edits the query.
    match key.code {
        KeyCode::Backspace => {
            query.pop();
        }
        KeyCode::Char(c) if !ctrl => query.push(c),
        _ => return Ok(()),
    }
    if query.is_empty() {
        return clear(state, store);
    }
    state.feed.search = Some(SearchScan {
        query,
        ..SearchScan::default()
    });
    reload(state, store)
}

/// Reads the feed again from the top after a filter or the search changed (a search starts
/// counting again).
pub fn reload(state: &mut AppState, store: &dyn FeedSource) -> Result<(), StoreError> {
    if let Some(s) = &mut state.feed.search {
        *s = SearchScan {
            query: std::mem::take(&mut s.query),
            ..SearchScan::default()
        };
    }
    state.feed.newest_seen = None;
    state.detail_scroll = 0;
    // `update` schedules the background steps while the search wants more work.
    state.feed.load_top(store)
}

/// `Esc`: back to the whole (filtered) feed.
pub fn clear(state: &mut AppState, store: &dyn FeedSource) -> Result<(), StoreError> {
    if state.feed.search.take().is_none() {
        return Ok(());
    }
    state.feed.newest_seen = None;
    state.detail_scroll = 0;
    state.info("search cleared");
    state.feed.load_top(store)
}

/// A background step of the search (finding more rows, or counting further).
pub fn step(state: &mut AppState, store: &dyn FeedSource) -> Result<(), StoreError> {
    state.search_scheduled = false;
    if state.feed.search.is_none() {
        return Ok(());
    }
    state.feed.search_step(store)?;
    state.dirty = true;
    Ok(())
}

/// Called at the end of every `update`: keeps exactly one search step queued while the search
/// has work left.
pub fn schedule(state: &mut AppState, effects: &mut Vec<Effect>) {
    if state.feed.search_wants_work() && !state.search_scheduled {
        state.search_scheduled = true;
        effects.push(Effect::Background(Job::Search));
    }
}

/// `n` / `N`: the next or previous match. The feed shows only matches, so that is the next or
/// previous row; going past the last one found asks the search for more.
pub fn next_match(
    state: &mut AppState,
    store: &dyn FeedSource,
    forward: bool,
) -> Result<(), StoreError> {
    if state.feed.search.is_none() {
        state.info("no search: / starts one, then n and N step through the matches");
        return Ok(());
    }
    let before = state.feed.selected_pos();
    state.feed.move_by(store, if forward { 1 } else { -1 })?;
    if state.feed.selected_pos() != before {
        state.detail_scroll = 0;
    } else if forward && !state.feed.at_end {
        state.info("still searching for more matches…");
    } else {
        state.info(if forward {
            "no more matches"
        } else {
            "this is the newest match"
        });
    }
    Ok(())
}
