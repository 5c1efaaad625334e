//! Cosmos DB (NoSQL API) on `azure_data_cosmos`: request records partitioned by
//! `/workspaceId`, workspace records in one `/scope` partition ("tre") so they can be listed
//! without a cross-partition query, and the audit trail in its own `history` container, one
//! item per entry partitioned by `/requestId` (created, never replaced). Every replace is conditional on the ETag (`If-Match`);
//! every query names its partition and passes user input as parameters, never as SQL text.

use crate::domain::gates::TableCells;
use crate::domain::gates::table::TableSnapshot;
use crate::domain::{AirlockRequest, HistoryEntry, Workspace};
use crate::ports::{
    HistoryStore, OrderBy, Page, PortError, Release, ReleaseLedger, RequestQuery, RequestStore,
    Versioned, WorkspaceStore,
};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::StatusCode;
use azure_data_cosmos::feed::ContinuationToken;
use azure_data_cosmos::models::{
    CompositeIndex, CompositeIndexOrder, CompositeIndexProperty, ContainerProperties, IndexingMode,
    IndexingPolicy, PartitionKeyDefinition,
};
use azure_data_cosmos::options::{
    BinaryEncodingOptions, FeedOptions, ItemWriteOptions, MaxItemCountHint, Precondition,
    QueryOptions,
};
use azure_data_cosmos::{
    AccountReference, ContainerClient, CosmosClient, FeedScope, Query, RoutingStrategy,
};
use futures::TryStreamExt;
use serde_json::Value;
use std::sync::Arc;

/// How to authenticate to Cosmos DB.
pub enum CosmosAuth {
    /// Entra ID (managed identity on Azure).
    Credential(Arc<dyn TokenCredential>),
    /// Account key: the emulator only (Azure accounts run with local auth off).
    Key(String),
}

const WORKSPACE_SCOPE: &str = "tre";

pub struct CosmosStores {
    requests: ContainerClient,
    workspaces: ContainerClient,
    history: ContainerClient,
    releases: ContainerClient,
    /// Operator defaults for policy fields a workspace record leaves out.
    policy_defaults: serde_json::Map<String, Value>,
}

fn port_error(context: &str, e: azure_data_cosmos::CosmosError) -> PortError {
    let message = format!("{context}: {e}");
    match e.status().status_code() {
        StatusCode::NotFound => PortError::NotFound(message),
        StatusCode::Conflict | StatusCode::PreconditionFailed => PortError::Conflict(message),
        StatusCode::TooManyRequests
        | StatusCode::RequestTimeout
        | StatusCode::InternalServerError
        | StatusCode::ServiceUnavailable
        | StatusCode::GatewayTimeout => PortError::Transient(message),
        s if u16::from(s) == 0 => PortError::Transient(message),
        _ if !e.is_from_wire() => PortError::Transient(message),
        _ => PortError::Permanent(message),
    }
}

impl CosmosStores {
    /// Connects; with `create` the database and its three containers are made if missing.
    pub async fn connect(
        endpoint: &str,
        auth: CosmosAuth,
        database: &str,
        create: bool,
    ) -> Result<Self, String> {
        let endpoint = endpoint
            .parse()
            .map_err(|e| format!("AIRLOCK_COSMOS_ENDPOINT {endpoint:?}: {e}"))?;
        let account = match auth {
            CosmosAuth::Credential(c) => AccountReference::with_credential(endpoint, c),
            CosmosAuth::Key(k) => AccountReference::with_authentication_key(endpoint, k),
        };
        let client = CosmosClient::builder()
            .with_binary_encoding_options(BinaryEncodingOptions::new().with_enabled(false))
            .build(account, RoutingStrategy::PreferredRegions(vec![]))
            .await
            .map_err(|e| format!("connecting to Cosmos DB: {e}"))?;
        if create {
            match client.create_database(database, None).await {
                Ok(_) => {}
                Err(e) if e.status().status_code() == StatusCode::Conflict => {}
                Err(e) => return Err(format!("creating database {database}: {e}")),
            }
        }
        let db = client.database_client(database);
        for (name, key) in [
            ("requests", "/workspaceId"),
            ("workspaces", "/scope"),
            ("history", "/requestId"),
            ("releases", "/workspaceId"),
        ] {
            if create {
                let mut props = ContainerProperties::new(name, PartitionKeyDefinition::from(key));
                if name == "requests" {
                    props = props.with_indexing_policy(requests_indexing_policy());
                }
                match db.create_container(props, None).await {
                    Ok(_) => {}
                    Err(e) if e.status().status_code() == StatusCode::Conflict => {}
                    Err(e) => return Err(format!("creating container {name}: {e}")),
                }
            }
        }
        let requests = db
            .container_client("requests", None)
            .await
            .map_err(|e| format!("container requests: {e}"))?;
        let workspaces = db
            .container_client("workspaces", None)
            .await
            .map_err(|e| format!("container workspaces: {e}"))?;
        let releases = db
            .container_client("releases", None)
            .await
            .map_err(|e| format!("container releases: {e}"))?;
        let history = db
            .container_client("history", None)
            .await
            .map_err(|e| format!("container history: {e}"))?;
        Ok(CosmosStores {
            requests,
            workspaces,
            history,
            releases,
            policy_defaults: Default::default(),
        })
    }

    pub fn with_policy_defaults(mut self, defaults: serde_json::Map<String, Value>) -> Self {
        self.policy_defaults = defaults;
        self
    }

    fn workspace_from(&self, mut doc: Value) -> Result<Workspace, PortError> {
        crate::domain::workspace::apply_policy_defaults(&mut doc, &self.policy_defaults);
        serde_json::from_value(doc)
            .map_err(|e| PortError::Permanent(format!("corrupt workspace record: {e}")))
    }

    /// Creates or replaces a workspace record (TRE admin tooling and the local stack's seed).
    pub async fn put_workspace(&self, ws: &Workspace) -> Result<(), PortError> {
        let doc = serde_json::to_value(ws).map_err(|e| PortError::Permanent(e.to_string()))?;
        self.put_workspace_record(doc).await
    }

    /// Creates or replaces a workspace record as written: the policy fields it leaves out
    /// stay out, so the operator's defaults (`AIRLOCK_POLICY_DEFAULTS`) fill them when it is
    /// read. Refused unless it is a valid workspace.
    pub async fn put_workspace_record(&self, mut doc: Value) -> Result<(), PortError> {
        let ws: Workspace = serde_json::from_value(doc.clone())
            .map_err(|e| PortError::Permanent(format!("not a valid workspace: {e}")))?;
        doc["scope"] = Value::String(WORKSPACE_SCOPE.into());
        self.workspaces
            .upsert_item(WORKSPACE_SCOPE, &ws.id, doc, None)
            .await
            .map_err(|e| port_error("saving a workspace", e))?;
        Ok(())
    }

    /// Keeps what the ledger remembers about some bytes (`kind`: a table's cells for the
    /// release ledger, a snapshot for the revision diff) as item `{kind}-{sha256}` with the
    /// value in `field`. Content-addressed: the same bytes always have the same cells, so an
    /// item already there is success and stays as it is (the container is create-only).
    async fn remember_by_content(
        &self,
        workspace_id: &str,
        sha256: &str,
        (kind, field): (&str, &str),
        value: Value,
    ) -> Result<(), PortError> {
        let id = format!("{kind}-{sha256}");
        let mut doc = serde_json::json!({
            "id": id, "workspaceId": workspace_id, "kind": kind, "sha256": sha256,
        });
        doc[field] = value;
        match self
            .releases
            .create_item(workspace_id.to_string(), &id, doc, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.status().status_code() == StatusCode::Conflict => Ok(()),
            Err(e) => Err(port_error(&format!("remembering a table's {field}"), e)),
        }
    }

    async fn query_values(
        container: &ContainerClient,
        partition: &str,
        query: Query,
        page_size: Option<u32>,
        continuation: Option<String>,
    ) -> Result<(Vec<Value>, Option<String>), PortError> {
        let mut feed = FeedOptions::default();
        if let Some(n) = page_size.and_then(std::num::NonZeroU32::new) {
            feed = feed.with_max_item_count(MaxItemCountHint::Limit(n));
        }
        if let Some(token) = continuation {
            feed =
                feed.with_continuation_token(ContinuationToken::from_string(decode_token(&token)?));
        }
        let options = QueryOptions::default().with_feed_options(feed);
        let mut pages = container
            .query_items::<Value>(
                query,
                FeedScope::Partition(partition.to_string().into()),
                Some(options),
            )
            .await
            .map_err(|e| port_error("querying", e))?
            .into_pages();
        let mut items = Vec::new();
        let mut next = None;
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| port_error("querying", e))?
        {
            next = page.headers().continuation().map(str::to_string);
            items.extend(page.into_items());
            if page_size.is_some() {
                break;
            }
        }
        Ok((
            items,
            next.filter(|t| !t.is_empty()).map(|t| encode_token(&t)),
        ))
    }
}

const TOKEN: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const TOKEN_PREFIX: &str = "c1.";

/// Cosmos continuation tokens are JSON; ours wrap them URL-safe and refuse anything else.
fn encode_token(raw: &str) -> String {
    use base64::Engine;
    format!("{TOKEN_PREFIX}{}", TOKEN.encode(raw))
}

fn decode_token(token: &str) -> Result<String, PortError> {
    use base64::Engine;
    token
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|t| TOKEN.decode(t).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| PortError::InvalidInput("invalid continuation token".into()))
}

fn etag_of(doc: &Value) -> String {
    doc.get("_etag")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Index keys written with each request record: scalars derived from it, so that
/// `Reconcile`'s queries are equality filters the range index serves (an `ARRAY_LENGTH` or a
/// history look-up cannot be, and would read every record of the workspace). Never read back.
const PENDING_EVENTS: &str = "pendingEvents";
const AWAITS_CLEAN_UP: &str = "awaitsCleanUp";

/// A request as stored: the record and its index keys.
fn request_doc(request: &AirlockRequest) -> Result<Value, PortError> {
    let mut doc = serde_json::to_value(request)
        .map_err(|e| PortError::Permanent(format!("request record: {e}")))?;
    doc[PENDING_EVENTS] = (!request.outbox.is_empty()).into();
    doc[AWAITS_CLEAN_UP] = request.awaits_clean_up().into();
    Ok(doc)
}

fn parse_request(doc: Value) -> Result<Versioned<AirlockRequest>, PortError> {
    let etag = etag_of(&doc);
    let value = serde_json::from_value(doc)
        .map_err(|e| PortError::Permanent(format!("corrupt request record: {e}")))?;
    Ok(Versioned { value, etag })
}

#[async_trait]
impl RequestStore for CosmosStores {
    async fn get(
        &self,
        workspace_id: &str,
        id: &str,
    ) -> Result<Option<Versioned<AirlockRequest>>, PortError> {
        match self
            .requests
            .read_item(workspace_id.to_string(), id, None)
            .await
        {
            Ok(r) => Ok(Some(parse_request(
                r.into_model()
                    .map_err(|e| port_error("reading a request", e))?,
            )?)),
            Err(e) if e.status().status_code() == StatusCode::NotFound => Ok(None),
            Err(e) => Err(port_error("reading a request", e)),
        }
    }

    async fn create(
        &self,
        request: &AirlockRequest,
    ) -> Result<Versioned<AirlockRequest>, PortError> {
        let created = self
            .requests
            .create_item(
                request.workspace_id.clone(),
                &request.id,
                request_doc(request)?,
                None,
            )
            .await;
        let conflict = match created {
            Ok(_) => None,
            // The SDK retries a call whose connection was cut, so a create that reached the
            // store before its answer was lost comes back as 409: it is ours if the stored
            // record is the one we create.
            Err(e) if e.status().status_code() == StatusCode::Conflict => Some(e),
            Err(e) => return Err(port_error("creating a request", e)),
        };
        let stored = RequestStore::get(self, &request.workspace_id, &request.id).await?;
        match (stored, conflict) {
            (Some(stored), None) => Ok(stored),
            (Some(stored), Some(_)) if stored.value == *request => Ok(stored),
            (_, Some(e)) => Err(port_error("creating a request", e)),
            (None, None) => Err(PortError::Transient(
                "the created request is not readable yet".into(),
            )),
        }
    }

    async fn replace(
        &self,
        request: &AirlockRequest,
        if_match: &str,
    ) -> Result<Versioned<AirlockRequest>, PortError> {
        let options = ItemWriteOptions::default()
            .with_precondition(Precondition::IfMatch(if_match.to_string().into()));
        let response = self
            .requests
            .replace_item(
                request.workspace_id.clone(),
                &request.id,
                request_doc(request)?,
                Some(options),
            )
            .await
            .map_err(|e| port_error("replacing a request", e))?;
        let etag = response.headers().etag().map(|e| e.to_string());
        match etag {
            Some(etag) => Ok(Versioned {
                value: request.clone(),
                etag,
            }),
            None => RequestStore::get(self, &request.workspace_id, &request.id)
                .await?
                .ok_or_else(|| PortError::NotFound(format!("request {}", request.id))),
        }
    }

    async fn query(
        &self,
        workspace_id: &str,
        q: &RequestQuery,
    ) -> Result<Page<AirlockRequest>, PortError> {
        // A summary reads only the fields a list needs: the rest of a record (its outbox,
        // history tail, comments) can be most of it, and a page of 100 full records is what
        // made lists slow.
        let fields = if q.summary {
            AirlockRequest::SUMMARY_FIELDS
                .iter()
                .map(|f| format!("c.{f}"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            "*".to_string()
        };
        let mut sql = format!("SELECT {fields} FROM c WHERE c.workspaceId = @ws");
        let mut params: Vec<(String, Value)> = vec![("@ws".into(), workspace_id.into())];
        if let Some(creator) = &q.creator {
            sql.push_str(" AND c.createdBy.id = @creator");
            params.push(("@creator".into(), creator.clone().into()));
        }
        if let Some(t) = q.request_type {
            sql.push_str(" AND c.type = @type");
            params.push(("@type".into(), serde_json::to_value(t).expect("serialises")));
        }
        // Every filter is an equality or IN on a scalar the range index holds, so the
        // engine reads only the matching items (docs/deploy.md, "Cosmos DB indexes").
        if !q.statuses.is_empty() {
            let mut statuses = q.statuses.clone();
            statuses.sort_by_key(|s| s.to_string());
            statuses.dedup();
            let names: Vec<String> = (0..statuses.len()).map(|i| format!("@s{i}")).collect();
            sql.push_str(&format!(" AND c.status IN ({})", names.join(", ")));
            for (name, status) in names.into_iter().zip(statuses) {
                params.push((name, serde_json::to_value(status).expect("serialises")));
            }
        }
        if q.with_pending_events {
            sql.push_str(&format!(" AND c.{PENDING_EVENTS} = true"));
        }
        if q.awaiting_clean_up {
            sql.push_str(&format!(" AND c.{AWAITS_CLEAN_UP} = true"));
        }
        sql.push_str(match q.order_by {
            OrderBy::CreatedDesc => " ORDER BY c.createdWhen DESC",
            OrderBy::CreatedAsc => " ORDER BY c.createdWhen ASC",
            OrderBy::UpdatedDesc => " ORDER BY c.updatedWhen DESC",
            OrderBy::UpdatedAsc => " ORDER BY c.updatedWhen ASC",
            OrderBy::Unordered => "",
        });
        let mut query = Query::from(sql);
        for (name, value) in params {
            query = query
                .with_parameter(name, value)
                .map_err(|e| PortError::Permanent(e.to_string()))?;
        }
        let (docs, continuation) = Self::query_values(
            &self.requests,
            workspace_id,
            query,
            Some(q.page_size.max(1)),
            q.continuation.clone(),
        )
        .await
        .map_err(|e| match e {
            PortError::Permanent(m) | PortError::NotFound(m) if q.continuation.is_some() => {
                PortError::InvalidInput(format!("invalid continuation token: {m}"))
            }
            e => e,
        })?;
        let items = docs
            .into_iter()
            .map(|d| parse_request(d).map(|v| v.value))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            continuation,
        })
    }

    /// Blob events name only the container (the request id): point-read it in each
    /// workspace's partition. Workspaces are few; this avoids a cross-partition query.
    async fn locate(&self, id: &str) -> Result<Option<String>, PortError> {
        for ws in WorkspaceStore::list(self).await? {
            if RequestStore::get(self, &ws.id, id).await?.is_some() {
                return Ok(Some(ws.id));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl WorkspaceStore for CosmosStores {
    async fn get(&self, id: &str) -> Result<Option<Workspace>, PortError> {
        match self.workspaces.read_item(WORKSPACE_SCOPE, id, None).await {
            Ok(r) => {
                let doc: Value = r
                    .into_model()
                    .map_err(|e| port_error("reading a workspace", e))?;
                self.workspace_from(doc).map(Some)
            }
            Err(e) if e.status().status_code() == StatusCode::NotFound => Ok(None),
            Err(e) => Err(port_error("reading a workspace", e)),
        }
    }

    async fn get_by_short_id(&self, short_id: &str) -> Result<Option<Workspace>, PortError> {
        let query = Query::from("SELECT * FROM c WHERE c.scope = @scope AND c.shortId = @short")
            .with_parameter("@scope", WORKSPACE_SCOPE)
            .and_then(|q| q.with_parameter("@short", short_id))
            .map_err(|e| PortError::Permanent(e.to_string()))?;
        let (docs, _) =
            Self::query_values(&self.workspaces, WORKSPACE_SCOPE, query, None, None).await?;
        docs.into_iter()
            .next()
            .map(|d| self.workspace_from(d))
            .transpose()
    }

    async fn list(&self) -> Result<Vec<Workspace>, PortError> {
        let query = Query::from("SELECT * FROM c WHERE c.scope = @scope")
            .with_parameter("@scope", WORKSPACE_SCOPE)
            .map_err(|e| PortError::Permanent(e.to_string()))?;
        let (docs, _) =
            Self::query_values(&self.workspaces, WORKSPACE_SCOPE, query, None, None).await?;
        docs.into_iter().map(|d| self.workspace_from(d)).collect()
    }

    async fn get_record(&self, id: &str) -> Result<Option<Versioned<Value>>, PortError> {
        match self.workspaces.read_item(WORKSPACE_SCOPE, id, None).await {
            Ok(r) => {
                let doc: Value = r
                    .into_model()
                    .map_err(|e| port_error("reading a workspace", e))?;
                let etag = etag_of(&doc);
                Ok(Some(Versioned { value: doc, etag }))
            }
            Err(e) if e.status().status_code() == StatusCode::NotFound => Ok(None),
            Err(e) => Err(port_error("reading a workspace", e)),
        }
    }

    async fn create_record(&self, record: &Value) -> Result<Versioned<Value>, PortError> {
        let (id, doc) = workspace_doc(record)?;
        let created = self
            .workspaces
            .create_item(WORKSPACE_SCOPE, &id, doc.clone(), None)
            .await;
        match created {
            Ok(_) => {}
            // A create the SDK retried after its answer was lost comes back as 409: it is
            // ours if the stored record is the one we create.
            Err(e) if e.status().status_code() == StatusCode::Conflict => {
                return match WorkspaceStore::get_record(self, &id).await? {
                    Some(stored) if same_record(&stored.value, &doc) => Ok(stored),
                    _ => Err(PortError::Conflict(format!("workspace {id} exists"))),
                };
            }
            Err(e) => return Err(port_error("creating a workspace", e)),
        }
        WorkspaceStore::get_record(self, &id)
            .await?
            .ok_or_else(|| PortError::Transient("the created workspace is not readable yet".into()))
    }

    async fn replace_record(
        &self,
        record: &Value,
        if_match: &str,
    ) -> Result<Versioned<Value>, PortError> {
        let (id, doc) = workspace_doc(record)?;
        let options = ItemWriteOptions::default()
            .with_precondition(Precondition::IfMatch(if_match.to_string().into()));
        self.workspaces
            .replace_item(WORKSPACE_SCOPE, &id, doc, Some(options))
            .await
            .map_err(|e| port_error("replacing a workspace", e))?;
        WorkspaceStore::get_record(self, &id)
            .await?
            .ok_or_else(|| PortError::NotFound(format!("workspace {id}")))
    }
}

/// A workspace record as stored: refused unless it reads as a workspace, with its partition.
fn workspace_doc(record: &Value) -> Result<(String, Value), PortError> {
    let ws: Workspace = serde_json::from_value(record.clone())
        .map_err(|e| PortError::InvalidInput(format!("not a valid workspace: {e}")))?;
    let mut doc = record.clone();
    doc["scope"] = Value::String(WORKSPACE_SCOPE.into());
    Ok((ws.id, doc))
}

/// The same record, the store's own fields (`_etag`, `_ts`, ...) aside.
fn same_record(stored: &Value, written: &Value) -> bool {
    let mine = |v: &Value| -> serde_json::Map<String, Value> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| !k.starts_with('_'))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    mine(stored) == mine(written)
}

/// A history item's id: its `seq`, zero-padded so ids sort like the trail.
fn history_item_id(seq: u64) -> String {
    format!("{seq:012}")
}

#[async_trait]
impl HistoryStore for CosmosStores {
    async fn append(
        &self,
        workspace_id: &str,
        request_id: &str,
        entries: &[HistoryEntry],
    ) -> Result<(), PortError> {
        for entry in entries {
            let mut doc =
                serde_json::to_value(entry).map_err(|e| PortError::Permanent(e.to_string()))?;
            doc["id"] = history_item_id(entry.seq).into();
            doc["requestId"] = request_id.into();
            doc["workspaceId"] = workspace_id.into();
            match self
                .history
                .create_item(
                    request_id.to_string(),
                    &history_item_id(entry.seq),
                    doc,
                    None,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.status().status_code() == StatusCode::Conflict => {
                    match HistoryStore::get(self, request_id, entry.seq).await? {
                        Some(stored) if stored.hash == entry.hash => {}
                        _ => {
                            return Err(PortError::Conflict(format!(
                                "history entry {} of request {request_id} is already stored with other content",
                                entry.seq
                            )));
                        }
                    }
                }
                Err(e) => return Err(port_error("appending to the history", e)),
            }
        }
        Ok(())
    }

    async fn get(&self, request_id: &str, seq: u64) -> Result<Option<HistoryEntry>, PortError> {
        match self
            .history
            .read_item(request_id.to_string(), &history_item_id(seq), None)
            .await
        {
            Ok(r) => {
                let doc: Value = r
                    .into_model()
                    .map_err(|e| port_error("reading a history entry", e))?;
                parse_entry(doc).map(Some)
            }
            Err(e) if e.status().status_code() == StatusCode::NotFound => Ok(None),
            Err(e) => Err(port_error("reading a history entry", e)),
        }
    }

    async fn list(&self, request_id: &str) -> Result<Vec<HistoryEntry>, PortError> {
        let query = Query::from("SELECT * FROM c WHERE c.requestId = @request ORDER BY c.seq")
            .with_parameter("@request", request_id)
            .map_err(|e| PortError::Permanent(e.to_string()))?;
        let (docs, _) = Self::query_values(&self.history, request_id, query, None, None).await?;
        docs.into_iter().map(parse_entry).collect()
    }
}

fn parse_entry(doc: Value) -> Result<HistoryEntry, PortError> {
    serde_json::from_value(doc)
        .map_err(|e| PortError::Permanent(format!("corrupt history entry: {e}")))
}

/// The composite indexes the request lists need: the filter paths, then the order path
/// (`infra/azure/modules/airlock-core/main.tf` declares the same; a test compares them).
pub const LIST_INDEXES: [&[&str]; 5] = [
    &["/workspaceId", "/createdWhen"],
    &["/workspaceId", "/updatedWhen"],
    &["/workspaceId", "/createdBy/id", "/createdWhen"],
    &["/workspaceId", "/createdBy/id", "/updatedWhen"],
    &["/workspaceId", "/type", "/createdWhen"],
];

/// Paths of the `requests` container never queried, left out of its index.
pub const UNINDEXED_PATHS: [&str; 3] = ["/historyTail/*", "/comments/*", "/linksIssued/*"];

/// The `requests` container's indexing policy, as the airlock creates it where it may create
/// containers (the local emulator); on Azure Terraform declares it.
fn requests_indexing_policy() -> IndexingPolicy {
    let mut policy = IndexingPolicy::default()
        .with_indexing_mode(IndexingMode::Consistent)
        .with_included_path("/*");
    for path in UNINDEXED_PATHS {
        policy = policy.with_excluded_path(path);
    }
    for paths in LIST_INDEXES {
        let mut index = CompositeIndex::default();
        for path in paths {
            index = index.with_property(CompositeIndexProperty::new(
                *path,
                CompositeIndexOrder::Ascending,
            ));
        }
        policy = policy.with_composite_index(index);
    }
    policy
}

/// A release item's id: a digest of what makes it one release (ids may not hold `/`).
fn release_item_id(r: &Release) -> String {
    use sha2::{Digest, Sha256};
    let key = format!("{}\n{}\n{}", r.sha256, r.request_id, r.file);
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[async_trait]
impl ReleaseLedger for CosmosStores {
    async fn record(&self, releases: &[Release]) -> Result<(), PortError> {
        for release in releases {
            let id = release_item_id(release);
            let mut doc =
                serde_json::to_value(release).map_err(|e| PortError::Permanent(e.to_string()))?;
            doc["id"] = id.clone().into();
            match self
                .releases
                .create_item(release.workspace_id.clone(), &id, doc, None)
                .await
            {
                Ok(_) => {}
                // Recorded before (a repeated delivery): the ledger is append-only.
                Err(e) if e.status().status_code() == StatusCode::Conflict => {}
                Err(e) => return Err(port_error("recording a release", e)),
            }
        }
        Ok(())
    }

    async fn released(&self, workspace_id: &str, sha256: &str) -> Result<Vec<Release>, PortError> {
        // The partition key in the filter too: the local emulator needs it there.
        let query = Query::from(
            "SELECT * FROM c WHERE c.workspaceId = @ws AND c.sha256 = @sha AND NOT IS_DEFINED(c.kind)",
        )
            .with_parameter("@ws", workspace_id)
            .and_then(|q| q.with_parameter("@sha", sha256))
            .map_err(|e| PortError::Permanent(e.to_string()))?;
        let (docs, _) = Self::query_values(&self.releases, workspace_id, query, None, None).await?;
        docs.into_iter()
            .map(|d| {
                serde_json::from_value(d)
                    .map_err(|e| PortError::Permanent(format!("corrupt release entry: {e}")))
            })
            .collect()
    }

    async fn remember_table(
        &self,
        workspace_id: &str,
        sha256: &str,
        cells: &TableCells,
    ) -> Result<(), PortError> {
        self.remember_by_content(
            workspace_id,
            sha256,
            ("table", "cells"),
            serde_json::json!(cells),
        )
        .await
    }

    async fn remember_snapshot(
        &self,
        workspace_id: &str,
        sha256: &str,
        snapshot: &TableSnapshot,
    ) -> Result<(), PortError> {
        self.remember_by_content(
            workspace_id,
            sha256,
            ("snapshot", "snapshot"),
            serde_json::json!(snapshot),
        )
        .await
    }

    async fn snapshot(
        &self,
        workspace_id: &str,
        sha256: &str,
    ) -> Result<Option<TableSnapshot>, PortError> {
        let id = format!("snapshot-{sha256}");
        match self
            .releases
            .read_item(workspace_id.to_string(), &id, None)
            .await
        {
            Ok(r) => {
                let doc: Value = r
                    .into_model()
                    .map_err(|e| port_error("reading a table's cells", e))?;
                serde_json::from_value(doc["snapshot"].clone())
                    .map(Some)
                    .map_err(|e| PortError::Permanent(format!("corrupt table cells: {e}")))
            }
            Err(e) if e.status().status_code() == StatusCode::NotFound => Ok(None),
            Err(e) => Err(port_error("reading a table's cells", e)),
        }
    }

    async fn released_tables(
        &self,
        workspace_id: &str,
        limit: usize,
    ) -> Result<Vec<(Release, TableCells)>, PortError> {
        let corrupt =
            |e: serde_json::Error| PortError::Permanent(format!("corrupt ledger item: {e}"));
        let query =
            Query::from("SELECT * FROM c WHERE c.workspaceId = @ws AND NOT IS_DEFINED(c.kind)")
                .with_parameter("@ws", workspace_id)
                .map_err(|e| PortError::Permanent(e.to_string()))?;
        let (docs, _) = Self::query_values(&self.releases, workspace_id, query, None, None).await?;
        let mut releases: Vec<Release> = docs
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(corrupt)?;
        releases.sort_by_key(|r| std::cmp::Reverse(r.released_at));
        let mut shas: Vec<String> = releases.iter().map(|r| r.sha256.clone()).collect();
        shas.sort();
        shas.dedup();
        if shas.is_empty() {
            return Ok(Vec::new());
        }
        let query = Query::from(
            "SELECT c.sha256, c.cells FROM c WHERE c.workspaceId = @ws AND c.kind = 'table' AND ARRAY_CONTAINS(@shas, c.sha256)",
        )
        .with_parameter("@ws", workspace_id)
        .and_then(|q| q.with_parameter("@shas", &shas))
        .map_err(|e| PortError::Permanent(e.to_string()))?;
        let (docs, _) = Self::query_values(&self.releases, workspace_id, query, None, None).await?;
        let mut tables = std::collections::HashMap::new();
        for mut doc in docs {
            let sha = doc["sha256"].as_str().unwrap_or_default().to_string();
            let cells: TableCells = serde_json::from_value(doc["cells"].take()).map_err(corrupt)?;
            tables.insert(sha, cells);
        }
        Ok(releases
            .into_iter()
            .filter_map(|r| {
                let cells = tables.get(&r.sha256)?.clone();
                Some((r, cells))
            })
            .take(limit)
            .collect())
    }
}
