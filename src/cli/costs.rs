//! `perch costs [--account @h] [--month 2026-12] [--json] [--prices]`: the cost estimate from
//! the store's counters, labelled an estimate with the date of the prices.

use chrono::Utc;

use super::{CliResult, Failure, find_account, open_store, print_json};
use crate::config::Config;
use crate::cost_report;
use crate::costs::{self, CostKind, Month};

pub async fn run(
    config: &Config,
    account: Option<&str>,
    month: Option<&str>,
    json: bool,
    prices: bool,
) -> CliResult {
    if prices {
        return print_prices(config, json);
    }
    let now = Utc::now();
    let month = match month {
        None => Month::of(costs::billing_day(now)),
        Some(m) => Month::parse(m).ok_or_else(|| {
            Failure::usage(format!("--month {m:?}: expected a month like 2026-12"))
        })?,
    };
    let store = open_store(config).await?;
    let accounts = store.accounts()?;
    let only = match account {
        Some(name) => Some(find_account(&store, name)?.id),
        None => None,
    };
    // X's own count, read at most once an hour (it is rate limited, and it moves slowly).
    if let Some(bearer) = &config.app_bearer_token {
        let stale = store
            .x_usage()?
            .is_none_or(|u| now - u.fetched_at > chrono::Duration::hours(1));
        if stale {
            let client = crate::x::XClient::new(&config.api_base);
            if let Err(e) =
                crate::sync::spend::refresh_x_usage(&client, &store.shared(), bearer).await
            {
                crate::errln!("perch: {}", crate::text::sanitize(&e, true));
            }
        }
    }
    let report = cost_report::report(&store, &accounts, only, month, now)?;
    if json {
        return print_json(&report);
    }
    let prices = &config.pricing.prices;
    crate::outln!(
        "Cost estimate for {month} (USD, at X's prices of {}; X's console has the real bill)",
        prices.date
    );
    crate::outln!(
        "today {}  ·  {month} {}",
        fmt(report.today_usd),
        fmt(report.month_usd)
    );
    for a in &report.accounts {
        crate::outln!();
        crate::outln!(
            "{}  today {}  ·  {month} {}",
            crate::text::sanitize(&a.account, true),
            fmt(a.today_usd),
            fmt(a.month_usd)
        );
        if a.by_kind.is_empty() {
            crate::outln!("  nothing billable yet");
        }
        for (kind, k) in &a.by_kind {
            crate::outln!(
                "  {:<17} {:>7} × {:<7} = {}",
                kind.as_str(),
                k.count,
                costs::format_price(prices.of(*kind)),
                fmt(k.usd)
            );
        }
        if let Some(account) = accounts.iter().find(|x| x.handle() == a.account) {
            let stats = cost_report::account_cost_stats(&store, account.id, now)?;
            match stats.per_handled_mention {
                Some(m) => crate::outln!("  per handled mention: {}", costs::format_usd(m)),
                None => crate::outln!("  per handled mention: none handled yet"),
            }
            let days: Vec<String> = store
                .account_cost_rows(account.id, month.first_day(), month.last_day())?
                .into_iter()
                .fold(std::collections::BTreeMap::new(), |mut by_day, r| {
                    *by_day.entry(r.day).or_insert(0u64) += r.used.micros;
                    by_day
                })
                .into_iter()
                .map(|(day, micros)| {
                    format!("{} {}", day.format("%m-%d"), costs::format_usd(micros))
                })
                .collect();
            if !days.is_empty() {
                crate::outln!("  per day: {}", days.join(" · "));
            }
        }
    }
    if let Some(r) = cost_report::reconciliation(&store, now)? {
        crate::outln!();
        crate::outln!("{}", r.line());
    } else if config.app_bearer_token.is_none() {
        crate::outln!();
        crate::outln!(
            "(set app_bearer_token or PERCH_APP_BEARER_TOKEN to compare with X's own post count)"
        );
    }
    Ok(())
}

fn fmt(usd: f64) -> String {
    costs::format_usd(costs::usd_to_micros(usd).unwrap_or(0))
}

fn print_prices(config: &Config, json: bool) -> CliResult {
    let prices = &config.pricing.prices;
    if json {
        let by: serde_json::Map<String, serde_json::Value> = CostKind::ALL
            .iter()
            .map(|k| {
                (
                    k.as_str().to_string(),
                    serde_json::json!(costs::micros_to_usd(prices.of(*k))),
                )
            })
            .collect();
        return print_json(&serde_json::json!({
            "currency": "USD",
            "prices_date": prices.date,
            "app_owner": config.pricing.app_owner.as_ref().map(|h| format!("@{h}")),
            "prices": by,
        }));
    }
    crate::outln!(
        "X API prices perch estimates with (USD, taken from X's pricing page of {}; override in [prices] of {})",
        prices.date,
        config.config_path.display()
    );
    for k in CostKind::ALL {
        crate::outln!(
            "  {:<17} {:>7}  per {}",
            k.as_str(),
            costs::format_price(prices.of(k)),
            match k {
                CostKind::StreamEvent => "event delivered (once per UTC day)",
                k if k.is_read() => "resource read (once per UTC day)",
                _ => "request",
            }
        );
    }
    match &config.pricing.app_owner {
        Some(owner) => crate::outln!("app owner: @{owner} (its own mentions are owned reads)"),
        None => {
            crate::outln!(
                "app owner: not set (app_owner = \"@handle\" makes its mentions owned reads)"
            )
        }
    }
    Ok(())
}
