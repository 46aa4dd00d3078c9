//! The account overlays (`Mode::Account`): which one to draw, and the small pieces they share.

use chrono::{DateTime, Utc};
use ratatui::Frame;

use crate::app::AppState;
use crate::app::accounts::AccountOverlay;
use crate::ui::{Theme, account_detail, add_account, confirm_remove, stats};

pub fn draw(
    frame: &mut Frame,
    state: &AppState,
    overlay: &AccountOverlay,
    theme: &Theme,
    now: DateTime<Utc>,
) {
    let screen = frame.area();
    match overlay {
        AccountOverlay::Login(dialog) => {
            add_account::draw(frame, screen, dialog, &state.keymap, theme)
        }
        AccountOverlay::Detail(view) => {
            account_detail::draw(frame, screen, state, view, theme, now)
        }
        AccountOverlay::Stats(view) => stats::draw(frame, screen, state, view, theme, now),
        AccountOverlay::ConfirmRemove(dialog) => {
            confirm_remove::draw(frame, screen, dialog, &state.keymap, theme)
        }
    }
}
