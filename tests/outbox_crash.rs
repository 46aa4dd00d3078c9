//! The process is killed between `sending` and X's answer, then started again: X has exactly one
//! post, perch shows the reply as unconfirmed and never sends it by itself, and running the same
//! `perch reply` again (the script's retry) is told by X that the text is a duplicate, which perch
//! records as already sent. The real `perch` binary, a real simulator, `kill -9`.

#[path = "support/outbox.rs"]
mod support;

use perch::domain::MentionStatus;
use perch::outbox::OutboxState;
use perch::store::Store;
use support::{FOUNDER, Proxy, SUPPORT, World, eventually, perch, perch_args, run, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_sending_leaves_one_post_and_an_unconfirmed_entry_never_resent() {
    let world = World::start(61).await;
    let proxy = Proxy::start(&world.sim.api_base()).await;
    let mention = {
        let app = world.app().await;
        world.login_all(&app).await;
        let m = world
            .mention(&app, SUPPORT, FOUNDER, "my invoice is wrong")
            .await;
        app.store.flush().unwrap();
        m
        // `app` (and with it the store's lock) is dropped here: the binary needs the store.
    };
    let key = mention.key();
    let reply = "@mara_quill sorry! a corrected invoice is on its way";

    // The post reaches X; X's answer is held back, so perch waits with the entry `sending`.
    proxy.hold_sends(true);
    let mut child = perch(&world, &proxy.base)
        .args(["reply", &mention.tweet_id, reply])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("perch binary starts");
    let control = world.sim.control();
    eventually("X has the post and perch waits for the answer", || {
        control.posts().len() == 1 && proxy.held() == 1
    })
    .await;
    child.kill().expect("kill -9 perch");
    let _ = child.wait();

    // What the dead process left: the entry was committed `sending` before the request left.
    {
        let store = Store::open(&world.data_dir()).expect("store opens after the kill");
        let entry = store.outbox_current(key).unwrap().expect("an outbox entry");
        assert_eq!(entry.state, OutboxState::Sending);
        assert_eq!(entry.text, reply);
        assert_eq!(
            store.mention(key).unwrap().unwrap().status,
            MentionStatus::Processing
        );
    }

    // Restart (a new process): the entry reads as unconfirmed and nothing is sent.
    let listed = run(
        perch_args(
            &world,
            &world.sim.api_base(),
            &["mentions", "list", "--json"],
        ),
        None,
    )
    .await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let row = json["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tweet_id"] == mention.tweet_id.as_str())
        .expect("the mention is listed")
        .clone();
    assert_eq!(row["outbox"]["state"], "unconfirmed", "{row}");
    assert_eq!(row["status"], "error");
    assert!(
        row["error_message"]
            .as_str()
            .unwrap()
            .starts_with("unconfirmed: check on X"),
        "{row}"
    );
    let posts_sent = |c: &perch::sim::SimControl| {
        c.request_log()
            .iter()
            .filter(|r| r.method == "POST" && r.path == "/2/tweets")
            .count()
    };
    assert_eq!(control.posts().len(), 1, "exactly one post on X");
    assert_eq!(posts_sent(&control), 1, "perch did not send it again");

    // A new, different reply is refused while the first is unresolved.
    let refused = run(
        perch_args(
            &world,
            &world.sim.api_base(),
            &["reply", &mention.tweet_id, "other words"],
        ),
        None,
    )
    .await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("unconfirmed"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(posts_sent(&control), 1);

    // The script runs the same command again: X says duplicate, so the first one went out.
    let retried = run(
        perch_args(
            &world,
            &world.sim.api_base(),
            &["reply", &mention.tweet_id, reply],
        ),
        None,
    )
    .await;
    assert!(retried.status.success(), "{}", text(&retried.stderr));
    assert!(
        text(&retried.stdout).contains("X already had it"),
        "{}",
        text(&retried.stdout)
    );
    assert_eq!(control.posts().len(), 1, "still exactly one post");
    assert_eq!(posts_sent(&control), 2, "one retry, refused as a duplicate");

    let store = Store::open(&world.data_dir()).unwrap();
    let stored = store.mention(key).unwrap().unwrap();
    assert_eq!(stored.status, MentionStatus::Replied);
    let response = stored.public_response.expect("the reply is recorded");
    assert_eq!(response.id, "", "X's id for it is unknown");
    assert_eq!(response.text, reply);
    assert!(store.outbox_open().unwrap().is_empty());
}
