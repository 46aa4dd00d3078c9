//! A draft typed in the composer comes back after perch dies without a clean shutdown: a child
//! process types a reply, lets a tick save it, then aborts (no destructors, no flush on exit);
//! the parent opens the same store in a new app and finds the draft on its mention.

mod ui_fixture;

use std::process::Command;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use perch::app::{Action, AppState, update};
use perch::store::Store;
use ui_fixture::{Fixture, now};

const CHILD_DIR: &str = "PERCH_TEST_DRAFT_CRASH_DIR";
const TYPED: &str = "half-written answer, do not lose me";

/// Applies an action and the store writes it asks for, as the event loop would.
fn apply(state: &mut AppState, store: &Store, action: Action) {
    for effect in update(state, action, store) {
        if let Some(follow_up) = perch::tui::run_store_effect(store, &effect) {
            apply(state, store, follow_up);
        }
    }
}

fn key(state: &mut AppState, store: &Store, code: KeyCode) {
    let action = Action::key_seeing(KeyEvent::new(code, KeyModifiers::NONE), state);
    apply(state, store, action);
}

/// The child's part: only runs when the parent test starts it with the store's directory.
#[test]
#[ignore = "run by draft_survives_an_abort_without_clean_shutdown as its child process"]
fn child_types_a_draft_then_aborts() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    let store = Store::open(std::path::Path::new(&dir)).expect("child opens the store");
    let mut state = AppState::new(None);
    apply(
        &mut state,
        &store,
        Action::Resize {
            width: 120,
            height: 40,
        },
    );
    apply(&mut state, &store, Action::StoreChanged);
    key(&mut state, &store, KeyCode::Char('r'));
    for c in TYPED.chars() {
        key(&mut state, &store, KeyCode::Char(c));
    }
    // The once-a-second tick saves the draft (debounced typing).
    apply(&mut state, &store, Action::Tick(now()));
    // sled writes its log to disk in the background every half second; give it time, then die
    // the hard way, with the composer still open.
    std::thread::sleep(Duration::from_secs(2));
    std::process::abort();
}

#[test]
fn draft_survives_an_abort_without_clean_shutdown() {
    let Fixture {
        dir,
        store,
        mentions,
        ..
    } = Fixture::new(5);
    drop(store); // the child needs the store's lock
    let status = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_types_a_draft_then_aborts",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir.path())
        .status()
        .expect("run the child");
    assert!(!status.success(), "the child must die by abort: {status}");

    let store = Store::open(dir.path()).expect("reopen after the crash");
    let draft = store.draft(mentions[0].key()).expect("read draft");
    assert_eq!(
        draft.map(|d| d.text),
        Some(format!("@mara_k {TYPED}")),
        "the draft is attached to its mention"
    );
    let mut state = AppState::new(None);
    apply(
        &mut state,
        &store,
        Action::Resize {
            width: 120,
            height: 40,
        },
    );
    apply(&mut state, &store, Action::StoreChanged);
    key(&mut state, &store, KeyCode::Char('r'));
    assert_eq!(
        state.composer().map(|c| c.text()),
        Some(format!("@mara_k {TYPED}")),
        "r on the mention reopens the draft"
    );
}
