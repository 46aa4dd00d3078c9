//! End to end (issue 10, item 6): a paste into the composer of the real `perch` binary in a
//! pseudo-terminal. The dashboard turns bracketed paste on (and off again on quit), so a paste of
//! a 2 000-character word arrives as one event; its length is measured off the key path (exactly:
//! it is under ten times the limit) while typed keys keep being answered; and a 100 000-character
//! word is shown as `>2800/280` at once, without a parse.

#[path = "support/pty.rs"]
mod pty;

use std::time::Duration;

use pty::Perch;

const PATIENCE: Duration = Duration::from_secs(120);

/// The composer's exact counter ("231/280"), if the screen shows one.
fn counter(screen: &str) -> Option<usize> {
    let end = screen.find("/280 ")?;
    let digits: String = screen[..end]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let before = screen[..end].chars().rev().nth(digits.len())?;
    (before == ' ').then(|| digits.parse().ok())?
}

fn paste(perch: &mut Perch, text: &str) {
    let mut bytes = b"\x1b[200~".to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(b"\x1b[201~");
    perch.send(&bytes);
}

#[test]
fn a_long_paste_is_one_event_measured_off_the_key_path_and_far_over_reads_over() {
    let mut perch = Perch::start(&["--demo"], None);
    {
        perch
            .screen
            .wait_for("mentions", PATIENCE, |s| s.contains("pending"));
        assert!(
            perch.screen.bracketed_paste(),
            "the dashboard turns bracketed paste on"
        );

        perch.send(b"r");
        let opened = perch.screen.wait_for("the composer", PATIENCE, |s| {
            s.contains("replying as") && counter(s).is_some()
        });
        // The `@sender ` prefill is counted too.
        let prefill = counter(&opened).unwrap();

        // 2 000 characters without a space: twitter-text's quadratic case, exact under 2 800.
        paste(&mut perch, &"a.".repeat(1000));
        // Typed keys are answered while it is being measured.
        perch.send(b" ok");
        perch.screen.wait_for(
            "the exact length of the paste and the typed keys",
            PATIENCE,
            |s| counter(s) == Some(prefill + 2003),
        );

        // Far over the limit: over at once, without a parse.
        paste(&mut perch, &"b.".repeat(50_000));
        perch
            .screen
            .wait_for("the bounded count", PATIENCE, |s| s.contains(">2800/280"));

        perch.send(b"\x1b"); // Esc: close, keep the draft
        std::thread::sleep(Duration::from_millis(500));
        let status = perch.quit();
        assert!(status.success(), "perch exited with {status:?}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !perch.screen.bracketed_paste(),
            "bracketed paste is off again after quitting"
        );
    }
}
