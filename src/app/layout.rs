//! Where each pane goes for a given terminal size. `update` needs it (how many feed rows are
//! visible, which panes Tab can reach) and `ui::draw` needs it (where to draw), so it lives here
//! as pure geometry that both read.

use ratatui::layout::{Constraint, Layout, Rect};

/// Rows taken by the status bar at the bottom.
pub const STATUS_BAR_HEIGHT: u16 = 2;

/// The rectangles of one frame. A pane that does not fit is `None` (hidden).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScreenLayout {
    pub accounts: Option<Rect>,
    pub feed: Rect,
    pub detail: Option<Rect>,
    pub status: Rect,
}

impl ScreenLayout {
    /// How many mention rows the feed pane shows (inside its border).
    pub fn feed_rows(&self) -> usize {
        usize::from(self.feed.height.saturating_sub(2))
    }
}

/// Wide screens get three columns (accounts | feed | detail). Below 140 columns the detail pane
/// moves under the feed (so the feed keeps room for the post text); below 64 columns the accounts pane is hidden (the feed matters most);
/// on very short screens the detail pane is hidden.
pub fn screen_layout(area: Rect) -> ScreenLayout {
    let [main, status] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(STATUS_BAR_HEIGHT.min(area.height)),
    ])
    .areas(area);

    if area.width >= 140 {
        let accounts_width = 28;
        let detail_width = (main.width * 30 / 100).max(44);
        let [accounts, feed, detail] = Layout::horizontal([
            Constraint::Length(accounts_width),
            Constraint::Min(20),
            Constraint::Length(detail_width),
        ])
        .areas(main);
        return ScreenLayout {
            accounts: Some(accounts),
            feed,
            detail: Some(detail),
            status,
        };
    }

    let (accounts, right) = if area.width >= 64 {
        let accounts_width = if area.width >= 100 { 26 } else { 22 };
        let [accounts, right] =
            Layout::horizontal([Constraint::Length(accounts_width), Constraint::Min(20)])
                .areas(main);
        (Some(accounts), right)
    } else {
        (None, main)
    };

    if right.height >= 16 {
        let detail_height = (right.height * 2 / 5).max(6);
        let [feed, detail] =
            Layout::vertical([Constraint::Min(4), Constraint::Length(detail_height)]).areas(right);
        ScreenLayout {
            accounts,
            feed,
            detail: Some(detail),
            status,
        }
    } else {
        ScreenLayout {
            accounts,
            feed: right,
            detail: None,
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_terminal_still_shows_accounts_feed_and_detail() {
        let l = screen_layout(Rect::new(0, 0, 80, 24));
        assert!(l.accounts.is_some());
        assert!(l.detail.is_some());
        assert!(l.feed_rows() >= 8, "{l:?}");
    }

    #[test]
    fn narrow_terminal_hides_accounts_pane() {
        let l = screen_layout(Rect::new(0, 0, 50, 12));
        assert!(l.accounts.is_none());
        assert!(l.detail.is_none());
        assert_eq!(l.feed.width, 50);
    }

    #[test]
    fn wide_terminal_uses_three_columns() {
        let l = screen_layout(Rect::new(0, 0, 160, 40));
        let (a, d) = (l.accounts.unwrap(), l.detail.unwrap());
        assert!(a.x < l.feed.x && l.feed.x < d.x);
        assert_eq!(l.feed.height, 38);
    }

    #[test]
    fn medium_terminal_puts_detail_under_a_wide_feed() {
        let l = screen_layout(Rect::new(0, 0, 120, 40));
        let d = l.detail.unwrap();
        assert!(d.y > l.feed.y && d.x == l.feed.x);
        assert!(l.feed.width >= 90, "{l:?}");
        assert!(l.feed_rows() >= 20, "{l:?}");
    }
}
