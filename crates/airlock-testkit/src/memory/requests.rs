use super::FaultCounter;
use airlock::domain::AirlockRequest;
use airlock::ports::{OrderBy, Page, PortError, RequestQuery, RequestStore, Versioned};
use async_trait::async_trait;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Stores each record as JSON (as Cosmos does), so a field that does not survive
/// serialisation fails here too.
#[derive(Default)]
pub struct MemoryRequestStore {
    docs: Mutex<HashMap<(String, String), (serde_json::Value, String)>>,
    next_etag: AtomicU64,
    faults: FaultCounter,
}

const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

impl MemoryRequestStore {
    /// The next `n` operations fail with a transient error.
    pub fn fail_next(&self, n: u32) {
        self.faults.set(n);
    }

    fn etag(&self) -> String {
        format!(
            "\"{:08x}\"",
            self.next_etag.fetch_add(1, Ordering::SeqCst) + 1
        )
    }

    fn check_fault(&self) -> Result<(), PortError> {
        if self.faults.take() {
            Err(PortError::Transient("injected store failure".into()))
        } else {
            Ok(())
        }
    }

    /// Every stored record (for test assertions).
    pub fn all(&self) -> Vec<AirlockRequest> {
        self.docs
            .lock()
            .unwrap()
            .values()
            .map(|(v, _)| serde_json::from_value(v.clone()).expect("stored records parse"))
            .collect()
    }

    /// Overwrites a record without any check, as an operator with portal access could.
    pub fn force_put(&self, request: &AirlockRequest) {
        let key = (request.workspace_id.clone(), request.id.clone());
        let etag = self.etag();
        self.docs
            .lock()
            .unwrap()
            .insert(key, (serde_json::to_value(request).unwrap(), etag));
    }
}

fn parse(v: &serde_json::Value) -> Result<AirlockRequest, PortError> {
    serde_json::from_value(v.clone())
        .map_err(|e| PortError::Permanent(format!("corrupt record: {e}")))
}

#[async_trait]
impl RequestStore for MemoryRequestStore {
    async fn get(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<Versioned<AirlockRequest>>, PortError> {
        self.check_fault()?;
        let docs = self.docs.lock().unwrap();
        match docs.get(&(workspace_id.to_string(), id.to_string())) {
            Some((v, etag)) => Ok(Some(Versioned {
                value: parse(v)?,
                etag: etag.clone(),
            })),
            None => Ok(None),
        }
    }

    async fn create(
        &self,
        request: &AirlockRequest,
    ) -> Result<Versioned<AirlockRequest>, PortError> {
        self.check_fault()?;
        let mut docs = self.docs.lock().unwrap();
        let key = (request.workspace_id.clone(), request.id.clone());
        if let Some((doc, etag)) = docs.get(&key) {
            // The same record again is a retried create whose answer was lost.
            let stored = parse(doc)?;
            if stored == *request {
                return Ok(Versioned {
                    value: stored,
                    etag: etag.clone(),
                });
            }
            return Err(PortError::Conflict(format!(
                "request {} exists",
                request.id
            )));
        }
        too_large(request)?;
        let etag = self.etag();
        let doc = serde_json::to_value(request).map_err(|e| PortError::Permanent(e.to_string()))?;
        docs.insert(key, (doc.clone(), etag.clone()));
        Ok(Versioned {
            value: parse(&doc)?,
            etag,
        })
    }

    async fn replace(
        &self,
        request: &AirlockRequest,
        if_match: &str,
    ) -> Result<Versioned<AirlockRequest>, PortError> {
        self.check_fault()?;
        let mut docs = self.docs.lock().unwrap();
        let key = (request.workspace_id.clone(), request.id.clone());
        let Some((_, current)) = docs.get(&key) else {
            return Err(PortError::NotFound(format!("request {}", request.id)));
        };
        if current != if_match {
            return Err(PortError::Conflict(format!(
                "request {} changed (etag {current}, expected {if_match})",
                request.id
            )));
        }
        too_large(request)?;
        let etag = self.etag();
        let doc = serde_json::to_value(request).map_err(|e| PortError::Permanent(e.to_string()))?;
        docs.insert(key, (doc.clone(), etag.clone()));
        Ok(Versioned {
            value: parse(&doc)?,
            etag,
        })
    }

    async fn query(
        &self,
        workspace_id: &str,
        query: &RequestQuery,
    ) -> Result<Page<AirlockRequest>, PortError> {
        self.check_fault()?;
        let offset = match &query.continuation {
            None => 0,
            Some(token) => TOKEN
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.strip_prefix("offset:")
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .ok_or_else(|| PortError::InvalidInput("invalid continuation token".into()))?,
        };
        let mut matching: Vec<AirlockRequest> = {
            let docs = self.docs.lock().unwrap();
            docs.iter()
                .filter(|((ws, _), _)| ws == workspace_id)
                .map(|(_, (v, _))| parse(v))
                .collect::<Result<Vec<_>, _>>()?
        };
        matching.retain(|r| {
            query.creator.as_ref().is_none_or(|c| &r.created_by.id == c)
                && query.request_type.is_none_or(|t| r.request_type == t)
                && (query.statuses.is_empty() || query.statuses.contains(&r.status))
                && (!query.with_pending_events || !r.outbox.is_empty())
                && (!query.awaiting_clean_up || r.awaits_clean_up())
        });
        matching.sort_by(|a, b| {
            let ord = match query.order_by {
                OrderBy::CreatedAsc | OrderBy::CreatedDesc | OrderBy::Unordered => {
                    a.created_when.cmp(&b.created_when)
                }
                OrderBy::UpdatedAsc | OrderBy::UpdatedDesc => a.updated_when.cmp(&b.updated_when),
            }
            .then_with(|| a.id.cmp(&b.id));
            match query.order_by {
                OrderBy::CreatedDesc | OrderBy::UpdatedDesc | OrderBy::Unordered => ord.reverse(),
                _ => ord,
            }
        });
        let size = query.page_size.max(1) as usize;
        let items: Vec<_> = matching
            .iter()
            .skip(offset)
            .take(size)
            .map(|r| {
                if query.summary {
                    r.summary()
                } else {
                    r.clone()
                }
            })
            .collect();
        let next = offset + items.len();
        let continuation = (next < matching.len()).then(|| TOKEN.encode(format!("offset:{next}")));
        Ok(Page {
            items,
            continuation,
        })
    }

    async fn locate(&self, id: &str) -> Result<Option<String>, PortError> {
        self.check_fault()?;
        Ok(self
            .docs
            .lock()
            .unwrap()
            .keys()
            .find(|(_, rid)| rid == id)
            .map(|(ws, _)| ws.clone()))
    }
}

/// Cosmos DB refuses an item whose JSON is over 2 MB (413 RequestEntityTooLarge); so does
/// this store.
fn too_large(request: &AirlockRequest) -> Result<(), PortError> {
    let size = request.stored_bytes();
    if size > airlock::domain::request::MAX_RECORD_BYTES {
        return Err(PortError::Permanent(format!(
            "request {} is {size} bytes: Cosmos DB refuses items over 2 MB",
            request.id
        )));
    }
    Ok(())
}
