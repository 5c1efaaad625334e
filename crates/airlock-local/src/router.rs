//! The local router: the HTTP face of Event Grid and the token issuer for the local stack.
//! It accepts publishes on Event Grid's REST shape (an Entra token whose principal holds
//! EventGrid Data Sender, as on a topic with local auth off) and hands
//! them to the one [`DeliveryEngine`], serves the development JWKS, and mints Entra-shaped
//! tokens for local users. Delivery itself (subscriptions, retries, dead letters, duplicates,
//! reordering) is the engine's.

use airlock::domain::EventGridEvent;
use airlock_testkit::delivery::DeliveryEngine;
use airlock_testkit::{DEV_JWKS, TokenIssuer, TokenSpec};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// Event Grid refuses publishes above 1 MB.
const MAX_PUBLISH_BYTES: usize = 1_048_576;

pub struct Router {
    pub engine: Arc<DeliveryEngine>,
    pub topic_key: String,
    issuer: TokenIssuer,
    audience_of: Box<dyn Fn(&str) -> String + Send + Sync>,
    /// The web app's sign-in (Entra ID's authorize and token endpoints).
    pub sign_in: Arc<crate::sign_in::SignIn>,
    /// Fault injection: publishes answered 503 while this is above zero.
    failing_publishes: AtomicU32,
    /// Accounts Resource Manager was asked to have Defender scan again (the local Defender,
    /// [`crate::watcher::BlobWatcher`], takes them from here).
    pub rescans: crate::watcher::RescanRequests,
    /// The secret App Service puts in `IDENTITY_HEADER` for the managed identity endpoint.
    pub identity_header: String,
    /// The role check for publishes (EventGrid Data Sender); without it any Entra token for
    /// Event Grid may publish.
    pub grants: Option<Arc<crate::rbac::Grants>>,
    /// Application Insights' ingestion endpoint, for the handler's custom metrics.
    pub ingestion: Arc<crate::app_insights::Ingestion>,
}

impl Router {
    pub fn new(
        engine: Arc<DeliveryEngine>,
        topic_key: String,
        audience_of: Box<dyn Fn(&str) -> String + Send + Sync>,
    ) -> Self {
        Router {
            engine,
            topic_key,
            issuer: TokenIssuer::dev(),
            audience_of,
            sign_in: Arc::default(),
            failing_publishes: AtomicU32::new(0),
            rescans: Default::default(),
            identity_header: uuid::Uuid::new_v4().to_string(),
            grants: None,
            ingestion: Arc::default(),
        }
    }

    /// Checks publishes against these role assignments.
    pub fn with_grants(mut self, grants: Arc<crate::rbac::Grants>) -> Self {
        self.ingestion.check_roles(grants.clone());
        self.grants = Some(grants);
        self
    }

    /// The next `n` publishes to any topic are refused with 503, as a throttled topic would.
    pub fn fail_next_publishes(&self, n: u32) {
        self.failing_publishes.store(n, Ordering::SeqCst);
    }

    pub fn http_routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/topics/{topic}/api/events", post(publish))
            .route(
                "/discovery/v2.0/keys",
                get(|| async { ([("content-type", "application/json")], DEV_JWKS) }),
            )
            .route("/token", get(token))
            // App Service's managed identity endpoint (IDENTITY_ENDPOINT) for the handler.
            .route("/msi/token", get(managed_identity))
            // Resource Manager's on-demand malware scan of a storage account (Defender for
            // Storage), as the handler asks for it before failing a request for a missing
            // verdict.
            .route(
                "/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/{account}/providers/Microsoft.Security/defenderForStorageSettings/current/startMalwareScan",
                post(start_malware_scan),
            )
            .route("/dead-letters", get(dead_letters))
            .route("/dead-letters/replay", post(replay))
            .with_state(self.clone())
            .merge(crate::sign_in::routes(self.sign_in.clone()))
            .merge(self.ingestion.routes())
    }
}

async fn publish(
    State(router): State<Arc<Router>>,
    Path(topic): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    if let Err(refused) = may_publish(&router, &headers, &topic) {
        return refused;
    }
    let failing = router
        .failing_publishes
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return (StatusCode::SERVICE_UNAVAILABLE, "injected failure".into());
    }
    if body.len() > MAX_PUBLISH_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "batches are limited to 1 MB".into(),
        );
    }
    let events: Vec<EventGridEvent> = match serde_json::from_str(&body) {
        Ok(e) => e,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected an array of Event Grid events: {e}"),
            );
        }
    };
    if !router.engine.subscriptions().topics.contains(&topic) {
        return (StatusCode::NOT_FOUND, format!("no topic {topic:?}"));
    }
    for event in events {
        router.engine.publish(&topic, event);
    }
    (StatusCode::OK, String::new())
}

/// A publish as Event Grid takes it from a topic with local auth off (as `infra/azure`
/// makes them): an Entra ID token for `https://eventgrid.azure.net` whose principal holds
/// EventGrid Data Sender on the topic (`infra/rbac.json`); a key is refused.
fn may_publish(
    router: &Router,
    headers: &HeaderMap,
    topic: &str,
) -> Result<(), (StatusCode, String)> {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        let why = if headers.contains_key("aeg-sas-key") {
            "local auth is disabled on this topic: use an Entra ID token"
        } else {
            "an Entra ID bearer token is required"
        };
        return Err((StatusCode::UNAUTHORIZED, why.into()));
    };
    if crate::identity::claim(token, "aud").as_deref() != Some("https://eventgrid.azure.net") {
        return Err((
            StatusCode::UNAUTHORIZED,
            "the token's audience must be https://eventgrid.azure.net".into(),
        ));
    }
    let Some(grants) = &router.grants else {
        return Ok(());
    };
    let object_id = crate::identity::object_id_of(token).unwrap_or_default();
    let send = crate::rbac::Operation {
        account: topic.to_string(),
        action: "Microsoft.EventGrid/topics/events/send/action",
        scopes: vec![crate::rbac::ScopeKind::Topic],
    };
    if grants.decide(&object_id, &send) {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            format!("the principal {object_id} may not send to topic {topic:?} (local RBAC)"),
        ))
    }
}

/// The router's own operator endpoints (dead letters) take the stand-in's key.
fn authorised(router: &Router, headers: &HeaderMap) -> bool {
    headers.get("aeg-sas-key").and_then(|v| v.to_str().ok()) == Some(router.topic_key.as_str())
}

/// The answer to a call without the topic key.
fn unauthorised() -> (StatusCode, axum::Json<Value>) {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "missing or wrong aeg-sas-key"})),
    )
}

/// The dead letters waiting (an operator's view of the dead-letter container).
/// Any bearer token will do locally (the local credential's are unsigned); none is 401 as
/// Resource Manager answers.
async fn start_malware_scan(
    State(router): State<Arc<Router>>,
    Path((_, _, account)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(
                json!({"error": {"code": "AuthenticationFailed", "message": "a bearer token is required"}}),
            ),
        );
    };
    // Resource Manager checks the caller's roles on the account (Security Admin holds
    // Microsoft.Security/*: infra/rbac.json).
    if let Some(grants) = &router.grants {
        let object_id = crate::identity::object_id_of(token).unwrap_or_default();
        let scan = crate::rbac::Operation::storage(
            account.clone(),
            "Microsoft.Security/defenderForStorageSettings/startMalwareScan/action",
            grants.tre_id(),
        );
        if !grants.decide(&object_id, &scan) {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"error": {"code": "AuthorizationFailed",
                    "message": format!("the client {object_id} does not have authorization to perform action '{}' over scope '{account}' (local RBAC)", scan.action)}})),
            );
        }
    }
    router.rescans.ask(&account);
    tracing::info!(%account, "on-demand malware scan asked for");
    (
        StatusCode::OK,
        axum::Json(
            json!({"properties": {"scanId": uuid::Uuid::new_v4().to_string(), "scanStatus": "Running"}}),
        ),
    )
}

async fn dead_letters(
    State(router): State<Arc<Router>>,
    headers: HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    if !authorised(&router, &headers) {
        return unauthorised();
    }
    let letters: Vec<Value> = router
        .engine
        .dead_letters()
        .into_iter()
        .map(|d| {
            json!({"target": format!("{:?}", d.target), "eventId": d.event.id,
                "eventType": d.event.event_type, "subject": d.event.subject,
                "attempts": d.attempts, "lastError": d.last_error})
        })
        .collect();
    (StatusCode::OK, axum::Json(Value::Array(letters)))
}

/// Re-drives every dead letter (`airlock-local replay-dead-letters`).
async fn replay(
    State(router): State<Arc<Router>>,
    headers: HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    if !authorised(&router, &headers) {
        return unauthorised();
    }
    let replayed = router.engine.replay_dead_letters();
    tracing::info!(replayed, "dead letters replayed");
    (StatusCode::OK, axum::Json(json!({"replayed": replayed})))
}

#[derive(Deserialize)]
struct TokenQuery {
    user: String,
    roles: String,
    workspace: String,
    email: Option<String>,
}

/// `GET /token?user=alice&roles=WorkspaceResearcher,AirlockManager&workspace=ws-alpha`
async fn token(
    State(router): State<Arc<Router>>,
    Query(q): Query<TokenQuery>,
) -> (StatusCode, axum::Json<Value>) {
    let roles: Vec<&str> = q.roles.split(',').filter(|r| !r.is_empty()).collect();
    let audience = if q.workspace == airlock_testkit::demo::TRE_API_KEY {
        airlock_testkit::demo::TRE_API_AUDIENCE.to_string()
    } else {
        (router.audience_of)(&q.workspace)
    };
    let mut spec = TokenSpec::new(&q.user, &roles, &audience);
    if let Some(e) = q.email {
        spec.email = Some(e);
    }
    (
        StatusCode::OK,
        axum::Json(
            json!({"accessToken": router.issuer.mint(&spec), "expiresOn": spec.valid_until}),
        ),
    )
}

/// `GET /msi/token`: the Function App's managed identity, as App Service serves it.
async fn managed_identity(
    State(router): State<Arc<Router>>,
    headers: HeaderMap,
    Query(query): Query<crate::identity::TokenQuery>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok());
    match crate::identity::managed_identity_token(&router.identity_header, header, &query) {
        Ok(body) => axum::Json(body).into_response(),
        Err((status, message)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            axum::Json(json!({"error": "invalid_request", "error_description": message})),
        )
            .into_response(),
    }
}
