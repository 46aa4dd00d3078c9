//! The outbox against the simulator over real loopback HTTP: replies and DMs go out from the
//! account the mention was sent to (checked on the simulator's own record of who posted), a reply
//! whose answer is lost is never sent twice, a retry that X calls a duplicate is recorded as sent,
//! 429s wait for the reset, and refusals are explained.

#[path = "support/outbox.rs"]
mod support;

use std::time::Duration;

use perch::auth::TokenManager;
use perch::domain::{MentionKey, MentionStatus};
use perch::outbox::{self, OutboxCommand, OutboxEvent, OutboxState, ReplyKind, SendRequest};
use perch::sim::{EndpointLimit, SimConfig};
use perch::store::Store;
use perch::x::XClient;
use support::{BRAND, FOUNDER, Proxy, SUPPORT, World, impatient_client};
use tokio::sync::mpsc;

struct Outbox {
    commands: mpsc::Sender<OutboxCommand>,
    events: mpsc::Receiver<OutboxEvent>,
}

impl Outbox {
    fn spawn(store: &Store, client: XClient, tokens: &TokenManager) -> Outbox {
        let (commands, events) = outbox::spawn(store.clone(), client, tokens.clone());
        Outbox { commands, events }
    }

    async fn send(&self, key: MentionKey, kind: ReplyKind, text: &str) {
        self.command(OutboxCommand::Send(SendRequest {
            key,
            kind,
            text: text.into(),
            send_anyway: false,
        }))
        .await;
    }

    async fn command(&self, command: OutboxCommand) {
        self.commands.send(command).await.expect("outbox running");
    }

    /// The next final event about `key` (sent, failed, unconfirmed, cancelled, refused), with
    /// everything seen on the way.
    async fn outcome(&mut self, key: MentionKey) -> (OutboxEvent, Vec<OutboxEvent>) {
        let mut seen = Vec::new();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(120), self.events.recv())
                .await
                .expect("the outbox answers in time")
                .expect("the outbox is running");
            if event.key() == key && event.is_final() {
                return (event, seen);
            }
            seen.push(event);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_goes_out_once_from_the_mentioned_account_under_the_mention() {
    let world = World::start(41).await;
    let app = world.app().await;
    world.login_all(&app).await;
    // One post mentions two tracked accounts: it is two mentions, and answering the support
    // account's mention must post as the support account, not the brand.
    let both = format!("@{BRAND} @{SUPPORT} my export is stuck at 99%");
    let brand_mention = world.mention(&app, BRAND, FOUNDER, &both).await;
    let support_mention = world.stored(&app, SUPPORT, &brand_mention.tweet_id).await;
    assert_eq!(brand_mention.tweet_id, support_mention.tweet_id);

    let mut outbox = Outbox::spawn(&app.store, app.client.clone(), &app.tokens);
    let text = "@mara_quill sorry about that, a fix is rolling out now";
    outbox
        .send(support_mention.key(), ReplyKind::Public, text)
        .await;
    let (event, seen) = outbox.outcome(support_mention.key()).await;
    assert!(
        seen.contains(&OutboxEvent::Sending {
            key: support_mention.key()
        }),
        "{seen:?}"
    );
    let OutboxEvent::Sent { response, .. } = event else {
        panic!("not sent: {event:?}");
    };

    let posts = world.sim.control().posts();
    assert_eq!(posts.len(), 1, "exactly one post: {posts:?}");
    let post = &posts[0];
    assert_eq!(
        post.author_username, SUPPORT,
        "made with the support account's token"
    );
    assert_eq!(post.text, text);
    assert_eq!(
        post.in_reply_to_tweet_id.as_deref(),
        Some(support_mention.tweet_id.as_str())
    );
    assert_eq!(response.id, post.id);

    let stored = app.store.mention(support_mention.key()).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Replied);
    assert_eq!(
        stored.public_response.as_ref().map(|r| &r.id),
        Some(&post.id)
    );
    assert_eq!(app.store.draft(support_mention.key()).unwrap(), None);
    let history = app.store.outbox_history(support_mention.key()).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, OutboxState::Sent);
    assert_eq!(history[0].attempts, 1);
    assert!(app.store.outbox_open().unwrap().is_empty());
    // The brand's mention of the same post is untouched.
    let brand = app.store.mention(brand_mention.key()).unwrap().unwrap();
    assert_eq!(brand.status, MentionStatus::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_goes_to_the_author_from_the_mentioned_account() {
    let world = World::start(42).await;
    let app = world.app().await;
    world.login_all(&app).await;
    // The brand writes to the founder; the founder answers by DM (the brand accepts DMs).
    let mention = world
        .mention(&app, FOUNDER, BRAND, "can you look at the roadmap doc?")
        .await;
    let mut outbox = Outbox::spawn(&app.store, app.client.clone(), &app.tokens);
    outbox
        .send(
            mention.key(),
            ReplyKind::Dm,
            "on it, will send notes tonight",
        )
        .await;
    let (event, _) = outbox.outcome(mention.key()).await;
    let OutboxEvent::Sent { response, kind, .. } = event else {
        panic!("not sent: {event:?}");
    };
    assert_eq!(kind, ReplyKind::Dm);
    let dms = world.sim.control().dms();
    assert_eq!(dms.len(), 1, "{dms:?}");
    assert_eq!(
        dms[0].sender_username, FOUNDER,
        "made with the founder's token"
    );
    assert_eq!(dms[0].recipient_username, BRAND);
    assert_eq!(
        Some(dms[0].recipient_id.as_str()),
        mention.sender.twitter_id.as_deref()
    );
    assert_eq!(dms[0].text, "on it, will send notes tonight");
    assert_eq!(response.id, dms[0].dm_event_id);
    assert!(world.sim.control().posts().is_empty(), "a DM posts nothing");
    let stored = app.store.mention(mention.key()).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Replied);
    assert_eq!(
        stored.dm_response.map(|r| r.id),
        Some(dms[0].dm_event_id.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_dm_is_explained_in_plain_words_and_the_draft_is_kept() {
    let world = World::start(43).await;
    let app = world.app().await;
    world.login_all(&app).await;
    // The founder does not accept DMs: the brand cannot DM her.
    let mention = world
        .mention(&app, BRAND, FOUNDER, "pricing question, DM me?")
        .await;
    let mut outbox = Outbox::spawn(&app.store, app.client.clone(), &app.tokens);
    outbox
        .send(mention.key(), ReplyKind::Dm, "sure, here are the details")
        .await;
    let (event, _) = outbox.outcome(mention.key()).await;
    let OutboxEvent::Failed { message, .. } = event else {
        panic!("expected a refusal: {event:?}");
    };
    assert!(
        message.contains("does not accept messages from @nimbusnotes"),
        "{message}"
    );
    let stored = app.store.mention(mention.key()).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Error);
    assert_eq!(stored.error_message.as_deref(), Some(message.as_str()));
    assert_eq!(
        app.store.draft(mention.key()).unwrap().map(|d| d.text),
        Some("sure, here are the details".into())
    );
    let entry = app.store.outbox_current(mention.key()).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_is_unconfirmed_and_a_retry_x_calls_a_duplicate_is_recorded_as_sent() {
    let world = World::start(44).await;
    let proxy = Proxy::start(&world.sim.api_base()).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let mention = world
        .mention(&app, SUPPORT, FOUNDER, "is the API down?")
        .await;
    let key = mention.key();
    let text = "@mara_quill it was, for 4 minutes; all good now";

    // X creates the post, and its answer never arrives: perch gives up waiting.
    proxy.hold_sends(true);
    let mut outbox = Outbox::spawn(&app.store, impatient_client(&proxy.base), &app.tokens);
    outbox.send(key, ReplyKind::Public, text).await;
    let (event, _) = outbox.outcome(key).await;
    assert!(
        matches!(&event, OutboxEvent::Unconfirmed { message, .. } if message.starts_with("unconfirmed: check on X")),
        "{event:?}"
    );
    assert_eq!(proxy.held(), 1);
    assert_eq!(world.sim.control().posts().len(), 1, "X has the post");
    let entry = app.store.outbox_current(key).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Unconfirmed);
    assert!(entry.may_have_been_sent);
    // Never sent again by itself, and a new reply to the mention is refused until it is resolved.
    outbox.send(key, ReplyKind::Public, "another text").await;
    let (event, _) = outbox.outcome(key).await;
    assert!(
        matches!(&event, OutboxEvent::Refused { message, .. } if message.contains("unconfirmed")),
        "{event:?}"
    );

    // The user retries; X answers that this text is a duplicate: the first one went out.
    proxy.hold_sends(false);
    outbox.command(OutboxCommand::Retry(key)).await;
    let (event, _) = outbox.outcome(key).await;
    let OutboxEvent::Sent { response, .. } = event else {
        panic!("expected sent: {event:?}");
    };
    assert_eq!(response.id, "", "X's id for it is unknown");
    assert_eq!(
        perch::outbox::response_id_label(&response),
        "id unknown: X's answer was lost"
    );
    assert_eq!(
        world.sim.control().posts().len(),
        1,
        "still exactly one post"
    );
    let stored = app.store.mention(key).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Replied);
    assert_eq!(
        stored.public_response.map(|r| r.text),
        Some(text.to_string())
    );
    let history = app.store.outbox_history(key).unwrap();
    assert_eq!(history.len(), 1, "the retry is the same entry");
    assert_eq!(history[0].state, OutboxState::Sent);
    assert_eq!(history[0].attempts, 2);
    assert_eq!(history[0].response_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_send_refused_as_duplicate_is_not_taken_for_sent() {
    // A saved reply used twice: X refuses the second, which was NOT sent.
    let world = World::start(45).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let first = world.mention(&app, SUPPORT, FOUNDER, "login broken").await;
    let second = world.mention(&app, SUPPORT, BRAND, "login broken?").await;
    let mut outbox = Outbox::spawn(&app.store, app.client.clone(), &app.tokens);
    let canned = "Thanks! We are looking into it.";
    outbox.send(first.key(), ReplyKind::Public, canned).await;
    assert!(matches!(
        outbox.outcome(first.key()).await.0,
        OutboxEvent::Sent { .. }
    ));
    outbox.send(second.key(), ReplyKind::Public, canned).await;
    let (event, _) = outbox.outcome(second.key()).await;
    assert!(
        matches!(&event, OutboxEvent::Failed { message, .. } if message.contains("recently posted exactly this text")),
        "{event:?}"
    );
    assert_eq!(
        app.store.mention(second.key()).unwrap().unwrap().status,
        MentionStatus::Error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_reply_waits_for_the_reset_then_goes_out() {
    let mut config = SimConfig::for_tests(46);
    config.backlog_per_user = 2;
    // One post per 3-second window: the second reply hits 429 with a reset seconds away.
    config.rate_limits.window = Duration::from_secs(3);
    config.rate_limits.create_post = EndpointLimit::per_window(1);
    let world = World::start_with(config).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let a = world.mention(&app, SUPPORT, FOUNDER, "question one").await;
    let b = world.mention(&app, SUPPORT, BRAND, "question two").await;
    let mut outbox = Outbox::spawn(&app.store, app.client.clone(), &app.tokens);
    outbox.send(a.key(), ReplyKind::Public, "answer one").await;
    outbox.send(b.key(), ReplyKind::Public, "answer two").await;
    assert!(matches!(
        outbox.outcome(a.key()).await.0,
        OutboxEvent::Sent { .. }
    ));
    let (event, seen) = outbox.outcome(b.key()).await;
    assert!(matches!(event, OutboxEvent::Sent { .. }), "{event:?}");
    let waited = seen
        .iter()
        .any(|e| matches!(e, OutboxEvent::Waiting { key, .. } if *key == b.key()));
    assert!(waited, "it waited for the reset: {seen:?}");
    let posts = world.sim.control().posts();
    assert_eq!(
        posts.iter().map(|p| p.text.as_str()).collect::<Vec<_>>(),
        ["answer one", "answer two"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_reply_can_be_cancelled_and_is_never_sent() {
    let mut config = SimConfig::for_tests(47);
    config.backlog_per_user = 2;
    config.rate_limits.window = Duration::from_secs(600);
    config.rate_limits.create_post = EndpointLimit::per_window(1);
    let world = World::start_with(config).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let a = world.mention(&app, SUPPORT, FOUNDER, "first").await;
    let b = world.mention(&app, SUPPORT, BRAND, "second").await;
    let mut outbox = Outbox::spawn(&app.store, app.client.clone(), &app.tokens);
    outbox.send(a.key(), ReplyKind::Public, "reply one").await;
    assert!(matches!(
        outbox.outcome(a.key()).await.0,
        OutboxEvent::Sent { .. }
    ));
    outbox.send(b.key(), ReplyKind::Public, "reply two").await;
    // Wait for the 429, then cancel.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(120), outbox.events.recv())
            .await
            .unwrap()
            .unwrap();
        if let OutboxEvent::Waiting { key, until, .. } = event {
            assert_eq!(key, b.key());
            assert!(until > chrono::Utc::now() + chrono::Duration::seconds(60));
            break;
        }
    }
    let entry = app.store.outbox_current(b.key()).unwrap().unwrap();
    assert_eq!(entry.state, OutboxState::Waiting);
    outbox.command(OutboxCommand::Cancel(b.key())).await;
    let (event, _) = outbox.outcome(b.key()).await;
    assert!(matches!(event, OutboxEvent::Cancelled { .. }), "{event:?}");
    let stored = app.store.mention(b.key()).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Pending);
    assert_eq!(
        app.store.draft(b.key()).unwrap().map(|d| d.text),
        Some("reply two".into()),
        "the draft is kept"
    );
    assert_eq!(world.sim.control().posts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_opens_is_a_failure_not_an_unconfirmed_send() {
    let world = World::start(48).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let mention = world.mention(&app, SUPPORT, FOUNDER, "hello?").await;
    // Nothing listens on this port: the request cannot have reached X.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = XClient::new(&format!("http://127.0.0.1:{closed}"));
    let mut outbox = Outbox::spawn(&app.store, client, &app.tokens);
    outbox.send(mention.key(), ReplyKind::Public, "hi!").await;
    let (event, _) = outbox.outcome(mention.key()).await;
    assert!(
        matches!(&event, OutboxEvent::Failed { message, .. } if message.contains("could not reach X")),
        "{event:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_reply_marked_sent_by_the_user_is_replied_with_the_id_unknown() {
    let world = World::start(49).await;
    let proxy = Proxy::start(&world.sim.api_base()).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let mention = world.mention(&app, SUPPORT, FOUNDER, "status?").await;
    let key = mention.key();
    proxy.hold_sends(true);
    let mut outbox = Outbox::spawn(&app.store, impatient_client(&proxy.base), &app.tokens);
    outbox.send(key, ReplyKind::Public, "all green").await;
    assert!(matches!(
        outbox.outcome(key).await.0,
        OutboxEvent::Unconfirmed { .. }
    ));
    outbox.command(OutboxCommand::MarkSent(key)).await;
    let (event, _) = outbox.outcome(key).await;
    let OutboxEvent::Sent { response, .. } = event else {
        panic!("{event:?}");
    };
    assert_eq!(response.id, "");
    assert_eq!(response.text, "all green");
    let stored = app.store.mention(key).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Replied);
    assert!(app.store.outbox_open().unwrap().is_empty());
    assert_eq!(world.sim.control().posts().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_with_only_errors_is_unconfirmed_never_sent() {
    // Issue 10 item 2: such an answer used to mark the mention replied ("X already had it").
    let world = World::start(47).await;
    let app = world.app().await;
    world.login_all(&app).await;
    let mention = world
        .mention(&app, SUPPORT, FOUNDER, &format!("@{SUPPORT} hello?"))
        .await;
    world.sim.control().set_faults(perch::sim::Faults {
        errors_only_sends: true,
        ..perch::sim::Faults::default()
    });
    let mut outbox = Outbox::spawn(&app.store, app.client.clone(), &app.tokens);
    for kind in [ReplyKind::Public, ReplyKind::Dm] {
        outbox.send(mention.key(), kind, "@mara_quill on it").await;
        let (event, _) = outbox.outcome(mention.key()).await;
        match &event {
            OutboxEvent::Unconfirmed { message, .. } => {
                assert!(message.starts_with("unconfirmed: check on X"), "{message}");
                // It says what X returned.
                assert!(message.contains("could not be completed"), "{message}");
                assert!(!message.contains("already had it"), "{message}");
            }
            other => panic!("{kind:?}: expected unconfirmed, got {other:?}"),
        }
        let stored = app.store.mention(mention.key()).unwrap().unwrap();
        assert_ne!(stored.status, MentionStatus::Replied, "{kind:?}");
        let history = app.store.outbox_history(mention.key()).unwrap();
        assert!(
            history.iter().all(|e| e.state != OutboxState::Sent),
            "{history:?}"
        );
        // Resolve the unconfirmed entry as not sent, so the DM can be tried next.
        outbox.command(OutboxCommand::Cancel(mention.key())).await;
        let _ = outbox.outcome(mention.key()).await;
    }
    assert!(world.sim.control().posts().is_empty(), "nothing was posted");
    assert!(world.sim.control().dms().is_empty());
}
