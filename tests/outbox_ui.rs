//! The unconfirmed-send state on screen and from the keyboard: a reply perch stopped in the middle
//! of sending shows as "unconfirmed: check on X" on its row and in the detail pane, with the keys
//! that resolve it; `M`, `Enter` and `c` ask the outbox to resolve it, by mention key only; a new
//! reply to it is refused until it is resolved.

mod ui_fixture;

use chrono::Utc;
use crossterm::event::KeyCode;
use perch::app::{Action, Effect, Mode};
use perch::domain::{MentionKey, MentionStatus};
use perch::outbox::{self, OutboxCommand, OutboxEvent, OutboxState, ReplyKind};
use ui_fixture::{Fixture, now, render};

/// The store as a killed perch leaves it after `start-up repair`: the first mention's reply was
/// `sending`, and is now unconfirmed.
fn unconfirmed_first(fx: &Fixture) -> MentionKey {
    let key = fx.mentions[0].key();
    let entry = fx
        .store
        .outbox_enqueue(
            key,
            ReplyKind::Public,
            "@mara_k known issue, fixed in 2.4.1",
            now(),
        )
        .unwrap();
    fx.store.outbox_begin_send(key, entry.seq, now()).unwrap();
    let repaired = outbox::recover(&fx.store).unwrap();
    assert_eq!(repaired.len(), 1);
    assert_eq!(repaired[0].state, OutboxState::Unconfirmed);
    key
}

fn outboxed(effects: &[Effect]) -> Vec<OutboxCommand> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Outbox(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn an_unconfirmed_reply_shows_on_the_row_and_in_the_detail_pane() {
    let fx = Fixture::new(12);
    let key = unconfirmed_first(&fx);
    let mut state = fx.state(120, 40);
    fx.apply(&mut state, Action::StoreChanged);
    assert_eq!(
        state.outbox.unconfirmed(key).map(|e| e.state),
        Some(OutboxState::Unconfirmed)
    );
    let screen = render(&state, 120, 40);
    assert!(screen.contains("check on X"), "{screen}");
    assert!(screen.contains("unconfirmed: check on X"), "{screen}");
    insta::assert_snapshot!("outbox_unconfirmed_120x40", screen);
}

#[test]
fn keys_resolve_an_unconfirmed_reply_by_its_mention_only() {
    let fx = Fixture::new(12);
    let key = unconfirmed_first(&fx);
    let mut state = fx.state(120, 40);
    fx.apply(&mut state, Action::StoreChanged);

    assert_eq!(
        outboxed(&fx.key(&mut state, KeyCode::Char('M'))),
        vec![OutboxCommand::MarkSent(key)]
    );
    assert_eq!(
        outboxed(&fx.key(&mut state, KeyCode::Char('c'))),
        vec![OutboxCommand::Cancel(key)]
    );
    assert_eq!(
        outboxed(&fx.key(&mut state, KeyCode::Enter)),
        vec![OutboxCommand::Retry(key)]
    );
    assert!(
        matches!(state.mode, Mode::Normal),
        "Enter retries, no composer"
    );
}

#[test]
fn a_new_reply_to_an_unconfirmed_mention_is_refused_until_resolved() {
    let fx = Fixture::new(12);
    let key = unconfirmed_first(&fx);
    let mut state = fx.state(120, 40);
    fx.apply(&mut state, Action::StoreChanged);
    fx.key(&mut state, KeyCode::Char('r'));
    assert!(matches!(state.mode, Mode::Normal), "no composer opened");
    let notice = state.notice.clone().unwrap();
    assert!(notice.text.contains("unconfirmed"), "{notice:?}");

    // The user says it is on X: the outbox records it, the row says replied.
    let (_, response) = fx.store.outbox_mark_sent(key, Utc::now()).unwrap();
    fx.apply(
        &mut state,
        Action::Outbox(OutboxEvent::Sent {
            key,
            kind: ReplyKind::Public,
            response,
        }),
    );
    assert!(state.outbox.get(key).is_none());
    assert_eq!(state.feed.rows[0].primary().status, MentionStatus::Replied);
    let screen = render(&state, 120, 40);
    assert!(screen.contains("id unknown"), "{screen}");
    assert!(!screen.contains("check on X"), "{screen}");
}

#[test]
fn outbox_events_keep_the_row_and_the_in_flight_marker_true_to_the_store() {
    let fx = Fixture::new(12);
    let key = fx.mentions[2].key();
    let mut state = fx.state(120, 40);
    let until = Utc::now() + chrono::Duration::minutes(5);
    // A 429: the entry waits; the row shows it as on its way, `c` calls it back.
    let entry = fx
        .store
        .outbox_enqueue(key, ReplyKind::Dm, "hi", now())
        .unwrap();
    fx.store.outbox_begin_send(key, entry.seq, now()).unwrap();
    fx.store
        .outbox_waiting(key, entry.seq, until, "rate limited", now())
        .unwrap();
    fx.apply(
        &mut state,
        Action::Outbox(OutboxEvent::Waiting {
            key,
            kind: ReplyKind::Dm,
            until,
        }),
    );
    assert!(state.sending.contains(&key));
    let notice = state.notice.clone().unwrap();
    assert!(
        notice.text.starts_with("rate limited: sending at "),
        "{notice:?}"
    );
    fx.press(&mut state, KeyCode::Char('j'), 2);
    assert_eq!(
        outboxed(&fx.key(&mut state, KeyCode::Char('c'))),
        vec![OutboxCommand::Cancel(key)]
    );
    fx.store.outbox_cancel(key, Utc::now()).unwrap();
    fx.apply(
        &mut state,
        Action::Outbox(OutboxEvent::Cancelled {
            key,
            kind: ReplyKind::Dm,
        }),
    );
    assert!(!state.sending.contains(&key));
    let row = state.feed.rows.iter().find(|r| r.contains(key)).unwrap();
    let mention = row.mentions().iter().find(|m| m.key() == key).unwrap();
    assert_eq!(mention.status, MentionStatus::Pending);
}

/// A post sent to several accounts is one feed row; an unconfirmed reply from any of them (not
/// only the row's first) shows on that row, and `M` / `Enter` resolve that mention's entry.
#[test]
fn an_unconfirmed_reply_on_a_shared_post_shows_on_its_row_and_keys_resolve_it() {
    let fx = Fixture::new(10);
    let shared = fx.add_shared_post(&[0, 1], 1_993_000_100_000_000_000);
    let key = shared[0].key();
    let entry = fx
        .store
        .outbox_enqueue(key, ReplyKind::Public, "@zoe_r see you there", now())
        .unwrap();
    fx.store.outbox_begin_send(key, entry.seq, now()).unwrap();
    outbox::recover(&fx.store).unwrap();
    let mut state = fx.state(120, 40);
    let row = &state.feed.rows[0];
    assert_eq!(row.mentions().len(), 2, "one row for the post");
    assert_ne!(
        row.primary().key(),
        key,
        "the unconfirmed one is not the first"
    );

    let screen = render(&state, 120, 40);
    let top = screen.lines().nth(1).unwrap_or_default();
    assert!(top.contains("check on X"), "{screen}");
    assert!(
        screen.contains("reply from @acme reached X"),
        "the detail names the account: {screen}"
    );

    assert_eq!(
        outboxed(&fx.key(&mut state, KeyCode::Char('M'))),
        vec![OutboxCommand::MarkSent(key)]
    );
    assert_eq!(
        outboxed(&fx.key(&mut state, KeyCode::Enter)),
        vec![OutboxCommand::Retry(key)]
    );
}
