//! The dashboard's bell and title for new mentions, as effects `update` returns (the terminal
//! writes them): one bell per burst, none in quiet hours, during an account's first sync or for
//! an account with `notify = false`; the title follows the pending count, in quiet hours too.

mod ui_fixture;

use chrono::{Duration, Local};
use perch::app::notify::TerminalAlerts;
use perch::app::{Action, AppState, Effect};
use perch::notify::{AccountNotify, NotifySettings, QuietHours};
use perch::sync::SyncEvent;
use ui_fixture::{Fixture, mention, now};

const NEWER: u64 = 1_994_000_000_000_000_000;

fn alerting(fx: &Fixture, settings: NotifySettings) -> AppState {
    let mut state = fx.state(100, 30);
    state.alerts = TerminalAlerts::new(settings);
    fx.apply(&mut state, Action::Tick(now()));
    state
}

fn bell_and_title() -> NotifySettings {
    NotifySettings {
        bell: true,
        title: true,
        ..NotifySettings::default()
    }
}

/// `count` new mentions for account `a`, committed and announced as the engine does.
fn arrive(
    fx: &Fixture,
    state: &mut AppState,
    a: usize,
    count: usize,
    seq: &mut u64,
) -> Vec<Effect> {
    let account = &fx.accounts[a];
    let newer: Vec<_> = (0..count)
        .map(|i| {
            *seq += 1;
            mention(account, i, NEWER + *seq * 1_000_000_000, now())
        })
        .collect();
    fx.store.commit_page(account.id, &newer, None).unwrap();
    fx.apply(
        state,
        Action::Sync(SyncEvent::PageCommitted {
            account_id: account.id,
            inserted: count,
        }),
    )
}

fn bells(effects: &[Effect]) -> usize {
    effects.iter().filter(|e| **e == Effect::Bell).count()
}

fn title(effects: &[Effect]) -> Option<String> {
    effects.iter().find_map(|e| match e {
        Effect::SetTitle(t) => Some(t.clone()),
        _ => None,
    })
}

#[test]
fn a_burst_rings_once_and_the_title_counts_pending() {
    let fx = Fixture::new(20);
    let mut state = fx.state(100, 30);
    state.alerts = TerminalAlerts::new(bell_and_title());
    let effects = fx.apply(&mut state, Action::Tick(now()));
    let pending = state.pending_total;
    assert_eq!(title(&effects), Some(format!("perch · {pending} pending")));

    let mut seq = 0;
    let effects = arrive(&fx, &mut state, 0, 3, &mut seq);
    assert_eq!(bells(&effects), 1, "{effects:?}");
    assert_eq!(
        title(&effects),
        Some(format!("perch · {} pending", pending + 3))
    );

    // More within the burst (the same tick, then 3 s on): counted, not rung again.
    let effects = arrive(&fx, &mut state, 0, 1, &mut seq);
    assert_eq!(bells(&effects), 0, "{effects:?}");
    assert_eq!(
        title(&effects),
        Some(format!("perch · {} pending", pending + 4))
    );
    fx.apply(&mut state, Action::Tick(now() + Duration::seconds(3)));
    assert_eq!(bells(&arrive(&fx, &mut state, 0, 1, &mut seq)), 0);

    // Another account has a burst of its own.
    assert_eq!(bells(&arrive(&fx, &mut state, 1, 1, &mut seq)), 1);

    // Once the burst is over (no arrival for longer than the gap), the next one rings.
    let effects = fx.apply(&mut state, Action::Tick(now() + Duration::seconds(20)));
    assert_eq!(title(&effects), None, "an unchanged count sets no title");
    assert_eq!(bells(&arrive(&fx, &mut state, 0, 1, &mut seq)), 1);
}

#[test]
fn quiet_hours_silence_the_bell_but_not_the_title() {
    let fx = Fixture::new(10);
    let local = now().with_timezone(&Local).time();
    let quiet = QuietHours {
        start: local - Duration::hours(1),
        end: local + Duration::hours(1),
    };
    let mut state = alerting(
        &fx,
        NotifySettings {
            quiet: Some(quiet),
            ..bell_and_title()
        },
    );
    let before = state.pending_total;
    let mut seq = 0;
    let effects = arrive(&fx, &mut state, 0, 2, &mut seq);
    assert_eq!(bells(&effects), 0, "{effects:?}");
    assert_eq!(
        title(&effects),
        Some(format!("perch · {} pending", before + 2))
    );
}

#[test]
fn no_bell_when_off_for_the_account_during_its_first_sync_or_by_default() {
    let fx = Fixture::new(10);
    let mut settings = bell_and_title();
    settings.accounts.insert(
        "acme".into(),
        AccountNotify {
            bell: Some(false),
            ..AccountNotify::default()
        },
    );
    let mut state = alerting(&fx, settings);
    let mut seq = 0;
    assert_eq!(
        bells(&arrive(&fx, &mut state, 0, 1, &mut seq)),
        0,
        "acme: bell = false"
    );
    assert_eq!(
        bells(&arrive(&fx, &mut state, 1, 1, &mut seq)),
        1,
        "the others ring"
    );

    // An account that has never finished a sync is backfilling: no bell.
    let mut fresh = fx.accounts[2].clone();
    fresh.last_synced_at = None;
    fx.apply(&mut state, Action::Sync(SyncEvent::AccountUpdated(fresh)));
    assert_eq!(bells(&arrive(&fx, &mut state, 2, 5, &mut seq)), 0);

    // Nothing configured: no bell and no title at all.
    let mut state = alerting(&fx, NotifySettings::default());
    let effects = arrive(&fx, &mut state, 1, 1, &mut seq);
    assert_eq!(bells(&effects), 0);
    assert_eq!(title(&effects), None);
}
