//! Application Insights' ingestion endpoint (`POST {IngestionEndpoint}/v2.1/track`), played by
//! the router for the handler's custom metrics, as strict as the service with local
//! authentication off (how `infra/azure` makes the resource):
//! - an Entra ID bearer token for `https://monitor.azure.com/` is required (no token: 401),
//!   and its principal must hold `Microsoft.Insights/Telemetry/Write` on the resource
//!   (Monitoring Metrics Publisher, `infra/rbac.json`; otherwise 403);
//! - the body is a JSON array of telemetry items (or newline-delimited items); each is
//!   checked on its own, as the service does: the resource's instrumentation key, a name, an
//!   RFC 3339 time, and for `MetricData` version 2 with exactly one metric (the service takes
//!   one per item) whose name is 1-1024 characters and whose value is a finite number, and
//!   string-valued properties;
//! - the answer is the service's `TrackResponse` (`itemsReceived`, `itemsAccepted`,
//!   `errors[{index, statusCode, message}]`): 200 when every item was taken, 206 when some
//!   were, 400 when none were.
//!
//! What was accepted is kept for tests and shown at `GET /app-insights/items`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};

/// The local resource's instrumentation key (a fixed UUID: it identifies, it is no secret).
pub const INSTRUMENTATION_KEY: &str = "5a3c1f7e-2b4d-4c6e-8f90-a1b2c3d4e5f6";
/// The audience of Azure Monitor's ingestion tokens.
pub const AUDIENCE: &str = "https://monitor.azure.com/";
/// The service refuses bodies above this (64 MB per call, per Azure Monitor's limits; far
/// more than a Reconcile run sends).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The ingestion stand-in and what it has taken.
#[derive(Default)]
pub struct Ingestion {
    items: Mutex<Vec<Value>>,
    grants: OnceLock<Arc<crate::rbac::Grants>>,
}

impl Ingestion {
    /// Checks writes against these role assignments (without, any Monitor token may write).
    pub fn check_roles(&self, grants: Arc<crate::rbac::Grants>) {
        let _ = self.grants.set(grants);
    }

    /// Every item accepted so far, in order.
    pub fn items(&self) -> Vec<Value> {
        self.items.lock().unwrap().clone()
    }

    /// The connection string the handler is given for this stand-in at `base` (the
    /// router's TLS address).
    pub fn connection_string(base: &str) -> String {
        format!(
            "InstrumentationKey={INSTRUMENTATION_KEY};IngestionEndpoint={}/app-insights/;LiveEndpoint={}/app-insights-live/",
            base.trim_end_matches('/'),
            base.trim_end_matches('/')
        )
    }

    pub fn routes(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/app-insights/v2.1/track", post(track))
            .route("/app-insights/items", get(items))
            .with_state(self.clone())
    }
}

async fn items(State(ingestion): State<Arc<Ingestion>>) -> Json<Value> {
    Json(Value::Array(ingestion.items()))
}

async fn track(
    State(ingestion): State<Arc<Ingestion>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    if let Err(refused) = authorise(&ingestion, &headers) {
        return refused;
    }
    if body.len() > MAX_BODY_BYTES {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(
                json!({"itemsReceived": 0, "itemsAccepted": 0, "errors": [{"index": 0, "statusCode": 413, "message": "the request is larger than 64 MB"}]}),
            ),
        );
    }
    let items: Vec<Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(item @ Value::Object(_)) => vec![item],
        _ => match std::str::from_utf8(&body).map(|text| {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str::<Value>)
                .collect::<Result<Vec<_>, _>>()
        }) {
            Ok(Ok(items)) if !items.is_empty() => items,
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(
                        json!({"itemsReceived": 0, "itemsAccepted": 0, "errors": [{"index": 0, "statusCode": 400, "message": "the body is not telemetry items in JSON"}]}),
                    ),
                );
            }
        },
    };
    let mut errors = Vec::new();
    let mut accepted = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match check_item(item) {
            Ok(()) => accepted.push(item.clone()),
            Err(message) => {
                errors.push(json!({"index": index, "statusCode": 400, "message": message}))
            }
        }
    }
    let status = if errors.is_empty() {
        StatusCode::OK
    } else if accepted.is_empty() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::PARTIAL_CONTENT
    };
    let taken = accepted.len();
    ingestion.items.lock().unwrap().extend(accepted);
    (
        status,
        Json(json!({"itemsReceived": items.len(), "itemsAccepted": taken, "errors": errors})),
    )
}

/// Entra ID only (local authentication is off on the resource), with the role to write.
fn authorise(ingestion: &Ingestion, headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    let refuse = |status: StatusCode, message: String| {
        (
            status,
            Json(
                json!({"itemsReceived": 0, "itemsAccepted": 0, "errors": [{"index": 0, "statusCode": status.as_u16(), "message": message}]}),
            ),
        )
    };
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
    else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "local authentication is disabled on this resource: an Entra ID bearer token is required".into(),
        ));
    };
    if crate::identity::claim(token, "aud").as_deref() != Some(AUDIENCE) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            format!("the token's audience must be {AUDIENCE}"),
        ));
    }
    if let Some(grants) = ingestion.grants.get() {
        let object_id = crate::identity::object_id_of(token).unwrap_or_default();
        let write = crate::rbac::Operation {
            account: "appi-airlock".into(),
            action: "Microsoft.Insights/Telemetry/Write",
            scopes: vec![crate::rbac::ScopeKind::AppInsights],
        };
        if !grants.decide(&object_id, &write) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                format!(
                    "the principal {object_id} may not write telemetry to this resource (local RBAC: Microsoft.Insights/Telemetry/Write)"
                ),
            ));
        }
    }
    Ok(())
}

/// One item as the service checks it; the message says what is wrong.
pub fn check_item(item: &Value) -> Result<(), String> {
    let text = |v: &Value, field: &str| -> Result<String, String> {
        v.get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| format!("Field '{field}' on type 'Envelope' is required"))
    };
    if text(item, "iKey")? != INSTRUMENTATION_KEY {
        return Err("Invalid instrumentation key".into());
    }
    let name = text(item, "name")?;
    let time = text(item, "time")?;
    chrono::DateTime::parse_from_rfc3339(&time)
        .map_err(|_| format!("Field 'time' on type 'Envelope' is not a valid date: {time:?}"))?;
    let data = item
        .get("data")
        .ok_or("Field 'data' on type 'Envelope' is required")?;
    let base_type = text(data, "baseType")?;
    let base = data
        .get("baseData")
        .filter(|b| b.is_object())
        .ok_or("Field 'baseData' on type 'Data' is required")?;
    if base_type != "MetricData" {
        // Only metrics are expected from the airlock here.
        return Err(format!("unexpected baseType {base_type:?} for {name:?}"));
    }
    if base.get("ver").and_then(Value::as_i64) != Some(2) {
        return Err("Field 'ver' on type 'MetricData' must be 2".into());
    }
    let metrics = base
        .get("metrics")
        .and_then(Value::as_array)
        .ok_or("Field 'metrics' on type 'MetricData' is required")?;
    if metrics.len() != 1 {
        return Err(format!(
            "MetricData carries exactly one metric per item, not {}",
            metrics.len()
        ));
    }
    let metric_name = text(&metrics[0], "name")?;
    if metric_name.chars().count() > 1024 {
        return Err("Field 'name' on type 'DataPoint' is longer than 1024".into());
    }
    if !metrics[0]
        .get("value")
        .and_then(Value::as_f64)
        .is_some_and(f64::is_finite)
    {
        return Err("Field 'value' on type 'DataPoint' must be a finite number".into());
    }
    if let Some(properties) = base.get("properties") {
        let Some(properties) = properties.as_object() else {
            return Err("Field 'properties' must be an object".into());
        };
        for (k, v) in properties {
            if k.is_empty() || k.chars().count() > 150 {
                return Err(format!("property name {k:?} must be 1-150 characters"));
            }
            if v.as_str().is_none_or(|s| s.chars().count() > 8192) {
                return Err(format!(
                    "property {k:?} must be a string of at most 8192 characters"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item() -> Value {
        json!({
            "ver": 1, "name": "Microsoft.ApplicationInsights.Metric", "time": "2026-12-05T10:00:00.000000Z",
            "iKey": INSTRUMENTATION_KEY, "tags": {"ai.cloud.role": "airlock"},
            "data": {"baseType": "MetricData", "baseData": {"ver": 2,
                "metrics": [{"name": "airlock.requests.in_review", "value": 1.0, "count": 1}],
                "properties": {"workspace": "ws1"}}}
        })
    }

    #[test]
    fn items_are_checked_as_the_service_checks_them() {
        assert_eq!(check_item(&item()), Ok(()));
        type Edit = (&'static str, fn(&mut Value));
        let edits: Vec<Edit> = vec![
            ("Invalid instrumentation key", |v| {
                v["iKey"] = json!("00000000-0000-0000-0000-000000000000")
            }),
            ("'time'", |v| v["time"] = json!("yesterday")),
            ("'name'", |v| v["name"] = json!("")),
            ("'baseData'", |v| v["data"]["baseData"] = json!(null)),
            ("must be 2", |v| v["data"]["baseData"]["ver"] = json!(1)),
            ("exactly one metric", |v| {
                let m = v["data"]["baseData"]["metrics"][0].clone();
                v["data"]["baseData"]["metrics"] = json!([m.clone(), m]);
            }),
            ("finite number", |v| {
                v["data"]["baseData"]["metrics"][0]["value"] = json!("1")
            }),
            ("1024", |v| {
                v["data"]["baseData"]["metrics"][0]["name"] = json!("x".repeat(1025))
            }),
            ("must be a string", |v| {
                v["data"]["baseData"]["properties"]["workspace"] = json!(1)
            }),
            ("unexpected baseType", |v| {
                v["data"]["baseType"] = json!("EventData")
            }),
        ];
        for (says, edit) in edits {
            let mut bad = item();
            edit(&mut bad);
            let e = check_item(&bad).unwrap_err();
            assert!(e.contains(says), "{says}: {e}");
        }
    }
}
