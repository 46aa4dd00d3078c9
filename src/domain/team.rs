//! People on a team, what each may do, and the audit log of who did what (issue 16).
//!
//! A service is used by its owner (anyone on the Unix socket, or on TCP with the service token)
//! and by the people added with `perch team add`, each with a personal API token. Owners and
//! admins see and act on every account; a member sees only the accounts granted to them, and
//! replies or sends DMs only as the accounts granted with `reply`. The rules are here, as pure
//! functions, so the REST API, the CLI and the tests all ask the same question.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AccountId;

/// The name the owner acts under when no personal token was used: the Unix socket, the service
/// token on TCP, and the CLI on a store without a service. No person may be added under it.
pub const OWNER_NAME: &str = "owner";

/// The longest person name (names are handles people type: short, no spaces).
pub const MAX_NAME_LEN: usize = 32;

/// What a person may do across the service.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Role {
    /// Everything, including adding and removing admins.
    Owner,
    /// Every account, and the team's members; not other owners.
    Admin,
    /// Only the accounts granted to them.
    Member,
}

/// What a member may do with one account. `Reply` includes reading.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    utoipa::ToSchema,
    strum::EnumString,
    strum::Display,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Access {
    /// See its mentions and stats, triage them (status, assignment).
    Read,
    /// Also reply and send DMs as it.
    Reply,
}

/// A person who may use the service. The token itself is never kept: only its SHA-256, so a copy
/// of the store does not let anyone in.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the personal API token (see `service::token::hash`).
    pub token_hash: String,
    /// A member's accounts; ignored for owners and admins (who have every account).
    pub grants: BTreeMap<AccountId, Access>,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for Person {
    // The hash is not a secret, but nothing in a log needs it either.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Person")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl Person {
    /// The owner as the Unix socket and the service token know them.
    pub fn local_owner() -> Person {
        Person {
            name: OWNER_NAME.to_string(),
            role: Role::Owner,
            token_hash: String::new(),
            grants: BTreeMap::new(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    /// Sees every account (and so every mention, including those of removed accounts).
    pub fn sees_everything(&self) -> bool {
        self.role != Role::Member
    }

    pub fn may_read(&self, account: AccountId) -> bool {
        self.sees_everything() || self.grants.contains_key(&account)
    }

    pub fn may_reply(&self, account: AccountId) -> bool {
        self.sees_everything() || self.grants.get(&account) == Some(&Access::Reply)
    }

    /// May add, change and remove tracked accounts, and manage the team.
    pub fn manages(&self) -> bool {
        self.role != Role::Member
    }

    /// Why this person may not add, change or remove `other` (with role `role`), if not.
    pub fn may_not_manage(&self, role: Role) -> Option<String> {
        match (self.role, role) {
            (Role::Owner, _) => None,
            (Role::Admin, Role::Member) => None,
            (Role::Admin, _) => Some(format!(
                "@{} is an admin: only an owner may add or change an {role}",
                self.name
            )),
            (Role::Member, _) => Some(format!(
                "@{} is a member: only owners and admins manage the team",
                self.name
            )),
        }
    }
}

/// Why `name` cannot name a person, if it cannot: 1 to 32 of a-z, 0-9, `_` and `-`, starting
/// with a letter, and not the owner's reserved name.
/// Names no person may have: assigning reads them as the caller or as nobody.
pub const RESERVED_NAMES: &[&str] = &["me", "none", "nobody"];

pub fn invalid_person_name(name: &str) -> Option<String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    let starts = name.chars().next().is_some_and(|c| c.is_ascii_lowercase());
    if name.is_empty() || name.len() > MAX_NAME_LEN || !ok_chars || !starts {
        return Some(format!(
            "a person's name is 1 to {MAX_NAME_LEN} of a-z, 0-9, _ and -, starting with a letter (got {:?})",
            name.chars().take(40).collect::<String>()
        ));
    }
    if name == OWNER_NAME {
        return Some(format!(
            "{OWNER_NAME:?} is the name of the service's owner (the Unix socket, the service token); choose another"
        ));
    }
    // Words that assigning gives a meaning of their own ("me": the caller, "none": nobody).
    if RESERVED_NAMES.contains(&name) {
        return Some(format!(
            "{name:?} means something else when assigning (me: yourself; none, nobody: no one); choose another name"
        ));
    }
    None
}

/// What an audit entry records.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    utoipa::ToSchema,
    strum::Display,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AuditAction {
    /// A mention's status was set (`detail`: the new status; bulk triage makes one entry).
    Status,
    /// Triage was undone.
    Undo,
    /// A mention was assigned (`detail`: to whom, or "nobody").
    Assign,
    /// A reply (or quote) was handed to the outbox.
    Reply,
    /// A DM was handed to the outbox.
    Dm,
    /// An account was added or reauthorized.
    AccountAdd,
    /// An account was paused, resumed or its settings changed.
    AccountChange,
    AccountRemove,
    PersonAdd,
    PersonRemove,
    /// A person's access to an account changed.
    Grant,
}

/// One line of the audit log. Entries are only ever appended: nothing changes or removes one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Increasing with time; the log's order.
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// Who did it (`owner` for the Unix socket and the service token).
    pub person: String,
    pub action: AuditAction,
    /// The account acted on or as (its handle then, so the entry reads the same after removal).
    pub account: Option<String>,
    #[schema(value_type = Option<String>)]
    pub account_id: Option<AccountId>,
    /// The mention's X post id, when the action was on one mention.
    #[serde(with = "opt_id_string")]
    #[schema(value_type = Option<String>)]
    pub mention: Option<u64>,
    /// What was done, in words (the status set, who was assigned, how many mentions).
    pub detail: String,
}

impl AuditEntry {
    /// An entry of `action` by `person` at `at` about nothing in particular yet (the store gives
    /// it its `seq` when appending).
    pub fn new(
        person: &str,
        action: AuditAction,
        at: DateTime<Utc>,
        detail: impl Into<String>,
    ) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at,
            person: person.to_string(),
            action,
            account: None,
            account_id: None,
            mention: None,
            detail: detail.into(),
        }
    }

    /// `person` logged `account` in: added it, or authorized it again.
    pub fn login(person: &str, account: &super::Account, reauthorized: bool) -> AuditEntry {
        let (action, detail) = if reauthorized {
            (AuditAction::AccountChange, "authorized again")
        } else {
            (AuditAction::AccountAdd, "added")
        };
        AuditEntry::new(person, action, Utc::now(), detail).account(account.id, account.handle())
    }

    /// About `account` (`handle` as written then, `@name`).
    pub fn account(mut self, account: AccountId, handle: impl Into<String>) -> AuditEntry {
        self.account_id = Some(account);
        self.account = Some(handle.into());
        self
    }

    /// About one mention of `account`.
    pub fn mention(self, key: super::MentionKey, account_handle: impl Into<String>) -> AuditEntry {
        let mut entry = self.account(key.account_id, account_handle);
        entry.mention = Some(key.tweet_id);
        entry
    }
}

/// Post ids as strings in JSON, as X and the rest of the API write them (an id beyond 2^53 is
/// not safe as a JSON number).
mod opt_id_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(id) => s.serialize_some(&id.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// How long a person shows as replying after their client last said so (`service::presence`).
/// Clients touch every [`PRESENCE_TOUCH_EVERY`] while the composer is open.
pub const PRESENCE_TTL: chrono::Duration = chrono::Duration::seconds(30);
/// How often a client with an open composer touches its presence.
pub const PRESENCE_TOUCH_EVERY: chrono::Duration = chrono::Duration::seconds(10);

/// What someone on the team did that every client hears at once (the dashboards, SSE).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TeamEvent {
    /// A mention was assigned to a person (`assigned_to`), or unassigned (`None`), by `by`.
    Assigned {
        key: super::MentionKey,
        mention_id: uuid::Uuid,
        /// The account's `@handle`.
        handle: String,
        assigned_to: Option<String>,
        by: String,
        at: DateTime<Utc>,
    },
    /// `person` opened a mention's composer (`replying`), or closed it, sent, or vanished
    /// (their presence expired).
    Replying {
        key: super::MentionKey,
        /// The account's `@handle`.
        handle: String,
        person: String,
        replying: bool,
        at: DateTime<Utc>,
    },
}

impl TeamEvent {
    /// The account the event is about (a member hears only about their accounts).
    pub fn account_id(&self) -> AccountId {
        match self {
            TeamEvent::Assigned { key, .. } | TeamEvent::Replying { key, .. } => key.account_id,
        }
    }

    /// One line for a person to read ("ana took @acme_help's mention 1578…"). Not sanitised:
    /// the handle came from X, so a caller showing it on a terminal sanitises it.
    pub fn describe(&self) -> String {
        match self {
            TeamEvent::Assigned {
                key,
                handle,
                assigned_to,
                by,
                ..
            } => match assigned_to {
                Some(to) if to == by => format!("{by} took {handle}'s mention {}", key.tweet_id),
                Some(to) => format!("{by} assigned {handle}'s mention {} to {to}", key.tweet_id),
                None => format!("{by} unassigned {handle}'s mention {}", key.tweet_id),
            },
            TeamEvent::Replying {
                key,
                handle,
                person,
                replying,
                ..
            } => match replying {
                true => format!(
                    "{person} is replying to {handle}'s mention {}",
                    key.tweet_id
                ),
                false => format!(
                    "{person} stopped replying to {handle}'s mention {}",
                    key.tweet_id
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(grants: &[(AccountId, Access)]) -> Person {
        Person {
            name: "ana".into(),
            role: Role::Member,
            token_hash: "h".into(),
            grants: grants.iter().copied().collect(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn a_member_reads_granted_accounts_and_replies_only_where_granted_reply() {
        let (a, b, c) = (
            AccountId::new_v4(),
            AccountId::new_v4(),
            AccountId::new_v4(),
        );
        let ana = member(&[(a, Access::Read), (b, Access::Reply)]);
        assert!(ana.may_read(a) && ana.may_read(b) && !ana.may_read(c));
        assert!(!ana.may_reply(a) && ana.may_reply(b) && !ana.may_reply(c));
        assert!(!ana.manages() && !ana.sees_everything());
        let mut admin = ana.clone();
        admin.role = Role::Admin;
        assert!(admin.may_reply(c) && admin.manages());
    }

    #[test]
    fn admins_manage_members_only_and_owners_everyone() {
        let mut admin = member(&[]);
        admin.role = Role::Admin;
        assert!(admin.may_not_manage(Role::Member).is_none());
        assert!(admin.may_not_manage(Role::Admin).is_some());
        assert!(admin.may_not_manage(Role::Owner).is_some());
        assert!(Person::local_owner().may_not_manage(Role::Owner).is_none());
        assert!(member(&[]).may_not_manage(Role::Member).is_some());
    }

    #[test]
    fn person_names_are_short_plain_and_never_the_owners_or_an_assigning_word() {
        assert!(invalid_person_name("ana").is_none());
        assert!(invalid_person_name("support-2").is_none());
        for bad in [
            "",
            "Ana",
            "2ana",
            "a b",
            "owner",
            "me",
            "none",
            "nobody",
            "ana\u{1b}[2J",
            &"a".repeat(33),
        ] {
            assert!(invalid_person_name(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_token_hash() {
        let p = member(&[]);
        assert!(!format!("{p:?}").contains("token_hash"));
    }
}
