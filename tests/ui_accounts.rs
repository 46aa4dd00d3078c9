//! Account management in the dashboard, without a terminal or a network: the add-account and
//! reauthorize dialog's state machine (driven by the login task's reports), the remove
//! confirmation, hiding paused accounts, the account detail with what the sync engine reported,
//! the stats view; and snapshots of each overlay and of a token-expired account.

mod ui_fixture;

use chrono::Duration;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use perch::app::accounts::{
    AccountEffect, AccountOverlay, LoginEvent, LoginFailure, LoginFailureKind, LoginPhase,
    LoginPurpose, LoginSuccess, RemoveChoice,
};
use perch::app::{Action, AppState, Effect, Mode, Pane};
use perch::domain::SyncStatus;
use perch::store::FeedFilter;
use perch::sync::SyncEvent;
use perch::ui::{Theme, draw};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ui_fixture::{Fixture, mention, now, render};

const SIM_URL: &str = "http://127.0.0.1:8787/i/oauth2/authorize?response_type=code&client_id=perch-demo&state=Qk9PTVNUQVRF&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&scope=tweet.read+users.read+tweet.write+dm.read+dm.write+offline.access";

/// A state whose clock has ticked at the fixture's time (sync events are stamped with it).
fn state_at(fx: &Fixture, width: u16, height: u16) -> AppState {
    let mut state = fx.state(width, height);
    fx.apply(&mut state, Action::Tick(now()));
    state
}

fn login(fx: &Fixture, state: &mut AppState, event: LoginEvent) -> Vec<Effect> {
    fx.apply(state, Action::Login(event))
}

fn dialog(state: &AppState) -> &perch::app::accounts::LoginDialog {
    match &state.mode {
        Mode::Account(o) => match o.as_ref() {
            AccountOverlay::Login(d) => d,
            other => panic!("expected the login dialog, got {other:?}"),
        },
        other => panic!("expected the login dialog, got {other:?}"),
    }
}

fn overlay(state: &AppState) -> &AccountOverlay {
    match &state.mode {
        Mode::Account(o) => o,
        other => panic!("expected an account overlay, got {other:?}"),
    }
}

/// Selects the accounts pane row of `handle` (row 0 is "All accounts").
fn select_account(fx: &Fixture, state: &mut AppState, handle: &str) {
    while state.focus != Pane::Accounts {
        fx.key(state, KeyCode::Tab);
    }
    fx.key(state, KeyCode::Char('g'));
    let i = state
        .accounts
        .iter()
        .position(|r| r.account.twitter_username == handle)
        .unwrap_or_else(|| panic!("{handle} is not listed"));
    fx.press(state, KeyCode::Char('j'), i + 1);
    assert_eq!(
        state
            .selected_account()
            .map(|r| r.account.twitter_username.as_str()),
        Some(handle)
    );
}

/// Presses Shift + `c`.
fn shift(fx: &Fixture, state: &mut AppState, c: char) -> Vec<Effect> {
    let action = Action::key_seeing(KeyEvent::new(KeyCode::Char(c), KeyModifiers::SHIFT), state);
    fx.apply(state, action)
}

#[test]
fn add_account_runs_the_login_and_hands_the_new_account_to_the_engine() {
    let fx = Fixture::new(10);
    let mut state = state_at(&fx, 80, 24);
    let effects = fx.key(&mut state, KeyCode::Char('a'));
    assert_eq!(
        effects,
        vec![Effect::Account(AccountEffect::StartLogin {
            login_id: 1,
            purpose: LoginPurpose::Add
        })]
    );
    assert_eq!(dialog(&state).phase, LoginPhase::Starting);

    login(
        &fx,
        &mut state,
        LoginEvent::Listening {
            login_id: 1,
            url: SIM_URL.into(),
        },
    );
    assert_eq!(
        dialog(&state).phase,
        LoginPhase::Waiting {
            url: SIM_URL.into()
        }
    );

    // Issue 9: the link wrapped over three lines with no way to copy it: `y` copies it.
    let effects = fx.key(&mut state, KeyCode::Char('y'));
    assert_eq!(effects, vec![Effect::CopyToClipboard(SIM_URL.into())]);
    assert!(dialog(&state).copied);
    assert!(
        dialog(&state).paste.is_empty(),
        "y is not typed into the paste field"
    );
    assert!(render(&state, 80, 24).contains("link copied"));

    // Enter with nothing pasted asks for the paste instead of sending nothing.
    let effects = fx.key(&mut state, KeyCode::Enter);
    assert!(effects.is_empty());
    assert!(dialog(&state).paste_error.is_some());

    // Typed and bracket-pasted text both land in the paste field (newlines dropped).
    fx.chars(&mut state, "http://127.0.0.1:8765/callback?");
    fx.apply(&mut state, Action::Paste("state=abc&code=XYZ\n".into()));
    let effects = fx.key(&mut state, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::Account(AccountEffect::PasteLogin {
            login_id: 1,
            input: "http://127.0.0.1:8765/callback?state=abc&code=XYZ".into()
        })]
    );

    login(
        &fx,
        &mut state,
        LoginEvent::PasteRejected {
            login_id: 1,
            message: "that is not an authorization response perch can read".into(),
        },
    );
    assert!(
        dialog(&state)
            .paste_error
            .as_deref()
            .is_some_and(|e| e.contains("not an authorization response"))
    );
    assert!(matches!(dialog(&state).phase, LoginPhase::Waiting { .. }));

    login(&fx, &mut state, LoginEvent::Exchanging { login_id: 1 });
    assert_eq!(dialog(&state).phase, LoginPhase::Exchanging);

    // The login stored a new account: the engine is told, the dialog closes, the pane shows it.
    let new =
        perch::domain::Account::new("4242".into(), "zephyr".into(), "Zephyr".into(), None, now());
    fx.store.put_account(&new).unwrap();
    let effects = login(
        &fx,
        &mut state,
        LoginEvent::Finished {
            login_id: 1,
            outcome: Ok(LoginSuccess {
                account_id: new.id,
                handle: "@zephyr".into(),
                reauthorized: false,
            }),
        },
    );
    assert_eq!(effects, vec![Effect::Account(AccountEffect::Added(new.id))]);
    assert!(matches!(state.mode, Mode::Normal));
    assert!(
        state
            .notice
            .as_ref()
            .unwrap()
            .text
            .contains("@zephyr added")
    );
    assert!(state.account(new.id).is_some(), "the pane lists it at once");
}

#[test]
fn escape_cancels_the_login_and_late_reports_do_not_reopen_it() {
    let fx = Fixture::new(5);
    let mut state = state_at(&fx, 80, 24);
    fx.key(&mut state, KeyCode::Char('a'));
    let effects = fx.key(&mut state, KeyCode::Esc);
    assert_eq!(
        effects,
        vec![Effect::Account(AccountEffect::CancelLogin { login_id: 1 })]
    );
    assert!(matches!(state.mode, Mode::Normal));
    assert_eq!(state.notice.as_ref().unwrap().text, "login cancelled");

    let effects = login(
        &fx,
        &mut state,
        LoginEvent::Listening {
            login_id: 1,
            url: SIM_URL.into(),
        },
    );
    assert!(effects.is_empty());
    assert!(
        matches!(state.mode, Mode::Normal),
        "a stale report is dropped"
    );

    // A login that finished anyway still stored its account: the engine must hear of it.
    let id = fx.accounts[0].id;
    let effects = login(
        &fx,
        &mut state,
        LoginEvent::Finished {
            login_id: 1,
            outcome: Ok(LoginSuccess {
                account_id: id,
                handle: "@acme".into(),
                reauthorized: true,
            }),
        },
    );
    assert_eq!(effects, vec![Effect::Account(AccountEffect::Added(id))]);
    assert!(matches!(state.mode, Mode::Normal));
}

#[test]
fn a_failed_login_says_why_and_enter_starts_a_fresh_one() {
    let fx = Fixture::new(5);
    let mut state = state_at(&fx, 80, 24);
    fx.key(&mut state, KeyCode::Char('a'));
    for kind in [
        LoginFailureKind::Denied,
        LoginFailureKind::StateMismatch,
        LoginFailureKind::CodeRejected,
        LoginFailureKind::PortBusy,
        LoginFailureKind::NoClientId,
    ] {
        let login_id = dialog(&state).login_id;
        let failure = LoginFailure {
            kind,
            message: format!("{kind:?} happened"),
        };
        login(
            &fx,
            &mut state,
            LoginEvent::Finished {
                login_id,
                outcome: Err(failure.clone()),
            },
        );
        assert_eq!(dialog(&state).phase, LoginPhase::Failed(failure));
        // Typing does nothing in a failed dialog; Enter retries with a new login.
        assert!(fx.key(&mut state, KeyCode::Char('x')).is_empty());
        let effects = fx.key(&mut state, KeyCode::Enter);
        let new_id = dialog(&state).login_id;
        assert!(new_id > login_id);
        assert_eq!(
            effects,
            vec![Effect::Account(AccountEffect::StartLogin {
                login_id: new_id,
                purpose: LoginPurpose::Add
            })]
        );
        assert_eq!(dialog(&state).phase, LoginPhase::Starting);
    }
    // Esc on a failed login just closes (there is nothing running to cancel).
    let login_id = dialog(&state).login_id;
    login(
        &fx,
        &mut state,
        LoginEvent::Finished {
            login_id,
            outcome: Err(LoginFailure {
                kind: LoginFailureKind::Timeout,
                message: "no answer".into(),
            }),
        },
    );
    assert!(fx.key(&mut state, KeyCode::Esc).is_empty());
    assert!(matches!(state.mode, Mode::Normal));
}

#[test]
fn reauthorize_targets_the_selected_account_and_reports_a_different_login() {
    let fx = Fixture::new(10);
    let mut state = state_at(&fx, 120, 40);
    select_account(&fx, &mut state, "bluebird_dev");
    let bluebird = fx.accounts[1].clone();
    let effects = shift(&fx, &mut state, 'R');
    assert_eq!(
        effects,
        vec![Effect::Account(AccountEffect::StartLogin {
            login_id: 1,
            purpose: LoginPurpose::Reauthorize {
                account_id: bluebird.id,
                twitter_id: bluebird.twitter_id.clone(),
                handle: "@bluebird_dev".into(),
            }
        })]
    );
    assert_eq!(dialog(&state).title(), "Reauthorize @bluebird_dev");

    // Approved as @acme instead: acme was updated (the engine hears of it), bluebird still waits.
    let acme = fx.accounts[0].id;
    let effects = login(
        &fx,
        &mut state,
        LoginEvent::Finished {
            login_id: 1,
            outcome: Ok(LoginSuccess {
                account_id: acme,
                handle: "@acme".into(),
                reauthorized: true,
            }),
        },
    );
    assert_eq!(effects, vec![Effect::Account(AccountEffect::Added(acme))]);
    match &dialog(&state).phase {
        LoginPhase::Failed(f) => {
            assert_eq!(f.kind, LoginFailureKind::WrongAccount);
            assert!(f.message.contains("@acme") && f.message.contains("@bluebird_dev"));
        }
        other => panic!("{other:?}"),
    }

    // The right login closes the dialog.
    fx.key(&mut state, KeyCode::Enter);
    let login_id = dialog(&state).login_id;
    login(
        &fx,
        &mut state,
        LoginEvent::Finished {
            login_id,
            outcome: Ok(LoginSuccess {
                account_id: bluebird.id,
                handle: "@bluebird_dev".into(),
                reauthorized: true,
            }),
        },
    );
    assert!(matches!(state.mode, Mode::Normal));
    assert!(state.notice.as_ref().unwrap().text.contains("reauthorized"));
}

#[test]
fn remove_asks_which_way_and_starts_on_cancel() {
    let fx = Fixture::new(12);
    let mut state = state_at(&fx, 80, 24);
    select_account(&fx, &mut state, "acme");
    let acme = fx.accounts[0].id;

    shift(&fx, &mut state, 'D');
    match overlay(&state) {
        AccountOverlay::ConfirmRemove(d) => {
            assert_eq!(d.choice, RemoveChoice::Cancel);
            assert_eq!(d.mentions, 4, "acme's mentions, from the counters");
        }
        other => panic!("{other:?}"),
    }
    // Enter alone cancels.
    assert!(fx.key(&mut state, KeyCode::Enter).is_empty());
    assert!(matches!(state.mode, Mode::Normal));

    // Right from Cancel wraps to "keep mentions".
    shift(&fx, &mut state, 'D');
    fx.key(&mut state, KeyCode::Right);
    let effects = fx.key(&mut state, KeyCode::Enter);
    assert_eq!(
        effects,
        vec![Effect::Account(AccountEffect::Remove {
            account_id: acme,
            delete_mentions: false
        })]
    );

    shift(&fx, &mut state, 'D');
    let effects = fx.key(&mut state, KeyCode::Char('d'));
    assert_eq!(
        effects,
        vec![Effect::Account(AccountEffect::Remove {
            account_id: acme,
            delete_mentions: true
        })]
    );
    assert!(state.notice.as_ref().unwrap().text.contains("its mentions"));

    shift(&fx, &mut state, 'D');
    assert!(fx.key(&mut state, KeyCode::Esc).is_empty());
    assert!(matches!(state.mode, Mode::Normal));
}

#[test]
fn the_engine_removing_an_account_closes_its_views() {
    let fx = Fixture::new(12);
    let mut state = state_at(&fx, 80, 24);
    select_account(&fx, &mut state, "acme");
    fx.key(&mut state, KeyCode::Enter);
    assert!(matches!(overlay(&state), AccountOverlay::Detail(_)));
    let acme = fx.accounts[0].id;
    fx.store.remove_account(acme, false).unwrap();
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::AccountRemoved { account_id: acme }),
    );
    assert!(matches!(state.mode, Mode::Normal));
    assert!(state.account(acme).is_none());
}

#[test]
fn h_hides_and_shows_paused_accounts() {
    let fx = Fixture::new(12);
    let mut state = state_at(&fx, 80, 24);
    let handles = |s: &AppState| -> Vec<String> {
        s.accounts
            .iter()
            .map(|r| r.account.twitter_username.clone())
            .collect()
    };
    assert_eq!(handles(&state), ["acme", "bluebird_dev", "nightowl_io"]);
    shift(&fx, &mut state, 'H');
    assert_eq!(handles(&state), ["acme", "bluebird_dev"]);
    let said = state.notice.as_ref().unwrap().text.clone();
    assert!(said.contains("1 hidden"), "{said}");
    assert!(
        said.contains("their mentions stay in All accounts"),
        "{said}"
    );

    // Issue 9: `P` on a mention of a hidden account said "no account selected". It resumes it.
    let hidden = fx.accounts[2].id;
    let mut guard = 0;
    while state.feed.selected_mention().map(|m| m.sent_to.account_id) != Some(hidden) {
        fx.key(&mut state, KeyCode::Char('j'));
        guard += 1;
        assert!(guard < 20, "a mention of @nightowl_io is in All accounts");
    }
    let effects = shift(&fx, &mut state, 'P');
    assert_eq!(effects, vec![Effect::Resume(hidden)]);
    fx.key(&mut state, KeyCode::Char('g'));

    // Pausing an account while paused ones are hidden takes it off the list.
    let mut acme = fx.accounts[0].clone();
    acme.is_active = false;
    acme.sync_status = SyncStatus::Paused;
    fx.store.put_account(&acme).unwrap();
    fx.apply(&mut state, Action::Sync(SyncEvent::AccountUpdated(acme)));
    assert_eq!(handles(&state), ["bluebird_dev"]);

    shift(&fx, &mut state, 'H');
    assert_eq!(handles(&state), ["acme", "bluebird_dev", "nightowl_io"]);
}

#[test]
fn enter_on_an_account_opens_its_detail_with_what_the_engine_reported() {
    let fx = Fixture::new(12);
    let mut state = state_at(&fx, 80, 24);
    select_account(&fx, &mut state, "acme");
    let acme = fx.accounts[0].id;
    let next = now() + Duration::seconds(40);
    for event in [
        SyncEvent::Started { account_id: acme },
        SyncEvent::Budget {
            account_id: acme,
            remaining: 287,
            limit: 300,
            reset: now() + Duration::minutes(12),
        },
        SyncEvent::PageCommitted {
            account_id: acme,
            inserted: 0,
        },
        SyncEvent::Finished {
            account_id: acme,
            inserted: 0,
            senders_filled: 0,
            next_poll_at: Some(next),
        },
    ] {
        fx.apply(&mut state, Action::Sync(event));
    }
    let live = state.accounts_ui.live(acme).expect("recorded");
    assert_eq!(live.next_poll_at, Some(next));
    assert_eq!(
        live.budget.map(|b| (b.remaining, b.limit)),
        Some((287, 300))
    );
    assert_eq!(live.log.len(), 3, "started, page, finished: {:?}", live.log);

    fx.key(&mut state, KeyCode::Enter);
    assert!(matches!(overlay(&state), AccountOverlay::Detail(d) if d.account_id == acme));
    // P in the detail pauses this account; Esc closes.
    let effects = shift(&fx, &mut state, 'P');
    assert_eq!(effects, vec![Effect::Pause(acme)]);
    assert!(matches!(overlay(&state), AccountOverlay::Detail(_)));
    fx.key(&mut state, KeyCode::Esc);
    assert!(matches!(state.mode, Mode::Normal));

    // Row 0 ("All accounts") has no detail: Enter goes to the feed as before.
    fx.key(&mut state, KeyCode::Char('g'));
    fx.key(&mut state, KeyCode::Enter);
    assert!(matches!(state.mode, Mode::Normal));
    assert_eq!(state.focus, Pane::Feed);
}

/// Adds older mentions to acme, on earlier days, so the chart has shape.
fn add_history(fx: &Fixture) -> u64 {
    let acme = &fx.accounts[0];
    let mut older = Vec::new();
    for day in 1..30u64 {
        for k in 0..(day * 7 % 5) {
            let id = 1_992_000_000_000_000_000 - (day * 100 + k) * 1_000_000_000;
            let at = now() - Duration::days(day as i64) - Duration::minutes(k as i64);
            older.push(mention(acme, (day + k) as usize, id, at));
        }
    }
    let n = older.len() as u64;
    fx.store.commit_page(acme.id, &older, None).unwrap();
    n
}

#[test]
fn the_stats_view_reads_counters_and_follows_new_mentions() {
    let fx = Fixture::new(12);
    let extra = add_history(&fx);
    let mut state = state_at(&fx, 80, 24);
    select_account(&fx, &mut state, "acme");
    let acme = fx.accounts[0].id;
    fx.key(&mut state, KeyCode::Char('s'));
    let AccountOverlay::Stats(view) = overlay(&state) else {
        panic!("stats view expected");
    };
    let total = fx
        .store
        .count(&FeedFilter {
            account: Some(acme),
            status: None,
        })
        .unwrap();
    assert_eq!(total, 4 + extra);
    assert_eq!(view.stats.total_mentions, total);
    assert_eq!(view.daily.len(), 30);
    assert_eq!(view.daily.iter().map(|(_, n)| n).sum::<u64>(), total);
    assert_eq!(view.stats.days_tracked, 31);
    assert_eq!(
        view.recent.first().map(|m| m.tweet_id.clone()),
        Some(fx.mentions[0].tweet_id.clone())
    );

    // A new mention arrives while the view is open: the figures follow.
    let newer = mention(&fx.accounts[0], 99, 1_993_500_000_000_000_000, now());
    fx.store.commit_page(acme, &[newer], None).unwrap();
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::PageCommitted {
            account_id: acme,
            inserted: 1,
        }),
    );
    let AccountOverlay::Stats(view) = overlay(&state) else {
        panic!("stats view expected");
    };
    assert_eq!(view.stats.total_mentions, total + 1);
    let pending = fx
        .store
        .count(&FeedFilter {
            account: Some(acme),
            status: Some(perch::domain::MentionStatus::Pending),
        })
        .unwrap();
    assert_eq!(view.stats.pending_mentions, pending);
    assert_eq!(pending, total + 1 - 1, "all pending but the one ignored");
    fx.key(&mut state, KeyCode::Esc);
    assert!(matches!(state.mode, Mode::Normal));
}

#[test]
fn account_keys_without_a_selected_account_say_what_to_do() {
    let fx = Fixture::new(0);
    let mut state = state_at(&fx, 80, 24);
    for c in ['R', 'D', 's'] {
        let effects = shift(&fx, &mut state, c);
        assert!(effects.is_empty(), "{c}");
        assert!(matches!(state.mode, Mode::Normal), "{c}");
        assert!(
            state
                .notice
                .as_ref()
                .unwrap()
                .text
                .contains("accounts pane"),
            "{c}: {:?}",
            state.notice
        );
    }
}

// ---- snapshots ---------------------------------------------------------------------------

#[test]
fn snapshot_add_account_dialog_waiting_80x24() {
    let fx = Fixture::new(20);
    let mut state = state_at(&fx, 80, 24);
    fx.key(&mut state, KeyCode::Char('a'));
    login(
        &fx,
        &mut state,
        LoginEvent::Listening {
            login_id: 1,
            url: SIM_URL.into(),
        },
    );
    fx.chars(
        &mut state,
        "http://127.0.0.1:8765/callback?state=Qk9PTVNUQVRF&code=abc",
    );
    insta::assert_snapshot!("add_account_waiting_80x24", render(&state, 80, 24));
}

#[test]
fn snapshot_add_account_port_busy_80x24() {
    let fx = Fixture::new(20);
    let mut state = state_at(&fx, 80, 24);
    fx.key(&mut state, KeyCode::Char('a'));
    let message = perch::auth::AuthError::PortBusy { port: 8765 }.to_string();
    login(
        &fx,
        &mut state,
        LoginEvent::Finished {
            login_id: 1,
            outcome: Err(LoginFailure {
                kind: LoginFailureKind::PortBusy,
                message,
            }),
        },
    );
    insta::assert_snapshot!("add_account_port_busy_80x24", render(&state, 80, 24));
}

#[test]
fn snapshot_remove_confirm_80x24() {
    let fx = Fixture::new(20);
    let mut state = state_at(&fx, 80, 24);
    select_account(&fx, &mut state, "acme");
    shift(&fx, &mut state, 'D');
    fx.key(&mut state, KeyCode::Right);
    fx.key(&mut state, KeyCode::Right);
    insta::assert_snapshot!("remove_confirm_80x24", render(&state, 80, 24));
}

#[test]
fn snapshot_stats_view_80x24_and_120x40() {
    let fx = Fixture::new(20);
    add_history(&fx);
    let mut state = state_at(&fx, 80, 24);
    select_account(&fx, &mut state, "acme");
    fx.key(&mut state, KeyCode::Char('s'));
    insta::assert_snapshot!("stats_80x24", render(&state, 80, 24));
    fx.apply(
        &mut state,
        Action::Resize {
            width: 120,
            height: 40,
        },
    );
    insta::assert_snapshot!("stats_120x40", render(&state, 120, 40));
}

#[test]
fn snapshot_account_detail_80x24() {
    let fx = Fixture::new(20);
    let mut state = state_at(&fx, 80, 24);
    let bluebird = fx.accounts[1].id;
    for event in [
        SyncEvent::Started {
            account_id: bluebird,
        },
        SyncEvent::Budget {
            account_id: bluebird,
            remaining: 287,
            limit: 300,
            reset: now() + Duration::minutes(12),
        },
        SyncEvent::PageCommitted {
            account_id: bluebird,
            inserted: 2,
        },
        SyncEvent::Finished {
            account_id: bluebird,
            inserted: 2,
            senders_filled: 0,
            next_poll_at: Some(now() + Duration::seconds(40)),
        },
    ] {
        fx.apply(&mut state, Action::Sync(event));
    }
    select_account(&fx, &mut state, "bluebird_dev");
    fx.key(&mut state, KeyCode::Enter);
    insta::assert_snapshot!("account_detail_80x24", render(&state, 80, 24));
}

#[test]
fn snapshot_accounts_pane_with_schedule_and_a_token_expired_account() {
    let fx = Fixture::new(20);
    let mut state = state_at(&fx, 80, 24);
    let acme = fx.accounts[0].id;
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::Budget {
            account_id: acme,
            remaining: 287,
            limit: 300,
            reset: now() + Duration::minutes(12),
        }),
    );
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::Finished {
            account_id: acme,
            inserted: 0,
            senders_filled: 0,
            next_poll_at: Some(now() + Duration::seconds(40)),
        }),
    );
    let mut bluebird = fx.accounts[1].clone();
    bluebird.sync_status = SyncStatus::TokenExpired;
    bluebird.error_message = Some(perch::auth::token_expired_message("bluebird_dev"));
    fx.store.put_account(&bluebird).unwrap();
    fx.apply(
        &mut state,
        Action::Sync(SyncEvent::AccountUpdated(bluebird)),
    );

    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    terminal
        .draw(|frame| draw(frame, &state, &Theme::default(), now()))
        .unwrap();
    let buffer = terminal.backend().buffer().clone();
    insta::assert_snapshot!("token_expired_80x24", terminal.backend().to_string());

    // The token-expired account's handle is drawn in the token-expired colour, others in theirs.
    let theme = Theme::default();
    let expired = theme.sync_status(SyncStatus::TokenExpired).fg;
    let find = |needle: &str| -> (u16, u16) {
        for y in 0..buffer.area.height {
            let row: String = (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            if let Some(col) = row.find(needle) {
                let x = row[..col].chars().count() as u16;
                return (x, y);
            }
        }
        panic!("{needle} not on screen");
    };
    let (x, y) = find("@bluebird_dev");
    assert_eq!(buffer[(x + 1, y)].fg, expired.unwrap());
    let (x, y) = find("@acme");
    assert_ne!(buffer[(x + 1, y)].fg, expired.unwrap());
}
