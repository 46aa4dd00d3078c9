//! End to end: the real `perch` binary, in a pseudo-terminal, attached with `--connect` to a
//! service running elsewhere (here: in this test, with `api_listen` on loopback) as a team
//! person (issue 16). The dashboard opens on the remote service's feed, says where it is
//! connected, its composer shows the owner "ben is replying" live, and `q` quits. And the
//! refusals a person meets first: plain http:// to another machine, and commands.

#[path = "support/pty.rs"]
mod pty;
#[path = "support/sim_env.rs"]
mod sim_env;
#[path = "support/api.rs"]
mod support;

use std::time::{Duration, Instant};

use perch::client::{Endpoint, Incoming, Link};
use perch::domain::{Person, Role, TeamEvent};
use perch::service::ServiceEvent;
use pty::Perch;
use support::ApiWorld;

#[test]
fn a_dashboard_attached_with_connect_is_its_person_and_the_owner_sees_it_replying() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let world = runtime.block_on(ApiWorld::start(1801));
    runtime.block_on(world.fetch_all());
    let token = perch::service::token::new_person_token();
    world
        .hub()
        .store
        .add_person(&Person {
            name: "ben".to_string(),
            role: Role::Admin,
            token_hash: perch::service::token::hash(token.expose()),
            grants: Default::default(),
            created_at: chrono::Utc::now(),
        })
        .unwrap();
    // The owner's dashboard, on the service's socket.
    let (owner, mut owner_events) = Link::connect(
        Endpoint::Socket(world.socket.clone()),
        perch::costs::Pricing::default(),
        None,
    )
    .unwrap();

    let url = format!("http://{}", world.tcp);
    let mut perch = Perch::start_with_env(
        &["--connect", &url],
        None,
        &[("PERCH_API_TOKEN", token.expose())],
    );
    // The status bar's right end says where it is connected (cut to the room left at 120
    // columns).
    perch
        .screen
        .wait_for("the remote feed", Duration::from_secs(90), |s| {
            s.contains("pending") && s.contains("remote 127.0.0")
        });

    // Ben opens the composer on the selected mention: the owner hears it.
    perch.send(b"r");
    let deadline = Instant::now() + Duration::from_secs(60);
    let heard = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match runtime.block_on(async { tokio::time::timeout(left, owner_events.recv()).await }) {
            Ok(Some(Incoming::Event(event))) => {
                if let ServiceEvent::Team(TeamEvent::Replying {
                    person, replying, ..
                }) = *event
                    && replying
                {
                    break person;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!(
                "the owner never heard ben replying; ben's screen:\n{}",
                perch.screen.contents()
            ),
        }
    };
    assert_eq!(heard, "ben");
    perch.send(b"\x1b");
    std::thread::sleep(Duration::from_millis(300));
    let status = perch.quit();
    assert!(status.success(), "perch exited with {status:?}");
    owner.close();
    runtime.block_on(world.stop());
}

#[test]
fn connect_refuses_plain_http_to_another_machine_and_commands_with_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_perch"))
            .args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join("config"))
            .env("XDG_DATA_HOME", home.path().join("data"))
            .env("XDG_STATE_HOME", home.path().join("state"))
            .env("PERCH_CONFIG", &config)
            .env("PERCH_API_TOKEN", "perch_p_secret-token-value")
            .env_remove("PERCH_CONNECT")
            .output()
            .unwrap()
    };
    let out = run(&["--connect", "http://perch.example.com"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("in the clear") && stderr.contains("https://"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-token-value"), "{stderr}");

    let out = run(&["--connect", "https://perch.example.com", "mentions", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("REST API") && stderr.contains("PERCH_API_TOKEN"),
        "{stderr}"
    );
}
