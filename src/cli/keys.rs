//! `perch keys`: the key map the dashboard would use, made from the same config, so a user can
//! check a remapping without opening the dashboard (and paste lines back into the config).

use crate::app::keymap::LAYERS;
use crate::app::keymap_config;
use crate::config::Config;

use super::{CliResult, Failure};

pub fn run(config: &Config, layer: Option<&str>, json: bool) -> CliResult {
    let map = keymap_config::build(&config.keys, &config.config_path).map_err(Failure::new)?;
    if let Some(name) = layer
        && !LAYERS.contains(&name)
    {
        return Err(Failure::usage(format!(
            "--layer {name:?} is not a key layer: use one of {}",
            LAYERS.join(", ")
        )));
    }
    let layers: Vec<&str> = match layer {
        Some(name) => vec![name],
        None => LAYERS.to_vec(),
    };
    if json {
        let all = map.to_json();
        let mut out = serde_json::Map::new();
        for name in &layers {
            if let Some(value) = all.get(*name) {
                out.insert((*name).to_string(), value.clone());
            }
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::Value::Object(out))
                .map_err(|e| Failure::new(format!("cannot write JSON: {e}")))?
        );
        return Ok(());
    }
    for (i, name) in layers.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("[keys.{name}]");
        for (key, action) in map.layer_lines(name).unwrap_or_default() {
            println!("{:<16} = {action:?}", format!("{key:?}"));
        }
    }
    Ok(())
}
