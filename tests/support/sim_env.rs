//! perch's configuration for a test that runs perch's own pieces (an `App`, a service) against a
//! simulator: X's endpoints are the simulator's, and every file perch writes is under `home`. And
//! what X (the simulator) says of a token perch held.
//! Included with `#[path]` by the tests that need it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use perch::config::Config;
use perch::sim::{self, SimHandle};

/// The `PERCH_*` environment pointing perch at `sim`, with its store in `home/store` and no
/// config file, plus `extra` (which may override any of them).
pub fn env(sim: &SimHandle, home: &Path, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = [
        ("PERCH_CONFIG", home.join("none.toml").display().to_string()),
        ("PERCH_DATA_DIR", home.join("store").display().to_string()),
        ("PERCH_API_BASE", sim.api_base()),
        ("PERCH_AUTHORIZE_URL", sim.authorize_url()),
        ("PERCH_TOKEN_URL", sim.token_url()),
        ("PERCH_CLIENT_ID", sim::DEMO_CLIENT_ID.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

/// The configuration of [`env`].
pub fn config(sim: &SimHandle, home: &Path, extra: &[(&str, &str)]) -> Config {
    Config::load_from(&env(sim, home, extra)).expect("the test's config loads")
}

/// The status X (the simulator) answers `GET /2/users/me` with for `tokens`' access token: 200
/// while its grant lives, 401 once it is revoked.
pub async fn users_me(sim: &SimHandle, tokens: &perch::domain::Tokens) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/2/users/me", sim.api_base()))
        .bearer_auth(tokens.access_token.expose())
        .send()
        .await
        .expect("the simulator answers")
        .status()
        .as_u16()
}
