//! Statistics over a time range (`domain::stats`), from the request records and their trails.

use super::Deps;
use crate::domain::request::merge_tail;
use crate::domain::stats::{Stats, summarise};
use crate::domain::{AirlockRequest, HistoryEntry, Workspace};
use crate::ports::{OrderBy, PortError, RequestQuery};
use chrono::{DateTime, Utc};

/// Requests one call reads at most (each with its trail): beyond, the answer says
/// `truncated` and the caller narrows the range.
pub const MAX_REQUESTS: usize = 5_000;

/// The statistics of the requests created in `[from, to)` in `workspaces` (no `to`: up to now).
pub async fn gather(
    deps: &Deps,
    workspaces: &[Workspace],
    from: DateTime<Utc>,
    to: Option<DateTime<Utc>>,
) -> Result<Stats, PortError> {
    let mut picked: Vec<(AirlockRequest, Vec<HistoryEntry>)> = Vec::new();
    let mut truncated = false;
    'workspaces: for ws in workspaces {
        let mut query = RequestQuery {
            order_by: OrderBy::Unordered,
            page_size: 100,
            ..Default::default()
        };
        loop {
            let page = deps.requests.query(&ws.id, &query).await?;
            for request in page.items {
                if request.created_when < from || to.is_some_and(|t| request.created_when >= t) {
                    continue;
                }
                if picked.len() == MAX_REQUESTS {
                    truncated = true;
                    break 'workspaces;
                }
                let stored = deps.history.list(&request.id).await?;
                let trail = merge_tail(stored, &request.history_tail);
                picked.push((request, trail));
            }
            match page.continuation {
                Some(token) => query.continuation = Some(token),
                None => break,
            }
        }
    }
    let mut stats = summarise(&picked, Some(from), to);
    stats.truncated = truncated;
    let mut ids: Vec<String> = workspaces.iter().map(|w| w.id.clone()).collect();
    ids.sort();
    stats.workspaces = ids;
    Ok(stats)
}
