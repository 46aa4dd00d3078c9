//! `s`: one account's statistics: the figures of `perch accounts stats` (from counters), mentions
//! per day over the last 30 days as a bar chart, and its most recent mentions.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, BorderType, Clear, Paragraph};

use crate::app::AppState;
use crate::app::accounts::StatsView;
use crate::app::keymap::{Intent, ViewAction};
use crate::app::time::{compact_age, relative_time};
use crate::text;
use crate::ui::widgets::key_hints;
use crate::ui::{Theme, centered};

pub fn draw(
    frame: &mut Frame,
    screen: Rect,
    state: &AppState,
    view: &StatsView,
    theme: &Theme,
    now: DateTime<Utc>,
) {
    let s = &view.stats;
    let width = 78.min(screen.width);
    let height = screen.height.saturating_sub(2).max(3);
    let area = centered(screen, width, height);
    let account_style = theme.account(state.account_colour_index(view.account_id));
    let display_name = state
        .account(view.account_id)
        .map(|r| text::for_screen(&r.account.display_name, true))
        .unwrap_or_default();
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .border_style(account_style)
        .title(Span::styled(
            format!(
                " Stats · @{} ({display_name}) ",
                text::for_screen(&s.username, true)
            ),
            account_style,
        ))
        .title_bottom(key_hints(
            {
                let k = &state.keymap;
                vec![
                    (k.view.label(ViewAction::Close), "close"),
                    (k.key(Intent::TogglePause), "pause/resume"),
                    (k.key(Intent::FetchAccount), "fetch"),
                    (k.key(Intent::Open), "detail"),
                    (k.key(Intent::RemoveAccount), "remove"),
                ]
            },
            theme,
        ));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let inner = Rect::new(
        inner.x + 1,
        inner.y,
        inner.width.saturating_sub(2),
        inner.height,
    );
    let [figures, chart_title, chart, axis, cost, recent] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(1),
        Constraint::Length(6),
        Constraint::Length(1),
        Constraint::Length(if view.costs.reconciliation.is_some() {
            5
        } else {
            4
        }),
        Constraint::Min(0),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(crate::ui::costs::stats_lines(
            &view.costs,
            theme,
            usize::from(cost.width),
        )),
        cost,
    );

    let synced = match s.last_synced {
        Some(t) => relative_time(t, now),
        None => "never".to_string(),
    };
    let number = |n: String| Span::styled(n, theme.title);
    let label = |l: &'static str| Span::styled(l, theme.dim);
    let figure_lines = vec![
        Line::from(vec![
            label("status "),
            Span::styled(
                s.sync_status.as_str().replace('_', " "),
                theme.sync_status(s.sync_status),
            ),
            label(if s.is_active { "" } else { " (not polled)" }),
            label(" · last synced "),
            Span::raw(synced),
        ]),
        Line::from(vec![
            number(s.total_mentions.to_string()),
            label(" mentions · "),
            number(s.pending_mentions.to_string()),
            label(" pending · "),
            number(s.replied_mentions.to_string()),
            label(" replied"),
        ]),
        Line::from(vec![
            label("tracked since "),
            Span::raw(s.tracked_since.format("%-d %b %Y").to_string()),
            label(" ("),
            number(crate::text::count(s.days_tracked, "day", "days")),
            label("): "),
            number(format!("{:.2}", s.avg_mentions_per_day)),
            label(" mentions a day in that time"),
        ]),
    ];
    frame.render_widget(Paragraph::new(figure_lines), figures);

    let peak = view.daily.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let last30: u64 = view.daily.iter().map(|(_, n)| *n).sum();
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Mentions per day by post date, last 30 days", theme.title),
            Span::styled(format!(" · {last30} in all, peak {peak} a day"), theme.dim),
        ])),
        chart_title,
    );
    let days = view.daily.len().max(1) as u16;
    // Bars as wide as the room allows, with a one-cell gap when there is room for it.
    let (bar_width, gap) = if chart.width >= days * 2 {
        ((chart.width - days) / days, 1)
    } else {
        ((chart.width / days).max(1), 0)
    };
    let bars: Vec<Bar> = view
        .daily
        .iter()
        .map(|(_, n)| Bar::new(*n).text_value(String::new()))
        .collect();
    frame.render_widget(
        BarChart::default()
            .data(BarGroup::default().bars(&bars))
            .bar_width(bar_width.max(1))
            .bar_gap(gap)
            .bar_style(account_style)
            .max(peak.max(1)),
        chart,
    );
    if let (Some((first, _)), Some((last, _))) = (view.daily.first(), view.daily.last()) {
        let left = first.format("%b %d").to_string();
        let right = last.format("%b %d").to_string();
        let used = days * (bar_width.max(1) + gap);
        let pad = usize::from(used.min(axis.width))
            .saturating_sub(left.len() + right.len() + gap as usize);
        frame.render_widget(
            Paragraph::new(Line::styled(
                format!("{left}{}{right}", " ".repeat(pad)),
                theme.dim,
            )),
            axis,
        );
    }

    let room = usize::from(recent.width);
    let mut recent_lines = vec![Line::styled("Most recent mentions", theme.title)];
    if view.recent.is_empty() {
        recent_lines.push(Line::styled("none stored yet", theme.dim));
    }
    for m in &view.recent {
        let sender = text::fit_width(&text::for_screen(&m.sender.handle(), true), 14);
        let age = format!("{:>4} ", compact_age(m.timestamp, now));
        let status = format!(" {:<8}", m.status.as_str());
        let used = text::width(&age) + text::width(&sender) + text::width(&status) + 1;
        let body =
            text::truncate_to_width(&text::for_screen(&m.text, true), room.saturating_sub(used));
        recent_lines.push(Line::from(vec![
            Span::styled(age, theme.dim),
            Span::raw(sender),
            Span::styled(status, theme.mention_status(m.status)),
            Span::raw(" "),
            Span::raw(body),
        ]));
    }
    frame.render_widget(Paragraph::new(recent_lines), recent);
}
