//! The module layering cannot silently rot: every module's `crate::` paths are held to the
//! "may use" column of the module table in `docs/ARCHITECTURE.md`. A new import across modules
//! either fits the table, or the table (with its reason) changes in the same commit.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a module may use: some modules, or everything.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MayUse {
    Everything,
    Only(BTreeSet<String>),
}

/// Reads the module table: rows `| \`module\` | owns | may use |`.
fn parse_table(doc: &str) -> Result<BTreeMap<String, MayUse>, String> {
    let mut table = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.trim().split('|').map(str::trim).collect();
        // "| a | b | c |" splits into ["", a, b, c, ""].
        if cells.len() != 5 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1].trim_matches('`').to_string();
        let may = if cells[3] == "everything" {
            MayUse::Everything
        } else {
            let mut set = BTreeSet::new();
            for name in cells[3].split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !(name.starts_with('`') && name.ends_with('`')) {
                    return Err(format!(
                        "row {module}: {name:?} is not a `module` name or \"everything\""
                    ));
                }
                set.insert(name.trim_matches('`').to_string());
            }
            MayUse::Only(set)
        };
        if table.insert(module.clone(), may).is_some() {
            return Err(format!("module {module} has two rows"));
        }
    }
    if table.is_empty() {
        return Err("no module table found".into());
    }
    Ok(table)
}

/// The crate's top-level modules, from `src/lib.rs` (`pub mod x;` / `mod x;`).
fn crate_modules(lib_rs: &str) -> BTreeSet<String> {
    lib_rs
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

/// The code of a file without its comments and without its `#[cfg(test)]` tail (tests may reach
/// further than the module does).
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate modules `code` names through `crate::` (`crate::store::X`, `crate::{a, b::C}`).
fn used_modules(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut used = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if modules.contains(name) {
                    used.insert(name.to_string());
                }
            }
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // Names that are not modules are the crate's macros (`crate::outln!`).
        if modules.contains(&name) {
            used.insert(name);
        }
    }
    used
}

/// Every `.rs` file of `module`: `src/module.rs` and everything under `src/module/`.
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let single = src.join(format!("{module}.rs"));
    if single.is_file() {
        files.push(single);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Every import that crosses the table, as "src/ui/feed.rs: ui uses sync".
fn violations(
    table: &BTreeMap<String, MayUse>,
    modules: &BTreeSet<String>,
    sources: &[(String, String, String)],
) -> Vec<String> {
    let mut found = Vec::new();
    for module in modules {
        if !table.contains_key(module) {
            found.push(format!(
                "module {module} is not in docs/ARCHITECTURE.md's table: add its row"
            ));
        }
    }
    for (module, file, text) in sources {
        let Some(MayUse::Only(allowed)) = table.get(module) else {
            continue;
        };
        for used in used_modules(&code_of(text), modules) {
            if used != *module && !allowed.contains(&used) {
                found.push(format!(
                    "{file}: {module} uses {used}, which docs/ARCHITECTURE.md does not let it use"
                ));
            }
        }
    }
    found
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_module_uses_only_what_the_module_table_allows() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md is readable");
    let table = parse_table(&doc).expect("the module table parses");
    let src = root().join("src");
    let modules = crate_modules(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    assert!(modules.len() > 10, "found the modules in src/lib.rs");
    let mut sources = Vec::new();
    for module in &modules {
        for file in files_of(&src, module) {
            let text = std::fs::read_to_string(&file).unwrap();
            let shown = file
                .strip_prefix(root())
                .unwrap_or(&file)
                .display()
                .to_string();
            sources.push((module.clone(), shown, text));
        }
    }
    assert!(sources.len() > modules.len(), "read the modules' files");
    let found = violations(&table, &modules, &sources);
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

/// The checker itself: a wrong import is caught (the test above cannot pass by checking
/// nothing), comments and test modules are not imports, macros are not modules.
#[test]
fn a_wrong_import_is_reported() {
    let doc = "| module | owns | may use |\n|---|---|---|\n| `store` | data | `domain` |\n| `domain` | records | |\n| `sync` | polling | `store`, `domain` |\n| `cli` | commands | everything |\n";
    let table = parse_table(doc).unwrap();
    let modules: BTreeSet<String> = ["store", "domain", "sync", "cli"]
        .into_iter()
        .map(String::from)
        .collect();
    let ok = "use crate::domain::Mention;\n// crate::sync is mentioned in a comment\nfn f() { crate::outln!(\"x\"); }\n#[cfg(test)]\nmod tests { use crate::sync::SyncEvent; }\n";
    let wrong = "use crate::{domain::Account, sync::SyncEvent};\n";
    let sources = vec![
        (
            "store".to_string(),
            "src/store/ok.rs".to_string(),
            ok.to_string(),
        ),
        (
            "store".to_string(),
            "src/store/wrong.rs".to_string(),
            wrong.to_string(),
        ),
        (
            "cli".to_string(),
            "src/cli.rs".to_string(),
            wrong.to_string(),
        ),
    ];
    assert_eq!(
        violations(&table, &modules, &sources),
        vec![
            "src/store/wrong.rs: store uses sync, which docs/ARCHITECTURE.md does not let it use"
                .to_string()
        ]
    );
    let missing: BTreeSet<String> = modules.iter().cloned().chain(["x".to_string()]).collect();
    assert_eq!(
        violations(&table, &missing, &[]),
        vec!["module x is not in docs/ARCHITECTURE.md's table: add its row".to_string()]
    );
    assert!(parse_table("no table here").is_err());
}
