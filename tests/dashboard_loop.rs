//! The whole dashboard loop (`dashboard::run`, the one the terminal runs) on ratatui's
//! `TestBackend`, against a real perch service over its socket: mentions polled by the service
//! reach the screen, a key press triages through the service, a new mention on the simulator is
//! pushed to the screen, a restart of the service shows "reconnecting…" and keeps the open draft,
//! and `q` ends the loop. No copy of the executor lives here: the loop under test is the real one.

#[path = "support/sim_env.rs"]
mod sim_env;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent};
use perch::app::{Action, AppState};
use perch::cli::{App, add_sim_accounts};
use perch::client::Link;
use perch::dashboard::{self, DashboardContext, Screen};
use perch::domain::MentionStatus;
use perch::sim::{self, SimConfig};
use perch::store::FeedFilter;
use perch::ui::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

const PATIENCE: Duration = Duration::from_secs(60);

/// The test's screen: ratatui's test backend, its text kept for the test to read.
struct TestScreen {
    terminal: Terminal<TestBackend>,
    shown: Arc<Mutex<String>>,
}

impl Screen for TestScreen {
    fn size(&mut self) -> anyhow::Result<(u16, u16)> {
        let area = self.terminal.size()?;
        Ok((area.width, area.height))
    }
    fn draw(&mut self, state: &AppState, theme: &Theme, now: DateTime<Utc>) -> anyhow::Result<()> {
        self.terminal
            .draw(|frame| perch::ui::draw(frame, state, theme, now))?;
        let buffer = self.terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            for x in 0..buffer.area.width {
                text.push_str(buffer[(x, y)].symbol());
            }
            text.push('\n');
        }
        *self.shown.lock().unwrap() = text;
        Ok(())
    }
    fn edit_externally(&mut self, _draft: &str) -> Result<String, String> {
        Err("no editor in tests".into())
    }
    fn copy_to_clipboard(&mut self, _text: &str) -> std::io::Result<()> {
        Ok(())
    }
}

fn key(c: char) -> Action {
    Action::Key {
        key: KeyEvent::from(KeyCode::Char(c)),
        seen: None,
    }
}

async fn wait_for(shown: &Mutex<String>, what: &str, check: impl Fn(&str) -> bool) {
    let start = Instant::now();
    loop {
        let text = shown.lock().unwrap().clone();
        if check(&text) {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for {what}; the screen:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_loop_runs_against_a_real_service_and_survives_its_restart() {
    let sim = sim::start(SimConfig::for_tests(31), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = sim_env::config(&sim, dir.path(), &[("PERCH_POLL_INTERVAL", "1")]);
    let app = App::open(&config).await.unwrap();
    add_sim_accounts(&app, &["mara_quill".to_string()])
        .await
        .unwrap();
    let service = perch::service::start(config.clone(), Some(app.store.clone()))
        .await
        .unwrap();
    let socket = service.paths.socket.clone();
    let (link, incoming) = {
        let socket = socket.clone();
        let pricing = config.pricing.clone();
        tokio::task::spawn_blocking(move || {
            Link::connect(
                perch::client::Endpoint::Socket(socket.to_path_buf()),
                pricing,
                None,
            )
        })
        .await
        .unwrap()
        .unwrap()
    };
    let (input, input_rx) = mpsc::channel(64);
    let shown = Arc::new(Mutex::new(String::new()));
    let mut screen = TestScreen {
        terminal: Terminal::new(TestBackend::new(140, 30)).unwrap(),
        shown: shown.clone(),
    };
    let ctx = DashboardContext {
        connection: link.clone(),
        incoming,
        input: input_rx,
        config: config.clone(),
        banner: None,
    };
    let dashboard = tokio::spawn(async move { dashboard::run(&mut screen, ctx).await });

    // The service polled; the loop read the feed through it.
    wait_for(&shown, "the account and its mentions", |s| {
        s.contains("@mara_quill") && s.contains("pending")
    })
    .await;

    // `i` on the selected mention: the change is made by the service, in its store.
    input.send(key('i')).await.unwrap();
    let ignored = FeedFilter {
        account: None,
        status: Some(MentionStatus::Ignored),
    };
    let start = Instant::now();
    while service.hub.store.count(&ignored).unwrap() != 1 {
        assert!(
            start.elapsed() < PATIENCE,
            "the ignore never reached the store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A new mention on the simulator: polled by the service, pushed to the loop, drawn.
    sim.control()
        .inject_mention("mara_quill", None, "pushed through the service socket")
        .unwrap();
    wait_for(&shown, "the new mention", |s| s.contains("pushed through")).await;

    // Open the composer and type a draft, then restart the service under the dashboard.
    input.send(key('r')).await.unwrap();
    for c in "draft kept".chars() {
        input.send(key(c)).await.unwrap();
    }
    wait_for(&shown, "the draft in the composer", |s| {
        s.contains("draft kept")
    })
    .await;
    service.shutdown().await;
    wait_for(&shown, "reconnecting…", |s| s.contains("reconnecting")).await;
    let service = perch::service::start(config.clone(), Some(app.store.clone()))
        .await
        .unwrap();
    // Back: reads work again (the new mention count comes through) and the draft is still open.
    let start = Instant::now();
    while perch::app::FeedSource::count(&*link, &FeedFilter::default()).is_err() {
        assert!(
            start.elapsed() < PATIENCE,
            "the dashboard never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for(&shown, "the draft after the restart", |s| {
        s.contains("draft kept") && s.contains("reconnected to the perch service")
    })
    .await;

    // Esc closes the composer (its draft is saved), q quits at once.
    input
        .send(Action::Key {
            key: KeyEvent::from(KeyCode::Esc),
            seen: None,
        })
        .await
        .unwrap();
    input.send(key('q')).await.unwrap();
    let ended = tokio::time::timeout(PATIENCE, dashboard)
        .await
        .expect("q ends the loop");
    ended.unwrap().expect("the loop ends cleanly");
    link.close();
    service.shutdown().await;
    sim.shutdown().await;
}
