//! What a person sees: the screen drawn into a `TestBackend` from a store with known mentions, at
//! a fixed time, compared with the committed snapshots under `tests/snapshots/`.

mod ui_fixture;

use crossterm::event::KeyCode;
use perch::app::Action;
use ui_fixture::{Fixture, now, render};

#[test]
fn main_screen_80x24() {
    let fx = Fixture::new(40);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::Char('j'));
    insta::assert_snapshot!("main_80x24", render(&state, 80, 24));
}

#[test]
fn main_screen_120x40() {
    let fx = Fixture::new(40);
    let mut state = fx.state(120, 40);
    fx.press(&mut state, KeyCode::Char('j'), 3);
    insta::assert_snapshot!("main_120x40", render(&state, 120, 40));
}

#[test]
fn main_screen_shows_new_mentions_marker_and_sync_spinner() {
    let fx = Fixture::new(40);
    let mut state = fx.state(120, 40);
    fx.press(&mut state, KeyCode::Char('j'), 2);
    let acme = &fx.accounts[0];
    let newer: Vec<_> = (0..3)
        .map(|i| {
            let id = 1_993_000_000_000_000_000 + (3 - i) * 1_000_000_000;
            ui_fixture::mention(acme, 200 + i as usize, id, now())
        })
        .collect();
    fx.store
        .commit_page(acme.id, &newer, Some(newer[0].tweet_id_u64()))
        .unwrap();
    fx.apply(
        &mut state,
        Action::Sync(perch::sync::SyncEvent::Started {
            account_id: acme.id,
        }),
    );
    fx.apply(
        &mut state,
        Action::Sync(perch::sync::SyncEvent::PageCommitted {
            account_id: acme.id,
            inserted: 3,
        }),
    );
    insta::assert_snapshot!("main_new_marker_120x40", render(&state, 120, 40));
}

#[test]
fn help_overlay_80x24() {
    let fx = Fixture::new(20);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::Char('?'));
    insta::assert_snapshot!("help_80x24", render(&state, 80, 24));
}

#[test]
fn composer_public_reply_80x24() {
    let fx = Fixture::new(20);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::Char('r'));
    fx.chars(
        &mut state,
        "thanks for the report, we are on it 🙏 see https://example.com/status",
    );
    insta::assert_snapshot!("composer_public_80x24", render(&state, 80, 24));
}

#[test]
fn composer_refuses_an_over_long_reply() {
    let fx = Fixture::new(20);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::Char('r'));
    fx.apply(&mut state, Action::Paste("長い".repeat(80)));
    fx.ctrl(&mut state, 's');
    insta::assert_snapshot!("composer_too_long_80x24", render(&state, 80, 24));
}

#[test]
fn composer_dm_120x40() {
    let fx = Fixture::new(20);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('j'));
    fx.key(&mut state, KeyCode::Char('d'));
    fx.chars(&mut state, "Hi! Could you send us your order number?");
    fx.key(&mut state, KeyCode::Enter);
    fx.chars(&mut state, "We'll look into it today.");
    insta::assert_snapshot!("composer_dm_120x40", render(&state, 120, 40));
}

#[test]
fn narrow_terminal_hides_the_accounts_pane() {
    let fx = Fixture::new(20);
    let state = fx.state(60, 20);
    insta::assert_snapshot!("narrow_60x20", render(&state, 60, 20));
}

#[test]
fn composer_warns_before_a_reply_that_costs_twenty_cents() {
    let fx = Fixture::new(20);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::Char('r'));
    fx.chars(&mut state, "no link here");
    assert!(!render(&state, 80, 24).contains("it contains a link"));
    fx.chars(&mut state, " but see nimbus.io/status");
    let screen = render(&state, 80, 24);
    assert!(
        screen.contains("this reply costs $0.20: it contains a link"),
        "{screen}"
    );
    insta::assert_snapshot!("composer_link_warning_80x24", screen);
}

#[test]
fn accounts_pane_and_status_bar_show_the_cost_estimate() {
    use perch::costs::{CostKind, ResourceClass};
    let fx = Fixture::new(20);
    let mut state = fx.state(120, 40);
    let acme = &fx.accounts[0];
    let newer: Vec<_> = (0..4)
        .map(|i| ui_fixture::mention(acme, 300 + i, 1_994_000_000_000_000_000 + i as u64, now()))
        .collect();
    fx.store
        .commit_page_charged(
            acme.id,
            &newer,
            None,
            Some(&perch::store::ReadCharge {
                // The meter counts by the state's clock (the fixture's `now()`): today is when
                // the read happened.
                at: now(),
                class: ResourceClass::Post,
                kind: CostKind::PostRead,
                ids: newer.iter().map(|m| m.tweet_id_u64()).collect(),
            }),
        )
        .unwrap();
    fx.apply(&mut state, Action::StoreChanged);
    let screen = render(&state, 120, 40);
    assert!(screen.contains("  est. $0.02 today"), "{screen}");
    assert!(
        screen.contains("est. $0.02 today · $0.02 this month"),
        "{screen}"
    );
}
