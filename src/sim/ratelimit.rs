//! Rate limits per (access token, endpoint), as CONTRACT.md §6 describes: a 15-minute window that
//! starts at the first request and resets 900 s later, plus an optional 24-hour cap reported in
//! the undocumented `x-user-limit-24hour-*` headers.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The limit of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointLimit {
    /// Requests allowed per window (`x-rate-limit-limit`).
    pub per_window: u32,
    /// Requests allowed per 24 hours (`x-user-limit-24hour-limit`), when the endpoint has such a cap.
    pub per_day: Option<u32>,
}

impl EndpointLimit {
    pub const fn per_window(n: u32) -> EndpointLimit {
        EndpointLimit {
            per_window: n,
            per_day: None,
        }
    }
}

/// Limits for the four endpoints perch uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateLimitProfile {
    /// Length of the short window (X: 15 minutes).
    pub window: Duration,
    pub users_me: EndpointLimit,
    pub mentions: EndpointLimit,
    pub create_post: EndpointLimit,
    pub send_dm: EndpointLimit,
}

impl RateLimitProfile {
    /// Pay-per-use figures from the current docs (CONTRACT.md §6): users/me 75, mentions 300,
    /// posts 100 per 15 min; DMs 15 per 15 min and 1,440 per 24 h, per user.
    pub fn pay_per_use() -> RateLimitProfile {
        RateLimitProfile {
            window: Duration::from_secs(15 * 60),
            users_me: EndpointLimit::per_window(75),
            mentions: EndpointLimit::per_window(300),
            create_post: EndpointLimit::per_window(100),
            send_dm: EndpointLimit {
                per_window: 15,
                per_day: Some(1440),
            },
        }
    }

    /// The old Basic tier (docs rev 7c59f7be): mentions 10 per 15 min, posts 100 per 24 h,
    /// users/me 250 per 24 h, one DM per 24 h. Tight enough to exercise a client's budgeting.
    pub fn basic() -> RateLimitProfile {
        RateLimitProfile {
            window: Duration::from_secs(15 * 60),
            users_me: EndpointLimit {
                per_window: 250,
                per_day: Some(250),
            },
            mentions: EndpointLimit::per_window(10),
            create_post: EndpointLimit {
                per_window: 100,
                per_day: Some(100),
            },
            send_dm: EndpointLimit {
                per_window: 1,
                per_day: Some(1),
            },
        }
    }

    pub(crate) fn limit(&self, endpoint: Endpoint) -> EndpointLimit {
        match endpoint {
            Endpoint::UsersMe => self.users_me,
            Endpoint::Mentions => self.mentions,
            Endpoint::CreatePost => self.create_post,
            Endpoint::SendDm => self.send_dm,
        }
    }
}

impl Default for RateLimitProfile {
    fn default() -> Self {
        RateLimitProfile::pay_per_use()
    }
}

/// The resource endpoints the simulator serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Endpoint {
    UsersMe,
    Mentions,
    CreatePost,
    SendDm,
}

impl Endpoint {
    /// Which endpoint a request is for, from its method and path.
    pub fn classify(method: &axum::http::Method, path: &str) -> Option<Endpoint> {
        use axum::http::Method;
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["", "2", "users", "me"]) => Some(Endpoint::UsersMe),
            (&Method::GET, ["", "2", "users", _, "mentions"]) => Some(Endpoint::Mentions),
            (&Method::POST, ["", "2", "tweets"]) => Some(Endpoint::CreatePost),
            (&Method::POST, ["", "2", "dm_conversations", "with", _, "messages"]) => {
                Some(Endpoint::SendDm)
            }
            _ => None,
        }
    }

    /// OAuth 2.0 scopes the endpoint requires (CONTRACT.md §1.8; DMs also need `dm.read`, as the
    /// docs and observed behaviour say).
    pub fn required_scopes(self) -> &'static [&'static str] {
        match self {
            Endpoint::UsersMe | Endpoint::Mentions => &["tweet.read", "users.read"],
            Endpoint::CreatePost => &["tweet.read", "tweet.write", "users.read"],
            Endpoint::SendDm => &["dm.read", "dm.write", "tweet.read", "users.read"],
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: DateTime<Utc>,
    used: u32,
}

/// The counts behind one answer's headers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub limit: u32,
    pub remaining: u32,
    pub reset_epoch: i64,
    /// (limit, remaining, reset) of the 24-hour cap, when the endpoint has one.
    pub daily: Option<(u32, u32, i64)>,
    /// Whether this request was refused (429).
    pub exhausted: bool,
}

#[derive(Default)]
pub(crate) struct RateLimiter {
    short: HashMap<(String, Endpoint), Window>,
    daily: HashMap<(String, Endpoint), Window>,
}

const DAY: Duration = Duration::from_secs(24 * 3600);

impl RateLimiter {
    /// Counts one request by `token` to `endpoint` at `now`, or refuses it when a window is spent.
    /// A refused request does not use up anything further.
    pub fn take(
        &mut self,
        token: &str,
        endpoint: Endpoint,
        now: DateTime<Utc>,
        profile: &RateLimitProfile,
    ) -> Budget {
        let limit = profile.limit(endpoint);
        let key = (token.to_string(), endpoint);
        let short = current(&mut self.short, key.clone(), now, profile.window);
        let mut exhausted = short.used >= limit.per_window;
        let mut daily_state = None;
        if let Some(per_day) = limit.per_day {
            let day = current(&mut self.daily, key.clone(), now, DAY);
            exhausted |= day.used >= per_day;
            daily_state = Some((per_day, day));
        }
        if !exhausted {
            if let Some(w) = self.short.get_mut(&key) {
                w.used += 1;
            }
            if daily_state.is_some()
                && let Some(w) = self.daily.get_mut(&key)
            {
                w.used += 1;
            }
        }
        let short = self.short.get(&key).copied().unwrap_or(short);
        let daily = daily_state.map(|(per_day, _)| {
            let w = self.daily.get(&key).copied().unwrap_or(Window {
                started: now,
                used: 0,
            });
            (per_day, per_day.saturating_sub(w.used), reset_of(&w, DAY))
        });
        Budget {
            limit: limit.per_window,
            remaining: limit.per_window.saturating_sub(short.used),
            reset_epoch: reset_of(&short, profile.window),
            daily,
            exhausted,
        }
    }

    /// The budget as it stands, without counting a request (used for 429 storms).
    pub fn peek(
        &mut self,
        token: &str,
        endpoint: Endpoint,
        now: DateTime<Utc>,
        profile: &RateLimitProfile,
    ) -> Budget {
        let limit = profile.limit(endpoint);
        let w = current(
            &mut self.short,
            (token.to_string(), endpoint),
            now,
            profile.window,
        );
        Budget {
            limit: limit.per_window,
            remaining: 0,
            reset_epoch: reset_of(&w, profile.window),
            daily: None,
            exhausted: true,
        }
    }
}

/// The window in force for `key` at `now`, starting a new one when the last has run out.
fn current(
    map: &mut HashMap<(String, Endpoint), Window>,
    key: (String, Endpoint),
    now: DateTime<Utc>,
    length: Duration,
) -> Window {
    let length = chrono::Duration::from_std(length).unwrap_or(chrono::Duration::minutes(15));
    let w = map.entry(key).or_insert(Window {
        started: now,
        used: 0,
    });
    if now >= w.started + length {
        *w = Window {
            started: now,
            used: 0,
        };
    }
    *w
}

/// The window's end in epoch seconds, rounded up: a client that waits until the header's reset
/// must find the window renewed (X's windows end on the second; the simulator's start mid-second).
fn reset_of(w: &Window, length: Duration) -> i64 {
    let length = chrono::Duration::from_std(length).unwrap_or(chrono::Duration::minutes(15));
    let end = w.started + length;
    end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_counts_down_refuses_then_resets() {
        let mut limiter = RateLimiter::default();
        let profile = RateLimitProfile {
            users_me: EndpointLimit::per_window(2),
            ..RateLimitProfile::pay_per_use()
        };
        let t0 = Utc::now();
        let a = limiter.take("t", Endpoint::UsersMe, t0, &profile);
        assert_eq!((a.remaining, a.exhausted), (1, false));
        let b = limiter.take("t", Endpoint::UsersMe, t0, &profile);
        assert_eq!((b.remaining, b.exhausted), (0, false));
        let c = limiter.take("t", Endpoint::UsersMe, t0, &profile);
        assert!(c.exhausted);
        assert!(c.reset_epoch >= t0.timestamp() + 900 && c.reset_epoch <= t0.timestamp() + 901);
        // Another token has its own budget.
        assert!(!limiter.take("u", Endpoint::UsersMe, t0, &profile).exhausted);
        let later = t0 + chrono::Duration::seconds(901);
        let d = limiter.take("t", Endpoint::UsersMe, later, &profile);
        assert_eq!((d.remaining, d.exhausted), (1, false));
    }

    #[test]
    fn daily_cap_refuses_while_the_short_window_has_room() {
        let mut limiter = RateLimiter::default();
        let profile = RateLimitProfile {
            send_dm: EndpointLimit {
                per_window: 15,
                per_day: Some(1),
            },
            ..RateLimitProfile::pay_per_use()
        };
        let t0 = Utc::now();
        assert!(!limiter.take("t", Endpoint::SendDm, t0, &profile).exhausted);
        let b = limiter.take("t", Endpoint::SendDm, t0, &profile);
        assert!(b.exhausted);
        assert_eq!(b.remaining, 14);
        assert_eq!(b.daily.map(|d| d.1), Some(0));
    }
}
