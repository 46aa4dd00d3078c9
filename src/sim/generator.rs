//! The mention generator: deterministic (seeded ChaCha) and drawn from a corpus written for perch
//! (`assets/demo/corpus.toml`, compiled in): fictional customers asking, praising, complaining,
//! reporting bugs and joking, in several languages and scripts, with emoji, links, near-limit and
//! tiny posts, HTML-special characters and terminal escape sequences. Nobody real wrote any of it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use serde::Deserialize;

use super::SimUserSpec;
use super::state::{PostDraft, UserRecord, World};

const CORPUS_TOML: &str = include_str!("../../assets/demo/corpus.toml");

#[derive(Deserialize)]
pub(crate) struct Corpus {
    fragments: BTreeMap<String, Vec<String>>,
    templates: BTreeMap<String, Vec<String>>,
    announcements: Vec<String>,
    authors: Vec<AuthorSpec>,
}

#[derive(Deserialize)]
struct AuthorSpec {
    name: String,
    username: String,
    #[serde(default = "yes")]
    accepts_dms: bool,
    #[serde(default)]
    bio: String,
}

fn yes() -> bool {
    true
}

/// Categories of ordinary mentions and how often each is drawn.
const CATEGORY_WEIGHTS: &[(&str, u32)] = &[
    ("question", 18),
    ("praise", 12),
    ("complaint", 11),
    ("bug", 12),
    ("feature_request", 10),
    ("joke", 6),
    ("multilingual", 13),
    ("short", 8),
    ("long", 6),
    ("tricky", 4),
];

impl Corpus {
    /// Parses the compiled-in corpus and checks that every category the generator draws from
    /// has material.
    pub fn load() -> Result<Corpus, String> {
        let corpus: Corpus = toml::from_str(CORPUS_TOML)
            .map_err(|e| format!("assets/demo/corpus.toml is invalid: {e}"))?;
        let needed = CATEGORY_WEIGHTS
            .iter()
            .map(|(c, _)| *c)
            .chain(["pair", "reply", "quote", "thread"]);
        for category in needed {
            if corpus.templates.get(category).is_none_or(Vec::is_empty) {
                return Err(format!(
                    "assets/demo/corpus.toml has no templates for `{category}`"
                ));
            }
        }
        if corpus.authors.len() < 2 || corpus.announcements.is_empty() {
            return Err("assets/demo/corpus.toml needs authors and announcements".into());
        }
        Ok(corpus)
    }

    fn template(&self, category: &str, rng: &mut impl Rng) -> &str {
        self.templates
            .get(category)
            .and_then(|list| pick(list, rng))
            .map(String::as_str)
            .unwrap_or("{to} 👋")
    }

    fn fragment(&self, name: &str, rng: &mut impl Rng) -> String {
        self.fragments
            .get(name)
            .and_then(|list| pick(list, rng))
            .cloned()
            .unwrap_or_default()
    }
}

fn pick<'a, T>(list: &'a [T], rng: &mut impl Rng) -> Option<&'a T> {
    if list.is_empty() {
        None
    } else {
        list.get(rng.random_range(0..list.len()))
    }
}

fn short_link(rng: &mut impl Rng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let code: String = (0..10)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect();
    format!("https://t.co/{code}")
}

/// Fills a template's `{placeholders}`. Links become t.co short links, recorded in `links`.
fn fill(
    template: &str,
    corpus: &Corpus,
    world: &mut World,
    to: &str,
    to2: &str,
    links: &mut Vec<(String, String)>,
) -> String {
    let mut out = String::with_capacity(template.len() + 40);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let name = &after[..close];
        let rng = &mut world.rng;
        match name {
            "to" => out.push_str(&format!("@{to}")),
            "to2" => out.push_str(&format!("@{to2}")),
            "n" => out.push_str(&rng.random_range(2..60).to_string()),
            "link" => {
                let short = short_link(rng);
                let expanded = corpus.fragment("link", rng);
                out.push_str(&short);
                links.push((short, expanded));
            }
            other if corpus.fragments.contains_key(other) => {
                out.push_str(&corpus.fragment(other, rng));
            }
            _ => {
                out.push('{');
                out.push_str(name);
                out.push('}');
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn profile_image(world: &mut World, slug: &str) -> String {
    let n: u64 = world
        .rng
        .random_range(1_000_000_000_000_000_000..9_000_000_000_000_000_000);
    let slug: String = slug
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect::<String>()
        .to_lowercase();
    format!("https://pbs.twimg.com/profile_images/{n}/{slug}_normal.jpg")
}

/// A time in the past when an account was created: 2010-2023.
fn account_created_at(world: &mut World) -> DateTime<Utc> {
    let start = 1_293_840_000i64; // 2011-01-01
    let end = 1_704_067_200i64; // 2024-01-01
    DateTime::from_timestamp(world.rng.random_range(start..end), 0).unwrap_or_else(Utc::now)
}

/// Creates the configured accounts, the author pool, each account's own posts and the backlog.
pub(crate) fn populate(
    world: &mut World,
    corpus: &Corpus,
    users: &[SimUserSpec],
    backlog_per_user: usize,
    now: DateTime<Utc>,
) {
    for spec in users {
        let created_at = account_created_at(world);
        let id = world.next_id(created_at);
        let profile_image_url = profile_image(world, &spec.username);
        let followers_count = world.rng.random_range(800..90_000);
        let following_count = world.rng.random_range(50..900);
        world.add_user(UserRecord {
            id,
            username: spec.username.clone(),
            name: spec.name.clone(),
            profile_image_url,
            description: format!("{} (simulated account)", spec.name),
            created_at,
            accepts_dms: spec.accepts_dms,
            followers_count,
            following_count,
        });
        world.sim_user_ids.push(id);
    }
    for author in &corpus.authors {
        if world.find_user(&author.username).is_some() {
            continue;
        }
        let created_at = account_created_at(world);
        let id = world.next_id(created_at);
        let profile_image_url = profile_image(world, &author.username);
        let followers_count = world.rng.random_range(3..4_000);
        let following_count = world.rng.random_range(20..1_500);
        world.add_user(UserRecord {
            id,
            username: author.username.clone(),
            name: author.name.clone(),
            profile_image_url,
            description: author.bio.clone(),
            created_at,
            accepts_dms: author.accepts_dms,
            followers_count,
            following_count,
        });
        world.author_ids.push(id);
    }

    // The accounts' own posts, a little over a month ago: things to reply to and quote.
    let sim_ids = world.sim_user_ids.clone();
    for &user in &sim_ids {
        for _ in 0..4 {
            let ago = Duration::seconds(world.rng.random_range(30 * 86_400..36 * 86_400));
            let text = corpus
                .announcements
                .get(world.rng.random_range(0..corpus.announcements.len()))
                .cloned()
                .unwrap_or_default();
            let mut links = Vec::new();
            let text = fill(&text, corpus, world, "", "", &mut links);
            let like_count = world.rng.random_range(5..400);
            world.insert_post(PostDraft {
                author_id: user,
                text,
                at: now - ago,
                reply_to: None,
                quote_of: None,
                links,
                like_count,
                impression_count: like_count * 40,
            });
        }
    }

    // The backlog, spread over the past 30 days, generated oldest first so that replies and
    // quotes can point at earlier posts.
    let mut schedule: Vec<(DateTime<Utc>, u64)> = Vec::new();
    for &user in &sim_ids {
        for _ in 0..backlog_per_user {
            let ago = Duration::milliseconds(world.rng.random_range(5_000..30 * 86_400_000));
            schedule.push((now - ago, user));
        }
    }
    schedule.sort();
    for (at, user) in schedule {
        generate_mention(world, corpus, user, at);
    }
}

/// A live mention of a random configured account, created now.
pub(crate) fn generate_live(world: &mut World, corpus: &Corpus, now: DateTime<Utc>) -> Option<u64> {
    let to = *pick(&world.sim_user_ids.clone(), &mut world.rng)?;
    Some(generate_mention(world, corpus, to, now))
}

/// One generated post mentioning `to` at time `at`. Some are replies (to the account's own posts
/// or to an earlier mention's thread), some quote the account, some mention two accounts at once.
pub(crate) fn generate_mention(
    world: &mut World,
    corpus: &Corpus,
    to: u64,
    at: DateTime<Utc>,
) -> u64 {
    let to_name = world.username(to);
    let others: Vec<u64> = world
        .sim_user_ids
        .iter()
        .copied()
        .filter(|id| *id != to)
        .collect();
    // Authors are drawn with a skew: a few regulars write often, most write rarely.
    let skew: f64 = world.rng.random::<f64>().powf(1.7);
    let author_index = ((world.author_ids.len() as f64) * skew) as usize;
    let author = world
        .author_ids
        .get(author_index.min(world.author_ids.len().saturating_sub(1)))
        .copied()
        .unwrap_or(to);

    let roll: f64 = world.rng.random();
    let own_posts: Vec<u64> = world
        .posts_by_author
        .get(&to)
        .map(|p| p.iter().rev().take(12).copied().collect())
        .unwrap_or_default();
    let thread_parents: Vec<u64> = world
        .mentions
        .get(&to)
        .map(|m| {
            m.iter()
                .rev()
                .take(20)
                .copied()
                .filter(|id| world.posts.get(id).is_some_and(|p| p.author_id != author))
                .collect()
        })
        .unwrap_or_default();

    let mut reply_to = None;
    let mut quote_of = None;
    let mut prefix = String::new();
    let mut to2 = String::new();
    // A reply deeper in a thread whose only @to is among the leading handles: an implicit
    // mention. X's mentions timeline has it; the Activity API sends no event for it (ACTIVITY.md
    // §7), so only the reconciliation poll finds it.
    let mut implicit = false;
    let category = if roll < 0.10 && !others.is_empty() {
        let second = others[world.rng.random_range(0..others.len())];
        to2 = world.username(second);
        "pair"
    } else if roll < 0.22 && !own_posts.is_empty() {
        reply_to = Some(own_posts[world.rng.random_range(0..own_posts.len())]);
        "reply"
    } else if roll < 0.30 && !thread_parents.is_empty() {
        let parent = thread_parents[world.rng.random_range(0..thread_parents.len())];
        reply_to = Some(parent);
        let parent_author = world.posts.get(&parent).map(|p| p.author_id).unwrap_or(to);
        prefix = format!("@{} ", world.username(parent_author));
        // Half of them, chosen without drawing from the generator (so the rest of a seeded
        // world stays what it was before implicit mentions existed).
        implicit = parent.is_multiple_of(2);
        "thread"
    } else if roll < 0.36 && !own_posts.is_empty() {
        quote_of = Some(own_posts[world.rng.random_range(0..own_posts.len())]);
        "quote"
    } else {
        let total: u32 = CATEGORY_WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut ticket = world.rng.random_range(0..total);
        CATEGORY_WEIGHTS
            .iter()
            .find(|(_, w)| {
                if ticket < *w {
                    true
                } else {
                    ticket -= w;
                    false
                }
            })
            .map(|(c, _)| *c)
            .unwrap_or("question")
    };

    // Draw until the post fits X's limit (a few long templates can overflow with long fillers).
    let mut text = String::new();
    let mut links = Vec::new();
    for _ in 0..8 {
        links.clear();
        let template = corpus.template(category, &mut world.rng).to_string();
        let mut candidate = fill(&template, corpus, world, &to_name, &to2, &mut links);
        if implicit {
            candidate = candidate.replace(&format!("@{to_name}"), &to_name);
        }
        if !candidate
            .to_lowercase()
            .contains(&format!("@{}", to_name.to_lowercase()))
        {
            candidate = format!("@{to_name} {candidate}");
        }
        candidate = format!("{prefix}{candidate}");
        if let Some(quoted) = quote_of {
            let quoted_author = world
                .posts
                .get(&quoted)
                .map(|p| world.username(p.author_id))
                .unwrap_or_default();
            let short = short_link(&mut world.rng);
            candidate = format!("{candidate} {short}");
            links.push((
                short,
                format!("https://x.com/{quoted_author}/status/{quoted}"),
            ));
        }
        if crate::text::weighted_length(&candidate) <= crate::text::MAX_POST_LENGTH {
            text = candidate;
            break;
        }
    }
    if text.is_empty() {
        links.clear();
        text = format!("{prefix}@{to_name} 👋");
    }
    let like_count = world.rng.random_range(0..30);
    let impression_count = like_count * 12 + world.rng.random_range(3..200);
    world.insert_post(PostDraft {
        author_id: author,
        text,
        at,
        reply_to,
        quote_of,
        links,
        like_count,
        impression_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;

    fn world_with_backlog(seed: u64, per_user: usize) -> World {
        let config = SimConfig::for_tests(seed);
        let corpus = Corpus::load().expect("corpus parses");
        let mut world = World::new(&config);
        let now = DateTime::from_timestamp(1_790_000_000, 0).unwrap();
        populate(&mut world, &corpus, &config.users, per_user, now);
        world
    }

    #[test]
    fn corpus_parses_and_covers_every_category() {
        Corpus::load().unwrap();
    }

    #[test]
    fn same_seed_same_mentions() {
        let a = world_with_backlog(7, 30);
        let b = world_with_backlog(7, 30);
        let texts = |w: &World| w.posts.values().map(|p| p.text.clone()).collect::<Vec<_>>();
        assert_eq!(texts(&a), texts(&b));
        assert_ne!(texts(&a), texts(&world_with_backlog(8, 30)));
    }

    #[test]
    fn backlog_mentions_every_account_fits_the_limit_and_varies() {
        let world = world_with_backlog(11, 120);
        for id in &world.sim_user_ids {
            assert!(world.mentions.get(id).map_or(0, |m| m.len()) >= 120);
        }
        let posts: Vec<_> = world.posts.values().collect();
        for p in &posts {
            assert!(crate::text::weighted_length(&p.text) <= 280, "{}", p.text);
        }
        let any = |f: &dyn Fn(&str) -> bool| posts.iter().any(|p| f(&p.text));
        assert!(
            any(&|t| t.chars().any(|c| ('\u{3040}'..='\u{9fff}').contains(&c))),
            "CJK"
        );
        assert!(any(&|t| t.contains('\u{200d}')), "ZWJ emoji");
        assert!(any(&|t| t.contains("https://t.co/")), "links");
        assert!(
            any(&|t| t.contains('&') || t.contains('<')),
            "HTML specials"
        );
        assert!(any(&|t| t.contains('\u{1b}')), "terminal escapes");
        assert!(
            any(&|t| crate::text::weighted_length(t) >= 230),
            "near-limit posts"
        );
        assert!(any(&|t| t.chars().count() <= 16), "tiny posts");
        assert!(
            posts.iter().any(|p| !p.referenced.is_empty()),
            "replies or quotes"
        );
        assert!(
            posts.iter().any(|p| p.mentions.len() >= 2),
            "two accounts at once"
        );
    }
}
