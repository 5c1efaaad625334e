//! Application Insights custom metrics, through its ingestion ("track") API: the same endpoint
//! and envelope Microsoft's own exporters use (`azure-monitor-opentelemetry-exporter`: one
//! `Microsoft.ApplicationInsights.Metric` item per measurement, `MetricData` with one data
//! point, `POST {IngestionEndpoint}/v2.1/track`). The values land in `customMetrics`, with
//! the dimensions in `customDimensions`; Azure Monitor charts them and alerts on them.
//!
//! Authentication is Microsoft Entra ID only: the resource has local authentication off
//! (`infra/azure`), so the instrumentation key identifies the resource and our identity's
//! token (scope `https://monitor.azure.com//.default`, role Monitoring Metrics Publisher)
//! authorises the write (learn.microsoft.com/azure/azure-monitor/app/azure-ad-authentication).

use crate::adapters::azure::rest::{RestClient, Retry};
use crate::ports::{Measurement, MetricsSink, PortError};
use async_trait::async_trait;
use azure_core::credentials::TokenCredential;
use azure_core::http::Method;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The envelope name of a metric item, as the service knows it.
pub const METRIC_ENVELOPE: &str = "Microsoft.ApplicationInsights.Metric";
/// Where Microsoft's exporters send when the connection string names no endpoint.
pub const DEFAULT_INGESTION_ENDPOINT: &str = "https://dc.services.visualstudio.com";
/// The token audience when the connection string names none (the exporters' default scope
/// is this plus `/.default`, double slash included).
pub const DEFAULT_AUDIENCE: &str = "https://monitor.azure.com/";
/// The cloud role our items carry (`cloud_RoleName` in the tables).
pub const CLOUD_ROLE: &str = "airlock";

/// What `APPLICATIONINSIGHTS_CONNECTION_STRING` says: `Key=Value` pairs separated by `;`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionString {
    pub instrumentation_key: String,
    /// `https://...` without a trailing slash.
    pub ingestion_endpoint: String,
    /// The token audience (`AADAudience`), with its trailing slash.
    pub audience: String,
}

impl ConnectionString {
    /// Parses and checks it; the error names what is wrong, never the key itself.
    pub fn parse(text: &str) -> Result<ConnectionString, String> {
        let mut key = None;
        let mut endpoint = None;
        let mut audience = None;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!("{part:?} is not Key=Value"));
            };
            match name.trim().to_ascii_lowercase().as_str() {
                "instrumentationkey" => key = Some(value.trim().to_string()),
                "ingestionendpoint" => endpoint = Some(value.trim().to_string()),
                "aadaudience" => audience = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let key = key.ok_or("it has no InstrumentationKey")?;
        if uuid::Uuid::parse_str(&key).is_err() {
            return Err("its InstrumentationKey is not a UUID".into());
        }
        let endpoint = endpoint.unwrap_or_else(|| DEFAULT_INGESTION_ENDPOINT.into());
        if !endpoint.starts_with("https://") {
            return Err(format!(
                "its IngestionEndpoint must be https (our identity's token goes with every call), not {endpoint:?}"
            ));
        }
        let mut audience = audience.unwrap_or_else(|| DEFAULT_AUDIENCE.into());
        if !audience.ends_with('/') {
            audience.push('/');
        }
        Ok(ConnectionString {
            instrumentation_key: key,
            ingestion_endpoint: endpoint.trim_end_matches('/').to_string(),
            audience,
        })
    }
}

/// The body of one track call: one metric item per measurement.
pub fn envelopes(
    instrumentation_key: &str,
    role_instance: &str,
    at: DateTime<Utc>,
    measurements: &[Measurement],
) -> Value {
    let time = at.to_rfc3339_opts(SecondsFormat::Micros, true);
    Value::Array(
        measurements
            .iter()
            .map(|m| {
                let properties: serde_json::Map<String, Value> = m
                    .dimensions
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
                    .collect();
                json!({
                    "ver": 1,
                    "name": METRIC_ENVELOPE,
                    "time": time,
                    "iKey": instrumentation_key,
                    "tags": {
                        "ai.cloud.role": CLOUD_ROLE,
                        "ai.cloud.roleInstance": role_instance,
                        "ai.internal.sdkVersion": concat!("airlock:", env!("CARGO_PKG_VERSION")),
                    },
                    "data": {
                        "baseType": "MetricData",
                        "baseData": {
                            "ver": 2,
                            "metrics": [{"name": m.name, "value": m.value, "count": 1}],
                            "properties": properties,
                        }
                    }
                })
            })
            .collect(),
    )
}

/// What the service answers a track call with.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackResponse {
    #[serde(default)]
    pub items_received: usize,
    #[serde(default)]
    pub items_accepted: usize,
    #[serde(default)]
    pub errors: Vec<TrackError>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrackError {
    #[serde(default)]
    pub index: usize,
    #[serde(default)]
    pub status_code: u16,
    #[serde(default)]
    pub message: String,
}

/// Whether a track answer means every item was taken, and if not, whether sending again can
/// help (an item refused as throttled or for a server error) or not (an invalid item).
pub fn judge(status: u16, body: &str, sent: usize) -> Result<(), PortError> {
    let answer: TrackResponse = serde_json::from_str(body).unwrap_or_default();
    let refused = |answer: &TrackResponse| {
        let retryable = answer
            .errors
            .iter()
            .any(|e| matches!(e.status_code, 408 | 429 | 500 | 502 | 503 | 504));
        let said: Vec<String> = answer
            .errors
            .iter()
            .take(5)
            .map(|e| format!("item {}: {} {}", e.index, e.status_code, e.message))
            .collect();
        let what = format!(
            "Application Insights accepted {} of {sent} metric item(s): {}",
            answer.items_accepted,
            said.join("; ")
        );
        if retryable {
            PortError::Transient(what)
        } else {
            PortError::Permanent(what)
        }
    };
    match status {
        200 if answer.items_accepted >= sent => Ok(()),
        200 | 206 => Err(refused(&answer)),
        400 => Err(PortError::Permanent(format!(
            "Application Insights refused the metrics as invalid: {}",
            body.chars().take(300).collect::<String>()
        ))),
        401 | 403 => Err(PortError::Forbidden(format!(
            "Application Insights refused our identity ({status}): it needs Monitoring Metrics Publisher on the resource: {}",
            body.chars().take(300).collect::<String>()
        ))),
        402 | 439 => Err(PortError::Transient(format!(
            "Application Insights' daily cap or quota is reached ({status})"
        ))),
        _ => Err(crate::adapters::azure::errors::status_error(
            status,
            format!(
                "Application Insights: {status}: {}",
                body.chars().take(300).collect::<String>()
            ),
        )),
    }
}

/// Publishes measurements as Application Insights custom metrics.
pub struct AppInsightsMetrics {
    client: RestClient,
    connection: ConnectionString,
    role_instance: String,
}

impl AppInsightsMetrics {
    /// `role_instance`: which instance measured (`WEBSITE_INSTANCE_ID` on App Service).
    pub fn new(
        connection: ConnectionString,
        credential: Arc<dyn TokenCredential>,
        role_instance: String,
    ) -> Self {
        let scope = format!("{}/.default", connection.audience);
        AppInsightsMetrics {
            client: RestClient::new(credential, &scope, Retry::default()),
            connection,
            role_instance,
        }
    }
}

#[async_trait]
impl MetricsSink for AppInsightsMetrics {
    async fn publish(
        &self,
        at: DateTime<Utc>,
        measurements: &[Measurement],
    ) -> Result<(), PortError> {
        if measurements.is_empty() {
            return Ok(());
        }
        let body = envelopes(
            &self.connection.instrumentation_key,
            &self.role_instance,
            at,
            measurements,
        );
        let url = format!("{}/v2.1/track", self.connection.ingestion_endpoint);
        let answer = self
            .client
            .send(
                "publishing metrics to Application Insights",
                Method::Post,
                &url,
                &[("content-type", "application/json")],
                Some(body.to_string().into_bytes()),
            )
            .await?;
        judge(answer.status, &answer.body, measurements.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings() {
        let key = "00000000-0000-0000-0000-000000000001";
        let full = ConnectionString::parse(&format!(
            "InstrumentationKey={key};IngestionEndpoint=https://uksouth-1.in.applicationinsights.azure.com/;LiveEndpoint=https://uksouth.livediagnostics.monitor.azure.com/;ApplicationId=abc"
        ))
        .unwrap();
        assert_eq!(
            full.ingestion_endpoint,
            "https://uksouth-1.in.applicationinsights.azure.com"
        );
        assert_eq!(full.audience, DEFAULT_AUDIENCE);
        let bare = ConnectionString::parse(&format!("InstrumentationKey={key}")).unwrap();
        assert_eq!(bare.ingestion_endpoint, DEFAULT_INGESTION_ENDPOINT);
        let sovereign = ConnectionString::parse(&format!(
            "InstrumentationKey={key};AADAudience=https://monitor.azure.us"
        ))
        .unwrap();
        assert_eq!(sovereign.audience, "https://monitor.azure.us/");
        for (bad, says) in [
            ("", "no InstrumentationKey"),
            ("InstrumentationKey=not-a-uuid", "not a UUID"),
            ("justtext", "not Key=Value"),
            (
                "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://x",
                "must be https",
            ),
        ] {
            let e = ConnectionString::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
            assert!(!e.contains("00000000-0000"), "the key is never echoed: {e}");
        }
    }

    #[test]
    fn one_metric_item_per_measurement() {
        let at = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let body = envelopes(
            "k",
            "i1",
            at,
            &[
                Measurement::new("airlock.requests.in_review", 3).with("workspace", "ws1"),
                Measurement::new("airlock.work_queue.messages", 0),
            ],
        );
        let items = body.as_array().unwrap();
        assert_eq!(items.len(), 2);
        let first = &items[0];
        assert_eq!(first["name"], METRIC_ENVELOPE);
        assert_eq!(first["iKey"], "k");
        assert_eq!(first["time"], "2026-12-05T10:00:00.000000Z");
        assert_eq!(first["tags"]["ai.cloud.role"], CLOUD_ROLE);
        assert_eq!(first["data"]["baseType"], "MetricData");
        assert_eq!(first["data"]["baseData"]["ver"], 2);
        assert_eq!(
            first["data"]["baseData"]["metrics"],
            json!([{"name": "airlock.requests.in_review", "value": 3.0, "count": 1}])
        );
        assert_eq!(
            first["data"]["baseData"]["properties"],
            json!({"workspace": "ws1"})
        );
        assert_eq!(items[1]["data"]["baseData"]["properties"], json!({}));
    }

    #[test]
    fn answers() {
        let ok = r#"{"itemsReceived":2,"itemsAccepted":2,"errors":[]}"#;
        assert_eq!(judge(200, ok, 2), Ok(()));
        let partial = r#"{"itemsReceived":2,"itemsAccepted":1,"errors":[{"index":1,"statusCode":400,"message":"Field 'name' is required"}]}"#;
        let e = judge(206, partial, 2).unwrap_err();
        assert!(
            matches!(&e, PortError::Permanent(m) if m.contains("item 1: 400")),
            "{e:?}"
        );
        let throttled = r#"{"itemsReceived":2,"itemsAccepted":1,"errors":[{"index":0,"statusCode":429,"message":"throttled"}]}"#;
        assert!(matches!(
            judge(206, throttled, 2),
            Err(PortError::Transient(_))
        ));
        assert!(matches!(
            judge(
                200,
                r#"{"itemsReceived":2,"itemsAccepted":1,"errors":[]}"#,
                2
            ),
            Err(PortError::Permanent(_))
        ));
        assert!(matches!(judge(400, "bad", 1), Err(PortError::Permanent(_))));
        assert!(matches!(judge(403, "", 1), Err(PortError::Forbidden(_))));
        assert!(matches!(judge(401, "", 1), Err(PortError::Forbidden(_))));
        assert!(matches!(judge(439, "", 1), Err(PortError::Transient(_))));
        assert!(matches!(judge(503, "", 1), Err(PortError::Transient(_))));
    }
}
