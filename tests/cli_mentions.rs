//! `perch mentions list/set-status`, `perch reply` and `perch dm` from a script: the real binary
//! against a simulator, with accounts added in-process first. They answer from the right account,
//! through the outbox, with exit codes 0 (done), 1 (not done) and 2 (the command is wrong).

#[path = "support/outbox.rs"]
mod support;

use perch::domain::{Mention, MentionStatus};
use perch::store::Store;
use support::{BRAND, FOUNDER, SUPPORT, World, perch_args, run, text};

/// A world with three accounts and a few known mentions (the store's lock released).
async fn world_with_mentions(seed: u64) -> (World, Vec<Mention>) {
    let world = World::start(seed).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let mentions = vec![
        world
            .mention(&app, SUPPORT, FOUNDER, "the sync icon spins forever")
            .await,
        world
            .mention(&app, FOUNDER, BRAND, "podcast invite for next week")
            .await,
        world
            .mention(&app, BRAND, FOUNDER, "pricing page typo: 'anual'")
            .await,
    ];
    app.store.flush().unwrap();
    (world, mentions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perch_reply_and_dm_answer_from_the_mentioned_account() {
    let (world, m) = world_with_mentions(71).await;
    let api = world.sim.api_base();

    let out = run(
        perch_args(
            &world,
            &api,
            &[
                "reply",
                &m[0].tweet_id,
                "@mara_quill fixed in 2.4.1, thanks!",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let posts = world.sim.control().posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].author_username, SUPPORT);
    assert_eq!(
        posts[0].in_reply_to_tweet_id.as_deref(),
        Some(m[0].tweet_id.as_str())
    );
    assert_eq!(posts[0].text, "@mara_quill fixed in 2.4.1, thanks!");
    assert!(
        text(&out.stdout).contains(&format!("https://x.com/{SUPPORT}/status/{}", posts[0].id)),
        "{}",
        text(&out.stdout)
    );

    // TEXT `-` reads standard input (multi-line, the final newline dropped).
    let out = run(
        perch_args(&world, &api, &["dm", &m[1].tweet_id, "-"]),
        Some("yes! send me the details\nthanks\n"),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let dms = world.sim.control().dms();
    assert_eq!(dms.len(), 1);
    assert_eq!(
        dms[0].sender_username, FOUNDER,
        "from the account mentioned"
    );
    assert_eq!(dms[0].recipient_username, BRAND);
    assert_eq!(dms[0].text, "yes! send me the details\nthanks");

    let store = Store::open(&world.data_dir()).unwrap();
    let replied = store.mention(m[0].key()).unwrap().unwrap();
    assert_eq!(replied.status, MentionStatus::Replied);
    assert_eq!(replied.public_response.unwrap().id, posts[0].id);
    let dmed = store.mention(m[1].key()).unwrap().unwrap();
    assert_eq!(dmed.dm_response.unwrap().id, dms[0].dm_event_id);
    assert!(store.outbox_open().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_and_dm_exit_codes_say_what_went_wrong() {
    let (world, m) = world_with_mentions(72).await;
    let api = world.sim.api_base();
    let code = |o: &std::process::Output| o.status.code();

    // 2: the command is wrong; nothing is sent.
    let empty = run(
        perch_args(&world, &api, &["reply", &m[0].tweet_id, "  "]),
        None,
    )
    .await;
    assert_eq!(code(&empty), Some(2), "{}", text(&empty.stderr));
    assert!(text(&empty.stderr).contains("empty"));
    let long = "a".repeat(281);
    let too_long = run(
        perch_args(&world, &api, &["reply", &m[0].tweet_id, &long]),
        None,
    )
    .await;
    assert_eq!(code(&too_long), Some(2), "{}", text(&too_long.stderr));
    let bad_id = run(
        perch_args(&world, &api, &["reply", "not-an-id", "hi"]),
        None,
    )
    .await;
    assert_eq!(code(&bad_id), Some(2), "{}", text(&bad_id.stderr));

    // 1: it could not be done.
    let unknown = run(perch_args(&world, &api, &["reply", "12345", "hi"]), None).await;
    assert_eq!(code(&unknown), Some(1));
    assert!(
        text(&unknown.stderr).contains("no stored mention"),
        "{}",
        text(&unknown.stderr)
    );
    // The brand cannot DM the founder (she does not accept DMs): said in plain words.
    let refused = run(
        perch_args(&world, &api, &["dm", &m[2].tweet_id, "hello"]),
        None,
    )
    .await;
    assert_eq!(code(&refused), Some(1));
    assert!(
        text(&refused.stderr).contains("does not accept messages from @nimbusnotes"),
        "{}",
        text(&refused.stderr)
    );
    assert!(world.sim.control().posts().is_empty());
    assert!(world.sim.control().dms().is_empty());
    let store = Store::open(&world.data_dir()).unwrap();
    let failed = store.mention(m[2].key()).unwrap().unwrap();
    assert_eq!(failed.status, MentionStatus::Error);
    assert_eq!(
        store.draft(m[2].key()).unwrap().map(|d| d.text),
        Some("hello".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_list_filters_by_account_status_and_text() {
    let (world, m) = world_with_mentions(73).await;
    let api = world.sim.api_base();
    let list = |args: &[&str]| {
        let mut all = vec!["mentions", "list", "--json"];
        all.extend_from_slice(args);
        perch_args(&world, &api, &all)
    };
    let ids = |out: &std::process::Output| -> Vec<String> {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["mentions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["tweet_id"].as_str().unwrap().to_string())
            .collect()
    };

    let support_only = ids(&run(list(&["--account", "@nimbus_help"]), None).await);
    assert!(support_only.contains(&m[0].tweet_id));
    assert!(!support_only.contains(&m[1].tweet_id) && !support_only.contains(&m[2].tweet_id));

    let found = ids(&run(list(&["--search", "PODCAST"]), None).await);
    assert_eq!(found, vec![m[1].tweet_id.clone()]);

    let found = ids(&run(
        list(&["--search", "typo", "--account", "@nimbus_help"]),
        None,
    )
    .await);
    assert!(found.is_empty(), "search and account combine: {found:?}");

    let two = ids(&run(list(&["--limit", "2"]), None).await);
    assert_eq!(two.len(), 2);

    let set = run(
        perch_args(
            &world,
            &api,
            &["mentions", "set-status", &m[0].tweet_id, "ignored"],
        ),
        None,
    )
    .await;
    assert_eq!(set.status.code(), Some(0), "{}", text(&set.stderr));
    let pending = ids(&run(
        list(&["--status", "pending", "--account", "nimbus_help"]),
        None,
    )
    .await);
    assert!(!pending.contains(&m[0].tweet_id));
    let ignored = ids(&run(list(&["--status", "ignored"]), None).await);
    assert_eq!(ignored, vec![m[0].tweet_id.clone()]);

    let bad = run(list(&["--status", "snoozed"]), None).await;
    assert_eq!(bad.status.code(), Some(2));
    let human = run(
        perch_args(&world, &api, &["mentions", "list", "--search", "sync icon"]),
        None,
    )
    .await;
    assert!(
        text(&human.stdout).contains("ignored"),
        "{}",
        text(&human.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_status_changes_triage_and_refuses_what_only_perch_may_set() {
    let (world, m) = world_with_mentions(74).await;
    let api = world.sim.api_base();
    let set =
        |id: &str, status: &str| perch_args(&world, &api, &["mentions", "set-status", id, status]);
    for status in ["ignored", "pending", "replied"] {
        let out = run(set(&m[1].tweet_id, status), None).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let store = Store::open(&world.data_dir()).unwrap();
        assert_eq!(
            store.mention(m[1].key()).unwrap().unwrap().status.as_str(),
            status
        );
    }
    let processing = run(set(&m[1].tweet_id, "processing"), None).await;
    assert_eq!(processing.status.code(), Some(2));
    // Issue 9: `error` was accepted; it is perch's to set, like `processing`.
    let error = run(set(&m[1].tweet_id, "error"), None).await;
    assert_eq!(error.status.code(), Some(2), "{}", text(&error.stderr));
    assert!(text(&error.stderr).contains("error is set by perch"));

    // Issue 9: `pending` was accepted on a mention whose reply was sent.
    let out = run(
        perch_args(&world, &api, &["reply", &m[0].tweet_id, "on it, thanks"]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for status in ["pending", "ignored"] {
        let out = run(set(&m[0].tweet_id, status), None).await;
        assert_eq!(out.status.code(), Some(1), "{status}");
        assert!(
            text(&out.stderr).contains("stays replied"),
            "{}",
            text(&out.stderr)
        );
    }
    let store = Store::open(&world.data_dir()).unwrap();
    assert_eq!(
        store.mention(m[0].key()).unwrap().unwrap().status,
        MentionStatus::Replied
    );
    drop(store);
    // `@handle:postid` names the account's mention of a post.
    let named = run(set(&format!("@{BRAND}:{}", m[2].tweet_id), "ignored"), None).await;
    assert_eq!(named.status.code(), Some(0), "{}", text(&named.stderr));
    let wrong_account = run(
        set(&format!("@{SUPPORT}:{}", m[2].tweet_id), "ignored"),
        None,
    )
    .await;
    assert_eq!(wrong_account.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_status_resolves_an_unconfirmed_reply_the_way_the_script_says() {
    let (world, m) = world_with_mentions(75).await;
    let api = world.sim.api_base();
    // Two replies a killed perch left `sending` (the store as the process left it).
    {
        let store = Store::open(&world.data_dir()).unwrap();
        for (mention, text) in [(&m[0], "is on X"), (&m[1], "is not on X")] {
            let key = mention.key();
            let entry = store
                .outbox_enqueue(
                    key,
                    perch::outbox::ReplyKind::Public,
                    text,
                    chrono::Utc::now(),
                )
                .unwrap();
            store
                .outbox_begin_send(key, entry.seq, chrono::Utc::now())
                .unwrap();
        }
    }
    let on_x = run(
        perch_args(
            &world,
            &api,
            &["mentions", "set-status", &m[0].tweet_id, "replied"],
        ),
        None,
    )
    .await;
    assert_eq!(on_x.status.code(), Some(0), "{}", text(&on_x.stderr));
    assert!(
        text(&on_x.stdout).contains("recorded as sent"),
        "{}",
        text(&on_x.stdout)
    );
    let not_on_x = run(
        perch_args(
            &world,
            &api,
            &["mentions", "set-status", &m[1].tweet_id, "pending"],
        ),
        None,
    )
    .await;
    assert_eq!(
        not_on_x.status.code(),
        Some(0),
        "{}",
        text(&not_on_x.stderr)
    );

    let store = Store::open(&world.data_dir()).unwrap();
    let sent = store.mention(m[0].key()).unwrap().unwrap();
    assert_eq!(sent.status, MentionStatus::Replied);
    assert_eq!(
        sent.public_response.map(|r| (r.id, r.text)),
        Some((String::new(), "is on X".into()))
    );
    let reopened = store.mention(m[1].key()).unwrap().unwrap();
    assert_eq!(reopened.status, MentionStatus::Pending);
    assert_eq!(reopened.error_message, None);
    assert_eq!(
        store.draft(m[1].key()).unwrap().map(|d| d.text),
        Some("is not on X".into()),
        "its text is kept as the draft"
    );
    assert!(store.outbox_open().unwrap().is_empty());
    assert!(world.sim.control().posts().is_empty(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_list_prints_no_escape_sequences_from_a_senders_name() {
    let (world, m) = world_with_mentions(79).await;
    {
        let store = Store::open(&world.data_dir()).unwrap();
        let mut hostile = m[0].clone();
        hostile.sender.username = Some("x\u{1b}]0;owned\u{7}\u{202e}y".into());
        store.update_mention(&hostile).unwrap();
        store.flush().unwrap();
    }
    let api = world.sim.api_base();
    let out = run(perch_args(&world, &api, &["mentions", "list"]), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("@x]0;ownedy"), "{stdout}");
    for c in ['\u{1b}', '\u{7}', '\u{202e}'] {
        assert!(!stdout.contains(c), "{c:?} printed:\n{stdout}");
    }
}

/// Characters a terminal acts on, which no output of perch may carry raw.
fn terminal_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| {
            (c.is_control() && *c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_senders_are_bounded_in_the_list_and_escaped_in_json() {
    // Issue 10 items 8 and 9: a 10 000-character username printed in full, and C1, DEL and bidi
    // characters passed raw through --json.
    let world = World::start(83).await;
    let app = world.app().await;
    world.login_all(&app).await;
    world.sim.control().set_faults(perch::sim::Faults {
        hostile_senders: true,
        ..perch::sim::Faults::default()
    });
    for text in ["first", "second", "third", "fourth"] {
        world.mention(&app, SUPPORT, FOUNDER, text).await;
    }
    let stored = app
        .store
        .page_after(&Default::default(), None, 100)
        .unwrap();
    assert!(
        stored.iter().any(|m| m
            .sender
            .username
            .as_deref()
            .is_some_and(|u| u.len() >= 10_000)),
        "the fault gave someone a 10 000-character username"
    );
    app.store.flush().unwrap();
    drop(app);
    let api = world.sim.api_base();

    let out = run(perch_args(&world, &api, &["mentions", "list"]), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert_eq!(terminal_controls(&listed), Vec::<char>::new(), "{listed}");
    for line in listed.lines() {
        assert!(
            line.chars().count() < 300,
            "an unbounded line: {} chars",
            line.chars().count()
        );
    }

    let out = run(
        perch_args(&world, &api, &["mentions", "list", "--json"]),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    assert_eq!(terminal_controls(&json), Vec::<char>::new());
    assert!(
        json.contains("\\u009b") || json.contains("\\u0085"),
        "C1 escaped"
    );
    assert!(json.contains("\\u202e"), "bidi escaped");
    // Escaped, not removed: the values are what X sent.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let texts: Vec<&str> = value["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.iter().any(|t| t.contains('\u{202e}')), "{texts:?}");
}
