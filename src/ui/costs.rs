//! Cost text for the panes: the accounts pane's "· est. $0.04 today", the status bar's totals,
//! and the stats view's cost section. Everything says it is an estimate.

use ratatui::text::{Line, Span};

use crate::app::AppState;
use crate::cost_report::AccountCostStats;
use crate::costs::{self, CostKind};
use crate::domain::AccountId;
use crate::ui::Theme;

/// "  est. $0.04 today" under an account in the accounts pane (nothing before anything was
/// spent today).
pub fn account_line(
    state: &AppState,
    account: AccountId,
    width: usize,
    theme: &Theme,
) -> Option<Line<'static>> {
    match state.costs.today_of(account) {
        0 => None,
        micros => Some(Line::from(Span::styled(
            crate::text::truncate_to_width(
                &format!("  est. {} today", costs::format_usd(micros)),
                width,
            ),
            theme.dim,
        ))),
    }
}

/// " · est. $0.04 today · $1.20 this month" for the status bar.
pub fn status_totals(state: &AppState) -> String {
    let t = state.costs.totals;
    if t.month == 0 {
        return String::new();
    }
    format!(
        " · est. {} today · {} this month",
        costs::format_usd(t.today),
        costs::format_usd(t.month)
    )
}

/// The stats view's cost section: this month per kind, the price of a handled mention, and 30
/// days of daily cost as a bar row.
pub fn stats_lines(c: &AccountCostStats, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(Span::styled(
        format!(
            "Cost (estimate, X's prices of {}): {} this month",
            c.prices_date,
            costs::format_usd(c.month_total)
        ),
        theme.title,
    ))];
    let per_kind: Vec<String> = c
        .by_kind
        .iter()
        .filter(|(_, u)| u.count > 0)
        .map(|(k, u)| {
            format!(
                "{} {} = {}",
                kind_label(*k),
                u.count,
                costs::format_usd(u.micros)
            )
        })
        .collect();
    if per_kind.is_empty() {
        lines.push(Line::from(Span::styled(
            "  nothing billable yet",
            theme.dim,
        )));
    } else {
        lines.push(Line::from(Span::raw(crate::text::truncate_to_width(
            &format!("  {}", per_kind.join(" · ")),
            width,
        ))));
    }
    let handled = match c.per_handled_mention {
        Some(m) => format!("  per handled mention: {}", costs::format_usd(m)),
        None => "  per handled mention: none handled yet".to_string(),
    };
    lines.push(Line::from(Span::styled(handled, theme.dim)));
    if let Some(r) = &c.reconciliation {
        lines.push(Line::from(Span::styled(
            crate::text::truncate_to_width(&format!("  all accounts: {}", r.short()), width),
            theme.dim,
        )));
    }
    let max = c.daily.iter().map(|(_, m)| *m).max().unwrap_or(0);
    let bars: String = c.daily.iter().map(|(_, m)| bar(*m, max)).collect();
    lines.push(Line::from(vec![
        Span::styled("  30 days ", theme.dim),
        Span::raw(bars),
        Span::styled(format!(" max {}/day", costs::format_usd(max)), theme.dim),
    ]));
    lines
}

fn kind_label(kind: CostKind) -> &'static str {
    kind.as_str()
}

fn bar(value: u64, max: u64) -> char {
    const BARS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if max == 0 || value == 0 {
        return '·';
    }
    let i = ((value * 8).div_ceil(max)).clamp(1, 8) as usize;
    BARS[i]
}
