//! `perch team add|list|remove|grant` and `perch audit` (issue 16). Run by the owner (the CLI is
//! the owner's: the Unix socket, or the store itself when no service runs), so every change is
//! allowed here and recorded in the audit log under `owner`.

use std::collections::BTreeMap;

use chrono::Utc;
use clap::Subcommand;
use serde::Serialize;

use super::{CliResult, Failure, find_account, open_shared_store, print_json};
use crate::config::Config;
use crate::domain::team::{OWNER_NAME, invalid_person_name};
use crate::domain::{Access, AuditAction, AuditEntry, Person, Role, TeamEvent};
use crate::store::{AuditQuery, ServiceBackend};
use crate::text::sanitize;

#[derive(Subcommand, Debug)]
pub enum TeamCommand {
    /// Add a person and print their personal API token (shown this once; perch keeps only its
    /// hash). They send it as `Authorization: Bearer <token>` to the service's TCP API.
    Add {
        name: String,
        /// owner, admin or member (default member: sees only the accounts granted).
        #[arg(long, default_value = "member")]
        role: String,
        /// {"name", "role", "token"}.
        #[arg(long)]
        json: bool,
    },
    /// The people on the team, their roles and grants.
    List {
        /// [{"name", "role", "grants": {"@handle": "read"|"reply"}, "created_at"}].
        #[arg(long)]
        json: bool,
    },
    /// Remove a person: their token stops working at once.
    Remove { name: String },
    /// Give a member access to an account: read (see and triage), reply (also reply and DM as
    /// it), or none (take it away).
    Grant {
        name: String,
        account: String,
        access: String,
    },
    /// Print a new key for sealing account tokens at rest: put it in the config file as
    /// `token_key = "..."` (or PERCH_TOKEN_KEY) on every service that shares the tokens. Keep a
    /// copy: tokens sealed under a lost key must be authorized again.
    Keygen,
}

/// One person as `perch team list --json` prints them.
#[derive(Serialize)]
struct PersonOut {
    name: String,
    role: Role,
    grants: BTreeMap<String, Access>,
    created_at: chrono::DateTime<Utc>,
}

/// `perch team keygen`: only the key on stdout, so that `perch team keygen > key` or `$(...)`
/// take it whole. Neither the config nor the store is read, so a bad `token_key` in the config
/// does not stop the command that makes a good one.
pub fn keygen() -> CliResult {
    crate::outln!("{}", crate::domain::TokenKey::generate().to_base64());
    crate::errln!(
        "set it as token_key = \"...\" in perch's config file (or PERCH_TOKEN_KEY) on every service that shares the tokens, and keep a copy somewhere safe"
    );
    Ok(())
}

pub async fn run(config: &Config, command: TeamCommand) -> CliResult {
    // sled, or the team's PostgreSQL database (people and the audit log are on both).
    let shared = open_shared_store(config).await?;
    let store = shared.as_ref();
    match command {
        TeamCommand::Keygen => keygen(),
        TeamCommand::Add { name, role, json } => add(store, &name, &role, json),
        TeamCommand::List { json } => list(store, json),
        TeamCommand::Remove { name } => {
            let Some(unassigned) = store.remove_person(&name)? else {
                return Err(Failure::new(format!(
                    "there is no person called {} (`perch team list` shows the team)",
                    sanitize(&name, true)
                )));
            };
            let now = Utc::now();
            record(
                store,
                AuditEntry::new(OWNER_NAME, AuditAction::PersonRemove, now, &name),
            );
            store.flush()?;
            // Their mentions are nobody's now: every dashboard and stream of the service hears it.
            if let Some(remote) = super::console::remote() {
                for key in &unassigned {
                    let (mention_id, handle) = match store.mention(*key) {
                        Ok(Some(m)) => (m.id, format!("@{}", m.sent_to.username)),
                        _ => (uuid::Uuid::nil(), key.account_id.to_string()),
                    };
                    remote.hub.publish_assigned(TeamEvent::Assigned {
                        key: *key,
                        mention_id,
                        handle,
                        assigned_to: None,
                        by: OWNER_NAME.to_string(),
                        at: now,
                    });
                }
            }
            crate::outln!("{name} removed: their token no longer works");
            if !unassigned.is_empty() {
                crate::outln!(
                    "{} mention{} assigned to {name} {} nobody's now",
                    unassigned.len(),
                    if unassigned.len() == 1 { "" } else { "s" },
                    if unassigned.len() == 1 { "is" } else { "are" }
                );
            }
            Ok(())
        }
        TeamCommand::Grant {
            name,
            account,
            access,
        } => grant(store, &name, &account, &access),
    }
}

fn add(store: &dyn ServiceBackend, name: &str, role: &str, json: bool) -> CliResult {
    if let Some(why) = invalid_person_name(name) {
        return Err(Failure::usage(why));
    }
    let role: Role = role.parse().map_err(|_| {
        Failure::usage(format!(
            "--role {}: use owner, admin or member",
            sanitize(role, true)
        ))
    })?;
    let token = crate::service::token::new_person_token();
    let now = Utc::now();
    store.add_person(&Person {
        name: name.to_string(),
        role,
        token_hash: crate::service::token::hash(token.expose()),
        grants: BTreeMap::new(),
        created_at: now,
    })?;
    record(
        store,
        AuditEntry::new(
            OWNER_NAME,
            AuditAction::PersonAdd,
            now,
            format!("{name} as {role}"),
        ),
    );
    store.flush()?;
    if json {
        return print_json(&serde_json::json!({
            "name": name,
            "role": role,
            "token": token.expose(),
        }));
    }
    crate::outln!("{name} added as {role}. Their API token (shown only now):");
    crate::outln!("{}", token.expose());
    if role == Role::Member {
        crate::outln!(
            "A member sees no account until granted one: perch team grant {name} @handle read|reply"
        );
    }
    Ok(())
}

fn list(store: &dyn ServiceBackend, json: bool) -> CliResult {
    let accounts = store.accounts()?;
    let handle = |id: crate::domain::AccountId| {
        accounts
            .iter()
            .find(|a| a.id == id)
            .map_or_else(|| id.to_string(), |a| a.handle())
    };
    let people: Vec<PersonOut> = store
        .people()?
        .into_iter()
        .map(|p| PersonOut {
            grants: p.grants.iter().map(|(id, a)| (handle(*id), *a)).collect(),
            name: p.name,
            role: p.role,
            created_at: p.created_at,
        })
        .collect();
    if json {
        return print_json(&people);
    }
    if people.is_empty() {
        crate::outln!("No people yet: only the owner uses this service (perch team add NAME)");
        return Ok(());
    }
    for p in &people {
        let grants = match p.role {
            Role::Member if p.grants.is_empty() => "no accounts yet".to_string(),
            Role::Member => p
                .grants
                .iter()
                .map(|(h, a)| format!("{} {a}", sanitize(h, true)))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "every account".to_string(),
        };
        crate::outln!("{:<16} {:<7} {grants}", p.name, p.role.to_string());
    }
    Ok(())
}

fn grant(store: &dyn ServiceBackend, name: &str, account: &str, access: &str) -> CliResult {
    let access: Option<Access> = match access {
        "none" => None,
        other => Some(other.parse().map_err(|_| {
            Failure::usage(format!(
                "access {}: use read, reply or none",
                sanitize(other, true)
            ))
        })?),
    };
    let Some(mut person) = store.person(name)? else {
        return Err(Failure::new(format!(
            "there is no person called {} (`perch team list` shows the team)",
            sanitize(name, true)
        )));
    };
    let a = find_account(store, account)?;
    match access {
        Some(access) => person.grants.insert(a.id, access),
        None => person.grants.remove(&a.id),
    };
    store.update_person(&person)?;
    let what = access.map_or("none".to_string(), |x| x.to_string());
    record(
        store,
        AuditEntry::new(
            OWNER_NAME,
            AuditAction::Grant,
            Utc::now(),
            format!("{name}: {what}"),
        )
        .account(a.id, a.handle()),
    );
    store.flush()?;
    if person.role != Role::Member {
        crate::outln!(
            "{name} is {}: they see every account anyway; the grant counts if they become a member",
            person.role
        );
    } else {
        crate::outln!("{name} now has {what} on {}", a.handle());
    }
    Ok(())
}

/// `perch audit`: who did what, newest first.
pub async fn audit(
    config: &Config,
    mention: Option<&str>,
    person: Option<&str>,
    account: Option<&str>,
    limit: usize,
    json: bool,
) -> CliResult {
    let shared = open_shared_store(config).await?;
    let store = shared.as_ref();
    let mention = mention
        .map(|m| {
            m.trim().parse::<u64>().map_err(|_| {
                Failure::usage(format!(
                    "--mention {}: give the post's X id (digits)",
                    sanitize(m, true)
                ))
            })
        })
        .transpose()?;
    let account = match account {
        Some(name) => Some(find_account(store, name)?.id),
        None => None,
    };
    let page = store.audit(&AuditQuery {
        person: person.map(str::to_string),
        mention,
        account,
        among: None,
        before: None,
        limit,
    })?;
    if json {
        return print_json(&page.entries);
    }
    if page.entries.is_empty() {
        crate::outln!("No audit entries match.");
    }
    for e in &page.entries {
        let on = match (&e.account, e.mention) {
            (Some(a), Some(m)) => format!(" {}:{m}", sanitize(a, true)),
            (Some(a), None) => format!(" {}", sanitize(a, true)),
            _ => String::new(),
        };
        crate::outln!(
            "{}  {:<10} {:<14}{on}  {}",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            sanitize(&e.person, true),
            e.action.to_string(),
            sanitize(&e.detail, true)
        );
    }
    if page.next_before.is_some() {
        crate::outln!("(more: raise --limit)");
    }
    Ok(())
}

/// Appends to the audit log; a failure is said on stderr (the action itself has happened).
pub(crate) fn record(store: &dyn ServiceBackend, entry: AuditEntry) {
    if let Err(e) = store.append_audit(entry) {
        crate::errln!("perch: could not record this in the audit log: {e}");
    }
}
