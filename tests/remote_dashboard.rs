//! A dashboard attached to a service elsewhere (`--connect`, issue 16): over real TCP to a
//! running service's `api_listen`, with a team person's token. It is that person: the owner's
//! dashboard (on the Unix socket) sees them replying live, and they see the owner's assignment
//! to them live. A wrong token and a member's token are refused with the service's reason.

#[path = "support/sim_env.rs"]
mod sim_env;
#[path = "support/api.rs"]
mod support;

use std::time::{Duration, Instant};

use perch::app::{FeedSource, StoreWrites};
use perch::client::session::Connection;
use perch::client::{Endpoint, Incoming, Link};
use perch::domain::{Person, Role, Secret, TeamEvent};
use perch::service::ServiceEvent;
use perch::store::FeedFilter;
use support::{ApiWorld, SUPPORT};
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(60);

/// Adds a person (as `perch team add` does) and returns their token.
fn add_person(world: &ApiWorld, name: &str, role: Role) -> String {
    let token = perch::service::token::new_person_token();
    world
        .hub()
        .store
        .add_person(&Person {
            name: name.to_string(),
            role,
            token_hash: perch::service::token::hash(token.expose()),
            grants: Default::default(),
            created_at: chrono::Utc::now(),
        })
        .unwrap();
    token.expose().to_string()
}

async fn connect(
    endpoint: Endpoint,
) -> std::io::Result<(std::sync::Arc<Link>, mpsc::Receiver<Incoming>)> {
    tokio::task::spawn_blocking(move || {
        Link::connect(endpoint, perch::costs::Pricing::default(), None)
    })
    .await
    .unwrap()
}

fn remote(world: &ApiWorld, token: &str) -> Endpoint {
    Endpoint::remote(
        &format!("http://{}", world.tcp),
        Some(Secret::new(token)),
        None,
    )
    .unwrap()
}

/// Waits for a team event that `wanted` accepts.
async fn hear(
    incoming: &mut mpsc::Receiver<Incoming>,
    what: &str,
    wanted: impl Fn(&TeamEvent) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, incoming.recv()).await {
            Ok(Some(Incoming::Event(event))) => {
                if let ServiceEvent::Team(e) = *event
                    && wanted(&e)
                {
                    return;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the session ended before {what}"),
            Err(_) => panic!("{what} was not heard within {PATIENCE:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_dashboard_is_its_person_and_two_dashboards_see_each_other_live() {
    let world = ApiWorld::start(1701).await;
    world
        .sim
        .control()
        .inject_mention(SUPPORT, None, "is anyone there?")
        .unwrap();
    world.fetch_all().await;
    let ben_token = add_person(&world, "ben", Role::Admin);

    let (owner, mut owner_events) = connect(Endpoint::Socket(world.socket.clone()))
        .await
        .unwrap();
    let (ben, mut ben_events) = connect(remote(&world, &ben_token)).await.unwrap();

    // Ben reads the same feed over TCP as the owner over the socket.
    let (o, b) = (owner.clone(), ben.clone());
    let (owner_count, ben_count, key) = tokio::task::spawn_blocking(move || {
        let all = FeedFilter::default();
        let page = b.end_page(&all, true, 1).unwrap();
        (
            o.count(&all).unwrap(),
            b.count(&all).unwrap(),
            page.0[0].key(),
        )
    })
    .await
    .unwrap();
    assert!(owner_count > 0);
    assert_eq!(owner_count, ben_count);

    // Ben opens the composer: the owner's dashboard hears "ben is replying".
    let b = ben.clone();
    tokio::task::spawn_blocking(move || b.presence(key, true).unwrap())
        .await
        .unwrap();
    hear(&mut owner_events, "ben replying", |e| {
        matches!(e, TeamEvent::Replying { key: k, person, replying: true, .. } if *k == key && person == "ben")
    })
    .await;

    // The owner assigns the mention to ben: ben's dashboard hears it, made by the owner.
    let o = owner.clone();
    let handle = format!("@{SUPPORT}");
    tokio::task::spawn_blocking(move || o.assign(key, &handle, Some("ben")).unwrap().unwrap())
        .await
        .unwrap();
    hear(&mut ben_events, "the assignment", |e| {
        matches!(e, TeamEvent::Assigned { key: k, assigned_to: Some(to), by, .. } if *k == key && to == "ben" && by == "owner")
    })
    .await;

    // Ben ignores the mention: `u` is his to undo, not the owner's (who did not do it).
    let (o, b) = (owner.clone(), ben.clone());
    tokio::task::spawn_blocking(move || {
        assert_eq!(
            b.triage(900, &[key], perch::domain::MentionStatus::Ignored)
                .unwrap(),
            1
        );
        assert_eq!(
            o.last_undo_action().unwrap(),
            None,
            "the owner has nothing to undo"
        );
        assert_eq!(o.undo_step(None).unwrap(), None);
        let refused = o.undo_step(Some(900)).unwrap_err().to_string();
        assert!(refused.contains("ben's"), "{refused}");
        let mine = b.last_undo_action().unwrap().unwrap();
        assert_eq!((mine.id, mine.person()), (900, "ben"));
        let step = b.undo_step(None).unwrap().unwrap();
        assert_eq!((step.restored, step.done), (1, true));
    })
    .await
    .unwrap();

    // Ben closes the composer: the owner hears that too.
    let b = ben.clone();
    tokio::task::spawn_blocking(move || b.presence(key, false).unwrap())
        .await
        .unwrap();
    hear(
        &mut owner_events,
        "ben stopped replying",
        |e| matches!(e, TeamEvent::Replying { person, replying: false, .. } if person == "ben"),
    )
    .await;

    ben.close();
    owner.close();
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_and_a_members_token_are_refused_with_the_services_reason() {
    let world = ApiWorld::start(1702).await;
    let wrong = match connect(remote(&world, "perch_p_not-a-token")).await {
        Ok(_) => panic!("a wrong token must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(wrong.contains("401"), "{wrong}");
    assert!(
        !wrong.contains("not-a-token"),
        "the token is never echoed: {wrong}"
    );

    let member = add_person(&world, "ana", Role::Member);
    let refused = match connect(remote(&world, &member)).await {
        Ok(_) => panic!("a member's dashboard session must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(
        refused.contains("403") && refused.contains("member"),
        "{refused}"
    );
    world.stop().await;
}

/// A TLS-terminating reverse proxy in front of `backend`, with a certificate for `localhost`
/// made for the test; returns its port and the certificate's PEM (the "team CA").
async fn tls_proxy(backend: std::net::SocketAddr) -> (u16, String) {
    use tokio_rustls::rustls;
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert_pem = made.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![made.cert.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (port, cert_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_through_a_reverse_proxy_the_certificate_is_verified_against_the_team_ca() {
    let world = ApiWorld::start(1703).await;
    world.fetch_all().await;
    let ben = add_person(&world, "ben", Role::Admin);
    let (port, ca_pem) = tls_proxy(world.tcp).await;
    let url = format!("https://localhost:{port}");

    // Not trusted: a self-signed proxy without PERCH_CA_FILE is refused, and says why.
    let untrusted = Endpoint::remote(&url, Some(Secret::new(&ben)), None).unwrap();
    let refused = match connect(untrusted).await {
        Ok(_) => panic!("an unknown certificate must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");

    // The team's CA, but the certificate is for localhost, not 127.0.0.1: the name is checked.
    let ca = world.dir.path().join("team-ca.pem");
    std::fs::write(&ca, &ca_pem).unwrap();
    let other_name = format!("https://127.0.0.1:{port}");
    let wrong_name = Endpoint::remote(&other_name, Some(Secret::new(&ben)), Some(&ca)).unwrap();
    let refused = match connect(wrong_name).await {
        Ok(_) => panic!("a certificate for another name must be refused"),
        Err(e) => e.to_string(),
    };
    assert!(refused.to_lowercase().contains("certificate"), "{refused}");

    // With the team's CA: the session works, as ben.
    let trusted = Endpoint::remote(&url, Some(Secret::new(&ben)), Some(&ca)).unwrap();
    let (link, _events) = connect(trusted).await.unwrap();
    let l = link.clone();
    let count = tokio::task::spawn_blocking(move || l.count(&FeedFilter::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(
        count,
        world.hub().store.count(&FeedFilter::default()).unwrap()
    );
    link.close();
    world.stop().await;
}

#[test]
fn connect_urls_and_tokens_are_checked_before_anything_is_sent() {
    let token = || Some(Secret::new("perch_p_x"));
    for (url, says) in [
        ("ftp://example.com", "scheme"),
        ("https://user:pw@example.com", "no user or password"),
        ("not a url", "not a URL"),
        ("http://perch.example.com", "in the clear"),
        ("http://10.0.0.5:8080", "in the clear"),
    ] {
        match Endpoint::remote(url, token(), None) {
            Ok(_) => panic!("{url} must be refused"),
            Err(e) => assert!(e.contains(says), "{url}: {e}"),
        }
    }
    match Endpoint::remote("https://example.com", None, None) {
        Ok(_) => panic!("no token must be refused"),
        Err(e) => assert!(e.contains("PERCH_API_TOKEN"), "{e}"),
    }
    let endpoint = Endpoint::remote("https://example.com", token(), None).unwrap();
    assert!(
        !format!("{endpoint:?}").contains("perch_p_x"),
        "no token in Debug"
    );
    assert_eq!(
        endpoint.describe(),
        "the perch service at https://example.com:443"
    );
    assert_eq!(endpoint.address().as_deref(), Some("example.com"));
    let tunnel = Endpoint::remote("http://127.0.0.1:8080", token(), None).unwrap();
    assert_eq!(tunnel.address().as_deref(), Some("127.0.0.1:8080"));
}
