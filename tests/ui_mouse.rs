//! The mouse (issue 15, opt-in with `mouse = true`): a click selects the row or pane under it, as
//! drawn; the wheel moves the selection of the pane under the pointer; nothing reaches through an
//! overlay. `ui::hit_test` reads what `draw` puts where, and `update` acts on the result.

mod ui_fixture;

use crossterm::event::KeyCode;
use perch::app::message::{PointerKind, PointerTarget};
use perch::app::{Action, AppState, Pane};
use perch::ui::{Theme, hit_test};
use ui_fixture::{Fixture, now, render};

const SIZE: (u16, u16) = (120, 40);

fn target_at(state: &AppState, column: u16, row: u16) -> Option<PointerTarget> {
    hit_test(state, &Theme::default(), now(), SIZE, column, row)
}

/// The screen line on which `text` is drawn in the columns `from..to`.
fn line_of(screen: &str, text: &str, from: usize, to: usize) -> u16 {
    screen
        .lines()
        .position(|l| {
            let cells: String = l.chars().skip(from).take(to - from).collect();
            cells.contains(text)
        })
        .unwrap_or_else(|| panic!("{text} is not on screen:\n{screen}")) as u16
}

#[test]
fn a_click_on_a_feed_row_selects_it_and_focuses_the_feed() {
    let fx = Fixture::new(30);
    let mut state = fx.state(SIZE.0, SIZE.1);
    state.focus = Pane::Accounts;
    // The third mention row, in the feed pane (right of the 26-column accounts pane).
    let target = target_at(&state, 40, 3).expect("the feed is there");
    assert_eq!(target, PointerTarget::Feed(Some(2)));
    fx.apply(
        &mut state,
        Action::Pointer {
            target,
            what: PointerKind::Click,
        },
    );
    assert_eq!(state.focus, Pane::Feed);
    assert_eq!(state.feed.selected, 2);
    let screen = render(&state, SIZE.0, SIZE.1);
    let selected = screen.lines().nth(3).unwrap_or_default();
    assert!(
        selected.contains('›'),
        "the clicked row is drawn selected: {selected}"
    );
}

#[test]
fn a_click_on_an_account_selects_it_and_filters_the_feed() {
    let fx = Fixture::new(30);
    let mut state = fx.state(SIZE.0, SIZE.1);
    let screen = render(&state, SIZE.0, SIZE.1);
    let acme = &fx.accounts[0];
    let row = line_of(&screen, "@acme", 0, 26);
    // Any line of the account's block selects it: its handle line and the status line under it.
    for line in [row, row + 1] {
        assert_eq!(
            target_at(&state, 5, line),
            Some(PointerTarget::Accounts(Some(1))),
            "line {line}"
        );
    }
    fx.apply(
        &mut state,
        Action::Pointer {
            target: PointerTarget::Accounts(Some(1)),
            what: PointerKind::Click,
        },
    );
    assert_eq!(state.focus, Pane::Accounts);
    assert_eq!(state.feed.filter.account, Some(acme.id));
    assert_eq!(
        target_at(&state, 5, line_of(&screen, "All accounts", 0, 26)),
        Some(PointerTarget::Accounts(Some(0)))
    );
}

#[test]
fn the_wheel_moves_the_selection_of_the_pane_under_the_pointer() {
    let fx = Fixture::new(30);
    let mut state = fx.state(SIZE.0, SIZE.1);
    state.focus = Pane::Accounts;
    let target = target_at(&state, 60, 10).unwrap();
    fx.apply(
        &mut state,
        Action::Pointer {
            target,
            what: PointerKind::WheelDown,
        },
    );
    assert_eq!(state.feed.selected, 3);
    assert_eq!(
        state.focus,
        Pane::Accounts,
        "the wheel does not move the focus"
    );
    fx.apply(
        &mut state,
        Action::Pointer {
            target,
            what: PointerKind::WheelUp,
        },
    );
    assert_eq!(state.feed.selected, 0);
}

#[test]
fn nothing_is_clicked_through_an_overlay_or_on_the_status_bar() {
    let fx = Fixture::new(30);
    let mut state = fx.state(SIZE.0, SIZE.1);
    assert_eq!(target_at(&state, 60, SIZE.1 - 1), None, "the status bar");
    fx.key(&mut state, KeyCode::Char('?'));
    assert_eq!(target_at(&state, 40, 3), None, "the help is open");
    // A pointer event that arrives anyway (sent before the overlay opened) changes nothing.
    fx.apply(
        &mut state,
        Action::Pointer {
            target: PointerTarget::Feed(Some(5)),
            what: PointerKind::Click,
        },
    );
    assert_eq!(state.feed.selected, 0);
}
