//! `perch completions bash|zsh|fish` and `perch man`, generated from the clap definitions
//! (clap_complete, clap_mangen), and the hidden `perch __complete-accounts` the completion
//! scripts call to complete account handles from the store.
//!
//! clap_complete's scripts are static: they know the commands and flags, not the accounts. So
//! each script gets a few lines of glue that, at every Tab, ask `perch __complete-accounts` with
//! the words typed so far. perch decides from its own clap definitions whether the word being
//! completed is an account (`--account`, or the ACCOUNT of `accounts show|pause|...`), and only
//! then reads the handles: from the running service if there is one (as every command does), or
//! else from the store, bounded in time. It prints nothing at all on any error, so a Tab never
//! shows a message; when it prints nothing the shell falls back to clap's own completion.

use std::time::Duration;

use clap::{CommandFactory as _, ValueEnum};

use super::{Cli, CliResult, Failure};
use crate::config::Config;

/// The shells `perch completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// The name of the hidden command the scripts call.
pub const COMPLETE_ACCOUNTS: &str = "__complete-accounts";

/// The longest a Tab waits for the handles (from the service or the store).
const ACCOUNTS_TIMEOUT: Duration = Duration::from_secs(2);

/// The completion script for `shell`: clap_complete's, with the account glue.
pub fn script(shell: CompletionShell) -> String {
    let mut command = visible_tree(&Cli::command());
    let mut out = Vec::new();
    let generator = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(generator, &mut command, "perch", &mut out);
    let generated = String::from_utf8_lossy(&out).into_owned();
    match shell {
        CompletionShell::Bash => format!("{generated}\n{BASH_GLUE}"),
        CompletionShell::Zsh => zsh_with_glue(&generated),
        CompletionShell::Fish => format!("{generated}\n{FISH_GLUE}{}", fish_account_options()),
    }
}

/// `command` without its hidden subcommands (clap_complete's scripts would offer them): the
/// same names, help, arguments and version, rebuilt, since a clap command cannot drop one.
fn visible_tree(command: &clap::Command) -> clap::Command {
    let mut out = clap::Command::new(command.get_name().to_string())
        .visible_aliases(command.get_visible_aliases().map(str::to_string));
    if let Some(about) = command.get_about() {
        out = out.about(about.clone());
    }
    if let Some(about) = command.get_long_about() {
        out = out.long_about(about.clone());
    }
    if let Some(version) = command.get_version() {
        out = out.version(version.to_string());
    }
    for arg in command.get_arguments() {
        out = out.arg(arg.clone());
    }
    for sub in command.get_subcommands().filter(|c| !c.is_hide_set()) {
        out = out.subcommand(visible_tree(sub));
    }
    out
}

/// bash: complete handles where perch says an account goes, else clap's completion.
const BASH_GLUE: &str = r#"# Account handles, from the store (perch decides where a handle goes).
_perch_with_accounts() {
    # The words as typed, split on blanks only (COMP_WORDS also splits at @ = : ...).
    local line="${COMP_LINE:0:COMP_POINT}" cur="" handles
    local -a words
    read -ra words <<< "$line"
    if [[ -n "$line" && "$line" != *[[:space:]] && ${#words[@]} -gt 0 ]]; then
        cur="${words[${#words[@]}-1]}"
        unset "words[${#words[@]}-1]"
    fi
    if [[ ${#words[@]} -gt 0 ]]; then
        handles="$("${words[0]}" __complete-accounts --current="$cur" -- "${words[@]:1}" 2>/dev/null)"
    fi
    if [[ -n "$handles" ]]; then
        # With @ in COMP_WORDBREAKS (bash's default) bash replaces only what follows the @.
        if [[ "$cur" == @* && "$COMP_WORDBREAKS" == *@* ]]; then
            cur="${cur#@}"
            handles="${handles//@/}"
        fi
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$handles" -- "$cur"))
        return 0
    fi
    _perch "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _perch_with_accounts -o nosort -o bashdefault -o default perch
else
    complete -F _perch_with_accounts -o bashdefault -o default perch
fi
"#;

/// fish: one more source of candidates, empty except where an account goes.
const FISH_GLUE: &str = r#"# Account handles, from the store (perch decides where a handle goes).
function __perch_accounts
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    $words[1] __complete-accounts --current="$current" -- $words[2..-1] 2>/dev/null
end
function __perch_wants_account
    set -l handles (__perch_accounts)
    test (count $handles) -gt 0
end
complete -c perch -n __perch_wants_account -f -a '(__perch_accounts)'
"#;

/// fish takes the values of an option from that option's own rules only: one more rule for each
/// option that takes an account (`--account`), from the clap definitions.
fn fish_account_options() -> String {
    fn collect(command: &clap::Command, longs: &mut std::collections::BTreeSet<String>) {
        for arg in command.get_arguments() {
            if arg.get_id() == "account"
                && let Some(long) = arg.get_long()
            {
                longs.insert(long.to_string());
            }
        }
        for sub in command.get_subcommands() {
            collect(sub, longs);
        }
    }
    let mut longs = std::collections::BTreeSet::new();
    collect(&Cli::command(), &mut longs);
    longs
        .iter()
        .map(|long| format!("complete -c perch -l {long} -x -a '(__perch_accounts)'\n"))
        .collect()
}

/// zsh: clap's `_perch` becomes `_perch_clap`, and `_perch` tries the handles first. The file
/// works both sourced and autoloaded from `$fpath` (clap's closing lines call or register
/// `_perch`, which is now the wrapper).
fn zsh_with_glue(generated: &str) -> String {
    const WRAPPER: &str = r#"# Account handles, from the store (perch decides where a handle goes).
_perch() {
    local -a handles
    handles=(${(f)"$(${words[1]} __complete-accounts --current="${words[CURRENT]}" -- "${(@)words[2,CURRENT-1]}" 2>/dev/null)"})
    if (( ${#handles} )); then
        compadd -a handles
        return
    fi
    _perch_clap "$@"
}

"#;
    let renamed = generated.replacen("\n_perch() {", "\n_perch_clap() {", 1);
    match renamed.rfind("\nif [ \"$funcstack[1]\" = \"_perch\" ]") {
        Some(at) => format!("{}\n{WRAPPER}{}", &renamed[..at], &renamed[at + 1..]),
        // clap changed its closing lines: register the wrapper ourselves.
        None => format!("{renamed}\n{WRAPPER}compdef _perch perch\n"),
    }
}

/// The man page of `perch` (no `path`), or of one of its commands (`["accounts"]`:
/// perch-accounts(1)), as roff.
pub fn man_page(path: &[String]) -> Result<String, Failure> {
    let mut command = Cli::command();
    command.build();
    let mut name = String::from("perch");
    for word in path {
        let Some(sub) = command.find_subcommand(word).filter(|c| !c.is_hide_set()) else {
            let known: Vec<&str> = command
                .get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name())
                .collect();
            return Err(Failure::usage(format!(
                "`{name}` has no command {word:?}; it has: {}",
                known.join(", ")
            )));
        };
        name = format!("{name}-{}", sub.get_name());
        command = sub.clone().version(env!("CARGO_PKG_VERSION"));
    }
    let command = command.name(name);
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .map_err(|e| Failure::new(format!("could not write the man page: {e}")))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Whether the word after `words` (the command line after `perch`, up to the word being
/// completed) is an account, by perch's clap definitions: the value of an option or a positional
/// argument whose id is `account`. Also returns the `--data-dir` given on the line, so the
/// handles come from that store.
pub fn account_goes_next(words: &[String]) -> (bool, Option<String>) {
    let root = {
        let mut c = Cli::command();
        c.build();
        c
    };
    let mut command = &root;
    let mut data_dir = None;
    let mut positionals = 0usize;
    let mut i = 0;
    // An option's value is next: is it an account?
    let mut pending_value: Option<bool> = None;
    while i < words.len() {
        let word = words[i].as_str();
        i += 1;
        if pending_value.take().is_some() {
            continue; // the option's value
        }
        if word == "--" {
            // Everything after is positional.
            positionals += words.len() - i;
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let arg = command
                .get_arguments()
                .chain(root.get_arguments().filter(|a| a.is_global_set()))
                .find(|a| a.get_long() == Some(name));
            let takes_value = arg.is_some_and(|a| a.get_action().takes_values());
            if name == "data-dir" {
                match inline {
                    Some(v) => data_dir = Some(v.to_string()),
                    None => data_dir = words.get(i).cloned(),
                }
            }
            if takes_value && inline.is_none() {
                pending_value = Some(arg.is_some_and(|a| a.get_id() == "account"));
            }
            continue;
        }
        if word.starts_with('-') && word.len() > 1 {
            continue; // -h, -V: no short option takes a value
        }
        match command.find_subcommand(word) {
            Some(sub) if positionals == 0 => command = sub,
            _ => positionals += 1,
        }
    }
    let is_account = match pending_value {
        Some(is_account) => is_account,
        None => command
            .get_positionals()
            .nth(positionals)
            .is_some_and(|a| a.get_id() == "account"),
    };
    (is_account, data_dir)
}

/// `perch __complete-accounts --current=WORD -- WORDS...` in the shell's process: the handles,
/// one a line, when an account goes after WORDS (as `@handle` when WORD starts with `@`, so the
/// shell's matching keeps them); nothing otherwise, and nothing (exit 0) on any error. Called
/// before the configuration is loaded for anything else, so a broken config file prints nothing.
pub async fn complete_accounts(
    words: Vec<String>,
    current: &str,
    data_dir: Option<std::path::PathBuf>,
) -> CliResult {
    let (is_account, dir_on_line) = account_goes_next(&words);
    if !is_account {
        return Ok(());
    }
    let Ok(mut config) = Config::load() else {
        return Ok(());
    };
    if let Some(dir) = dir_on_line.map(Into::into).or(data_dir) {
        config.data_dir = dir;
    }
    // The running service holds the store: the same command runs there (`served_accounts`) and
    // its lines come back on stdout.
    let ask = async {
        match super::remote::running_service(&config).await {
            Some(socket) => {
                let _ = super::remote::forward(&socket).await;
            }
            None => {
                for handle in stored_handles(&config).await.unwrap_or_default() {
                    crate::outln!("{}{handle}", at_sign(current));
                }
            }
        }
    };
    let _ = tokio::time::timeout(ACCOUNTS_TIMEOUT, ask).await;
    Ok(())
}

/// `perch __complete-accounts` run by the service for a client: the handles in its store.
pub async fn served_accounts(config: &Config, words: Vec<String>, current: &str) -> CliResult {
    if !account_goes_next(&words).0 {
        return Ok(());
    }
    let Ok(store) = super::open_store(config).await else {
        return Ok(());
    };
    for account in store.accounts().unwrap_or_default() {
        if is_handle(&account.twitter_username) {
            crate::outln!("{}{}", at_sign(current), account.twitter_username);
        }
    }
    Ok(())
}

/// The handles in the store, when there is one (none is created), read on a thread of its own:
/// on time-out it is left behind, and the process ends without waiting for it.
async fn stored_handles(config: &Config) -> Option<Vec<String>> {
    if !config.data_dir.join("db").exists() {
        return None;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let dir = config.data_dir.clone();
    std::thread::spawn(move || {
        let accounts = crate::store::Store::open(&dir)
            .ok()
            .and_then(|store| store.accounts().ok());
        let _ = tx.send(accounts);
    });
    let accounts = rx.await.ok()??;
    Some(
        accounts
            .into_iter()
            .map(|a| a.twitter_username)
            .filter(|h| is_handle(h))
            .collect(),
    )
}

/// `@` when the word being completed starts with one.
fn at_sign(current: &str) -> &'static str {
    if current.starts_with('@') { "@" } else { "" }
}

/// Only what X allows in a handle reaches the shell (a stored record is not trusted to be one).
fn is_handle(h: &str) -> bool {
    !h.is_empty() && h.len() <= 50 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn accounts_go_where_the_clap_definitions_say() {
        for (line, expected) in [
            ("accounts show", true),
            ("accounts pause", true),
            ("accounts remove --yes", true),
            ("accounts remove --delete-mentions", true),
            ("accounts reauthorize --headless", true),
            ("mentions list --account", true),
            ("mentions list --status pending --account", true),
            ("--data-dir /tmp/x mentions fetch --account", true),
            ("costs --account", true),
            ("export mentions --format csv --account", true),
            ("", false),
            ("accounts", false),
            ("accounts list", false),
            ("accounts show mara", false),
            ("mentions list --status", false),
            ("mentions list --account mara", false),
            ("mentions list --account=mara", false),
            ("reply", false),
            ("sim --port", false),
        ] {
            assert_eq!(account_goes_next(&words(line)).0, expected, "{line:?}");
        }
    }

    #[test]
    fn the_data_dir_on_the_line_is_the_store_asked() {
        assert_eq!(
            account_goes_next(&words("--data-dir /d accounts show")),
            (true, Some("/d".into()))
        );
        assert_eq!(
            account_goes_next(&words("accounts show --data-dir=/e")),
            (true, Some("/e".into()))
        );
    }

    /// The commands a user completes, from the clap definitions (so a new one is checked too).
    fn visible_commands() -> Vec<String> {
        Cli::command()
            .get_subcommands()
            .filter(|c| !c.is_hide_set())
            .map(|c| c.get_name().to_string())
            .collect()
    }

    #[test]
    fn every_script_offers_every_command_and_hides_the_hidden_one() {
        let commands = visible_commands();
        assert!(commands.len() >= 12, "{commands:?}");
        for shell in [
            CompletionShell::Bash,
            CompletionShell::Zsh,
            CompletionShell::Fish,
        ] {
            let script = script(shell);
            for command in &commands {
                assert!(script.contains(command.as_str()), "{shell:?}: {command}");
            }
            for nested in ["reauthorize", "set-status", "include-inactive", "data-dir"] {
                assert!(script.contains(nested), "{shell:?}: {nested}");
            }
            // Called by the glue, never offered as a command.
            assert_eq!(
                script.matches(COMPLETE_ACCOUNTS).count(),
                1,
                "{shell:?}:\n{script}"
            );
        }
    }

    #[test]
    fn the_bash_script_parses() {
        let Ok(mut bash) = std::process::Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        else {
            eprintln!("no bash here: only the text checks ran");
            return;
        };
        use std::io::Write as _;
        bash.stdin
            .take()
            .unwrap()
            .write_all(script(CompletionShell::Bash).as_bytes())
            .unwrap();
        let out = bash.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_zsh_script_wraps_clap_s_function() {
        let script = script(CompletionShell::Zsh);
        assert!(script.starts_with("#compdef perch\n"), "{script}");
        assert!(script.contains("\n_perch_clap() {"));
        let wrapper = script.find("\n_perch() {").expect("the wrapper");
        let closing = script
            .find("if [ \"$funcstack[1]\" = \"_perch\" ]")
            .expect("clap's closing lines");
        assert!(
            wrapper < closing,
            "the wrapper is defined before it is called"
        );
    }

    #[test]
    fn man_pages_are_roff_with_a_title() {
        for path in [
            vec![],
            vec!["accounts".to_string()],
            vec!["mentions".into(), "list".into()],
        ] {
            let page = man_page(&path).unwrap();
            // clap_mangen defines the apostrophe string first (two lines), then the title.
            let title = page
                .lines()
                .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
                .unwrap();
            let name = std::iter::once("perch".to_string())
                .chain(path.iter().cloned())
                .collect::<Vec<_>>()
                .join("-");
            assert!(
                title.starts_with(&format!(".TH {name} 1 ")),
                "{path:?}: {title}"
            );
            assert!(title.contains(env!("CARGO_PKG_VERSION")), "{title}");
            assert!(page.contains(".SH SYNOPSIS"), "{page}");
        }
        // Where groff is installed, it reads every page without a warning.
        for path in [vec![], vec!["accounts".to_string(), "remove".to_string()]] {
            let page = man_page(&path).unwrap();
            let Ok(mut groff) = std::process::Command::new("groff")
                .args(["-man", "-Tutf8", "-ww", "-z"])
                .stdin(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
            else {
                break;
            };
            use std::io::Write as _;
            groff
                .stdin
                .take()
                .unwrap()
                .write_all(page.as_bytes())
                .unwrap();
            let out = groff.wait_with_output().unwrap();
            let warnings = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && warnings.is_empty(),
                "{path:?}: {warnings}"
            );
        }
        let top = man_page(&[]).unwrap();
        for command in visible_commands() {
            assert!(top.contains(&command), "{command}");
        }
        assert!(!top.contains(COMPLETE_ACCOUNTS));
        let err = man_page(&["acounts".to_string()]).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(err.message.contains("accounts"), "{}", err.message);
    }

    #[test]
    fn only_handles_reach_the_shell() {
        for h in ["mara_quill", "Acme", "a1"] {
            assert!(is_handle(h), "{h}");
        }
        for h in ["", "$(rm -rf ~)", "bad\u{1b}[2J", "two words", "caf\u{e9}"] {
            assert!(!is_handle(h), "{h:?}");
        }
    }
}
