//! Triage in `app::update` against a known store: combined filters and search, a post sent to
//! several accounts shown once, bulk marks with their confirm, undo (also after reopening the
//! store), saved replies, `$EDITOR` hand-off and the link copy.

mod ui_fixture;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use perch::app::{Action, AppState, Effect, Job, Mode, Pane, SavedReplies, update};
use perch::domain::{MentionStatus, Response};
use perch::store::FeedFilter;
use ui_fixture::{Fixture, now, render};

fn notice(state: &AppState) -> String {
    state
        .notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}

fn shown_tweets(state: &AppState) -> Vec<String> {
    state
        .feed
        .rows
        .iter()
        .map(|r| r.primary().tweet_id.clone())
        .collect()
}

/// Tweet ids of the fixture's mentions `i` for which `pick(i)` holds, newest first.
fn expected(fx: &Fixture, pick: impl Fn(usize) -> bool) -> Vec<String> {
    (0..fx.mentions.len())
        .filter(|i| pick(*i))
        .map(|i| fx.mentions[i].tweet_id.clone())
        .collect()
}

fn search(fx: &Fixture, state: &mut AppState, query: &str) {
    fx.key(state, KeyCode::Char('/'));
    fx.chars(state, query);
    fx.key(state, KeyCode::Enter);
}

fn pending(fx: &Fixture) -> u64 {
    fx.store
        .count(&FeedFilter {
            account: None,
            status: Some(MentionStatus::Pending),
        })
        .unwrap()
}

// ---- filters and search ----------------------------------------------------------------------

#[test]
fn search_matches_post_text_and_sender_handle_or_name_case_insensitively() {
    let fx = Fixture::new(60);
    let mut state = fx.state(120, 40);
    // "Norway" is in every 7th post (text 4).
    search(&fx, &mut state, "NORWAY");
    assert!(matches!(state.mode, Mode::Normal));
    assert_eq!(shown_tweets(&state), expected(&fx, |i| i % 7 == 4));
    assert_eq!(state.feed.total, 8);
    assert!(
        !state.feed.searching(),
        "a small store is searched to the end"
    );

    // A handle (sender 0, @mara_k) and a display name with a non-ASCII letter (Mara Kovač).
    fx.key(&mut state, KeyCode::Esc);
    search(&fx, &mut state, "mara_k");
    assert_eq!(shown_tweets(&state), expected(&fx, |i| i % 5 == 0));
    fx.key(&mut state, KeyCode::Esc);
    search(&fx, &mut state, "kOVAČ");
    assert_eq!(shown_tweets(&state), expected(&fx, |i| i % 5 == 0));

    // Esc clears the search: the whole feed again.
    fx.key(&mut state, KeyCode::Esc);
    assert!(state.feed.search.is_none());
    assert_eq!(state.feed.total, 60);
    assert_eq!(notice(&state), "search cleared");
}

#[test]
fn account_status_and_search_filters_combine() {
    let fx = Fixture::new(60);
    let mut state = fx.state(120, 40);
    search(&fx, &mut state, "norway");
    // Status pending: the Norway post at i = 4 is in error.
    fx.key(&mut state, KeyCode::Char('f'));
    assert_eq!(
        shown_tweets(&state),
        expected(&fx, |i| i % 7 == 4 && i != 4)
    );
    assert_eq!(state.feed.total, 7);
    // Account @acme (every 3rd mention) on top of both.
    fx.key(&mut state, KeyCode::BackTab);
    fx.key(&mut state, KeyCode::Char('j'));
    assert_eq!(state.feed.filter.account, Some(fx.accounts[0].id));
    assert_eq!(
        shown_tweets(&state),
        expected(&fx, |i| i % 7 == 4 && i != 4 && i % 3 == 0)
    );
    let bar = render(&state, 120, 40);
    assert!(
        bar.contains("@acme · pending · /\"norway\" · 2 matches"),
        "{bar}"
    );
    // Without the search: the counters say how many pending mentions @acme has.
    fx.key(&mut state, KeyCode::Tab);
    fx.key(&mut state, KeyCode::Esc);
    assert!(state.feed.search.is_none());
    assert_eq!(
        state.feed.total, 19,
        "@acme has 20 mentions, one of them (i = 6) ignored"
    );
}

#[test]
fn n_and_capital_n_step_through_the_matches() {
    let fx = Fixture::new(60);
    let mut state = fx.state(120, 40);
    search(&fx, &mut state, "norway");
    let hits = expected(&fx, |i| i % 7 == 4);
    let selected = |s: &AppState| s.feed.selected_mention().map(|m| m.tweet_id.clone());
    fx.key(&mut state, KeyCode::Char('n'));
    fx.key(&mut state, KeyCode::Char('n'));
    assert_eq!(selected(&state), Some(hits[2].clone()));
    fx.key(&mut state, KeyCode::Char('N'));
    assert_eq!(selected(&state), Some(hits[1].clone()));
    fx.key(&mut state, KeyCode::Char('G'));
    fx.key(&mut state, KeyCode::Char('n'));
    assert_eq!(selected(&state), hits.last().cloned());
    assert_eq!(notice(&state), "no more matches");
}

#[test]
fn a_big_search_shows_its_first_screen_at_once_and_counts_the_rest_in_the_background() {
    // More mentions than one search step examines.
    let fx = Fixture::new(12_000);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('/'));
    for c in "norway".chars() {
        {
            let key =
                Action::key_seeing(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE), &state);
            fx.apply_without_idle(&mut state, key)
        };
    }
    assert!(
        !state.feed.rows.is_empty(),
        "the first screen is there at once"
    );
    assert!(state.feed.searching(), "the count is not finished yet");
    let bar = render(&state, 120, 40);
    let first_count = state.feed.total;
    assert!(
        bar.contains(&format!("{first_count}+ matches")),
        "while scanning the status bar says N+: {bar}"
    );
    // The loop runs the steps when idle; each step is bounded and queues the next.
    let mut steps = 0;
    loop {
        let effects = update(&mut state, Action::Continue(Job::Search), &fx.store);
        steps += 1;
        if !effects.contains(&Effect::Background(Job::Search)) {
            break;
        }
        assert!(steps < 100, "the search must end");
    }
    assert!(steps >= 2, "the store is searched in several steps");
    assert!(!state.feed.searching());
    let every_7th = expected(&fx, |i| i % 7 == 4).len() as u64;
    assert_eq!(state.feed.total, every_7th, "every 7th post, exactly");
    assert!(render(&state, 120, 40).contains(&format!("{every_7th} matches")));
}

// ---- a post sent to several accounts ---------------------------------------------------------

#[test]
fn a_post_to_several_accounts_shows_once_and_triage_acts_on_each_mention() {
    let fx = Fixture::new(10);
    let shared = fx.add_shared_post(&[0, 1], 1_993_000_100_000_000_000);
    let mut state = fx.state(120, 40);
    assert_eq!(state.feed.total, 12, "two mentions stored");
    let top = &state.feed.rows[0];
    assert_eq!(top.mentions().len(), 2, "one row for the post");
    assert_eq!(
        state.feed.rows[1].primary().tweet_id,
        fx.mentions[0].tweet_id
    );
    let screen = render(&state, 120, 40);
    assert!(screen.contains("to @bluebird_dev, @acme"), "{screen}");

    // Under one account it is that account's mention only.
    fx.key(&mut state, KeyCode::BackTab);
    fx.key(&mut state, KeyCode::Char('j'));
    assert_eq!(state.feed.rows[0].mentions().len(), 1);
    fx.key(&mut state, KeyCode::Char('k'));
    fx.key(&mut state, KeyCode::Tab);

    let effects = fx.key(&mut state, KeyCode::Char('i'));
    let keys: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Triage { keys, .. } => Some(keys.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(keys.len(), 1, "one action for the post");
    assert_eq!(keys[0].len(), 2, "covering both mentions");
    for m in &shared {
        assert_eq!(fx.status_of(m), MentionStatus::Ignored);
    }
    assert_eq!(
        notice(&state),
        "ignored on @bluebird_dev and @acme (u undoes)"
    );
    // One undo takes back both.
    fx.key(&mut state, KeyCode::Char('u'));
    for m in &shared {
        assert_eq!(fx.status_of(m), MentionStatus::Pending);
    }
}

#[test]
fn replying_to_a_post_sent_to_several_accounts_asks_which_one_defaulting_to_the_first() {
    let fx = Fixture::new(10);
    fx.add_shared_post(&[0, 1, 2], 1_993_000_100_000_000_000);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('r'));
    let Mode::PickAccount(picker) = &state.mode else {
        panic!("r on a shared post asks which account replies");
    };
    let handles: Vec<&str> = picker.choices.iter().map(|(_, h)| h.as_str()).collect();
    assert_eq!(handles, ["@nightowl_io", "@bluebird_dev", "@acme"]);
    insta::assert_snapshot!("pick_account_120x40", render(&state, 120, 40));
    fx.key(&mut state, KeyCode::Enter);
    let c = state.composer().expect("Enter takes the default");
    assert_eq!(c.header(), "replying as @nightowl_io to @zoe_r");
    assert_eq!(c.key.account_id, fx.accounts[2].id);

    fx.key(&mut state, KeyCode::Esc);
    fx.key(&mut state, KeyCode::Char('d'));
    fx.key(&mut state, KeyCode::Char('j'));
    fx.key(&mut state, KeyCode::Char('j'));
    fx.key(&mut state, KeyCode::Enter);
    let c = state.composer().expect("DM composer");
    assert_eq!(c.header(), "DM as @acme to @zoe_r");
    assert_eq!(c.key.account_id, fx.accounts[0].id);
}

// ---- triage keys, marks, bulk and undo ---------------------------------------------------------

#[test]
fn space_marks_and_moves_down_then_i_asks_and_applies_to_all_marked() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char(' '));
    fx.key(&mut state, KeyCode::Char('j'));
    fx.key(&mut state, KeyCode::Char(' '));
    fx.key(&mut state, KeyCode::Char(' '));
    assert_eq!(
        state.feed.selected_mention().map(|m| m.tweet_id.clone()),
        Some(fx.mentions[4].tweet_id.clone()),
        "Space moves down"
    );
    assert_eq!(state.marks.count_label(), "3");
    // Space again on a marked row unmarks it.
    fx.key(&mut state, KeyCode::Char('k'));
    fx.key(&mut state, KeyCode::Char(' '));
    assert_eq!(state.marks.count_label(), "2");

    let effects = fx.key(&mut state, KeyCode::Char('i'));
    assert!(effects.is_empty(), "nothing is written before the confirm");
    let Mode::Confirm(confirm) = &state.mode else {
        panic!("i with marks asks first");
    };
    assert_eq!(confirm.question(), "Ignore 2 mentions? y/n");
    // n: nothing changes, the marks stay.
    fx.key(&mut state, KeyCode::Char('n'));
    assert!(matches!(state.mode, Mode::Normal));
    assert_eq!(fx.status_of(&fx.mentions[0]), MentionStatus::Pending);
    assert_eq!(state.marks.count_label(), "2");

    fx.key(&mut state, KeyCode::Char('i'));
    fx.key(&mut state, KeyCode::Char('y'));
    assert_eq!(fx.status_of(&fx.mentions[0]), MentionStatus::Ignored);
    assert_eq!(fx.status_of(&fx.mentions[2]), MentionStatus::Ignored);
    assert_eq!(
        fx.status_of(&fx.mentions[3]),
        MentionStatus::Pending,
        "unmarked again"
    );
    assert!(state.marks.is_empty(), "the marks are used up");
    assert_eq!(notice(&state), "ignored: 2 mentions (u undoes)");
}

#[test]
fn capital_v_marks_the_filter_and_a_bulk_action_runs_in_chunks_and_undoes_in_chunks() {
    let fx = Fixture::new(1_200);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('f')); // pending: 1 200 minus replied, error, ignored
    assert_eq!(state.feed.total, 1_197);
    fx.key(&mut state, KeyCode::Char('V'));
    assert_eq!(state.marks.count_label(), "1197");
    // Unmark the newest one again.
    fx.key(&mut state, KeyCode::Char(' '));
    assert_eq!(state.marks.count_label(), "1196");
    fx.key(&mut state, KeyCode::Char('i'));
    let Mode::Confirm(confirm) = &state.mode else {
        panic!("confirm first");
    };
    assert_eq!(confirm.question(), "Ignore 1196 mentions? y/n");

    // `y` writes one chunk now and leaves the rest to idle steps (no frozen screen).
    let effects = {
        let key = Action::key_seeing(
            KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE),
            &state,
        );
        fx.apply_without_idle(&mut state, key)
    };
    let chunks: Vec<usize> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Triage { keys, .. } => Some(keys.len()),
            _ => None,
        })
        .collect();
    assert_eq!(chunks, [499], "the first 500 rows, minus the unmarked one");
    assert!(effects.contains(&Effect::Background(Job::Bulk)));
    assert!(state.bulk.is_some());
    // `u` waits for the bulk action to finish.
    {
        let key = Action::key_seeing(
            KeyEvent::new(KeyCode::Char('u'), KeyModifiers::NONE),
            &state,
        );
        fx.apply_without_idle(&mut state, key)
    };
    assert!(
        notice(&state).contains("still being applied"),
        "{}",
        notice(&state)
    );
    // Idle steps finish it.
    while state.bulk.is_some() {
        fx.apply(&mut state, Action::Continue(Job::Bulk));
    }
    assert_eq!(pending(&fx), 1, "only the unmarked one is left");
    assert_eq!(fx.status_of(&fx.mentions[0]), MentionStatus::Pending);
    assert_eq!(notice(&state), "ignored: 1196 mentions (u undoes)");
    assert_eq!(state.feed.total, 1);

    // Undo takes the whole bulk action back, chunk by chunk.
    let effects = {
        let key = Action::key_seeing(
            KeyEvent::new(KeyCode::Char('u'), KeyModifiers::NONE),
            &state,
        );
        fx.apply_without_idle(&mut state, key)
    };
    assert!(
        matches!(effects[..], [Effect::Undo { action: Some(_) }]),
        "{effects:?}"
    );
    while state.undoing.is_some() {
        fx.apply(&mut state, Action::Continue(Job::Undo));
    }
    assert_eq!(pending(&fx), 1_197);
    let said = notice(&state);
    assert!(
        said.starts_with("undone (marked 1196 mentions ignored at "),
        "{said}"
    );
    assert_eq!(plain(&said), "undone: 1196 mentions no longer ignored");
}

#[test]
fn marks_of_a_filter_do_not_take_in_mentions_that_arrive_later() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('V'));
    let late = fx.add_shared_post(&[0], 1_993_000_100_000_000_000);
    fx.apply(&mut state, Action::StoreChanged);
    fx.key(&mut state, KeyCode::Char('x'));
    fx.key(&mut state, KeyCode::Char('y'));
    assert_eq!(fx.status_of(&late[0]), MentionStatus::Pending);
    assert_eq!(fx.status_of(&fx.mentions[9]), MentionStatus::Replied);
}

#[test]
fn undo_goes_back_several_levels_and_survives_a_restart() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('i')); // mentions[0] ignored
    fx.key(&mut state, KeyCode::Char('x')); // mentions[1] was replied: unchanged, moves on
    fx.key(&mut state, KeyCode::Char('x')); // mentions[2] replied
    fx.key(&mut state, KeyCode::Char('i')); // mentions[3] ignored
    assert_eq!(fx.status_of(&fx.mentions[3]), MentionStatus::Ignored);
    fx.key(&mut state, KeyCode::Char('u'));
    assert_eq!(fx.status_of(&fx.mentions[3]), MentionStatus::Pending);
    assert_eq!(
        plain(&notice(&state)),
        "undone: 1 mention no longer ignored"
    );
    drop(state);

    // A restart: the undo log is in the store. What it holds is from before: `u` says what it
    // would undo and asks.
    let fx = fx.reopen();
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('u'));
    assert!(matches!(state.mode, perch::app::Mode::ConfirmUndo(_)));
    assert_eq!(
        fx.status_of(&fx.mentions[2]),
        MentionStatus::Replied,
        "not yet"
    );
    fx.key(&mut state, KeyCode::Char('y'));
    assert_eq!(fx.status_of(&fx.mentions[2]), MentionStatus::Pending);
    assert_eq!(
        plain(&notice(&state)),
        "undone: 1 mention no longer replied"
    );
    fx.key(&mut state, KeyCode::Char('u'));
    fx.key(&mut state, KeyCode::Char('y'));
    assert_eq!(fx.status_of(&fx.mentions[0]), MentionStatus::Pending);
    fx.key(&mut state, KeyCode::Char('u'));
    assert_eq!(notice(&state), "nothing to undo");
}

#[test]
fn undo_never_takes_back_a_reply_that_was_sent_and_says_so() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('x')); // mentions[0]: replied elsewhere
    // Then a reply really goes out for it (the outbox records it).
    let mut m = fx.store.mention(fx.mentions[0].key()).unwrap().unwrap();
    m.public_response = Some(Response {
        id: "1993000000000000555".into(),
        text: "@mara_k fixed".into(),
        sent_at: now(),
    });
    fx.store.update_mention(&m).unwrap();
    fx.key(&mut state, KeyCode::Char('u'));
    assert_eq!(fx.status_of(&fx.mentions[0]), MentionStatus::Replied);
    let said = notice(&state);
    assert!(
        plain(&said).starts_with("nothing undone: 1 stays replied: a reply was sent"),
        "{said}"
    );
}

/// Repro of issue 9: `u` right after a reply silently undid an older, off-screen bulk action.
#[test]
fn undo_after_a_reply_asks_before_undoing_an_earlier_action() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('i')); // mentions[0] ignored
    fx.key(&mut state, KeyCode::Char('j'));
    fx.key(&mut state, KeyCode::Char('j')); // mentions[3]
    fx.key(&mut state, KeyCode::Char('r'));
    fx.ctrl(&mut state, 's');
    assert!(matches!(state.mode, perch::app::Mode::Normal), "sent");
    fx.key(&mut state, KeyCode::Char('u'));
    let perch::app::Mode::ConfirmUndo(action) = &state.mode else {
        panic!("u asks first, the ignore is not on screen");
    };
    assert_eq!(action.status, MentionStatus::Ignored);
    assert!(
        render(&state, 120, 40).contains("Undo the last triage action: marked 1 mention ignored")
    );
    fx.key(&mut state, KeyCode::Char('n'));
    assert_eq!(notice(&state), "nothing undone");
    assert_eq!(fx.status_of(&fx.mentions[0]), MentionStatus::Ignored);
}

/// A notice without the "(what was undone)" part, for comparing.
fn plain(notice: &str) -> String {
    match (notice.find(" ("), notice.find("): ")) {
        (Some(a), Some(b)) if a < b => format!("{}{}", &notice[..a], &notice[b + 1..]),
        _ => notice.to_string(),
    }
}

#[test]
fn reopen_and_mark_replied_keys_move_on_and_are_undoable() {
    let fx = Fixture::new(10);
    let mut state = fx.state(120, 40);
    fx.press(&mut state, KeyCode::Char('j'), 6); // mentions[6] is ignored
    fx.key(&mut state, KeyCode::Char('p'));
    assert_eq!(fx.status_of(&fx.mentions[6]), MentionStatus::Pending);
    assert_eq!(
        state.feed.selected_mention().map(|m| m.tweet_id.clone()),
        Some(fx.mentions[7].tweet_id.clone())
    );
    fx.key(&mut state, KeyCode::Char('u'));
    assert_eq!(fx.status_of(&fx.mentions[6]), MentionStatus::Ignored);
}

// ---- link, editor, saved replies ----------------------------------------------------------------

#[test]
fn y_copies_the_post_link_and_says_so() {
    let fx = Fixture::new(5);
    let mut state = fx.state(120, 40);
    let effects = fx.key(&mut state, KeyCode::Char('y'));
    assert_eq!(
        effects,
        vec![Effect::CopyToClipboard(format!(
            "https://x.com/mara_k/status/{}",
            fx.mentions[0].tweet_id
        ))]
    );
    assert_eq!(notice(&state), "link copied");
}

#[test]
fn ctrl_e_hands_the_draft_to_the_editor_and_takes_it_back() {
    let fx = Fixture::new(5);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('r'));
    fx.chars(&mut state, "draft");
    let effects = fx.ctrl(&mut state, 'e');
    let key = fx.mentions[0].key();
    assert_eq!(
        effects,
        vec![Effect::EditExternally {
            key,
            text: "@mara_k draft".into()
        }]
    );
    fx.apply(
        &mut state,
        Action::EditorDone {
            key,
            result: Ok("@mara_k a longer answer\nwith two lines\n".into()),
        },
    );
    let c = state.composer().expect("still composing");
    assert_eq!(c.text(), "@mara_k a longer answer\nwith two lines");
    assert_eq!(c.length, 38);
    // The next tick saves it like typed text.
    fx.apply(&mut state, Action::Tick(now()));
    assert_eq!(
        fx.store.draft(key).unwrap().map(|d| d.text),
        Some("@mara_k a longer answer\nwith two lines".into())
    );
    // A failed editor leaves the draft alone and says why.
    fx.apply(
        &mut state,
        Action::EditorDone {
            key,
            result: Err("no editor is set: set $EDITOR".into()),
        },
    );
    assert_eq!(
        state.composer().unwrap().text(),
        "@mara_k a longer answer\nwith two lines"
    );
    assert_eq!(notice(&state), "no editor is set: set $EDITOR");
}

fn with_templates(state: &mut AppState) {
    let mut replies = SavedReplies::default();
    replies.by_account.insert(
        "acme".into(),
        vec![
            "{sender} thanks {sender_name}! {account} support here, we are on it.".into(),
            "{sender} could you DM us your order number?".into(),
        ],
    );
    state.saved_replies = replies;
}

#[test]
fn ctrl_t_picks_a_saved_reply_of_the_replying_account_with_placeholders_filled() {
    let fx = Fixture::new(5);
    let mut state = fx.state(120, 40);
    with_templates(&mut state);
    fx.key(&mut state, KeyCode::Char('r'));
    fx.ctrl(&mut state, 't');
    let picker = state.composer().and_then(|c| c.templates.clone());
    let picker = picker.expect("C-t opens the saved replies");
    assert_eq!(
        picker.items[0],
        "@mara_k thanks Mara Kovač! @acme support here, we are on it."
    );
    insta::assert_snapshot!("saved_replies_120x40", render(&state, 120, 40));
    fx.key(&mut state, KeyCode::Char('j'));
    fx.key(&mut state, KeyCode::Enter);
    let c = state.composer().unwrap();
    assert!(c.templates.is_none());
    assert_eq!(
        c.text(),
        "@mara_k could you DM us your order number?",
        "an untouched draft is replaced, not added to"
    );

    // Typing then 1 inserts at the cursor instead.
    fx.chars(&mut state, " ");
    fx.ctrl(&mut state, 't');
    fx.key(&mut state, KeyCode::Char('2'));
    assert_eq!(
        state.composer().unwrap().text(),
        "@mara_k could you DM us your order number? @mara_k could you DM us your order number?"
    );
}

#[test]
fn ctrl_t_for_an_account_without_saved_replies_says_how_to_add_them() {
    let fx = Fixture::new(5);
    let mut state = fx.state(120, 40);
    with_templates(&mut state);
    fx.key(&mut state, KeyCode::Char('j')); // @bluebird_dev's mention, already replied to
    fx.key(&mut state, KeyCode::Char('r'));
    fx.key(&mut state, KeyCode::Char('r')); // "press r again to send another"
    fx.ctrl(&mut state, 't');
    assert!(state.composer().unwrap().templates.is_none());
    let said = notice(&state);
    assert!(
        said.contains("no saved replies for @bluebird_dev")
            && said.contains("[accounts.bluebird_dev]"),
        "{said}"
    );
}

#[test]
fn esc_clears_marks_first_then_the_search() {
    let fx = Fixture::new(20);
    let mut state = fx.state(120, 40);
    search(&fx, &mut state, "norway");
    fx.key(&mut state, KeyCode::Char(' '));
    assert!(!state.marks.is_empty());
    fx.key(&mut state, KeyCode::Esc);
    assert!(state.marks.is_empty());
    assert!(state.feed.search.is_some());
    fx.key(&mut state, KeyCode::Esc);
    assert!(state.feed.search.is_none());
    assert_eq!(state.focus, Pane::Feed);
}

#[test]
fn undo_under_a_search_brings_the_rows_and_the_counters_back() {
    let fx = Fixture::new(60);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('f'));
    search(&fx, &mut state, "norway");
    assert_eq!(state.feed.total, 7);
    fx.key(&mut state, KeyCode::Char('V'));
    fx.key(&mut state, KeyCode::Char('i'));
    fx.key(&mut state, KeyCode::Char('y'));
    assert_eq!(state.feed.total, 0);
    assert_eq!(state.pending_total, 57 - 7);
    fx.key(&mut state, KeyCode::Char('u'));
    assert_eq!(state.feed.total, 7, "the search finds them again");
    assert_eq!(state.pending_total, 57);
}

// ---- screens ------------------------------------------------------------------------------------

#[test]
fn filtered_feed_with_search_and_marks_120x40() {
    let fx = Fixture::new(60);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('f'));
    search(&fx, &mut state, "o");
    fx.key(&mut state, KeyCode::Char(' '));
    fx.key(&mut state, KeyCode::Char(' '));
    insta::assert_snapshot!("filtered_search_marks_120x40", render(&state, 120, 40));
}

#[test]
fn account_filtered_feed_80x24() {
    let fx = Fixture::new(60);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::BackTab);
    fx.press(&mut state, KeyCode::Char('j'), 2);
    fx.key(&mut state, KeyCode::Tab);
    fx.key(&mut state, KeyCode::Char('f'));
    insta::assert_snapshot!("account_pending_80x24", render(&state, 80, 24));
}

#[test]
fn shared_post_row_and_detail_120x40() {
    let fx = Fixture::new(20);
    fx.add_shared_post(&[0, 1, 2], 1_993_000_100_000_000_000);
    let mut state = fx.state(120, 40);
    fx.key(&mut state, KeyCode::Char('V'));
    insta::assert_snapshot!("shared_post_120x40", render(&state, 120, 40));
}

#[test]
fn bulk_confirm_80x24() {
    let fx = Fixture::new(60);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::Char('f'));
    fx.key(&mut state, KeyCode::Char('V'));
    fx.key(&mut state, KeyCode::Char('i'));
    insta::assert_snapshot!("bulk_confirm_80x24", render(&state, 80, 24));
}

#[test]
fn search_being_typed_80x24() {
    let fx = Fixture::new(30);
    let mut state = fx.state(80, 24);
    fx.key(&mut state, KeyCode::Char('/'));
    fx.chars(&mut state, "safari");
    insta::assert_snapshot!("search_typing_80x24", render(&state, 80, 24));
}
