//! Asking the terminal for its background colour (OSC 11), for `[theme] base = "auto"`.
//!
//! The query goes out before anything else reads the terminal's input, and the reply is read
//! here, in raw mode, and consumed: it never reaches the key reader. Behind the OSC 11 query
//! goes a DA1 query (`ESC [ c`), which every terminal answers, in order: once its answer is in,
//! so is the OSC 11 answer if there is one, and a terminal that ignores OSC 11 costs no wait.
//! A terminal that answers neither costs the timeout and nothing else. What is typed during
//! those few milliseconds is read with the replies and dropped.

use std::time::{Duration, Instant};

use crate::ui::palette::Rgb;

/// How long the terminal may take to answer. Local terminals answer within a millisecond or
/// two; over SSH the round trip counts, and an answer later than this is not waited for (it
/// would then reach the key reader as stray keys, which is why the wait is not shorter).
pub const TIMEOUT: Duration = Duration::from_millis(200);

/// OSC 11 "what is your background colour?", then DA1 "what are you?".
const QUERY: &[u8] = b"\x1b]11;?\x07\x1b[c";

/// The most bytes read while waiting: both replies are well under 100 bytes.
const MAX_REPLY: usize = 1024;

/// Asks the terminal on stdout for its background and reads the reply from the terminal's input,
/// for at most `timeout`. `None` when it does not say (or is not a terminal). Raw mode must be on
/// (the reply is not a line), and nothing else may be reading the input yet.
pub fn query(timeout: Duration) -> Option<Rgb> {
    #[cfg(unix)]
    {
        let reply = unix::exchange(QUERY, timeout, MAX_REPLY).ok()?;
        parse_reply(&reply)
    }
    #[cfg(not(unix))]
    {
        let _ = timeout;
        None
    }
}

/// The background colour in a terminal's reply to [`QUERY`]: `ESC ] 11 ; rgb:RRRR/GGGG/BBBB`
/// ended by BEL or ST (`ESC \`), each channel 1 to 4 hex digits (scaled to 8 bits). Anything
/// else around it (the DA1 answer, keys typed meanwhile) is ignored; garbage, a cut-off reply or
/// a malformed one give `None`.
pub fn parse_reply(reply: &[u8]) -> Option<Rgb> {
    const START: &[u8] = b"\x1b]11;";
    let at = reply.windows(START.len()).position(|w| w == START)?;
    let body = &reply[at + START.len()..];
    // The body ends at BEL or ESC (the start of ST); one without an end is cut off.
    let end = body.iter().position(|&b| b == 0x07 || b == 0x1b)?;
    let body = std::str::from_utf8(&body[..end]).ok()?;
    let channels = body
        .strip_prefix("rgb:")
        .or_else(|| body.strip_prefix("rgba:"))?;
    let mut parts = channels.split('/');
    let mut channel = || -> Option<u8> {
        let hex = parts.next()?;
        if hex.is_empty() || hex.len() > 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let value = u32::from_str_radix(hex, 16).ok()?;
        let max = (1u32 << (4 * hex.len())) - 1;
        u8::try_from((value * 255 + max / 2) / max).ok()
    };
    let rgb = (channel()?, channel()?, channel()?);
    Some(rgb)
}

/// Whether `reply` holds the DA1 answer (`ESC [ ?` ... `c`), the last thing the terminal sends.
fn has_da1_answer(reply: &[u8]) -> bool {
    let mut rest = reply;
    while let Some(at) = rest.windows(3).position(|w| w == b"\x1b[?") {
        let after = &rest[at + 3..];
        match after
            .iter()
            .position(|b| !(b.is_ascii_digit() || *b == b';'))
        {
            Some(i) if after[i] == b'c' => return true,
            Some(i) => rest = &after[i..],
            None => return false,
        }
    }
    false
}

#[cfg(unix)]
mod unix {
    use std::io::Write as _;
    use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

    use super::*;

    /// Writes `query` to stdout and reads what comes back on the terminal until the DA1 answer,
    /// `max` bytes or `timeout`, whichever is first.
    pub(super) fn exchange(
        query: &[u8],
        timeout: Duration,
        max: usize,
    ) -> std::io::Result<Vec<u8>> {
        // The terminal's input: stdin when it is one, else the controlling terminal (as
        // crossterm reads it).
        let stdin = std::io::stdin();
        let tty;
        let fd: BorrowedFd<'_> = if std::io::IsTerminal::is_terminal(&stdin) {
            stdin.as_fd()
        } else {
            tty = std::fs::File::open("/dev/tty")?;
            tty.as_fd()
        };
        let mut out = std::io::stdout();
        out.write_all(query)?;
        out.flush()?;
        let deadline = Instant::now() + timeout;
        let mut reply = Vec::with_capacity(128);
        let mut chunk = [0u8; 256];
        while reply.len() < max && !has_da1_answer(&reply) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match readable(fd, left) {
                Ok(true) => {}
                Ok(false) => break,
                // A signal (a resize): wait again, for what is left of the time.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let n = read(fd, &mut chunk)?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&chunk[..n.min(max - reply.len())]);
        }
        Ok(reply)
    }

    /// Waits up to `timeout` for `fd` to have input (`Interrupted` when a signal came first).
    fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> std::io::Result<bool> {
        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, for the duration of the call.
        let n = unsafe { libc::poll(&mut poll, 1, millis) };
        match n {
            n if n < 0 => Err(std::io::Error::last_os_error()),
            0 => Ok(false),
            _ => Ok(poll.revents & libc::POLLIN != 0),
        }
    }

    fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: `buf` is valid for `buf.len()` bytes and the fd is open (borrowed).
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_of_real_terminals_are_read() {
        // xterm, 16 bits a channel, BEL-terminated, then its DA1 answer.
        assert_eq!(
            parse_reply(b"\x1b]11;rgb:ffff/ffff/dddd\x07\x1b[?64;1;2;6;9;15;18;21;22c"),
            Some((255, 255, 221))
        );
        // ST-terminated, 8 bits a channel (some terminals), 4 bits, 12 bits.
        assert_eq!(
            parse_reply(b"\x1b]11;rgb:28/2c/34\x1b\\"),
            Some((0x28, 0x2c, 0x34))
        );
        assert_eq!(parse_reply(b"\x1b]11;rgb:f/0/8\x07"), Some((255, 0, 136)));
        assert_eq!(
            parse_reply(b"\x1b]11;rgb:fff/000/800\x07"),
            Some((255, 0, 128))
        );
        assert_eq!(
            parse_reply(b"\x1b]11;rgba:0000/2b2b/3636/ffff\x07"),
            Some((0, 0x2b, 0x36))
        );
        // Keys typed before the reply are skipped.
        assert_eq!(
            parse_reply(b"jjk\x1b]11;rgb:0000/0000/0000\x07"),
            Some((0, 0, 0))
        );
    }

    #[test]
    fn garbage_partial_and_hostile_replies_give_nothing() {
        for reply in [
            &b""[..],
            b"\x1b[?62;c",                             // DA1 only: OSC 11 unsupported
            b"\x1b]11;rgb:ffff/ffff",                  // cut off
            b"\x1b]11;rgb:ffff/ffff/ffff",             // no terminator yet
            b"\x1b]11;rgb:ffff/ffff\x07",              // two channels
            b"\x1b]11;rgb:fffff/0/0\x07",              // five digits
            b"\x1b]11;rgb:+fff/0/0\x07",               // a sign
            b"\x1b]11;rgb:zz/00/00\x07",               // not hex
            b"\x1b]11;rgb://\x07",                     // empty channels
            b"\x1b]11;#ffffff\x07",                    // not the rgb: form
            b"\x1b]11;rgb:\xff\xfe/00/00\x07",         // not UTF-8
            b"\x1b]10;rgb:ffff/ffff/ffff\x07",         // the foreground, not the background
            b"\x1b]11;rgb:\xc3\xa9\xc3\xa9/00/00\x07", // multi-byte characters
        ] {
            assert_eq!(parse_reply(reply), None, "{reply:?}");
        }
        // Whatever the bytes, no panic.
        let mut noise = Vec::new();
        for i in 0..4096u32 {
            noise.push((i.wrapping_mul(2_654_435_761) >> 13) as u8);
            let _ = parse_reply(&noise);
            let _ = has_da1_answer(&noise);
        }
    }

    #[test]
    fn the_da1_answer_ends_the_wait() {
        assert!(has_da1_answer(b"\x1b]11;rgb:0/0/0\x07\x1b[?62;22c"));
        assert!(has_da1_answer(b"\x1b[?1;2c"));
        assert!(!has_da1_answer(b"\x1b[?1;2"));
        assert!(!has_da1_answer(b"\x1b[?1;2R\x1b[?"));
        assert!(has_da1_answer(b"\x1b[?1;2R\x1b[?6c"));
    }
}
