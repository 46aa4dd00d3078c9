//! Activity subscriptions kept in step with the accounts (ACTIVITY.md §3): every active account
//! has a `post.mention.create` subscription, and `post.reply.create` / `post.quote.create` where
//! X offers them, each tagged with perch's account id. Paused, expired and removed accounts
//! have none, so they cost nothing. [`plan`] decides (pure); [`reconcile`] lists, deletes and
//! creates.
//!
//! Only subscriptions perch tagged are ever deleted: another tool of the same app may keep its
//! own. A subscription someone else made for the same event and user counts as present (X would
//! deliver the event twice otherwise, and the create might be refused as a duplicate).

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::auth::{CallError, TokenManager};
use crate::domain::{AccountId, Secret};
use crate::x::activity::Subscription;
use crate::x::{XClient, XError};

/// The events perch subscribes to for each account, the mention first (it is required; the
/// other two are taken where X offers them: spec 2.167 as published in the xdk lacks them).
pub const EVENT_TYPES: [&str; 3] = [
    "post.mention.create",
    "post.reply.create",
    "post.quote.create",
];

/// Subscriptions per app on a self-serve plan (ACTIVITY.md §3.6, raised from 1 000 in 2026-07).
pub const MAX_APP_SUBSCRIPTIONS: usize = 1500;

/// The tag of perch's subscription of `account` for `event_type`: `perch:<account id>:<event>`.
pub fn tag_for(account: AccountId, event_type: &str) -> String {
    format!("perch:{account}:{event_type}")
}

/// The account a perch tag names.
pub fn account_of_tag(tag: &str) -> Option<AccountId> {
    let rest = tag.strip_prefix("perch:")?;
    let (id, _) = rest.split_once(':')?;
    id.parse().ok()
}

/// An account that should be streamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub account_id: AccountId,
    /// The account's X user id (`filter.user_id`).
    pub user_id: String,
}

/// What one reconcile does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub create: Vec<(AccountId, &'static str)>,
    /// Subscription ids to delete, with why (for the log).
    pub delete: Vec<(String, String)>,
    /// What each wanted account keeps.
    pub kept: HashMap<AccountId, Vec<Subscription>>,
    /// Subscriptions not asked for because the app's limit would be passed (mentions go first).
    pub over_limit: Vec<(AccountId, &'static str)>,
}

/// Decides what to create and delete. `not_offered`: event types X refused as unknown this run
/// (they are not asked for again).
pub fn plan(wanted: &[Wanted], existing: &[Subscription], not_offered: &HashSet<String>) -> Plan {
    let mut out = Plan::default();
    let by_account: HashMap<AccountId, &Wanted> =
        wanted.iter().map(|w| (w.account_id, w)).collect();
    let mut present: HashSet<(String, String)> = HashSet::new();
    for sub in existing {
        let user = sub.user_id.clone().unwrap_or_default();
        let perch_account = sub.tag.as_deref().and_then(account_of_tag);
        let tagged_by_perch = sub.tag.as_deref().is_some_and(|t| t.starts_with("perch:"));
        let key = (sub.event_type.clone(), user.clone());
        if tagged_by_perch {
            let why = match perch_account.and_then(|a| by_account.get(&a)) {
                None => Some("its account is removed or paused"),
                Some(w) if w.user_id != user => Some("its account now has another X user"),
                Some(_) if present.contains(&key) => Some("a duplicate"),
                Some(_) if !EVENT_TYPES.contains(&sub.event_type.as_str()) => {
                    Some("perch no longer uses this event")
                }
                Some(_) => None,
            };
            if let Some(why) = why {
                out.delete
                    .push((sub.subscription_id.clone(), why.to_string()));
                continue;
            }
        }
        if present.insert(key)
            && let Some(w) = wanted.iter().find(|w| w.user_id == user)
        {
            out.kept.entry(w.account_id).or_default().push(sub.clone());
        }
    }
    for w in wanted {
        out.kept.entry(w.account_id).or_default();
        for event in EVENT_TYPES {
            if not_offered.contains(event) {
                continue;
            }
            if !present.contains(&(event.to_string(), w.user_id.clone())) {
                out.create.push((w.account_id, event));
            }
        }
    }
    // Never ask past the app's limit: every account's mention subscription first, then the
    // replies and quotes, in account order.
    let remaining = existing.len().saturating_sub(out.delete.len());
    let room = MAX_APP_SUBSCRIPTIONS.saturating_sub(remaining);
    if out.create.len() > room {
        let rank = |event: &str| EVENT_TYPES.iter().position(|e| *e == event).unwrap_or(9);
        out.create.sort_by_key(|(_, event)| rank(event));
        out.over_limit = out.create.split_off(room);
    }
    out
}

/// One subscription as the UI shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionInfo {
    pub event_type: String,
    pub subscription_id: String,
}

/// What a reconcile found for one account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSubscriptions {
    pub subscriptions: Vec<SubscriptionInfo>,
    /// Why a subscription could not be made, in X's words.
    pub error: Option<String>,
}

impl AccountSubscriptions {
    /// Whether mentions of this account arrive by stream.
    pub fn streamed(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|s| s.event_type == EVENT_TYPES[0])
    }
}

/// What a whole reconcile did.
#[derive(Debug, Default)]
pub struct Reconciled {
    pub accounts: HashMap<AccountId, AccountSubscriptions>,
    /// Event types X does not offer (refused as invalid at create).
    pub not_offered: HashSet<String>,
    /// A failure of the whole reconcile (the list failed): nothing was changed.
    pub error: Option<String>,
    pub created: usize,
    pub deleted: usize,
}

/// Lists the app's subscriptions, deletes those of removed and paused accounts and orphans,
/// creates the missing ones with each account's own token.
pub async fn reconcile(
    client: &XClient,
    tokens: &TokenManager,
    app: &Secret,
    wanted: &[Wanted],
    not_offered: &HashSet<String>,
) -> Reconciled {
    let mut out = Reconciled {
        not_offered: not_offered.clone(),
        ..Reconciled::default()
    };
    let existing = match client.list_subscriptions(app).await {
        Ok(list) => list,
        Err(e) => {
            out.error = Some(format!(
                "cannot list the Activity subscriptions: {}",
                limit_words(&e)
            ));
            return out;
        }
    };
    let plan = plan(wanted, &existing, not_offered);
    for (id, why) in &plan.delete {
        match client.delete_subscription(app, id).await {
            Ok(()) => {
                out.deleted += 1;
                tracing::info!(subscription = %id, "deleted an Activity subscription: {why}");
            }
            Err(e) => {
                tracing::warn!(subscription = %id, "cannot delete an Activity subscription ({why}): {e}")
            }
        }
    }
    for (account, subs) in plan.kept {
        out.accounts.insert(
            account,
            AccountSubscriptions {
                subscriptions: subs
                    .into_iter()
                    .map(|s| SubscriptionInfo {
                        event_type: s.event_type,
                        subscription_id: s.subscription_id,
                    })
                    .collect(),
                error: None,
            },
        );
    }
    for (account, event) in &plan.over_limit {
        let entry = out.accounts.entry(*account).or_default();
        let message = format!(
            "not subscribed to {event}: the app's subscription limit ({MAX_APP_SUBSCRIPTIONS} on a self-serve plan) is reached; polled"
        );
        entry.error = Some(match entry.error.take() {
            Some(before) => format!("{before}; {message}"),
            None => message,
        });
    }
    let users: HashMap<AccountId, &str> = wanted
        .iter()
        .map(|w| (w.account_id, w.user_id.as_str()))
        .collect();
    for (account, event) in plan.create {
        let Some(user_id) = users.get(&account).copied() else {
            continue;
        };
        if out.not_offered.contains(event) {
            continue;
        }
        let tag = tag_for(account, event);
        let created = tokens
            .with_token(account, |token| {
                let client = client.clone();
                let (user_id, tag) = (user_id.to_string(), tag.clone());
                async move {
                    client
                        .create_subscription(&token, event, &user_id, &tag)
                        .await
                }
            })
            .await;
        let entry = out.accounts.entry(account).or_default();
        match created {
            Ok(sub) => {
                out.created += 1;
                entry.subscriptions.push(SubscriptionInfo {
                    event_type: sub.event_type,
                    subscription_id: sub.subscription_id,
                });
            }
            // Someone made the same subscription meanwhile (X's answer to a duplicate is not
            // documented; the simulator says 409 DuplicateSubscription): it exists, the next
            // list shows it.
            Err(CallError::X(XError::InvalidRequest { status: 409, .. })) => {
                tracing::info!("{event} for {account} already exists");
            }
            // An event type the enum does not hold: X does not offer it (yet). Not an error of
            // the account; not asked for again this run.
            Err(CallError::X(XError::InvalidRequest {
                status: 400,
                detail,
            })) if event != EVENT_TYPES[0] && detail.contains("enum") => {
                tracing::info!("X does not offer {event} subscriptions: {detail}");
                out.not_offered.insert(event.to_string());
            }
            Err(e) => {
                let words = match &e {
                    CallError::X(x) => limit_words(x),
                    other => other.to_string(),
                };
                let message = format!("cannot subscribe to {event}: {words}");
                entry.error = Some(match entry.error.take() {
                    Some(before) => format!("{before}; {message}"),
                    None => message,
                });
            }
        }
    }
    out
}

/// X's words, and which limit of ACTIVITY.md §3.6 was hit when it is one.
fn limit_words(e: &XError) -> String {
    match e {
        XError::RateLimited { .. } => format!(
            "{e} (the subscription calls' limit: 500 per 15 minutes per app); polling continues"
        ),
        XError::Forbidden { detail, .. } if detail.contains("limit") => format!(
            "{e} (the app's subscription limit: 1 500 on a self-serve plan); polling continues"
        ),
        other => format!("{other}; polling continues"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u128) -> AccountId {
        uuid::Uuid::from_u128(n)
    }

    fn sub(id: &str, event: &str, user: &str, tag: Option<String>) -> Subscription {
        Subscription {
            subscription_id: id.into(),
            event_type: event.into(),
            user_id: Some(user.into()),
            tag,
        }
    }

    #[test]
    fn tags_name_the_account() {
        let a = account(7);
        assert_eq!(account_of_tag(&tag_for(a, "post.mention.create")), Some(a));
        assert_eq!(account_of_tag("mentions"), None);
        assert!(tag_for(a, "post.quote.create").chars().count() <= 200);
    }

    #[test]
    fn a_new_account_gets_every_event_and_nothing_is_deleted() {
        let w = [Wanted {
            account_id: account(1),
            user_id: "11".into(),
        }];
        let p = plan(&w, &[], &HashSet::new());
        assert_eq!(p.create.len(), 3);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn removed_paused_duplicate_and_orphaned_perch_subscriptions_are_deleted() {
        let (a, gone) = (account(1), account(2));
        let w = [Wanted {
            account_id: a,
            user_id: "11".into(),
        }];
        let existing = [
            sub("1", EVENT_TYPES[0], "11", Some(tag_for(a, EVENT_TYPES[0]))),
            sub("2", EVENT_TYPES[0], "11", Some(tag_for(a, EVENT_TYPES[0]))),
            sub(
                "3",
                EVENT_TYPES[0],
                "22",
                Some(tag_for(gone, EVENT_TYPES[0])),
            ),
            sub("4", "post.create", "33", Some("someone-else".into())),
        ];
        let p = plan(&w, &existing, &HashSet::new());
        let deleted: Vec<&str> = p.delete.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(deleted, ["2", "3"]);
        assert_eq!(p.create, vec![(a, EVENT_TYPES[1]), (a, EVENT_TYPES[2])]);
        assert_eq!(p.kept[&a].len(), 1);
    }

    #[test]
    fn the_app_limit_is_never_passed_and_mentions_go_first() {
        let wanted: Vec<Wanted> = (0..600u128)
            .map(|i| Wanted {
                account_id: account(i + 1),
                user_id: (1000 + i).to_string(),
            })
            .collect();
        let p = plan(&wanted, &[], &HashSet::new());
        assert_eq!(p.create.len(), MAX_APP_SUBSCRIPTIONS);
        assert_eq!(p.over_limit.len(), 600 * 3 - MAX_APP_SUBSCRIPTIONS);
        // Every account got its mention subscription.
        let mentions = p
            .create
            .iter()
            .filter(|(_, e)| *e == EVENT_TYPES[0])
            .count();
        assert_eq!(mentions, 600);
        assert!(p.over_limit.iter().all(|(_, e)| *e != EVENT_TYPES[0]));
    }

    #[test]
    fn an_untagged_subscription_for_the_same_event_counts_as_present() {
        let a = account(1);
        let w = [Wanted {
            account_id: a,
            user_id: "11".into(),
        }];
        let existing = [sub("9", EVENT_TYPES[0], "11", None)];
        let not_offered: HashSet<String> = [EVENT_TYPES[1].to_string(), EVENT_TYPES[2].to_string()]
            .into_iter()
            .collect();
        let p = plan(&w, &existing, &not_offered);
        assert!(p.create.is_empty() && p.delete.is_empty());
    }
}
