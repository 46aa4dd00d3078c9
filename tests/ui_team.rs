//! The dashboard's part in team mode (issue 16), through `update` and the screen: `A` takes
//! the mention the user saw and gives it back, the rows and the detail say who has a mention
//! and who is replying to it, the composer tells the service it is open (touching it while it
//! stays open) and closed, and a reply over someone else's open composer asks first.

mod ui_fixture;

use chrono::Duration;
use crossterm::event::KeyCode;
use perch::app::{Action, Effect, Mode};
use perch::domain::{MentionKey, TeamEvent};
use ui_fixture::{Fixture, now, render};

fn assigns(effects: &[Effect]) -> Vec<(MentionKey, Option<String>)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Assign { key, person, .. } => Some((*key, person.clone())),
            _ => None,
        })
        .collect()
}

fn presence(effects: &[Effect]) -> Vec<(MentionKey, bool)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Presence { key, open } => Some((*key, *open)),
            _ => None,
        })
        .collect()
}

/// The status bar's notice ("" when there is none).
fn notice_text(state: &perch::app::AppState) -> String {
    state
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

/// The mentions of the feed's loaded rows, in order.
fn feed_keys(state: &perch::app::AppState) -> Vec<MentionKey> {
    state
        .feed
        .rows
        .iter()
        .flat_map(|r| r.mentions().iter().map(|m| m.key()))
        .collect()
}

fn replying(key: MentionKey, person: &str, on: bool) -> Action {
    Action::Team(TeamEvent::Replying {
        key,
        handle: "@acme_help".into(),
        person: person.into(),
        replying: on,
        at: now(),
    })
}

#[test]
fn a_takes_the_seen_mention_shows_it_as_mine_and_a_again_gives_it_back() {
    let fx = Fixture::new(6);
    let mut state = fx.state(120, 30);
    let target = fx.mentions[0].key();
    let effects = fx.key(&mut state, KeyCode::Char('A'));
    assert_eq!(assigns(&effects), [(target, Some("owner".to_string()))]);
    // Carried out on the store (as the owner), recorded, and shown.
    assert_eq!(
        fx.store.assignment(target).unwrap().map(|a| a.person),
        Some("owner".to_string())
    );
    assert!(state.team.is_mine(target));
    let screen = render(&state, 120, 30);
    assert!(screen.contains("→me"), "{screen}");
    assert!(screen.contains("assigned to you"), "{screen}");
    let effects = fx.key(&mut state, KeyCode::Char('A'));
    assert_eq!(assigns(&effects), [(target, None)]);
    assert_eq!(fx.store.assignment(target).unwrap(), None);
    assert!(!render(&state, 120, 30).contains("→me"));
}

#[test]
fn others_assignments_and_presence_show_on_the_rows_and_the_detail() {
    let fx = Fixture::new(6);
    let mut state = fx.state(120, 30);
    let first = fx.mentions[0].key();
    // "→ana" is shown while the mention waits for someone (pending); after that, its status is.
    let pending = fx
        .mentions
        .iter()
        .skip(1)
        .find(|m| m.status == perch::domain::MentionStatus::Pending)
        .expect("the fixture has another pending mention");
    fx.apply(
        &mut state,
        Action::Team(TeamEvent::Assigned {
            key: pending.key(),
            mention_id: pending.id,
            handle: "@acme_help".into(),
            assigned_to: Some("ana".into()),
            by: "ana".into(),
            at: now(),
        }),
    );
    let notice = notice_text(&state);
    assert!(
        notice.contains("ana took"),
        "another's assignment is told: {notice}"
    );
    fx.apply(&mut state, replying(first, "bo", true));
    let screen = render(&state, 120, 30);
    assert!(screen.contains("→ana"), "{screen}");
    assert!(screen.contains("✎bo"), "{screen}");
    assert!(
        screen.contains("bo is replying"),
        "the detail of the selected row: {screen}"
    );
    fx.apply(&mut state, replying(first, "bo", false));
    let screen = render(&state, 120, 30);
    assert!(
        !screen.contains("✎bo") && !screen.contains("bo is replying"),
        "{screen}"
    );
}

#[test]
fn the_composer_is_announced_touched_while_open_and_closed_and_sending_over_another_asks() {
    let fx = Fixture::new(6);
    let mut state = fx.state(100, 30);
    let target = fx.mentions[0].key();
    let effects = fx.key(&mut state, KeyCode::Char('r'));
    assert_eq!(presence(&effects), [(target, true)], "opened: announced");
    let effects = fx.apply(&mut state, Action::Tick(now() + Duration::seconds(5)));
    assert!(
        presence(&effects).is_empty(),
        "not before the touch interval"
    );
    let effects = fx.apply(&mut state, Action::Tick(now() + Duration::seconds(11)));
    assert_eq!(presence(&effects), [(target, true)], "touched while open");

    // Ana starts replying too: the composer says so, and the first send asks.
    fx.apply(&mut state, replying(target, "ana", true));
    let screen = render(&state, 100, 30);
    assert!(screen.contains("ana is replying to this too"), "{screen}");
    fx.chars(&mut state, "on it");
    let effects = fx.ctrl(&mut state, 's');
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Send(_))),
        "asked first, not sent"
    );
    assert!(matches!(state.mode, Mode::Compose(_)));
    let notice = notice_text(&state);
    assert!(
        notice.contains("ana is replying to this mention: send anyway?"),
        "{notice}"
    );
    let effects = fx.ctrl(&mut state, 's');
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Send(_))),
        "sent on purpose"
    );
    assert_eq!(
        presence(&effects),
        [(target, false)],
        "sent: the composer is closed"
    );

    // Opening and closing with Esc.
    fx.key(&mut state, KeyCode::Char('j'));
    let next = state.feed.selected_mention().unwrap().key();
    let effects = fx.key(&mut state, KeyCode::Char('d'));
    assert_eq!(presence(&effects), [(next, true)]);
    let effects = fx.key(&mut state, KeyCode::Esc);
    assert_eq!(presence(&effects), [(next, false)]);
}

#[test]
fn team_rows_detail_and_composer_snapshot() {
    let fx = Fixture::new(6);
    let mut state = fx.state(120, 30);
    let (first, third) = (fx.mentions[0].key(), fx.mentions[2].key());
    fx.key(&mut state, KeyCode::Char('A'));
    fx.apply(
        &mut state,
        Action::Team(TeamEvent::Assigned {
            key: third,
            mention_id: fx.mentions[2].id,
            handle: "@acme_help".into(),
            assigned_to: Some("ana".into()),
            by: "owner".into(),
            at: now(),
        }),
    );
    fx.apply(&mut state, replying(first, "bo", true));
    insta::assert_snapshot!("team_rows_120x30", render(&state, 120, 30));
    fx.key(&mut state, KeyCode::Char('r'));
    insta::assert_snapshot!("team_composer_120x30", render(&state, 120, 30));
}

#[test]
fn searching_is_mine_or_is_unassigned_filters_the_feed_by_assignment() {
    let fx = Fixture::new(6);
    let mut state = fx.state(120, 30);
    let first = fx.mentions[0].key();
    fx.key(&mut state, KeyCode::Char('A'));
    fx.key(&mut state, KeyCode::Char('/'));
    fx.chars(&mut state, "is:mine");
    fx.key(&mut state, KeyCode::Enter);
    let keys = feed_keys(&state);
    assert_eq!(keys, [first], "only the one taken");
    fx.key(&mut state, KeyCode::Char('/'));
    fx.press(&mut state, KeyCode::Backspace, "is:mine".len());
    fx.chars(&mut state, "is:unassigned");
    fx.key(&mut state, KeyCode::Enter);
    let keys = feed_keys(&state);
    assert!(!keys.contains(&first) && !keys.is_empty(), "{keys:?}");
    let screen = render(&state, 120, 30);
    assert!(
        screen.contains("is:unassigned"),
        "the status bar says the filter: {screen}"
    );
}
