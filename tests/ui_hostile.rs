//! The dashboard facing what it does not control: terminals of any size (down to 0x0) and text
//! from X (usernames, error messages) that carries terminal escape sequences or bidi overrides
//! (ratatui itself drops C0 controls, but not C1 ones nor U+202E, which reorders what is drawn).

mod ui_fixture;

use crossterm::event::KeyCode;
use perch::app::Action;
use perch::domain::SyncStatus;
use perch::sync::SyncEvent;
use ui_fixture::{Fixture, now, render_terminal as render};

#[test]
fn every_screen_draws_on_tiny_terminals_without_panicking() {
    let fx = Fixture::new(30);
    let screens: Vec<Vec<KeyCode>> = vec![
        vec![],
        vec![KeyCode::Char('?')],
        vec![KeyCode::Char('r')],
        vec![KeyCode::Char('d')],
        vec![KeyCode::Enter],
        vec![KeyCode::Tab, KeyCode::Char('j'), KeyCode::Enter],
        vec![KeyCode::Tab, KeyCode::Char('j'), KeyCode::Char('s')],
        vec![KeyCode::Tab, KeyCode::Char('j'), KeyCode::Char('D')],
        vec![KeyCode::Char('V'), KeyCode::Char('i')],
        vec![KeyCode::Char('/'), KeyCode::Char('a')],
    ];
    let sizes = [
        (0, 0),
        (1, 0),
        (0, 1),
        (1, 1),
        (2, 2),
        (5, 2),
        (10, 3),
        (20, 5),
        (80, 1),
        (1, 40),
        (200, 2),
        (30, 8),
    ];
    for keys in &screens {
        for (width, height) in sizes {
            let mut state = fx.state(width, height);
            for key in keys {
                fx.key(&mut state, *key);
            }
            // A panic here names neither the screen nor the size; the loop variables do.
            eprintln!("drawing after {keys:?} at {width}x{height}");
            render(&state, width, height);
        }
    }
}

#[test]
fn escape_sequences_in_an_account_error_and_a_notice_never_reach_the_screen() {
    let fx = Fixture::new(5);
    let mut state = fx.state(120, 40);
    let mut account = fx.accounts[0].clone();
    account.twitter_username = "evil\u{202e}eman".into();
    account.sync_status = SyncStatus::Error;
    account.error_message = Some("boom\u{1b}]52;c;aGk=\u{7}\u{9b}31m".into());
    fx.store.put_account(&account).expect("store account");
    fx.apply(&mut state, Action::Sync(SyncEvent::AccountUpdated(account)));
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::Notice {
            account_id: Some(fx.accounts[0].id),
            message: "X said \u{202e}on".into(),
        }),
    );
    state.error("from the store: \u{202e}\u{9b}2J");
    // The notice is made safe when it is set, whoever sets it.
    let notice = state.notice.as_ref().map(|n| n.text.as_str());
    assert_eq!(notice, Some("from the store: 2J"));
    let terminal = render(&state, 120, 40);
    let screen = terminal.backend().to_string();
    // Every cell's symbol, zero-width additions included (the text form leaves those out).
    let cells: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|cell| cell.symbol())
        .collect();
    assert!(screen.contains("@evileman: boom"), "{screen}");
    assert!(screen.contains("from the store: 2J"), "{screen}");
    for c in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
        assert!(!cells.contains(c), "{c:?} reached the screen:\n{screen}");
    }
}

#[test]
fn a_ten_thousand_character_sender_is_bounded_in_the_detail_pane() {
    // Issue 10 item 9: the username filled the detail pane.
    let fx = Fixture::new(3);
    let mut hostile = ui_fixture::mention(
        &fx.accounts[0],
        0,
        fx.mentions[0].tweet_id_u64() + 1_000_000,
        now(),
    );
    hostile.sender.username = Some("a".repeat(10_000));
    hostile.sender.display_name = Some(format!("{}\u{202e}", "n".repeat(10_000)));
    fx.store
        .commit_page(fx.accounts[0].id, std::slice::from_ref(&hostile), None)
        .unwrap();
    let mut state = fx.state(120, 40);
    fx.apply(&mut state, Action::StoreChanged);
    assert_eq!(
        state.feed.selected_row().unwrap().mentions()[0].tweet_id,
        hostile.tweet_id
    );
    let terminal = render(&state, 120, 40);
    let screen = terminal.backend().to_string();
    let a_cells = screen.matches('a').count();
    let n_cells = screen.matches('n').count();
    // A bounded field is 64 characters; the rest of the screen has a few hundred letters.
    assert!(a_cells < 600, "{a_cells} cells of the username:\n{screen}");
    assert!(
        n_cells < 600,
        "{n_cells} cells of the display name:\n{screen}"
    );
    assert!(screen.contains('…'), "the cut is shown:\n{screen}");
    assert!(!screen.contains('\u{202e}'));
}
