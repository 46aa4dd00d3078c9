//! Presence (issue 16): who has a mention's composer open right now ("ana is replying"). The
//! service keeps it in memory only: it is alive while the person's client touches it and gone
//! [`PRESENCE_TTL`] after the last touch, so a person whose client vanished (closed laptop, lost
//! network, `kill -9`) stops showing. Plain data with the time passed in, so its rules are tested
//! without a clock.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use crate::domain::MentionKey;

pub use crate::domain::team::{PRESENCE_TOUCH_EVERY, PRESENCE_TTL};
/// How many mentions one person can show as replying to at once: a touch on another one drops
/// their oldest, so no client can grow the service's memory without bound.
pub const PRESENCE_PER_PERSON: usize = 4;

/// Someone with a mention's composer open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replying {
    pub person: String,
    /// When they opened it (their first touch).
    pub since: DateTime<Utc>,
    /// When they stop showing unless they touch it again.
    pub expires_at: DateTime<Utc>,
}

/// Who is replying to what.
#[derive(Debug)]
pub struct Presence {
    by_mention: HashMap<MentionKey, BTreeMap<String, Replying>>,
    ttl: Duration,
}

impl Default for Presence {
    fn default() -> Presence {
        Presence::with_ttl(PRESENCE_TTL)
    }
}

/// What a change of presence was, for the event every client hears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceChange {
    pub key: MentionKey,
    pub person: String,
    /// `true`: started replying; `false`: stopped (left, sent, or expired).
    pub replying: bool,
}

impl Presence {
    /// Presence that lasts `ttl` after each touch ([`PRESENCE_TTL`] in the service; tests that
    /// watch one expire over HTTP shorten it).
    pub fn with_ttl(ttl: Duration) -> Presence {
        Presence {
            by_mention: HashMap::new(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// `person` has `key`'s composer open at `now`. Returns the changes to announce: their
    /// start (when they were not showing already) and the stop of their oldest presence when
    /// this one is over [`PRESENCE_PER_PERSON`].
    pub fn touch(
        &mut self,
        key: MentionKey,
        person: &str,
        now: DateTime<Utc>,
    ) -> Vec<PresenceChange> {
        let mut changes = self.expire(now);
        let entry = self.by_mention.entry(key).or_default();
        let expires_at = now + self.ttl;
        match entry.get_mut(person) {
            Some(r) => r.expires_at = expires_at,
            None => {
                entry.insert(
                    person.to_string(),
                    Replying {
                        person: person.to_string(),
                        since: now,
                        expires_at,
                    },
                );
                changes.push(PresenceChange {
                    key,
                    person: person.to_string(),
                    replying: true,
                });
                // Over the bound: the one they touched least recently goes.
                let mut theirs: Vec<(DateTime<Utc>, MentionKey)> = self
                    .by_mention
                    .iter()
                    .filter_map(|(k, people)| people.get(person).map(|r| (r.expires_at, *k)))
                    .collect();
                if theirs.len() > PRESENCE_PER_PERSON {
                    theirs.sort();
                    let (_, oldest) = theirs[0];
                    if self.leave(oldest, person) {
                        changes.push(PresenceChange {
                            key: oldest,
                            person: person.to_string(),
                            replying: false,
                        });
                    }
                }
            }
        }
        changes
    }

    /// `person` closed `key`'s composer (or sent). Whether they were showing.
    pub fn leave(&mut self, key: MentionKey, person: &str) -> bool {
        let Some(people) = self.by_mention.get_mut(&key) else {
            return false;
        };
        let was = people.remove(person).is_some();
        if people.is_empty() {
            self.by_mention.remove(&key);
        }
        was
    }

    /// Who is replying to `key` at `now`, in name order.
    pub fn who(&self, key: MentionKey, now: DateTime<Utc>) -> Vec<Replying> {
        self.by_mention
            .get(&key)
            .map(|people| {
                people
                    .values()
                    .filter(|r| r.expires_at > now)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Everyone replying to anything at `now`: (mention, person).
    pub fn everyone(&self, now: DateTime<Utc>) -> Vec<(MentionKey, String)> {
        self.by_mention
            .iter()
            .flat_map(|(key, people)| {
                people
                    .values()
                    .filter(move |r| r.expires_at > now)
                    .map(move |r| (*key, r.person.clone()))
            })
            .collect()
    }

    /// Forgets everyone whose presence ran out by `now`; their stops, to announce.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<PresenceChange> {
        let mut gone = Vec::new();
        self.by_mention.retain(|key, people| {
            people.retain(|person, r| {
                let alive = r.expires_at > now;
                if !alive {
                    gone.push(PresenceChange {
                        key: *key,
                        person: person.clone(),
                        replying: false,
                    });
                }
                alive
            });
            !people.is_empty()
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccountId;

    fn key(tweet: u64) -> MentionKey {
        MentionKey {
            account_id: AccountId::from(uuid::Uuid::from_u128(1)),
            tweet_id: tweet,
        }
    }

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn presence_shows_while_touched_and_expires_when_the_client_vanishes() {
        let mut p = Presence::default();
        let started = p.touch(key(1), "ana", t(0));
        assert_eq!(
            started,
            [PresenceChange {
                key: key(1),
                person: "ana".into(),
                replying: true
            }]
        );
        assert!(
            p.touch(key(1), "ana", t(20)).is_empty(),
            "a touch is not news"
        );
        let who = p.who(key(1), t(45));
        assert_eq!(who.len(), 1, "alive 30 s after the last touch");
        assert_eq!((who[0].since, who[0].expires_at), (t(0), t(50)));
        assert!(p.expire(t(49)).is_empty());
        let gone = p.expire(t(50));
        assert_eq!(gone.len(), 1);
        assert!(!gone[0].replying);
        assert!(p.who(key(1), t(50)).is_empty());
        // Expired entries are not shown even before a sweep runs.
        p.touch(key(2), "bo", t(100));
        assert!(p.who(key(2), t(131)).is_empty());
    }

    #[test]
    fn leaving_ends_presence_and_one_person_holds_a_bounded_number() {
        let mut p = Presence::default();
        p.touch(key(1), "ana", t(0));
        p.touch(key(1), "bo", t(1));
        assert_eq!(
            p.who(key(1), t(2))
                .iter()
                .map(|r| r.person.as_str())
                .collect::<Vec<_>>(),
            ["ana", "bo"]
        );
        assert!(p.leave(key(1), "ana"));
        assert!(!p.leave(key(1), "ana"));
        for i in 0..PRESENCE_PER_PERSON as u64 {
            p.touch(key(10 + i), "cy", t(10 + i as i64));
        }
        let changes = p.touch(key(99), "cy", t(20));
        assert!(
            changes.contains(&PresenceChange {
                key: key(10),
                person: "cy".into(),
                replying: false
            }),
            "{changes:?}"
        );
        assert!(p.who(key(10), t(20)).is_empty());
        assert_eq!(p.who(key(99), t(20)).len(), 1);
    }
}
