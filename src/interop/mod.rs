//! Bringing data in from the MongoDB mention tracker perch replaces, and getting it out again
//! (issue 13). Library functions over an open `Store`, so the CLI calls them today and the
//! service can call them once it exists.
//!
//! - `documents`: reading `mongoexport` files as a stream of Extended JSON documents.
//! - `mongo`: the old system's document shapes ↔ perch's accounts and mentions.
//! - `import`: `perch import mongo`, its report.
//! - `export`: `perch export mongo` and `perch export mentions`.

pub mod documents;
pub mod export;
pub mod import;
pub mod mongo;

pub use export::{
    ExportError, MentionFormat, MentionSelection, MongoExport, export_mentions, export_mongo,
};
pub use import::{
    ImportError, ImportOptions, ImportProgress, ImportReport, MongoSources, Quiet, import_mongo,
};
