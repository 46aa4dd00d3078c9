//! Triage decisions (`i` ignore, `p` reopen, `x` replied elsewhere), on the selected post or on
//! everything marked, and `u` to take them back. Every decision goes through the store's undo log
//! (`Store::triage`), written by the event loop; a bulk decision is applied a chunk at a time
//! between other events, so the screen never freezes on a big store, and so is its undo.

use crate::app::Job;
use crate::app::feed::SEARCH_SCAN_STEP;
use crate::app::marks::{MarkedFilter, Marks};
use crate::app::overlay::BulkConfirm;
use crate::app::source::FeedSource;
use crate::app::state::{AppState, Mode};
use crate::app::update::Effect;
use crate::domain::{MentionKey, MentionStatus};
use crate::store::{FeedPos, StoreError, UndoStep};
use crate::text;

/// Mentions per store batch in a bulk action (and so per undo chunk).
pub const BULK_CHUNK: usize = 500;

/// A bulk triage in progress.
#[derive(Clone, Debug, PartialEq)]
pub struct BulkJob {
    pub action: u64,
    pub status: MentionStatus,
    pub source: BulkSource,
    /// Mentions changed so far.
    pub applied: u64,
}

/// Where the rest of a bulk action's mentions come from.
#[derive(Clone, Debug, PartialEq)]
pub enum BulkSource {
    /// Marked one by one: the keys still to do.
    Keys(Vec<MentionKey>),
    /// Marked with `V`: walk the filter's index from `after`.
    Matching {
        marks: MarkedFilter,
        after: Option<FeedPos>,
        done: bool,
    },
}

/// An undo in progress (a bulk action is undone a chunk at a time).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UndoJob {
    /// The action being undone, once the store has said which is the newest.
    pub action: Option<u64>,
    /// What the action was, in words ("marked 37 mentions ignored at 14:05").
    pub described: Option<String>,
    pub status: Option<MentionStatus>,
    pub restored: u64,
    pub kept_replied: u64,
}

/// "@a", "@a and @b", "@a, @b and @c".
fn join_handles(handles: &[String]) -> String {
    match handles {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `i`/`p`/`x` on the selected row: every mention of the post (one per account it was sent to)
/// gets `status`, then the selection moves on, so one key per post clears a queue.
pub fn triage_selected(
    state: &mut AppState,
    store: &dyn FeedSource,
    status: MentionStatus,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    let Some(row) = state.feed.selected_row() else {
        return Ok(());
    };
    let mentions = row.mentions().to_vec();
    if mentions.iter().all(|m| state.sending.contains(&m.key())) {
        state.error("a reply to this mention is being sent; its status will follow the outcome");
        return Ok(());
    }
    let wanted: Vec<_> = mentions
        .iter()
        .filter(|m| m.status != status && !state.sending.contains(&m.key()))
        .collect();
    // The domain's transitions, the same as `perch mentions set-status`.
    let refusal = wanted.iter().find_map(|m| m.status_change_refused(status));
    let to_change: Vec<_> = wanted
        .into_iter()
        .filter(|m| m.status_change_refused(status).is_none())
        .collect();
    if to_change.is_empty() {
        if let Some(why) = refusal {
            state.error(format!("not {status}: {why}"));
            return Ok(());
        }
        state.feed.move_by(store, 1)?;
        return Ok(());
    }
    let action = state.next_action_id(state.now());
    let keys: Vec<MentionKey> = to_change.iter().map(|m| m.key()).collect();
    let message = if mentions.len() > 1 {
        let handles: Vec<String> = to_change
            .iter()
            .map(|m| format!("@{}", text::sanitize(&m.sent_to.username, true)))
            .collect();
        format!("{status} on {}", join_handles(&handles))
    } else {
        let sender = text::sanitize(&mentions[0].sender.handle(), true);
        format!("{sender}: marked {status}")
    };
    effects.push(Effect::Triage {
        action,
        keys: keys.clone(),
        status,
    });
    state.undo_ready = Some(action);
    // Show the decision at once; the store write confirms it with `Action::Triaged`.
    for key in keys {
        if let Some(m) = state.feed.row_mut(key) {
            m.status = status;
        }
    }
    let undo = state.keymap.key(crate::app::Intent::Undo);
    state.info(format!("{message} ({undo} undoes)"));
    state.detail_scroll = 0;
    state.feed.move_by(store, 1)
}

/// `i`/`p`/`x` with marks: asks first, saying how many.
pub fn confirm_bulk(state: &mut AppState, status: MentionStatus) {
    if state.bulk.is_some() {
        state.error("a bulk action is still being applied; wait for it to finish");
        return;
    }
    state.mode = Mode::Confirm(BulkConfirm {
        status,
        count: state.marks.count_label(),
    });
}

/// The user said yes: the marks become a job, applied a chunk at a time.
pub fn start_bulk(
    state: &mut AppState,
    store: &dyn FeedSource,
    status: MentionStatus,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    state.mode = Mode::Normal;
    let count = state.marks.count_label();
    let source = match std::mem::take(&mut state.marks) {
        Marks::Keys(keys) => BulkSource::Keys(keys.into_iter().collect()),
        Marks::Matching(marks) => BulkSource::Matching {
            marks,
            after: None,
            done: false,
        },
    };
    let action = state.next_action_id(state.now());
    state.undo_ready = Some(action);
    state.bulk = Some(BulkJob {
        action,
        status,
        source,
        applied: 0,
    });
    state.info(format!("marking {count} {status}…"));
    bulk_step(state, store, effects)
}

/// One chunk of the bulk action: the next keys go to the store, and the job continues when the
/// loop is idle. When nothing is left, says what was done.
pub fn bulk_step(
    state: &mut AppState,
    store: &dyn FeedSource,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    let Some(job) = &mut state.bulk else {
        return Ok(());
    };
    let (keys, exhausted) = match &mut job.source {
        BulkSource::Keys(rest) => {
            let n = rest.len().min(BULK_CHUNK);
            let keys: Vec<MentionKey> = rest.drain(..n).collect();
            let exhausted = keys.is_empty();
            (keys, exhausted)
        }
        BulkSource::Matching { done: true, .. } => (Vec::new(), true),
        BulkSource::Matching { marks, after, done } => {
            let (rows, next, end) = match &marks.query {
                Some(q) => {
                    let page = store.search_page(
                        &marks.filter,
                        q,
                        *after,
                        BULK_CHUNK,
                        SEARCH_SCAN_STEP,
                    )?;
                    (page.hits, page.resume_after.or(*after), page.exhausted)
                }
                None => {
                    let rows = store.page_after(&marks.filter, *after, BULK_CHUNK)?;
                    let end = rows.len() < BULK_CHUNK;
                    let next = rows.last().map(FeedPos::from).or(*after);
                    (rows, next, end)
                }
            };
            *after = next;
            *done = end;
            let keys = rows
                .iter()
                .filter(|m| marks.newest.is_none_or(|n| FeedPos::from(*m) <= n))
                .map(|m| m.key())
                .filter(|k| !marks.except.contains(k))
                .collect();
            (keys, false)
        }
    };
    if exhausted {
        let (status, applied) = (job.status, job.applied);
        state.bulk = None;
        let noun = if applied == 1 { "mention" } else { "mentions" };
        let undo = state.keymap.key(crate::app::Intent::Undo);
        state.info(format!("{status}: {applied} {noun} ({undo} undoes)"));
        state.dirty = true;
        return Ok(());
    }
    let keys: Vec<MentionKey> = keys
        .into_iter()
        .filter(|k| !state.sending.contains(k))
        .collect();
    if !keys.is_empty() {
        effects.push(Effect::Triage {
            action: job.action,
            keys,
            status: job.status,
        });
    }
    effects.push(Effect::Background(Job::Bulk));
    Ok(())
}

/// The store recorded a triage chunk.
pub fn on_triaged(
    state: &mut AppState,
    store: &dyn FeedSource,
    action: u64,
    changed: usize,
) -> Result<(), StoreError> {
    if let Some(job) = &mut state.bulk
        && job.action == action
    {
        job.applied += changed as u64;
        let (status, applied) = (job.status, job.applied);
        state.info(format!("{status}: {applied} so far…"));
    }
    state.dirty = true;
    state.refresh(store)
}

/// `u`: undo the newest triage action, a chunk at a time. When that is not what the user just
/// did (a reply went out since, or it was done in an earlier session), it says what it would undo
/// and asks first.
pub fn start_undo(
    state: &mut AppState,
    store: &dyn FeedSource,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    if state.bulk.is_some() {
        let undo = state.keymap.key(crate::app::Intent::Undo);
        state.error(format!(
            "a bulk action is still being applied; {undo} undoes it once it finishes"
        ));
        return Ok(());
    }
    if state.undoing.is_some() {
        state.info("already undoing…");
        return Ok(());
    }
    let Some(last) = store.last_undo_action()? else {
        state.info("nothing to undo");
        return Ok(());
    };
    if state.undo_ready == Some(last.id) {
        undo(state, last.id, effects);
    } else {
        state.mode = Mode::ConfirmUndo(last);
    }
    Ok(())
}

/// Starts undoing `action` (named, so a newer action recorded meanwhile is never taken instead).
pub fn undo(state: &mut AppState, action: u64, effects: &mut Vec<Effect>) {
    state.undo_ready = None;
    state.undoing = Some(UndoJob::default());
    effects.push(Effect::Undo {
        action: Some(action),
    });
}

/// "ignored 37 mentions at 14:05": an undo log action in words.
pub fn describe_action(action: &crate::store::UndoAction) -> String {
    let when = action.at.with_timezone(&chrono::Local);
    let today = chrono::Local::now().date_naive() == when.date_naive();
    let at = if today {
        when.format("at %H:%M").to_string()
    } else {
        when.format("on %a %-d %b at %H:%M").to_string()
    };
    let what = text::count(action.changed, "mention", "mentions");
    format!("marked {what} {} {at}", action.status)
}

/// The store undid one chunk (or found nothing to undo).
pub fn on_undo_step(
    state: &mut AppState,
    store: &dyn FeedSource,
    step: Result<Option<UndoStep>, String>,
    effects: &mut Vec<Effect>,
) -> Result<(), StoreError> {
    state.dirty = true;
    let step = match step {
        Ok(step) => step,
        Err(why) => {
            state.undoing = None;
            state.error(why);
            return state.refresh(store);
        }
    };
    let Some(job) = &mut state.undoing else {
        return Ok(());
    };
    let Some(step) = step else {
        let started = job.action.is_some();
        let job = job.clone();
        state.undoing = None;
        if started {
            state.info(undo_message(&job));
        } else {
            state.info("nothing to undo");
        }
        return Ok(());
    };
    job.action = Some(step.action.id);
    job.status = Some(step.action.status);
    job.described = Some(describe_action(&step.action));
    job.restored += step.restored as u64;
    job.kept_replied += step.kept_replied as u64;
    if step.done {
        let job = job.clone();
        state.undoing = None;
        state.info(undo_message(&job));
        if state.feed.search.is_some() {
            // A search window only re-reads the rows it holds; the mentions undo brought back
            // into the filter are found by searching again.
            state.refresh(store)?;
            return crate::app::search::reload(state, store);
        }
    } else {
        let restored = job.restored;
        state.info(format!("undoing… {restored} so far"));
        effects.push(Effect::Background(Job::Undo));
    }
    state.refresh(store)
}

/// The next chunk of the running undo.
pub fn undo_step(state: &AppState, effects: &mut Vec<Effect>) {
    if let Some(job) = &state.undoing {
        effects.push(Effect::Undo { action: job.action });
    }
}

fn undo_message(job: &UndoJob) -> String {
    let status = job.status.map_or("changed", MentionStatus::as_str);
    let plural = |n: u64| if n == 1 { "mention" } else { "mentions" };
    let kept = match job.kept_replied {
        0 => String::new(),
        1 => "1 stays replied: a reply was sent, and undo never takes a sent reply back".into(),
        k => format!("{k} stay replied: a reply was sent, and undo never takes a sent reply back"),
    };
    let what = job
        .described
        .as_ref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    match (job.restored, kept.is_empty()) {
        (r, true) => format!("undone{what}: {r} {} no longer {status}", plural(r)),
        (0, false) => format!("nothing undone{what}: {kept}"),
        (r, false) => format!("undone{what}: {r} {} no longer {status}; {kept}", plural(r)),
    }
}
