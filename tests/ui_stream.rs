//! The live stream on screen (issue 12): the status bar's `● live` / `reconnecting in 8s` /
//! `off: <reason>`, account rows that say `streamed` or `polled only`, the account detail's
//! subscriptions, and a mention that arrived by stream saying so in the detail pane.

mod ui_fixture;

use perch::app::{Action, AppState};
use perch::sync::SyncEvent;
use perch::sync::stream::{NO_APP_TOKEN, StreamStatus};
use perch::sync::subscriptions::{AccountSubscriptions, SubscriptionInfo};
use ui_fixture::{Fixture, now, render};

fn status(fx: &Fixture, state: &mut AppState, status: StreamStatus) {
    fx.apply(state, Action::Sync(SyncEvent::StreamStatus(status)));
}

fn subscribed() -> AccountSubscriptions {
    AccountSubscriptions {
        subscriptions: vec![
            SubscriptionInfo {
                event_type: "post.mention.create".into(),
                subscription_id: "1900000000000000001".into(),
            },
            SubscriptionInfo {
                event_type: "post.reply.create".into(),
                subscription_id: "1900000000000000002".into(),
            },
        ],
        error: None,
    }
}

#[test]
fn the_status_bar_shows_the_stream_state() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    assert!(
        !render(&state, 120, 40).contains("live"),
        "no stream said: nothing shown"
    );
    status(&fx, &mut state, StreamStatus::Live);
    assert!(render(&state, 120, 40).contains("● live"));
    status(
        &fx,
        &mut state,
        StreamStatus::Reconnecting {
            at: now() + chrono::Duration::seconds(8),
            reason: "X closed the stream".into(),
        },
    );
    assert!(render(&state, 120, 40).contains("reconnecting in 8s"));
    status(
        &fx,
        &mut state,
        StreamStatus::Off {
            reason: "X rejected the app Bearer token (401)".into(),
        },
    );
    assert!(render(&state, 120, 40).contains("off: X rejected the app Bearer token (401)"));
    // No app token is said once, as a notice: not a permanent nag in the bar.
    status(
        &fx,
        &mut state,
        StreamStatus::Off {
            reason: NO_APP_TOKEN.into(),
        },
    );
    assert!(!render(&state, 120, 40).contains("off:"));
}

#[test]
fn account_rows_and_detail_say_streamed_or_polled_and_a_streamed_mention_says_so() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    let acme = fx.accounts[0].clone();
    let bluebird = fx.accounts[1].clone();
    for a in [&acme, &bluebird] {
        fx.apply(
            &mut state,
            Action::Sync(SyncEvent::Finished {
                account_id: a.id,
                inserted: 0,
                senders_filled: 0,
                next_poll_at: Some(now() + chrono::Duration::seconds(240)),
            }),
        );
    }
    status(&fx, &mut state, StreamStatus::Live);
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::Subscriptions {
            account_id: acme.id,
            subscriptions: subscribed(),
        }),
    );
    // A mention pushed by the stream: newest, so on the top row, selected (no key pressed yet).
    let pushed = ui_fixture::mention(&acme, 3, 1_994_000_000_000_000_000, now());
    fx.store
        .commit_streamed_post(acme.id, &pushed, None)
        .unwrap();
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::PageCommitted {
            account_id: acme.id,
            inserted: 1,
        }),
    );
    let screen = render(&state, 120, 40);
    assert!(screen.contains("streamed"), "{screen}");
    assert!(screen.contains("polled only"), "{screen}");
    assert!(screen.contains("arrived by stream"), "{screen}");
    insta::assert_snapshot!("stream_live_120x40", screen);
    // A polled mention says nothing of the kind.
    fx.key(&mut state, crossterm::event::KeyCode::Char('j'));
    assert!(!render(&state, 120, 40).contains("arrived by stream"));
}

/// A reply or quote event comes without its author (ACTIVITY.md §5.2), so the row says the sender
/// is unknown; the next poll returns the post with its author, and the row on screen names the
/// sender once that poll finishes, with no key pressed.
#[test]
fn a_streamed_reply_without_its_author_is_named_on_screen_after_the_next_poll() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    let acme = fx.accounts[0].clone();
    let mut polled = ui_fixture::mention(&acme, 3, 1_994_000_000_000_000_000, now());
    // A sender no other row has, so the screen names them only if this row does.
    polled.sender.username = Some("quokka_fan".into());
    polled.sender.display_name = Some("Quokka Fan".into());
    let named = "quokka_fan";
    let mut pushed = polled.clone();
    pushed.sender = perch::domain::Sender {
        twitter_id: polled.sender.twitter_id.clone(),
        ..Default::default()
    };
    fx.store
        .commit_streamed_post(acme.id, &pushed, None)
        .unwrap();
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::PageCommitted {
            account_id: acme.id,
            inserted: 1,
        }),
    );
    assert!(
        !render(&state, 120, 40).contains(named),
        "the stream gave no author: the sender is not named yet"
    );
    let done = fx
        .store
        .commit_page(acme.id, std::slice::from_ref(&polled), None)
        .unwrap();
    assert_eq!(done.senders_filled, 1);
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::Finished {
            account_id: acme.id,
            inserted: 0,
            senders_filled: done.senders_filled,
            next_poll_at: None,
        }),
    );
    let screen = render(&state, 120, 40);
    assert!(screen.contains(named), "{screen}");
}
