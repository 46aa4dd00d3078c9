//! What the dashboard knows of the team (issue 16): who is at this dashboard, who has which
//! mention, and who has which mention's composer open. Read once from the service
//! ([`TeamSnapshot`]) and kept current by its `TeamEvent`s, so drawing a row reads no store.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::domain::team::OWNER_NAME;
use crate::domain::{MentionKey, TeamEvent};

/// The team's state as the service has it now (`FeedSource::team`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSnapshot {
    /// The person this dashboard acts as (the socket's: the owner).
    pub me: String,
    /// Each assigned mention and its person.
    pub assigned: Vec<(MentionKey, String)>,
    /// Each mention someone has the composer of open, and who.
    pub replying: Vec<(MentionKey, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeamView {
    pub me: String,
    assigned: HashMap<MentionKey, String>,
    replying: HashMap<MentionKey, BTreeSet<String>>,
}

impl Default for TeamView {
    fn default() -> TeamView {
        TeamView {
            me: OWNER_NAME.to_string(),
            assigned: HashMap::new(),
            replying: HashMap::new(),
        }
    }
}

impl TeamView {
    pub fn from_snapshot(snapshot: TeamSnapshot) -> TeamView {
        let mut replying: HashMap<MentionKey, BTreeSet<String>> = HashMap::new();
        for (key, person) in snapshot.replying {
            replying.entry(key).or_default().insert(person);
        }
        TeamView {
            me: snapshot.me,
            assigned: snapshot.assigned.into_iter().collect(),
            replying,
        }
    }

    /// Follows one event. Whether anything shown changed.
    pub fn apply(&mut self, event: &TeamEvent) -> bool {
        match event {
            TeamEvent::Assigned {
                key, assigned_to, ..
            } => match assigned_to {
                Some(person) => self.assigned.insert(*key, person.clone()).as_ref() != Some(person),
                None => self.assigned.remove(key).is_some(),
            },
            TeamEvent::Replying {
                key,
                person,
                replying,
                ..
            } => {
                if *replying {
                    self.replying
                        .entry(*key)
                        .or_default()
                        .insert(person.clone())
                } else {
                    let Some(people) = self.replying.get_mut(key) else {
                        return false;
                    };
                    let was = people.remove(person);
                    if people.is_empty() {
                        self.replying.remove(key);
                    }
                    was
                }
            }
        }
    }

    /// Who has the mention, if anyone.
    pub fn assigned(&self, key: MentionKey) -> Option<&str> {
        self.assigned.get(&key).map(String::as_str)
    }

    /// Whether the mention is this dashboard's person's.
    pub fn is_mine(&self, key: MentionKey) -> bool {
        self.assigned(key) == Some(self.me.as_str())
    }

    /// The others (not this dashboard's person) with the mention's composer open, in name order.
    pub fn others_replying(&self, key: MentionKey) -> Vec<&str> {
        self.replying
            .get(&key)
            .map(|people| {
                people
                    .iter()
                    .map(String::as_str)
                    .filter(|p| *p != self.me)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccountId;

    fn key(t: u64) -> MentionKey {
        MentionKey {
            account_id: AccountId::from(uuid::Uuid::from_u128(7)),
            tweet_id: t,
        }
    }

    fn replying(t: u64, person: &str, on: bool) -> TeamEvent {
        TeamEvent::Replying {
            key: key(t),
            handle: "@acme".into(),
            person: person.into(),
            replying: on,
            at: chrono::Utc::now(),
        }
    }

    #[test]
    fn the_view_follows_assignments_and_presence_and_leaves_out_its_own_person() {
        let mut team = TeamView::from_snapshot(TeamSnapshot {
            me: "owner".into(),
            assigned: vec![(key(1), "ana".into())],
            replying: vec![(key(2), "owner".into())],
        });
        assert_eq!(team.assigned(key(1)), Some("ana"));
        assert!(team.others_replying(key(2)).is_empty(), "not oneself");
        let take = TeamEvent::Assigned {
            key: key(1),
            mention_id: uuid::Uuid::nil(),
            handle: "@acme".into(),
            assigned_to: Some("owner".into()),
            by: "owner".into(),
            at: chrono::Utc::now(),
        };
        assert!(team.apply(&take));
        assert!(!team.apply(&take), "the same again changes nothing");
        assert!(team.is_mine(key(1)));
        assert!(team.apply(&replying(2, "bo", true)));
        assert!(team.apply(&replying(2, "ana", true)));
        assert_eq!(team.others_replying(key(2)), ["ana", "bo"]);
        assert!(team.apply(&replying(2, "bo", false)));
        assert!(!team.apply(&replying(2, "bo", false)));
        assert_eq!(team.others_replying(key(2)), ["ana"]);
    }
}
