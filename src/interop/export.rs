//! Getting data out: `perch export mongo` (the old tracker's document shapes, for `mongoimport`
//! or for `perch import mongo` elsewhere) and `perch export mentions` (CSV or JSON lines, for
//! spreadsheets and scripts). Both walk the store a page at a time: memory does not grow with
//! the store.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::mongo;
use crate::domain::{AccountId, Mention, MentionStatus};
use crate::store::{FeedFilter, FeedPos, Store, StoreError};

/// Mentions read from the store per step.
const EXPORT_PAGE: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {detail}")]
    Write { path: PathBuf, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `export mongo` wrote.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MongoExport {
    pub dir: PathBuf,
    pub accounts: u64,
    pub messages: u64,
    pub tokens_included: bool,
}

fn write_err(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |e| ExportError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Creates `path`'s temporary sibling; 0600 when it will hold secrets (before any byte is
/// written, so a token never sits in a readable file).
fn create(path: &Path, secret: bool) -> Result<(PathBuf, BufWriter<File>), ExportError> {
    let tmp = path.with_extension("json.partial");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let file = options.open(&tmp).map_err(write_err(&tmp))?;
    #[cfg(unix)]
    {
        // `mode` is only used when the file is created: a file left over from an earlier run
        // keeps its mode, so set it.
        use std::os::unix::fs::PermissionsExt;
        let mode = if secret { 0o600 } else { 0o644 };
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(write_err(&tmp))?;
    }
    Ok((tmp, BufWriter::new(file)))
}

/// Finishes a file written through [`create`]: flushed, synced, renamed into place.
fn finish(tmp: &Path, path: &Path, out: BufWriter<File>) -> Result<(), ExportError> {
    let file = out
        .into_inner()
        .map_err(|e| write_err(tmp)(e.into_error()))?;
    file.sync_all().map_err(write_err(tmp))?;
    std::fs::rename(tmp, path).map_err(write_err(path))
}

fn write_document(
    out: &mut impl Write,
    doc: bson::Document,
    path: &Path,
) -> Result<(), ExportError> {
    let value = bson::Bson::Document(doc).into_relaxed_extjson();
    serde_json::to_writer(&mut *out, &value).map_err(|e| ExportError::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    out.write_all(b"\n").map_err(write_err(path))
}

/// Writes `accounts.json` and `messages.json` into `dir` (created if needed): relaxed Extended
/// JSON, one document per line, as `mongoexport` writes them. Tokens only with
/// `include_tokens`, and then both files are 0600.
pub fn export_mongo(
    store: &Store,
    dir: &Path,
    include_tokens: bool,
) -> Result<MongoExport, ExportError> {
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let mut report = MongoExport {
        dir: dir.to_path_buf(),
        accounts: 0,
        messages: 0,
        tokens_included: include_tokens,
    };

    let path = dir.join("accounts.json");
    let (tmp, mut out) = create(&path, include_tokens)?;
    for a in store.accounts()? {
        let tokens = if include_tokens {
            store.tokens(a.id)?
        } else {
            None
        };
        write_document(&mut out, mongo::account_document(&a, tokens.as_ref()), &tmp)?;
        report.accounts += 1;
    }
    finish(&tmp, &path, out)?;

    let path = dir.join("messages.json");
    let (tmp, mut out) = create(&path, include_tokens)?;
    each_mention(store, &FeedFilter::default(), |m| {
        write_document(&mut out, mongo::message_document(m), &tmp)?;
        report.messages += 1;
        Ok(true)
    })?;
    finish(&tmp, &path, out)?;
    Ok(report)
}

/// Calls `f` on every mention of `filter`, newest first, a page at a time, until it returns
/// `false`.
fn each_mention(
    store: &Store,
    filter: &FeedFilter,
    mut f: impl FnMut(&Mention) -> Result<bool, ExportError>,
) -> Result<(), ExportError> {
    let mut after: Option<FeedPos> = None;
    loop {
        let page = store.page_after(filter, after, EXPORT_PAGE)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(FeedPos::from(last));
        for m in &page {
            if !f(m)? {
                return Ok(());
            }
        }
        if page.len() < EXPORT_PAGE {
            return Ok(());
        }
    }
}

/// `export mentions --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MentionFormat {
    Csv,
    Jsonl,
}

/// Which mentions `export mentions` writes.
#[derive(Clone, Debug, Default)]
pub struct MentionSelection {
    pub account: Option<AccountId>,
    pub status: Option<MentionStatus>,
    /// Only mentions posted at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// One CSV row. The text is written as the author wrote it (a spreadsheet shows it as text;
/// nothing is added to it).
#[derive(Serialize)]
struct CsvRow<'a> {
    id: String,
    tweet_id: &'a str,
    url: String,
    account: String,
    timestamp: String,
    status: &'static str,
    sender_username: &'a str,
    sender_display_name: &'a str,
    text: &'a str,
    public_response: &'a str,
    dm_response: &'a str,
    error_message: &'a str,
    updated_at: String,
}

/// Writes the selected mentions to `out`, newest first; returns how many.
pub fn export_mentions(
    store: &Store,
    selection: &MentionSelection,
    format: MentionFormat,
    out: &mut dyn Write,
) -> Result<u64, ExportError> {
    let filter = FeedFilter {
        account: selection.account,
        status: selection.status,
    };
    let stdout = PathBuf::from("standard output");
    let io = |e: std::io::Error| ExportError::Write {
        path: stdout.clone(),
        detail: e.to_string(),
    };
    let mut written = 0u64;
    match format {
        MentionFormat::Jsonl => {
            each_mention(store, &filter, |m| {
                if selection.since.is_some_and(|s| m.timestamp < s) {
                    return Ok(true);
                }
                serde_json::to_writer(&mut *out, m).map_err(|e| io(e.into()))?;
                out.write_all(b"\n").map_err(io)?;
                written += 1;
                Ok(true)
            })?;
            out.flush().map_err(io)?;
        }
        MentionFormat::Csv => {
            let mut csv = csv::Writer::from_writer(&mut *out);
            each_mention(store, &filter, |m| {
                if selection.since.is_some_and(|s| m.timestamp < s) {
                    return Ok(true);
                }
                csv.serialize(CsvRow {
                    id: m.id.to_string(),
                    tweet_id: &m.tweet_id,
                    url: m.url(),
                    account: format!("@{}", m.sent_to.username),
                    timestamp: m.timestamp.to_rfc3339(),
                    status: m.status.as_str(),
                    sender_username: m.sender.username.as_deref().unwrap_or(""),
                    sender_display_name: m.sender.display_name.as_deref().unwrap_or(""),
                    text: &m.text,
                    public_response: response_text(&m.public_response),
                    dm_response: response_text(&m.dm_response),
                    error_message: m.error_message.as_deref().unwrap_or(""),
                    updated_at: m.updated_at.to_rfc3339(),
                })
                .map_err(|e| ExportError::Write {
                    path: stdout.clone(),
                    detail: e.to_string(),
                })?;
                written += 1;
                Ok(true)
            })?;
            csv.flush().map_err(io)?;
        }
    }
    Ok(written)
}

fn response_text(r: &Option<crate::domain::Response>) -> &str {
    r.as_ref().map_or("", |r| r.text.as_str())
}
