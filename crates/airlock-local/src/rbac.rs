//! Azure RBAC on the local stack: what `infra/azure` grants each identity, enforced on
//! Azurite's Blob and Queue services, so a call the roles would not allow fails here with 403
//! as it would on Azure (Azurite itself checks a token's issuer, audience and lifetime, never
//! its roles).
//!
//! One manifest, `infra/rbac.json`, says which role each identity holds on which kind of
//! account and what each role allows (Microsoft's built-in role definitions; our custom
//! role). A fast test checks it against Terraform's role assignments; [`RbacProxy`] sits
//! between the callers and Azurite, terminates TLS with the local CA's certificate, maps each
//! request to the RBAC action Azure would check ([`blob_operation`], [`queue_operation`]),
//! and answers `403 AuthorizationPermissionMismatch` when the caller's roles do not allow it.
//! Every decision is recorded ([`Grants::decisions`]) so a test can show that each role is
//! needed (least privilege both ways).
//!
//! Requests without a bearer token (user-delegation SAS links, which the storage service
//! checks itself) pass through unchanged.

use airlock::domain::{AccountNames, Stage};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The manifest, as committed.
pub const MANIFEST: &str = include_str!("../../../infra/rbac.json");

#[derive(Clone, Debug, Deserialize)]
pub struct Manifest {
    pub roles: BTreeMap<String, RoleDefinition>,
    pub principals: BTreeMap<String, Principal>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinition {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
}

impl RoleDefinition {
    /// Whether this role allows `action` (an action or a data action; `*` at the end of a
    /// permission matches the rest, as in Azure's role definitions).
    pub fn allows(&self, action: &str) -> bool {
        self.actions
            .iter()
            .chain(&self.data_actions)
            .any(|p| permission_matches(p, action))
    }
}

fn permission_matches(permission: &str, action: &str) -> bool {
    match permission.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => permission.eq_ignore_ascii_case(action),
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct Principal {
    /// Whether Terraform grants these (the Function App) or they stand for Azure's own
    /// services on the local stack.
    pub terraform: bool,
    pub assignments: Vec<Assignment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Assignment {
    pub scope: ScopeKind,
    pub role: String,
    /// Needed by the Functions host itself, not by the handler's code.
    #[serde(default)]
    pub host: bool,
}

/// The kinds of scope a role is assigned at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum ScopeKind {
    #[serde(rename = "stage")]
    Stage,
    #[serde(rename = "in-progress")]
    InProgress,
    #[serde(rename = "host")]
    Host,
    #[serde(rename = "topic")]
    Topic,
    /// The Cosmos DB containers the airlock rewrites (`requests`, `workspaces`).
    #[serde(rename = "cosmos-records")]
    CosmosRecords,
    /// The Cosmos DB containers the airlock only appends to (`history`, `releases`).
    #[serde(rename = "cosmos-append-only")]
    CosmosAppendOnly,
    /// The airlock's Application Insights resource (the router's ingestion stand-in).
    #[serde(rename = "app-insights")]
    AppInsights,
}

impl Manifest {
    pub fn load() -> Manifest {
        serde_json::from_str(MANIFEST).expect("infra/rbac.json is a valid manifest")
    }
}

/// The scopes an account is part of: every stage account is `Stage`, the in-progress ones
/// also `InProgress`; the Function App's own account is `Host`.
pub fn scopes_of(account: &str, tre_id: &str) -> Vec<ScopeKind> {
    if account == AccountNames::new(tre_id).host_account() {
        return vec![ScopeKind::Host];
    }
    match AccountNames::new(tre_id).parse(account) {
        Some(p) if matches!(p.stage, Stage::ImportInProgress | Stage::ExportInProgress) => {
            vec![ScopeKind::Stage, ScopeKind::InProgress]
        }
        Some(_) => vec![ScopeKind::Stage],
        None => vec![],
    }
}

/// One call as RBAC sees it: the resource it is on (a storage account, a Cosmos DB
/// container), the action Azure checks, and the scopes an assignment must be at to allow it
/// (any one of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub account: String,
    pub action: &'static str,
    pub scopes: Vec<ScopeKind>,
}

impl Operation {
    /// A call on a storage account, placed by the account's name.
    pub fn storage(account: String, action: &'static str, tre_id: &str) -> Operation {
        let scopes = scopes_of(&account, tre_id);
        Operation {
            account,
            action,
            scopes,
        }
    }
}

const BLOBS: &str = "Microsoft.Storage/storageAccounts/blobServices";
const QUEUES: &str = "Microsoft.Storage/storageAccounts/queueServices";

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

/// Splits a path-style storage path (`/{account}/{container}/{blob...}`) into its parts.
fn path_parts(path: &str) -> (String, Option<String>, Option<String>) {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    let account = parts.next().unwrap_or_default().to_string();
    let container = parts.next().filter(|c| !c.is_empty()).map(str::to_string);
    let blob = parts.next().filter(|b| !b.is_empty()).map(str::to_string);
    (account, container, blob)
}

/// The RBAC action of a Blob service call ("Permissions for calling blob and queue data
/// operations", learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory).
pub fn blob_operation(method: &str, path: &str, query: &str, tre_id: &str) -> Option<Operation> {
    let (account, container, blob) = path_parts(path);
    let comp = query_param(query, "comp")
        .unwrap_or("")
        .to_ascii_lowercase();
    let restype = query_param(query, "restype")
        .unwrap_or("")
        .to_ascii_lowercase();
    let action: &'static str = match (container.is_some(), blob.is_some()) {
        // The account: user delegation key, list containers, service properties.
        (false, _) => match (method, comp.as_str()) {
            ("POST", "userdelegationkey") => {
                "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"
            }
            ("GET", "list") => "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            ("GET", "blobs") => {
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/filter/action"
            }
            ("GET" | "HEAD", _) => "Microsoft.Storage/storageAccounts/blobServices/read",
            _ => "Microsoft.Storage/storageAccounts/blobServices/write",
        },
        // A container (restype=container), or listing its blobs.
        (true, false) if restype == "container" || comp == "list" => {
            match (method, comp.as_str()) {
                ("GET", "list") => {
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
                }
                ("GET", "blobs") => {
                    "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/filter/action"
                }
                ("GET" | "HEAD", _) => {
                    "Microsoft.Storage/storageAccounts/blobServices/containers/read"
                }
                ("DELETE", _) => "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
                _ => "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            }
        }
        // A blob (a name without restype=container is a blob at the container's root).
        _ => match (method, comp.as_str()) {
            ("GET", "tags") => {
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/read"
            }
            ("PUT", "tags") => {
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/write"
            }
            ("GET" | "HEAD", _) => {
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
            }
            ("DELETE", _) => {
                "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete"
            }
            _ => "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
        },
    };
    debug_assert!(action.starts_with(BLOBS));
    Some(Operation::storage(account, action, tre_id))
}

/// The RBAC action of a Queue service call.
pub fn queue_operation(method: &str, path: &str, query: &str, tre_id: &str) -> Option<Operation> {
    let (account, queue, rest) = path_parts(path);
    let messages = rest.as_deref().map(|r| r.split('/').collect::<Vec<_>>());
    let peek = query_param(query, "peekonly").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let action: &'static str = match (queue.is_some(), messages.as_deref()) {
        (false, _) => match method {
            "GET" | "HEAD" => "Microsoft.Storage/storageAccounts/queueServices/queues/read",
            _ => "Microsoft.Storage/storageAccounts/queueServices/write",
        },
        (true, None) => match method {
            "GET" | "HEAD" => "Microsoft.Storage/storageAccounts/queueServices/queues/read",
            "DELETE" => "Microsoft.Storage/storageAccounts/queueServices/queues/delete",
            _ => "Microsoft.Storage/storageAccounts/queueServices/queues/write",
        },
        (true, Some(["messages"])) => match method {
            "POST" => "Microsoft.Storage/storageAccounts/queueServices/queues/messages/add/action",
            "GET" if peek => "Microsoft.Storage/storageAccounts/queueServices/queues/messages/read",
            "GET" => {
                "Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action"
            }
            "DELETE" => "Microsoft.Storage/storageAccounts/queueServices/queues/messages/delete",
            _ => "Microsoft.Storage/storageAccounts/queueServices/queues/messages/write",
        },
        (true, Some(_)) => match method {
            // Delete Message after Get Messages: what a message processor does.
            "DELETE" => {
                "Microsoft.Storage/storageAccounts/queueServices/queues/messages/process/action"
            }
            _ => "Microsoft.Storage/storageAccounts/queueServices/queues/messages/write",
        },
    };
    debug_assert!(action.starts_with(QUEUES));
    Some(Operation::storage(account, action, tre_id))
}

const COSMOS: &str = "Microsoft.DocumentDB/databaseAccounts";
/// Cosmos DB's largest item (its JSON).
pub const COSMOS_MAX_ITEM_BYTES: usize = 2 * 1024 * 1024;

/// The scope of a Cosmos DB container by its name (`infra/azure`'s containers).
fn cosmos_container_scope(container: &str) -> Vec<ScopeKind> {
    match container {
        "history" | "releases" => vec![ScopeKind::CosmosAppendOnly],
        _ => vec![ScopeKind::CosmosRecords],
    }
}

/// The data action of a Cosmos DB REST call ("Azure Cosmos DB data plane role-based access
/// control": readMetadata, items/create|read|replace|upsert|delete, executeQuery,
/// readChangeFeed). Creating databases and containers is a control-plane action that no
/// data-plane role grants: Terraform creates them.
pub fn cosmos_operation(method: &str, path: &str, headers: &axum::http::HeaderMap) -> Operation {
    let header_is_true = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let metadata = |account: &str| Operation {
        account: account.to_string(),
        action: "Microsoft.DocumentDB/databaseAccounts/readMetadata",
        // Account metadata: allowed to whoever may read metadata anywhere in the account.
        scopes: vec![ScopeKind::CosmosRecords, ScopeKind::CosmosAppendOnly],
    };
    match segments.as_slice() {
        [] | ["dbs"] | ["dbs", _] | ["dbs", _, "colls"] if method == "GET" || method == "HEAD" => {
            metadata("account")
        }
        ["dbs"] | ["dbs", _] => Operation {
            account: "account".into(),
            action: "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/write",
            scopes: vec![],
        },
        ["dbs", _, "colls"] => Operation {
            account: "account".into(),
            action: "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/write",
            scopes: vec![],
        },
        ["dbs", _, "colls", container, rest @ ..] => {
            let scopes = cosmos_container_scope(container);
            let action = match (method, rest) {
                ("GET" | "HEAD", [] | ["pkranges"] | ["pkranges", ..]) => {
                    "Microsoft.DocumentDB/databaseAccounts/readMetadata"
                }
                ("POST", ["docs"]) if header_is_true("x-ms-documentdb-isquery") => {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery"
                }
                ("POST", ["docs"])
                    if headers
                        .get(axum::http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.starts_with("application/query+json")) =>
                {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/executeQuery"
                }
                ("POST", ["docs"]) if header_is_true("x-ms-documentdb-is-upsert") => {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/upsert"
                }
                ("POST", ["docs"]) => {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/create"
                }
                ("GET", ["docs"]) if headers.contains_key("a-im") => {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/readChangeFeed"
                }
                ("GET" | "HEAD", ["docs", ..]) => {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/read"
                }
                ("PUT" | "PATCH", ["docs", _]) => {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/replace"
                }
                ("DELETE", ["docs", _]) => {
                    "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/items/delete"
                }
                // Replacing or deleting the container itself, stored procedures, triggers:
                // nothing the airlock's roles grant.
                _ => "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers/write",
            };
            debug_assert!(action.starts_with(COSMOS));
            Operation {
                account: container.to_string(),
                action,
                scopes,
            }
        }
        _ => metadata("account"),
    }
}

/// The object id of the caller of a Cosmos DB request: its `authorization` header is
/// URL-encoded `type=aad&ver=1.0&sig=<token>` for Entra ID. `None` for a key
/// (`type=master`), which only the stack's own seeding uses (the handler has no key).
pub fn cosmos_caller(authorization: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(authorization)
        .decode_utf8()
        .ok()?;
    let mut kind = None;
    let mut sig = None;
    for pair in decoded.split('&') {
        match pair.split_once('=') {
            Some(("type", v)) => kind = Some(v.to_string()),
            Some(("sig", v)) => sig = Some(v.to_string()),
            _ => {}
        }
    }
    match kind.as_deref() {
        Some("aad") => Some(
            sig.and_then(|t| crate::identity::object_id_of(&t))
                .unwrap_or_default(),
        ),
        _ => None,
    }
}

/// One decision the check made.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The principal's name in the manifest, or its object id when it has none.
    pub principal: String,
    pub account: String,
    pub action: &'static str,
    pub scopes: Vec<ScopeKind>,
    pub allowed: bool,
}

/// The roles in force (the manifest's, changeable while running, as an operator grants or
/// removes a role on Azure) and the decisions made under them.
pub struct Grants {
    tre_id: String,
    roles: BTreeMap<String, RoleDefinition>,
    /// object id => (manifest name, assignments)
    principals: Mutex<BTreeMap<String, (String, Vec<Assignment>)>>,
    decisions: Mutex<Vec<Decision>>,
}

impl Grants {
    /// The manifest's assignments; `object_ids` maps a manifest principal to its local
    /// object id.
    pub fn new(manifest: &Manifest, tre_id: &str, object_ids: &[(&str, &str)]) -> Grants {
        let principals = object_ids
            .iter()
            .filter_map(|(name, oid)| {
                manifest
                    .principals
                    .get(*name)
                    .map(|p| (oid.to_string(), (name.to_string(), p.assignments.clone())))
            })
            .collect();
        Grants {
            tre_id: tre_id.to_string(),
            roles: manifest.roles.clone(),
            principals: Mutex::new(principals),
            decisions: Mutex::new(Vec::new()),
        }
    }

    /// The TRE whose accounts these are.
    pub fn tre_id(&self) -> &str {
        &self.tre_id
    }

    /// Removes a role assignment (a missing or not yet propagated role).
    pub fn revoke(&self, principal: &str, scope: ScopeKind, role: &str) {
        for (name, assignments) in self.principals.lock().unwrap().values_mut() {
            if name == principal {
                assignments.retain(|a| !(a.scope == scope && a.role == role));
            }
        }
    }

    /// Adds a role assignment.
    pub fn grant(&self, principal: &str, scope: ScopeKind, role: &str) {
        for (name, assignments) in self.principals.lock().unwrap().values_mut() {
            if name == principal {
                assignments.push(Assignment {
                    scope,
                    role: role.to_string(),
                    host: false,
                });
            }
        }
    }

    /// Decides one call by `object_id` and records the decision.
    pub fn decide(&self, object_id: &str, op: &Operation) -> bool {
        let scopes = &op.scopes;
        let principals = self.principals.lock().unwrap();
        let (name, allowed) = match principals.get(object_id) {
            Some((name, assignments)) => (
                name.clone(),
                assignments.iter().any(|a| {
                    scopes.contains(&a.scope)
                        && self.roles.get(&a.role).is_some_and(|r| r.allows(op.action))
                }),
            ),
            None => (object_id.to_string(), false),
        };
        self.decisions.lock().unwrap().push(Decision {
            principal: name,
            account: op.account.clone(),
            action: op.action,
            scopes: op.scopes.clone(),
            allowed,
        });
        allowed
    }

    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions.lock().unwrap().clone()
    }

    /// The calls refused so far.
    pub fn denied(&self) -> Vec<Decision> {
        self.decisions()
            .into_iter()
            .filter(|d| !d.allowed)
            .collect()
    }

    /// The assignments of `principal` that no allowed call needed: for each, whether some
    /// allowed call was on its scope with an action that this role allows and no other role
    /// of the principal at that account does. An assignment listed here is more than the
    /// calls made needed.
    pub fn unneeded(&self, principal: &str) -> Vec<Assignment> {
        let principals = self.principals.lock().unwrap();
        let Some((_, assignments)) = principals.values().find(|(n, _)| n == principal) else {
            return vec![];
        };
        let decisions = self.decisions();
        assignments
            .iter()
            .filter(|a| {
                !decisions.iter().any(|d| {
                    if !d.allowed || d.principal != principal {
                        return false;
                    }
                    let scopes = &d.scopes;
                    let allows = |x: &Assignment| {
                        scopes.contains(&x.scope)
                            && self.roles.get(&x.role).is_some_and(|r| r.allows(d.action))
                    };
                    allows(a) && !assignments.iter().any(|o| o != *a && allows(o))
                })
            })
            .cloned()
            .collect()
    }
}

/// What the service answers when the caller's roles do not allow the call: Azure Storage's
/// `AuthorizationPermissionMismatch` (XML), or Cosmos DB's 403 with sub-status 5301 (JSON).
fn forbidden(service: Service, op: &Operation, path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let status = axum::http::StatusCode::FORBIDDEN;
    match service {
        Service::Blob | Service::Queue => (
            status,
            [
                ("x-ms-error-code", "AuthorizationPermissionMismatch"),
                ("content-type", "application/xml"),
            ],
            format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission. (local RBAC: {})\nRequestId:{}\nTime:{}</Message></Error>",
                op.action,
                uuid::Uuid::new_v4(),
                chrono::Utc::now().to_rfc3339()
            ),
        )
            .into_response(),
        Service::Cosmos => (
            status,
            [("x-ms-substatus", "5301"), ("content-type", "application/json")],
            serde_json::json!({
                "code": "Forbidden",
                "message": format!("Request blocked by Auth: the given request [{path}] cannot be authorized by AAD token in data plane: it needs {} (local RBAC)", op.action),
            })
            .to_string(),
        )
            .into_response(),
    }
}

/// Which storage service a proxy fronts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Blob,
    Queue,
    Cosmos,
}

/// A TLS-terminating proxy in front of one Azurite service that enforces [`Grants`].
pub struct RbacProxy {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RbacProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct ProxyState {
    service: Service,
    backend: String,
    http: reqwest::Client,
    grants: Arc<Grants>,
    /// Told of every blob written through this proxy (Blob only).
    changed: Option<crate::watcher::ChangedContainers>,
}

impl RbacProxy {
    /// Listens on `127.0.0.1:{listen_port}` (0: any free port) with the certificate in
    /// `tls_dir` (`server.pem`, `server.key`) and forwards to `https://127.0.0.1:{backend_port}`.
    pub async fn start(
        listen_port: u16,
        backend_port: u16,
        service: Service,
        tls_dir: &std::path::Path,
        grants: Arc<Grants>,
        changed: Option<crate::watcher::ChangedContainers>,
    ) -> std::io::Result<RbacProxy> {
        let fail = |e: String| std::io::Error::other(e);
        let acceptor = crate::tls::acceptor(tls_dir)?;
        let http = crate::tls::trusting_local_ca(tls_dir)?
            .pool_idle_timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let state = Arc::new(ProxyState {
            service,
            backend: format!("https://127.0.0.1:{backend_port}"),
            http,
            grants,
            changed,
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", listen_port)).await?;
        let port = listener.local_addr()?.port();
        let app = axum::Router::new().fallback(forward).with_state(state);
        let task = crate::tls::serve(listener, acceptor, app);
        Ok(RbacProxy { port, task })
    }
}

/// Checks one request against the grants, then forwards it (streamed both ways).
async fn forward(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or("");
    let authorization = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    // Who calls: the token's object id. Storage: a bearer token (a SAS link carries none and
    // the service checks it itself). Cosmos DB: an Entra ID signature (the stack's own
    // seeding uses the emulator's key, which the handler does not have).
    let caller = match state.service {
        Service::Blob | Service::Queue => authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| crate::identity::object_id_of(t).unwrap_or_default()),
        Service::Cosmos => authorization.and_then(cosmos_caller),
    };
    if let Some(object_id) = caller {
        let tre_id = state.grants.tre_id();
        let method = parts.method.as_str();
        let operation = match state.service {
            Service::Blob => blob_operation(method, path, query, tre_id),
            Service::Queue => queue_operation(method, path, query, tre_id),
            Service::Cosmos => Some(cosmos_operation(method, path, &parts.headers)),
        };
        if let Some(op) = operation
            && !state.grants.decide(&object_id, &op)
        {
            tracing::warn!(principal = %object_id, account = %op.account, action = op.action, "local RBAC: refused");
            return forbidden(state.service, &op, path);
        }
    }
    // Cosmos DB refuses an item over 2 MB; the emulator has no limit, so it is enforced here.
    if state.service == Service::Cosmos
        && matches!(parts.method.as_str(), "POST" | "PUT")
        && path.contains("/docs")
        && parts
            .headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > COSMOS_MAX_ITEM_BYTES)
    {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            [("content-type", "application/json")],
            serde_json::json!({"code": "RequestEntityTooLarge", "message": "Request size is too large"})
                .to_string(),
        )
            .into_response();
    }
    let url = format!(
        "{}{}",
        state.backend,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    // The Host header goes along unchanged: Azurite compares it with a copy source's host
    // to decide that the source is on the same instance (both are this proxy's address).
    let mut outbound = state.http.request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONNECTION {
            outbound = outbound.header(name, value);
        }
    }
    match outbound
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await
    {
        Ok(answer) => {
            // A blob written (Put Blob, Put Block List, Copy Blob): its container has news.
            if let Some(changed) = &state.changed
                && answer.status().is_success()
                && parts.method == axum::http::Method::PUT
                && matches!(query_param(query, "comp"), None | Some("blocklist"))
                && let (account, Some(container), Some(_)) = path_parts(path)
            {
                changed.mark(&account, &container);
            }
            let mut response = axum::http::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != axum::http::header::CONNECTION
                    && name != axum::http::header::TRANSFER_ENCODING
                {
                    response = response.header(name, value);
                }
            }
            response
                .body(axum::body::Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|e| {
                    (axum::http::StatusCode::BAD_GATEWAY, e.to_string()).into_response()
                })
        }
        Err(e) => (
            axum::http::StatusCode::BAD_GATEWAY,
            format!("the storage emulator did not answer: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAGS_READ: &str =
        "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/read";

    #[test]
    fn blob_calls_map_to_the_actions_azure_checks() {
        let p = "/stalexipwsa/c1/dir/f.csv";
        for (method, path, query, action) in [
            ("GET", p, "", "containers/blobs/read"),
            ("HEAD", p, "", "containers/blobs/read"),
            ("GET", p, "comp=tags", "containers/blobs/tags/read"),
            ("PUT", p, "comp=tags", "containers/blobs/tags/write"),
            ("PUT", p, "", "containers/blobs/write"),
            ("PUT", p, "comp=block&blockid=AA", "containers/blobs/write"),
            ("PUT", p, "comp=properties", "containers/blobs/write"),
            ("DELETE", p, "", "containers/blobs/delete"),
            (
                "PUT",
                "/stalexipwsa/c1",
                "restype=container",
                "containers/write",
            ),
            (
                "DELETE",
                "/stalexipwsa/c1",
                "restype=container",
                "containers/delete",
            ),
            (
                "GET",
                "/stalexipwsa/c1",
                "restype=container&comp=list",
                "containers/blobs/read",
            ),
            (
                "GET",
                "/stalexipwsa/c1",
                "comp=list&restype=container&prefix=x",
                "containers/blobs/read",
            ),
            ("GET", "/stalexipwsa", "comp=list", "containers/read"),
            (
                "POST",
                "/stalexipwsa/",
                "restype=service&comp=userdelegationkey",
                "generateUserDelegationKey/action",
            ),
        ] {
            let op = blob_operation(method, path, query, "local").unwrap();
            assert_eq!(op.account, "stalexipwsa");
            assert_eq!(
                op.action,
                format!("{BLOBS}/{action}"),
                "{method} {path}?{query}"
            );
        }
    }

    #[test]
    fn queue_calls_map_to_the_actions_azure_checks() {
        for (method, path, query, action) in [
            (
                "POST",
                "/stalfunclocal/airlock-work/messages",
                "",
                "queues/messages/add/action",
            ),
            (
                "GET",
                "/stalfunclocal/airlock-work/messages",
                "numofmessages=32",
                "queues/messages/process/action",
            ),
            (
                "GET",
                "/stalfunclocal/airlock-work/messages",
                "peekonly=true",
                "queues/messages/read",
            ),
            (
                "DELETE",
                "/stalfunclocal/airlock-work/messages/abc",
                "popreceipt=x",
                "queues/messages/process/action",
            ),
            ("PUT", "/stalfunclocal/airlock-work", "", "queues/write"),
        ] {
            let op = queue_operation(method, path, query, "local").unwrap();
            assert_eq!(op.action, format!("{QUEUES}/{action}"), "{method} {path}");
        }
    }

    #[test]
    fn the_manifest_decides_by_principal_role_and_scope() {
        let manifest = Manifest::load();
        let grants = Grants::new(
            &manifest,
            "local",
            &[("function", "f-oid"), ("azure-services", "s-oid")],
        );
        let tags = |account: &str| Operation::storage(account.into(), TAGS_READ, "local");
        // Tag read: the function may on in-progress accounts only; Defender's stand-in may.
        assert!(grants.decide("f-oid", &tags("stalexipwsalpha")));
        assert!(grants.decide("f-oid", &tags("stalimiplocal")));
        assert!(!grants.decide("f-oid", &tags("stalexapplocal")));
        assert!(!grants.decide("nobody", &tags("stalexipwsalpha")));
        let tag_write = Operation::storage(
            "stalexipwsalpha".into(),
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags/write",
            "local",
        );
        assert!(
            !grants.decide("f-oid", &tag_write),
            "only Defender writes the verdict tag"
        );
        assert!(grants.decide("s-oid", &tag_write));
        grants.revoke(
            "function",
            ScopeKind::InProgress,
            "Airlock blob index tag reader",
        );
        assert!(!grants.decide("f-oid", &tags("stalexipwsalpha")));
        grants.grant(
            "function",
            ScopeKind::InProgress,
            "Airlock blob index tag reader",
        );
        assert!(grants.decide("f-oid", &tags("stalexipwsalpha")));
        assert_eq!(grants.denied().len(), 4);
        // The tag reader was needed (nothing else the function holds reads tags).
        assert!(
            !grants
                .unneeded("function")
                .iter()
                .any(|a| a.role == "Airlock blob index tag reader")
        );
    }

    #[test]
    fn a_role_that_another_already_covers_is_unneeded() {
        let grants = Grants::new(&Manifest::load(), "local", &[("function", "f-oid")]);
        grants.grant("function", ScopeKind::Stage, "Storage Blob Delegator");
        let key = blob_operation(
            "POST",
            "/stalexintwsalpha/",
            "restype=service&comp=userdelegationkey",
            "local",
        )
        .unwrap();
        assert!(grants.decide("f-oid", &key));
        let unneeded = grants.unneeded("function");
        assert!(
            unneeded.iter().any(|a| a.role == "Storage Blob Delegator"),
            "Storage Blob Data Contributor already allows user delegation keys: {unneeded:?}"
        );
    }

    #[test]
    fn cosmos_calls_map_to_data_actions_and_history_is_append_only() {
        let grants = Grants::new(&Manifest::load(), "local", &[("function", "f-oid")]);
        let mut headers = axum::http::HeaderMap::new();
        let op = |method: &str, path: &str, headers: &axum::http::HeaderMap| {
            cosmos_operation(method, path, headers)
        };
        let base = "/dbs/airlock/colls";
        for (method, path, action, allowed) in [
            ("GET", "/".to_string(), "readMetadata", true),
            ("GET", format!("{base}/history"), "readMetadata", true),
            (
                "GET",
                format!("{base}/requests/pkranges"),
                "readMetadata",
                true,
            ),
            (
                "POST",
                format!("{base}/history/docs"),
                "sqlDatabases/containers/items/create",
                true,
            ),
            (
                "GET",
                format!("{base}/history/docs/h1"),
                "sqlDatabases/containers/items/read",
                true,
            ),
            (
                "PUT",
                format!("{base}/history/docs/h1"),
                "sqlDatabases/containers/items/replace",
                false,
            ),
            (
                "DELETE",
                format!("{base}/releases/docs/r1"),
                "sqlDatabases/containers/items/delete",
                false,
            ),
            (
                "PUT",
                format!("{base}/requests/docs/r1"),
                "sqlDatabases/containers/items/replace",
                true,
            ),
            (
                "DELETE",
                format!("{base}/requests/docs/r1"),
                "sqlDatabases/containers/items/delete",
                true,
            ),
            ("POST", "/dbs".to_string(), "sqlDatabases/write", false),
            (
                "POST",
                "/dbs/airlock/colls".to_string(),
                "sqlDatabases/containers/write",
                false,
            ),
        ] {
            let o = op(method, &path, &headers);
            assert_eq!(o.action, format!("{COSMOS}/{action}"), "{method} {path}");
            assert_eq!(grants.decide("f-oid", &o), allowed, "{method} {path}");
        }
        headers.insert("x-ms-documentdb-is-upsert", "True".parse().unwrap());
        let upsert = op("POST", &format!("{base}/history/docs"), &headers);
        assert!(upsert.action.ends_with("items/upsert"));
        assert!(
            !grants.decide("f-oid", &upsert),
            "an upsert could overwrite history"
        );
        headers.clear();
        headers.insert("x-ms-documentdb-isquery", "True".parse().unwrap());
        let query = op("POST", &format!("{base}/history/docs"), &headers);
        assert!(query.action.ends_with("executeQuery"));
        assert!(grants.decide("f-oid", &query));
    }

    #[test]
    fn cosmos_callers_are_read_from_entra_signatures_only() {
        let (token, _) = crate::identity::mint("https://127.0.0.1", "f-oid");
        let aad = format!("type%3Daad%26ver%3D1.0%26sig%3D{token}");
        assert_eq!(cosmos_caller(&aad).as_deref(), Some("f-oid"));
        assert_eq!(cosmos_caller("type%3Dmaster%26ver%3D1.0%26sig%3Dabc"), None);
        assert_eq!(
            cosmos_caller("type%3Daad%26ver%3D1.0%26sig%3Djunk").as_deref(),
            Some("")
        );
    }

    #[test]
    fn accounts_are_placed_in_their_scopes() {
        assert_eq!(scopes_of("stalfunclocal", "local"), vec![ScopeKind::Host]);
        assert_eq!(
            scopes_of("stalimiplocal", "local"),
            vec![ScopeKind::Stage, ScopeKind::InProgress]
        );
        assert_eq!(scopes_of("stalexapplocal", "local"), vec![ScopeKind::Stage]);
        assert_eq!(scopes_of("someoneelse", "local"), vec![]);
    }
}
