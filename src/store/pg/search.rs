//! Text search and the assignment filter on PostgreSQL: the same matcher and page rules as
//! sled's (`store/mod.rs` `scan_page_where`, `store/team.rs` `assigned_page_with`), over pages
//! of rows read newest first. A search examines at most `max_scan` mentions per call and says
//! where to go on (`resume_after`), as on sled, so a query nothing matches never reads the
//! whole table at once.

use super::PgStore;
use crate::domain::AccountId;
use crate::store::backend::{Backend, ServiceBackend};
use crate::store::{FeedFilter, FeedPos, Result, SearchPage, search_matches};

/// Rows read per round trip while searching.
const SEARCH_BATCH: usize = 500;

impl PgStore {
    /// Up to `limit` mentions of `filter` (among `among`, when given) strictly older than
    /// `after`, whose text matches `query` and that `keep` lets through, examining at most
    /// `max_scan` rows.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn scan_where(
        &self,
        filter: &FeedFilter,
        among: Option<&[AccountId]>,
        query: &str,
        keep: &dyn Fn(FeedPos) -> bool,
        after: Option<FeedPos>,
        limit: usize,
        max_scan: usize,
    ) -> Result<SearchPage> {
        let mut page = SearchPage {
            hits: Vec::new(),
            resume_after: after,
            exhausted: false,
        };
        if limit == 0 || max_scan == 0 {
            return Ok(page);
        }
        let mut scanned = 0;
        // Bounded: each round examines at least one row, and at most `max_scan` in all.
        while page.hits.len() < limit && scanned < max_scan {
            let want = (max_scan - scanned).min(SEARCH_BATCH);
            let rows = match among {
                None => Backend::page_after(self, filter, page.resume_after, want)?,
                Some(only) => {
                    ServiceBackend::page_after_among(self, filter, only, page.resume_after, want)?
                }
            };
            let got = rows.len();
            for m in rows {
                scanned += 1;
                let pos = FeedPos::from(m.key());
                page.resume_after = Some(pos);
                if keep(pos) && search_matches(query, &m) {
                    page.hits.push(m);
                    if page.hits.len() >= limit {
                        return Ok(page);
                    }
                }
            }
            if got < want {
                page.exhausted = true;
                break;
            }
        }
        Ok(page)
    }
}
