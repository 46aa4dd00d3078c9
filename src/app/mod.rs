//! The application core: all UI state ([`AppState`]), the inputs it reacts to ([`Action`]), the
//! work it asks the event loop to do ([`Effect`]) and the one function that ties them together,
//! [`update`]. Nothing here touches the terminal or the network, so every key press can be tested
//! with a store in a temporary directory and nothing else.

pub mod accounts;
pub mod composer;
pub mod costs;
pub mod feed;
pub mod keymap;
pub mod keymap_config;
pub mod layout;
pub mod marks;
pub mod message;
pub mod notify;
pub mod outbox_board;
pub mod overlay;
pub mod search;
pub mod source;
pub mod state;
pub mod team;
pub mod time;
pub mod triage;
pub mod update;

pub use composer::{Composer, Measure};
pub use feed::{FeedRow, FeedWindow};
pub use keymap::{Intent, Keymap};
pub use layout::{ScreenLayout, screen_layout};
pub use message::{Action, Effect, Job};
pub use source::{AccountFigures, FeedSource, StoreWrites};
pub use state::{AccountRow, AppState, Mode, Notice, NoticeKind, Pane, SavedReplies, StatusFilter};
pub use update::update;
