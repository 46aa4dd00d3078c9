//! `update`: the one place `AppState` changes. It reads the store (never writes it) and returns
//! the work it needs done as [`Effect`]s, which the event loop carries out.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use crate::app::accounts;
use crate::app::composer::Composer;
use crate::app::keymap::{self, ComposerKey, Intent};
use crate::app::marks::{MarkedFilter, Marks};
use crate::app::message::AccountEffect;
pub use crate::app::message::{Action, Effect, Job};
use crate::app::message::{PointerKind, PointerTarget};
use crate::app::outbox_board::Resolve;
use crate::app::overlay::{AccountPicker, TemplatePicker, fill_template};
use crate::app::source::FeedSource;
use crate::app::state::{AppState, Mode, Pane};
use crate::app::{search, triage};
use crate::domain::ReplyKind;
use crate::domain::{AccountId, Mention, MentionKey, MentionStatus, SyncStatus};
use crate::outbox::{OutboxCommand, OutboxEvent, OutboxState, SendRequest};
use crate::store::{Draft, StoreError};
use crate::sync::SyncEvent;
use crate::text;

impl Action {
    /// A key press by a user who sees `state` as it is now (the selection on screen is the
    /// current one): for scripted input and tests, where every state is "drawn" before the next
    /// key.
    pub fn key_seeing(key: KeyEvent, state: &AppState) -> Action {
        Action::Key {
            key,
            seen: state.feed.selected_mention().map(Mention::key),
        }
    }
}

/// Applies one action to the state and returns the effects it calls for.
pub fn update(state: &mut AppState, action: Action, store: &dyn FeedSource) -> Vec<Effect> {
    let mut effects = Vec::new();
    let result = match action {
        Action::Key { key, seen } => {
            state.dirty = true;
            // The first key press, whatever it is, ends "follow the newest row".
            state.feed.untouched = false;
            on_key(state, key, seen, store, &mut effects)
        }
        // The dashboard turns mouse events into `Pointer`s; one that reaches `update` raw (a
        // test, a loop without a screen) means nothing.
        Action::Mouse(_) => Ok(()),
        Action::Pointer { target, what } => {
            state.dirty = true;
            state.feed.untouched = false;
            on_pointer(state, store, target, what)
        }
        Action::Paste(text) => {
            if let Mode::Compose(c) = &mut state.mode {
                // Pasted text may carry escape sequences; the draft must not.
                c.editor.insert_str(text::sanitize(&text, false));
                c.refusal = None;
                c.unsaved = true;
                c.recount();
                state.dirty = true;
            } else if accounts::on_paste(state, &text) {
                state.dirty = true;
            }
            Ok(())
        }
        Action::Resize { width, height } => {
            state.size = (width, height);
            state.dirty = true;
            let layout = state.layout();
            // A pane that no longer fits cannot keep the focus.
            if (state.focus == Pane::Accounts && layout.accounts.is_none())
                || (state.focus == Pane::Detail && layout.detail.is_none())
            {
                state.focus = Pane::Feed;
            }
            state.feed.set_height(store, layout.feed_rows())
        }
        Action::Tick(now) => {
            // Drafts are saved as you type, at most once a tick.
            if let Mode::Compose(c) = &mut state.mode
                && c.unsaved
            {
                c.unsaved = false;
                effects.push(save_draft(c, now));
            }
            if let Some(notice) = &mut state.notice {
                if notice.since.is_none() {
                    notice.since = Some(now);
                } else if notice.expired(now) {
                    state.notice = None;
                    state.dirty = true;
                }
            }
            let labels = state.clock_labels(now);
            let spinning = state.accounts.iter().any(|a| a.syncing);
            if accounts::on_tick(state, now) {
                state.dirty = true;
            }
            if spinning || labels != state.clock_fingerprint {
                state.dirty = true;
            }
            state.clock_fingerprint = labels;
            Ok(())
        }
        Action::Sync(event) => {
            accounts::observe_sync(state, &event);
            if let SyncEvent::PageCommitted {
                account_id,
                inserted,
            } = &event
            {
                effects.extend(crate::app::notify::on_new_mentions(
                    state,
                    *account_id,
                    *inserted,
                ));
            }
            let after = event.clone();
            on_sync(state, event, store).and_then(|()| accounts::after_sync(state, &after, store))
        }
        Action::Outbox(event) => {
            state.dirty = true;
            on_outbox(state, event, store, &mut effects)
        }
        Action::Team(event) => {
            if state.team.apply(&event) {
                state.dirty = true;
            }
            on_team(state, &event);
            Ok(())
        }
        Action::StoreChanged => {
            state.dirty = true;
            state.refresh(store)
        }
        Action::Notify { text, is_error } => {
            state.dirty = true;
            if is_error {
                state.error(text)
            } else {
                state.info(text)
            }
            Ok(())
        }
        Action::Continue(job) => match job {
            Job::Search => search::step(state, store),
            Job::Bulk => triage::bulk_step(state, store, &mut effects),
            Job::Undo => {
                triage::undo_step(state, &mut effects);
                Ok(())
            }
        },
        Action::Triaged { action, changed } => triage::on_triaged(state, store, action, changed),
        Action::Undone(step) => triage::on_undo_step(state, store, step, &mut effects),
        Action::EditorDone { key, result } => {
            state.dirty = true;
            on_editor_done(state, key, result);
            Ok(())
        }
        Action::OpenFailed { url, why } => {
            state.dirty = true;
            state.error(format!(
                "no browser could be opened ({why}): the link is on the clipboard instead (paste it into a browser)"
            ));
            effects.push(Effect::CopyToClipboard(url));
            Ok(())
        }
        Action::Login(event) => {
            state.dirty = true;
            accounts::on_login_event(state, event, &mut effects);
            // A login that stored an account changed the store.
            if effects
                .iter()
                .any(|e| matches!(e, Effect::Account(AccountEffect::Added(_))))
            {
                state.refresh(store)
            } else {
                Ok(())
            }
        }
        Action::DraftMeasured {
            key,
            generation,
            length,
        } => {
            if let Mode::Compose(c) = &mut state.mode
                && c.key == key
                && c.measured(generation, length)
            {
                state.dirty = true;
            }
            Ok(())
        }
    };
    if let Err(e) = result {
        tracing::warn!("store read failed in the UI: {e}");
        state.error(store_problem(&e));
        state.dirty = true;
    }
    // An edit the composer could not measure at once is measured off the key path.
    if let Mode::Compose(c) = &mut state.mode
        && let Some((generation, text)) = c.take_measure_request()
    {
        effects.push(Effect::MeasureDraft {
            key: c.key,
            generation,
            text,
        });
    }
    search::schedule(state, &mut effects);
    keep_presence(state, &mut effects);
    note_selected_arrivals(state, store);
    // The terminal title follows the pending count, whatever changed it.
    effects.extend(crate::app::notify::title(state));
    effects
}

/// Says what someone else on the team did, when it concerns this person: an assignment by
/// another, or another person starting to reply to the mention this person is composing for.
fn on_team(state: &mut AppState, event: &crate::domain::TeamEvent) {
    use crate::domain::TeamEvent;
    let me = state.team.me.clone();
    match event {
        TeamEvent::Assigned { by, .. } if *by != me => {
            state.info(text::for_screen(&event.describe(), true));
            state.dirty = true;
        }
        TeamEvent::Replying {
            key,
            person,
            replying: true,
            ..
        } if *person != me && state.presence.is_some_and(|(k, _)| k == *key) => {
            state.error(format!(
                "{} is replying to this mention too",
                text::for_screen(person, true)
            ));
            state.dirty = true;
        }
        _ => {}
    }
}

/// Keeps what the team sees in step with the composer (issue 16): open on a mention, the team
/// hears this person is replying (again every `PRESENCE_TOUCH_EVERY`, or the service lets it
/// expire); closed, sent or moved to another mention, they hear it ended.
fn keep_presence(state: &mut AppState, effects: &mut Vec<Effect>) {
    let now = state.now();
    let composing = match &state.mode {
        Mode::Compose(c) => Some(c.key),
        _ => None,
    };
    match (state.presence, composing) {
        (Some((key, touched)), Some(open)) if key == open => {
            if now - touched >= crate::domain::team::PRESENCE_TOUCH_EVERY {
                effects.push(Effect::Presence { key, open: true });
                state.presence = Some((key, now));
            }
        }
        (was, now_open) => {
            if let Some((key, _)) = was {
                effects.push(Effect::Presence { key, open: false });
            }
            if let Some(key) = now_open {
                effects.push(Effect::Presence { key, open: true });
            }
            state.presence = now_open.map(|k| (k, now));
        }
    }
}

/// `A`: takes the mention the user saw (assigns it to this dashboard's person), or gives it back
/// when it is theirs already. The change comes back as a team event, which every dashboard shows.
fn take_or_give_back(state: &mut AppState, effects: &mut Vec<Effect>) {
    let Some(m) = state.feed.selected_mention() else {
        state.error("no mention selected");
        return;
    };
    let key = m.key();
    let handle = format!("@{}", m.sent_to.username);
    let shown = text::for_screen(&handle, true);
    let me = state.team.me.clone();
    let (person, said) = match state.team.assigned(key) {
        Some(p) if p == me => (
            None,
            format!("giving back {shown}'s mention {}", key.tweet_id),
        ),
        Some(other) => (
            Some(me.clone()),
            format!(
                "taking {shown}'s mention {} from {}",
                key.tweet_id,
                text::for_screen(other, true)
            ),
        ),
        None => (
            Some(me.clone()),
            format!("taking {shown}'s mention {}", key.tweet_id),
        ),
    };
    effects.push(Effect::Assign {
        key,
        mention_id: m.id,
        handle,
        person,
        by: me,
    });
    state.info(said);
}

/// Reads how the selected row's mentions arrived (stream or poll) when the selection changed.
fn note_selected_arrivals(state: &mut AppState, store: &dyn FeedSource) {
    let keys = state
        .feed
        .selected_row()
        .map(|row| row.keys())
        .unwrap_or_default();
    let known: Vec<crate::domain::MentionKey> =
        state.selected_arrivals.iter().map(|(k, _)| *k).collect();
    if keys == known {
        return;
    }
    // One read for the row's mentions (one round trip through the service); if it fails the
    // detail shows no arrival, which is what it showed before the read.
    state.selected_arrivals = match store.arrivals(&keys) {
        Ok(arrivals) => keys.into_iter().zip(arrivals).collect(),
        Err(_) => Vec::new(),
    };
}

fn store_problem(e: &StoreError) -> String {
    format!("could not read the store: {e}")
}

fn on_key(
    state: &mut AppState,
    key: KeyEvent,
    seen: Option<MentionKey>,
    store: &dyn FeedSource,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    let keys = state.keymap.clone();
    let state_now = state.now();
    match &mut state.mode {
        Mode::Help => {
            // Any key closes the help; `q` there means "close", not "quit".
            state.mode = Mode::Normal;
            Ok(())
        }
        Mode::Search => search::on_key(state, store, key),
        Mode::Confirm(confirm) => {
            let status = confirm.status;
            match keymap::confirm_key(&keys, &key) {
                Some(true) => triage::start_bulk(state, store, status, effects)?,
                Some(false) => {
                    state.mode = Mode::Normal;
                    let esc = state.keymap.key(Intent::Back);
                    state.info(format!(
                        "nothing changed (the marks are kept; {esc} clears them)"
                    ));
                }
                None => {}
            }
            Ok(())
        }
        Mode::ConfirmUndo(action) => {
            let id = action.id;
            match keymap::confirm_key(&keys, &key) {
                Some(true) => {
                    state.mode = Mode::Normal;
                    triage::undo(state, id, effects);
                }
                Some(false) => {
                    state.mode = Mode::Normal;
                    state.info("nothing undone");
                }
                None => {}
            }
            Ok(())
        }
        Mode::PickAccount(picker) => {
            match keymap::picker_key(&keys, &key) {
                keymap::PickerKey::Move(delta) => {
                    let last = picker.choices.len().saturating_sub(1) as isize;
                    picker.selected = (picker.selected as isize + delta).clamp(0, last) as usize;
                }
                keymap::PickerKey::Choose(n) => {
                    let choice = n.unwrap_or(picker.selected);
                    if let Some((key, _)) = picker.choices.get(choice).cloned() {
                        let kind = picker.kind;
                        state.mode = Mode::Normal;
                        open_composer_for(state, store, key, kind)?;
                    }
                }
                keymap::PickerKey::Cancel => state.mode = Mode::Normal,
                keymap::PickerKey::Other => {}
            }
            Ok(())
        }
        Mode::Compose(composer) if composer.templates.is_some() => {
            on_template_key(&keys, composer, key);
            Ok(())
        }
        Mode::Compose(composer) => {
            match keymap::composer_key(&keys, &key) {
                ComposerKey::Send => send(state, effects),
                ComposerKey::ExternalEditor => {
                    effects.push(Effect::EditExternally {
                        key: composer.key,
                        text: composer.text(),
                    });
                }
                ComposerKey::Templates => open_templates(state, store)?,
                ComposerKey::Cancel => {
                    if composer.text().trim().is_empty() {
                        effects.push(Effect::DeleteDraft { key: composer.key });
                        state.mode = Mode::Normal;
                    } else {
                        let now = state_now;
                        effects.push(save_draft(composer, now));
                        state.mode = Mode::Normal;
                        let (r, d) = (keys.key(Intent::ReplyPublic), keys.key(Intent::ReplyDm));
                        state.info(format!("draft kept: {r} or {d} on this mention reopens it"));
                    }
                }
                ComposerKey::Edit => {
                    if composer.editor.input(key) {
                        composer.refusal = None;
                        composer.unsaved = true;
                        composer.recount();
                    }
                }
            }
            Ok(())
        }
        Mode::Account(_) => accounts::on_key(state, key, store, effects),
        Mode::Normal => {
            let Some(press) = keymap::KeyPress::from_event(&key) else {
                return Ok(());
            };
            let intent = match state.keymap.normal.step(&mut state.keys_typed, press) {
                keymap::Step::Action(intent) => Some(intent),
                // The first key of a sequence (`g` of `g g`): wait for the next.
                keymap::Step::Pending => return Ok(()),
                keymap::Step::None => None,
            };
            // "Press r again to reply once more" holds for the very next key only.
            if !matches!(intent, Some(Intent::ReplyPublic | Intent::ReplyDm)) {
                state.reply_again = None;
            }
            match intent {
                Some(intent) if aim_at_seen(state, intent, seen) => {
                    on_intent(state, intent, store, effects)
                }
                _ => Ok(()),
            }
        }
    }
}

/// Puts the selection back on the row the user saw when they pressed the key, if something else
/// (an arrival while the feed followed the top, a row dropping out of the filter) moved it since
/// the screen was drawn. Returns false, with a notice, when a key that acts on a mention cannot
/// find the one that was seen: then nothing is done, rather than acting on a post nobody read.
fn aim_at_seen(state: &mut AppState, intent: Intent, seen: Option<MentionKey>) -> bool {
    let on_seen = match (state.feed.selected_row(), seen) {
        (Some(row), Some(seen)) => row.contains(seen),
        (None, None) => true,
        _ => false,
    };
    if on_seen || seen.is_some_and(|k| state.feed.select_key(k)) {
        return true;
    }
    let on_marks = !state.marks.is_empty()
        && matches!(
            intent,
            Intent::Ignore | Intent::Reopen | Intent::MarkReplied
        );
    // `P` with an account chosen, or Enter in the accounts pane, is about an account.
    let on_account = (intent == Intent::TogglePause && state.selected_account().is_some())
        || (intent == Intent::Open && state.focus == Pane::Accounts);
    if !intent.acts_on_selected_mention() || on_marks || on_account {
        return true;
    }
    state.error(match seen {
        Some(_) => "the mention you were reading has left this view: nothing done; look again",
        None => "new mentions just came in: nothing done; look at the selected one first",
    });
    false
}

fn on_intent(
    state: &mut AppState,
    intent: Intent,
    store: &dyn FeedSource,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    let page = state.feed.height.max(1) as isize;
    match intent {
        Intent::Down => move_in_focus(state, store, 1)?,
        Intent::Up => move_in_focus(state, store, -1)?,
        Intent::PageDown => move_in_focus(state, store, page)?,
        Intent::PageUp => move_in_focus(state, store, -page)?,
        Intent::Top => match state.focus {
            Pane::Accounts => select_account_row(state, store, 0)?,
            Pane::Feed => {
                state.feed.load_top(store)?;
                state.detail_scroll = 0;
            }
            Pane::Detail => state.detail_scroll = 0,
        },
        Intent::Bottom => match state.focus {
            Pane::Accounts => select_account_row(state, store, state.accounts.len())?,
            Pane::Feed => {
                state.feed.load_bottom(store)?;
                state.detail_scroll = 0;
            }
            // The detail pane clamps this to its last line when it draws.
            Pane::Detail => state.detail_scroll = u16::MAX,
        },
        Intent::NextPane => state.focus = next_pane(state, true),
        Intent::PrevPane => state.focus = next_pane(state, false),
        Intent::Open => match state.focus {
            Pane::Accounts => match state.selected_account() {
                Some(row) => accounts::open_detail(state, row.account.id),
                None => state.focus = Pane::Feed,
            },
            Pane::Feed | Pane::Detail => reopen_failed_or_focus_detail(state, store, effects)?,
        },
        Intent::Back => back(state, store)?,
        Intent::ReplyPublic => open_composer(state, store, ReplyKind::Public)?,
        Intent::ReplyDm => open_composer(state, store, ReplyKind::Dm)?,
        Intent::OpenInBrowser => {
            if let Some(m) = state.feed.selected_mention() {
                effects.push(Effect::OpenUrl(m.url()));
            }
        }
        Intent::CopyLink => {
            if let Some(m) = state.feed.selected_mention() {
                effects.push(Effect::CopyToClipboard(m.url()));
                state.info("link copied");
            }
        }
        Intent::CycleStatusFilter => {
            state.status_filter = state.status_filter.next();
            state.feed.filter.status = state.status_filter.status();
            search::reload(state, store)?;
            // The count is in the feed's title, which stays true as mentions come and go.
            let label = state.status_filter.label();
            state.info(format!("status filter: {label} (f shows the next)"));
        }
        Intent::Search => search::open(state),
        Intent::NextMatch => search::next_match(state, store, true)?,
        Intent::PrevMatch => search::next_match(state, store, false)?,
        Intent::Mark => mark_selected(state, store)?,
        Intent::MarkAll => mark_all(state, store)?,
        Intent::Undo => triage::start_undo(state, store, effects)?,
        Intent::Ignore => triage_or_confirm(state, store, MentionStatus::Ignored, effects)?,
        Intent::Reopen => triage_or_confirm(state, store, MentionStatus::Pending, effects)?,
        Intent::MarkReplied => triage_or_confirm(state, store, MentionStatus::Replied, effects)?,
        Intent::Take => take_or_give_back(state, effects),
        Intent::MarkSent => resolve_outbox(state, effects, Resolve::MarkSent),
        Intent::CancelSend => resolve_outbox(state, effects, Resolve::Cancel),
        Intent::TogglePause => toggle_pause(state, store, effects)?,
        Intent::FetchAccount => match state.selected_account() {
            Some(a) => {
                let handle = a.account.handle();
                effects.push(Effect::FetchNow(Some(a.account.id)));
                state.info(format!("fetching {handle} now"));
            }
            None => {
                effects.push(Effect::FetchNow(None));
                state.info("fetching all active accounts now");
            }
        },
        Intent::FetchAll => {
            effects.push(Effect::FetchNow(None));
            state.info("fetching all active accounts now");
        }
        Intent::AddAccount => accounts::open_add_account(state, effects),
        Intent::Reauthorize => {
            let account = accounts::target_account(state);
            accounts::open_reauthorize(state, account, effects)
        }
        Intent::ToggleShowPaused => {
            accounts::toggle_show_paused(state);
            state.reload_accounts(store)?;
            state.feed.filter.account = state.selected_account().map(|a| a.account.id);
            state.feed.reload_around_selection(store)?;
        }
        Intent::Stats => {
            let account = accounts::target_account(state);
            accounts::open_stats(state, store, account)?
        }
        Intent::RemoveAccount => {
            let account = accounts::target_account(state);
            accounts::open_remove(state, store, account)?
        }
        Intent::Help => state.mode = Mode::Help,
        Intent::Quit => {
            state.quit = true;
            effects.push(Effect::Quit);
        }
    }
    Ok(())
}

fn move_in_focus(
    state: &mut AppState,
    store: &dyn FeedSource,
    delta: isize,
) -> Result<(), StoreError> {
    match state.focus {
        Pane::Accounts => {
            let last = state.accounts.len() as isize;
            let row = (state.account_selected as isize + delta).clamp(0, last);
            select_account_row(state, store, row as usize)
        }
        Pane::Feed => {
            let before = state.feed.selected_pos();
            state.feed.move_by(store, delta)?;
            if state.feed.selected_pos() != before {
                state.detail_scroll = 0;
            }
            Ok(())
        }
        Pane::Detail => {
            let scroll = i64::from(state.detail_scroll) + delta as i64;
            state.detail_scroll = scroll.clamp(0, i64::from(u16::MAX)) as u16;
            Ok(())
        }
    }
}

/// Rows one wheel notch moves.
const WHEEL_STEP: isize = 3;

/// A click selects what is under it (and focuses its pane); the wheel moves the selection of the
/// pane under the pointer (the detail pane: scrolls it). Only in the normal mode: a click never
/// reaches into an open overlay, the composer or the search line.
fn on_pointer(
    state: &mut AppState,
    store: &dyn FeedSource,
    target: PointerTarget,
    what: PointerKind,
) -> Result<(), StoreError> {
    if !matches!(state.mode, Mode::Normal) {
        return Ok(());
    }
    state.reply_again = None;
    let pane = match target {
        PointerTarget::Accounts(_) => Pane::Accounts,
        PointerTarget::Feed(_) => Pane::Feed,
        PointerTarget::Detail => Pane::Detail,
    };
    match what {
        PointerKind::Click => {
            state.focus = pane;
            match target {
                PointerTarget::Accounts(Some(row)) => select_account_row(state, store, row)?,
                PointerTarget::Feed(Some(row)) => {
                    let before = state.feed.selected_pos();
                    let delta = row as isize - state.feed.selected as isize;
                    state.feed.move_by(store, delta)?;
                    if state.feed.selected_pos() != before {
                        state.detail_scroll = 0;
                    }
                }
                _ => {}
            }
            Ok(())
        }
        PointerKind::WheelUp | PointerKind::WheelDown => {
            let delta = if what == PointerKind::WheelUp {
                -WHEEL_STEP
            } else {
                WHEEL_STEP
            };
            let focus = std::mem::replace(&mut state.focus, pane);
            let moved = move_in_focus(state, store, delta);
            state.focus = focus;
            moved
        }
    }
}

/// Selecting a row of the accounts pane filters the feed to that account (row 0: all).
fn select_account_row(
    state: &mut AppState,
    store: &dyn FeedSource,
    row: usize,
) -> Result<(), StoreError> {
    let row = row.min(state.accounts.len());
    if row == state.account_selected {
        return Ok(());
    }
    state.account_selected = row;
    state.feed.filter.account = state.selected_account().map(|a| a.account.id);
    // The search (if any) starts again over the new account.
    search::reload(state, store)
}

/// `Esc`: back to the feed; there, clear the marks, then the search.
fn back(state: &mut AppState, store: &dyn FeedSource) -> Result<(), StoreError> {
    if state.focus != Pane::Feed {
        state.focus = Pane::Feed;
    } else if !state.marks.is_empty() {
        state.marks = Marks::default();
        state.info("marks cleared");
    } else if state.feed.search.is_some() {
        search::clear(state, store)?;
    }
    Ok(())
}

/// `i`/`p`/`x`: on everything marked (after a confirm), else on the selected post.
fn triage_or_confirm(
    state: &mut AppState,
    store: &dyn FeedSource,
    status: MentionStatus,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    if state.marks.is_empty() {
        triage::triage_selected(state, store, status, effects)
    } else {
        triage::confirm_bulk(state, status);
        Ok(())
    }
}

/// `Space`: mark (or unmark) the selected post, then move down.
fn mark_selected(state: &mut AppState, store: &dyn FeedSource) -> Result<(), StoreError> {
    let Some(row) = state.feed.selected_row() else {
        return Ok(());
    };
    let mentions = row.mentions().to_vec();
    if !state.marks.toggle(&mentions) {
        let (v, esc) = (
            state.keymap.key(Intent::MarkAll),
            state.keymap.key(Intent::Back),
        );
        state.error(format!(
            "this mention is outside what {v} marked: {esc} clears the marks"
        ));
        return Ok(());
    }
    let n = state.marks.count_label();
    state.info(format!(
        "{n} marked: {} applies to all of them, {} clears",
        state.keymap.triage_keys(),
        state.keymap.key(Intent::Back)
    ));
    state.feed.move_by(store, 1)
}

/// `V`: mark everything the feed's filters match (again: unmark all). Kept as the filter, not as
/// keys, so it costs the same for ten mentions or a million.
fn mark_all(state: &mut AppState, store: &dyn FeedSource) -> Result<(), StoreError> {
    let query = state.feed.search.as_ref().map(|s| s.query.clone());
    if let Marks::Matching(m) = &state.marks
        && m.filter == state.feed.filter
        && m.query == query
    {
        state.marks = Marks::default();
        state.info("marks cleared");
        return Ok(());
    }
    // The newest matching mention now: later arrivals are not part of what the user marked.
    let newest = match &query {
        Some(_) => state.feed.rows.first().map(|r| r.primary().key().into()),
        None => store
            .page_after(&state.feed.filter, None, 1)?
            .first()
            .map(|m| m.key().into()),
    };
    let matched = if query.is_some() {
        state.feed.total
    } else {
        store.count(&state.feed.filter)?
    };
    state.marks = Marks::Matching(MarkedFilter {
        filter: state.feed.filter.clone(),
        query,
        newest,
        except: Default::default(),
        matched,
        matched_is_lower_bound: state.feed.searching(),
    });
    let n = state.marks.count_label();
    state.info(format!(
        "marked all {n} matching: {} applies to them, {} unmarks one, {} clears",
        state.keymap.triage_keys(),
        state.keymap.key(Intent::Mark),
        state.keymap.key(Intent::Back)
    ));
    Ok(())
}

fn next_pane(state: &AppState, forward: bool) -> Pane {
    let layout = state.layout();
    let mut order = Vec::with_capacity(3);
    if layout.accounts.is_some() {
        order.push(Pane::Accounts);
    }
    order.push(Pane::Feed);
    if layout.detail.is_some() {
        order.push(Pane::Detail);
    }
    let here = order.iter().position(|p| *p == state.focus).unwrap_or(0);
    let n = order.len();
    let next = if forward {
        (here + 1) % n
    } else {
        (here + n - 1) % n
    };
    order[next]
}

/// Enter on a mention whose reply failed reopens the kept draft; otherwise it shows the detail.
/// Enter on an unconfirmed reply sends it again.
fn reopen_failed_or_focus_detail(
    state: &mut AppState,
    store: &dyn FeedSource,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    let Some(row) = state.feed.selected_row() else {
        return Ok(());
    };
    if row
        .mentions()
        .iter()
        .any(|m| state.outbox.unconfirmed(m.key()).is_some())
    {
        resolve_outbox(state, effects, Resolve::Retry);
        return Ok(());
    }
    let failed: Vec<MentionKey> = row
        .mentions()
        .iter()
        .filter(|m| m.status == MentionStatus::Error)
        .map(Mention::key)
        .collect();
    for key in failed {
        if let Some(draft) = store.draft(key)? {
            return open_composer_for(state, store, key, draft.kind);
        }
    }
    if state.layout().detail.is_some() {
        state.focus = Pane::Detail;
    }
    Ok(())
}

/// `r`/`d`: a reply goes out from exactly one account, so a post sent to several asks which
/// (the first is the default).
fn open_composer(
    state: &mut AppState,
    store: &dyn FeedSource,
    kind: ReplyKind,
) -> Result<(), StoreError> {
    let Some(row) = state.feed.selected_row() else {
        state.info("no mention selected");
        return Ok(());
    };
    if row.mentions().len() > 1 {
        state.mode = Mode::PickAccount(AccountPicker::new(kind, row.mentions()));
        return Ok(());
    }
    let key = row.primary().key();
    open_composer_for(state, store, key, kind)
}

fn open_composer_for(
    state: &mut AppState,
    store: &dyn FeedSource,
    key: MentionKey,
    kind: ReplyKind,
) -> Result<(), StoreError> {
    let found = match state.feed.selected_row().filter(|r| r.contains(key)) {
        Some(row) => row.mentions().iter().find(|m| m.key() == key).cloned(),
        None => store.mention(key)?,
    };
    let Some(m) = found.as_ref() else {
        state.error("that mention is no longer in the store");
        return Ok(());
    };
    if state.sending.contains(&m.key()) {
        state.error("a reply to this mention is being sent; wait for it to finish");
        return Ok(());
    }
    if state.outbox.unconfirmed(m.key()).is_some() {
        let message = crate::app::outbox_board::resolve_first(&state.keymap);
        state.error(message);
        return Ok(());
    }
    if kind == ReplyKind::Dm && m.sender.twitter_id.is_none() {
        state.error("X did not say who wrote this post, so there is no one to DM");
        return Ok(());
    }
    // Mentions kept from a removed account are for reading and history: nobody can answer
    // from an account perch no longer holds.
    if store.account(m.sent_to.account_id)?.is_none() {
        let handle = text::for_screen(&m.sent_to.username, true);
        state.error(format!(
            "@{handle} was removed: its kept mentions are for reading and history; add it again with a to reply"
        ));
        return Ok(());
    }
    // A reply already went out: say so, and reply again only when asked twice.
    let answered = match kind {
        ReplyKind::Public => m.public_response.as_ref(),
        ReplyKind::Dm => m.dm_response.as_ref(),
    };
    if let Some(response) = answered
        && state.reply_again != Some((m.key(), kind))
    {
        let when = crate::app::time::relative_time(response.sent_at, state.now());
        let key = state.keymap.key(if kind == ReplyKind::Public {
            Intent::ReplyPublic
        } else {
            Intent::ReplyDm
        });
        state.info(format!(
            "{} already sent {when}: press {key} again to send another",
            kind.noun()
        ));
        state.reply_again = Some((m.key(), kind));
        return Ok(());
    }
    state.reply_again = None;
    // The store keeps one draft per mention; it comes back only for the same kind of reply.
    let draft = store.draft(m.key())?.filter(|d| d.kind == kind);
    let mut composer = Composer::open(m, kind, draft.as_ref().map(|d| d.text.as_str()));
    composer.set_pricing(m, store.pricing().prices);
    state.mode = Mode::Compose(Box::new(composer));
    Ok(())
}

fn save_draft(composer: &Composer, now: DateTime<Utc>) -> Effect {
    Effect::SaveDraft {
        key: composer.key,
        draft: Draft {
            kind: composer.kind,
            text: composer.text(),
            updated_at: now,
        },
    }
}

fn send(state: &mut AppState, effects: &mut Vec<Effect>) {
    let now = state.now();
    let (send_key, close_key) = (
        state.keymap.composer.label(keymap::ComposerAction::Send),
        state.keymap.composer.label(keymap::ComposerAction::Close),
    );
    let Mode::Compose(composer) = &mut state.mode else {
        return;
    };
    if let Some(reason) = composer.check() {
        composer.refusal = Some(reason.clone());
        state.error(format!("not sent: {reason}"));
        return;
    }
    // Someone else has this mention's composer open: ask once before sending over them.
    let others = state.team.others_replying(composer.key);
    if !others.is_empty() && !composer.over_others_confirmed {
        composer.over_others_confirmed = true;
        let names: Vec<String> = others.iter().map(|p| text::for_screen(p, true)).collect();
        let verb = if names.len() == 1 { "is" } else { "are" };
        state.error(format!(
            "{} {verb} replying to this mention: send anyway? ({send_key} again sends it, {close_key} keeps the draft)",
            names.join(" and ")
        ));
        return;
    }
    // Replies and DMs stay allowed over the budget, after asking once.
    if state.costs.over_budget && !composer.over_budget_confirmed {
        composer.over_budget_confirmed = true;
        state.error(format!(
            "over budget: send anyway? ({send_key} again sends it, {close_key} keeps the draft)"
        ));
        return;
    }
    let request = SendRequest {
        key: composer.key,
        kind: composer.kind,
        text: composer.text(),
        send_anyway: false,
    };
    let what = match composer.kind {
        ReplyKind::Public => format!(
            "sending reply as {} to {}…",
            composer.account_handle, composer.sender_handle
        ),
        ReplyKind::Dm => format!(
            "sending DM as {} to {}…",
            composer.account_handle, composer.sender_handle
        ),
    };
    // The draft stays until the outbox says it was sent, so a failure loses nothing.
    effects.push(save_draft(composer, now));
    state.sending.insert(request.key);
    state.undo_ready = None;
    state.mode = Mode::Normal;
    state.info(what);
    effects.push(Effect::Send(request));
}

fn toggle_pause(
    state: &mut AppState,
    store: &dyn FeedSource,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    // The accounts pane's choice, else the account of the selected mention (which may be one
    // that `H` hides from the pane: it is still an account).
    let id = match state.selected_account() {
        Some(a) => Some(a.account.id),
        None => state.feed.selected_mention().map(|m| m.sent_to.account_id),
    };
    let account = match id {
        Some(id) => match state.account(id) {
            Some(row) => Some(row.account.clone()),
            None => store.account(id)?,
        },
        None => None,
    };
    let Some(account) = account else {
        if let Some(m) = state.feed.selected_mention() {
            let handle = text::for_screen(&m.sent_to.username, true);
            state.error(format!(
                "@{handle} was removed: there is nothing to pause or resume (a adds it again)"
            ));
        } else {
            state.error("no account selected: pick one in the accounts pane (Tab)");
        }
        return Ok(());
    };
    let (id, handle) = (account.id, account.handle());
    if account.sync_status == SyncStatus::Paused || !account.is_active {
        effects.push(Effect::Resume(id));
        state.info(format!("resuming {handle}"));
    } else {
        effects.push(Effect::Pause(id));
        state.info(format!("pausing {handle}"));
    }
    Ok(())
}

fn on_sync(
    state: &mut AppState,
    event: SyncEvent,
    store: &dyn FeedSource,
) -> Result<(), StoreError> {
    match event {
        SyncEvent::Started { account_id } => set_syncing(state, account_id, true),
        SyncEvent::Finished {
            account_id,
            senders_filled,
            ..
        } => {
            set_syncing(state, account_id, false);
            // Rows on screen may have shown these senders as unknown: read them again.
            if senders_filled > 0 {
                state.dirty = true;
                state.refresh(store)?;
            }
        }
        SyncEvent::PageCommitted {
            account_id: _,
            inserted,
        } => {
            if inserted > 0 {
                state.dirty = true;
                state.refresh(store)?;
            }
        }
        SyncEvent::AccountUpdated(account) => {
            state.dirty = true;
            let listed = accounts::is_listed(state, &account);
            match state
                .accounts
                .iter_mut()
                .find(|a| a.account.id == account.id)
            {
                // Paused while paused ones are hidden: it leaves the list.
                Some(_) if !listed => state.reload_accounts(store)?,
                Some(row) => row.account = account,
                // A new account: read the list again (it is small) to place it in order.
                None => state.reload_accounts(store)?,
            }
        }
        // The budget is the sync engine's business; the screen does not show it yet.
        SyncEvent::Budget { .. } => {}
        // Recorded by `accounts::observe_sync`; the status bar and the account rows show them.
        SyncEvent::StreamStatus(_) | SyncEvent::Subscriptions { .. } => state.dirty = true,
        SyncEvent::Notice { message, .. } => {
            state.dirty = true;
            state.info(text::sanitize(&message, true));
        }
        SyncEvent::AccountRemoved { account_id } => {
            state.dirty = true;
            state.reload_accounts(store)?;
            if state.feed.filter.account == Some(account_id) {
                // The feed was showing only that account: fall back to all accounts.
                state.feed.filter.account = None;
                search::reload(state, store)?;
            } else {
                state.refresh(store)?;
            }
        }
    }
    Ok(())
}

fn set_syncing(state: &mut AppState, account_id: AccountId, syncing: bool) {
    if let Some(row) = state
        .accounts
        .iter_mut()
        .find(|a| a.account.id == account_id)
        && row.syncing != syncing
    {
        row.syncing = syncing;
        state.dirty = true;
    }
}

fn on_outbox(
    state: &mut AppState,
    event: OutboxEvent,
    store: &dyn FeedSource,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    // What the outbox holds for this mention now decides whether it shows as on its way.
    let key = event.key();
    state.outbox.refresh(store, key)?;
    let with_outbox = state.outbox.get(key).is_some_and(|e| {
        matches!(
            e.state,
            OutboxState::Queued | OutboxState::Waiting | OutboxState::Sending
        )
    });
    if with_outbox {
        state.sending.insert(key);
    } else {
        state.sending.remove(&key);
    }
    match event {
        OutboxEvent::Sending { key } => {
            state.sending.insert(key);
        }
        OutboxEvent::Unconfirmed { key, kind, message } => {
            reload_row(state, store, key)?;
            let notice =
                crate::app::outbox_board::unconfirmed_notice(&state.keymap, kind, &message);
            state.error(notice);
        }
        OutboxEvent::Waiting { until, .. } => {
            let notice = crate::app::outbox_board::waiting_notice(&state.keymap, until);
            state.info(notice);
        }
        OutboxEvent::Cancelled { key, kind } => {
            reload_row(state, store, key)?;
            state.info(format!(
                "{} not sent; the mention is pending again and the draft is kept",
                kind.noun()
            ));
            state.reload_accounts(store)?;
        }
        OutboxEvent::Refused { key, message } => {
            reload_row(state, store, key)?;
            state.error(text::sanitize(&message, true));
        }
        OutboxEvent::Sent {
            key,
            kind,
            response,
        } => {
            state.sending.remove(&key);
            effects.push(Effect::DeleteDraft { key });
            // The outbox recorded the response in the store: show what the store says, and
            // never less than what the event told us.
            let stored = store.mention(key)?;
            if let Some(row) = state.feed.row_mut(key) {
                if let Some(m) = stored {
                    *row = m;
                }
                row.status = MentionStatus::Replied;
                row.error_message = None;
                let slot = match kind {
                    ReplyKind::Public => &mut row.public_response,
                    ReplyKind::Dm => &mut row.dm_response,
                };
                if slot.is_none() {
                    *slot = Some(response);
                }
            }
            let what = match kind {
                ReplyKind::Public => "reply sent",
                ReplyKind::Dm => "DM sent",
            };
            state.info(what);
            state.reload_accounts(store)?;
        }
        OutboxEvent::Failed { key, kind, message } => {
            state.sending.remove(&key);
            let stored = store.mention(key)?;
            if let Some(row) = state.feed.row_mut(key) {
                if let Some(m) = stored {
                    *row = m;
                }
                row.status = MentionStatus::Error;
                row.error_message = Some(message.clone());
            }
            let kind_word = match kind {
                ReplyKind::Public => "reply",
                ReplyKind::Dm => "DM",
            };
            let message = text::sanitize(&message, true);
            let enter = state.keymap.key(Intent::Open);
            state.error(format!(
                "{kind_word} not sent: {message}. The draft is kept: {enter} reopens it"
            ));
            state.reload_accounts(store)?;
        }
    }
    Ok(())
}

/// Shows the stored version of one mention's row (after the outbox changed it).
fn reload_row(
    state: &mut AppState,
    store: &dyn FeedSource,
    key: MentionKey,
) -> Result<(), StoreError> {
    if let Some(m) = store.mention(key)?
        && let Some(row) = state.feed.row_mut(key)
    {
        *row = m;
    }
    Ok(())
}

/// `Ctrl-T`: the saved replies of the replying account, filled in for this mention.
fn open_templates(state: &mut AppState, store: &dyn FeedSource) -> Result<(), StoreError> {
    let Mode::Compose(composer) = &state.mode else {
        return Ok(());
    };
    let key = composer.key;
    let Some(m) = store.mention(key)? else {
        return Ok(());
    };
    let templates = state.saved_replies.for_account(&m.sent_to.username);
    if templates.is_empty() {
        let handle = text::sanitize(&m.sent_to.username, true);
        let place = state
            .saved_replies
            .config_path
            .as_ref()
            .map(|p| format!(" in {}", p.display()))
            .unwrap_or_default();
        state.error(format!(
            "no saved replies for @{handle}: add templates = [\"…\"] under [accounts.{handle}]{place}"
        ));
        return Ok(());
    }
    let items = templates.iter().map(|t| fill_template(t, &m)).collect();
    if let Mode::Compose(composer) = &mut state.mode {
        composer.templates = Some(TemplatePicker { items, selected: 0 });
    }
    Ok(())
}

/// `M`, `c`, and Enter on an unconfirmed reply: asks the outbox to resolve the selected row's
/// entry (on a post sent to several accounts, the first of its mentions the outbox holds). Only
/// the mention's key goes: the outbox knows which account it belongs to.
fn resolve_outbox(state: &mut AppState, effects: &mut Vec<Effect>, how: Resolve) {
    let Some(row) = state.feed.selected_row() else {
        return;
    };
    let key = row
        .mentions()
        .iter()
        .map(Mention::key)
        .find(|k| state.outbox.get(*k).is_some())
        .unwrap_or_else(|| row.primary().key());
    match state.outbox.resolution(key, how) {
        Ok((command, note)) => {
            if matches!(command, OutboxCommand::Retry(_)) {
                state.sending.insert(key);
            }
            effects.push(Effect::Outbox(command));
            state.info(note);
        }
        Err(why) => state.error(why),
    }
}

/// Keys while the saved-reply picker is open.
fn on_template_key(keys: &keymap::Keymap, composer: &mut Composer, key: KeyEvent) {
    let Some(picker) = &mut composer.templates else {
        return;
    };
    match keymap::picker_key(keys, &key) {
        keymap::PickerKey::Move(delta) => {
            let last = picker.items.len().saturating_sub(1) as isize;
            picker.selected = (picker.selected as isize + delta).clamp(0, last) as usize;
        }
        keymap::PickerKey::Choose(n) => {
            let choice = n.unwrap_or(picker.selected);
            if let Some(filled) = picker.items.get(choice).cloned() {
                composer.templates = None;
                composer.insert_template(&filled);
            }
        }
        keymap::PickerKey::Cancel => composer.templates = None,
        keymap::PickerKey::Other => {}
    }
}

/// The draft came back from `$EDITOR` (or the editor could not run).
fn on_editor_done(state: &mut AppState, key: MentionKey, result: Result<String, String>) {
    match result {
        Ok(edited) => {
            let Mode::Compose(composer) = &mut state.mode else {
                return;
            };
            if composer.key != key {
                return;
            }
            // Editors end a file with a newline the user did not mean as part of the reply.
            let edited = edited.strip_suffix('\n').unwrap_or(&edited);
            composer.replace_text(&text::sanitize(edited, false));
            state.info("draft taken back from the editor");
        }
        Err(why) => state.error(why),
    }
}

#[cfg(test)]
mod tests {
    use crate::app::state::StatusFilter;

    #[test]
    fn status_filter_cycles_through_every_listed_status() {
        let mut f = StatusFilter::All;
        let mut seen = vec![f.label()];
        for _ in 0..5 {
            f = f.next();
            seen.push(f.label());
        }
        assert_eq!(
            seen,
            ["all", "pending", "replied", "ignored", "error", "all"]
        );
    }
}
