//! The fast end-to-end harness: the real server on the in-memory fakes
//! (`airlock_testkit::in_memory`), a JWKS for the development key, and the one delivery
//! engine playing Event Grid, Defender and the Functions host. Everything listens on
//! 127.0.0.1 and stops when the `Stack` drops.
#![allow(dead_code)]

use airlock::app::Settings;
use airlock::domain::{AirlockRequest, HistoryEntry, Workspace};
use airlock_testkit::in_memory::{InMemoryAirlock, InMemoryOptions};
use airlock_testkit::memory::{ManualClock, SasClient};
use airlock_testkit::{TokenIssuer, TokenSpec};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The repository's root (function manifests, host.json, docs).
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub const TRE: &str = "tre1";
pub const WS1: &str = "ws-one";
pub const WS2: &str = "ws-two";

pub const RESEARCHER: &str = "WorkspaceResearcher";
pub const OWNER: &str = "WorkspaceOwner";
pub const MANAGER: &str = "AirlockManager";
pub const ADMIN: &str = "TREAdmin";

pub use airlock_testkit::fixtures::{audience, workspace};

/// The in-memory airlock (its fields: `base`, `deps`, `engine`, `feed`, `blobs`, ... are
/// reached through `Deref`) with a hand-driven clock and a token issuer.
pub struct Stack {
    pub airlock: InMemoryAirlock,
    pub clock: Arc<ManualClock>,
    pub issuer: TokenIssuer,
    pub http: reqwest::Client,
}

impl std::ops::Deref for Stack {
    type Target = InMemoryAirlock;

    fn deref(&self) -> &InMemoryAirlock {
        &self.airlock
    }
}

impl Stack {
    /// Two workspaces: ws-one with `policy`, ws-two with defaults.
    pub async fn start(policy: Value) -> Stack {
        Self::start_with(
            vec![
                workspace(WS1, "one", policy),
                workspace(WS2, "two", json!({})),
            ],
            None,
        )
        .await
    }

    pub async fn start_with(workspaces: Vec<Workspace>, jwks_override: Option<String>) -> Stack {
        Self::start_configured(workspaces, jwks_override, Settings::default()).await
    }

    /// [`Stack::start`] where every file's hash goes through the `Work` queue, however small.
    pub async fn start_queueing_hashes(policy: Value) -> Stack {
        let settings = Settings {
            inline_hash_max_bytes: 0,
            ..Settings::default()
        };
        Self::start_configured(
            vec![
                workspace(WS1, "one", policy),
                workspace(WS2, "two", json!({})),
            ],
            None,
            settings,
        )
        .await
    }

    pub async fn start_configured(
        workspaces: Vec<Workspace>,
        jwks_override: Option<String>,
        settings: Settings,
    ) -> Stack {
        let clock = Arc::new(ManualClock::default());
        let airlock = InMemoryAirlock::start(InMemoryOptions {
            tre_id: TRE.into(),
            workspaces,
            clock: clock.clone(),
            settings,
            port: None,
            jwks_url: jwks_override,
            leeway_secs: 5,
        })
        .await
        .expect("the in-memory airlock starts");
        Stack {
            airlock,
            clock,
            issuer: TokenIssuer::dev(),
            http: reqwest::Client::new(),
        }
    }

    pub fn token(&self, user: &str, roles: &[&str], ws: &str) -> String {
        self.issuer
            .mint(&TokenSpec::new(user, roles, &audience(ws)))
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_with(method, path, token, &[], body).await
    }

    /// [`Stack::call`] with extra headers, their values as raw bytes (so a test can send
    /// what no well-behaved client would).
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &[u8])],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (name, value) in headers {
            req = req.header(
                *name,
                reqwest::header::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    /// Calls and asserts the status, returning the body.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
        expected: u16,
    ) -> Value {
        let (status, value) = self.call(method, path, Some(token), body).await;
        assert_eq!(status.as_u16(), expected, "{method} {path}: {value}");
        value
    }

    pub async fn settle(&self) {
        self.airlock.settle().await.expect("deliveries settle");
    }

    pub async fn create(&self, ws: &str, token: &str, kind: &str) -> String {
        let body =
            json!({"type": kind, "title": "Results", "businessJustification": "For the paper"});
        let v = self
            .ok(
                "POST",
                &format!("/api/workspaces/{ws}/requests"),
                token,
                Some(body),
                201,
            )
            .await;
        let id = v["airlockRequest"]["id"].as_str().unwrap().to_string();
        self.settle().await;
        id
    }

    pub async fn link(&self, ws: &str, id: &str, token: &str) -> SasClient {
        let v = self
            .ok(
                "GET",
                &format!("/api/workspaces/{ws}/requests/{id}/link"),
                token,
                None,
                200,
            )
            .await;
        self.blobs
            .sas_client(v["containerUrl"].as_str().unwrap())
            .unwrap()
    }

    pub async fn action(
        &self,
        ws: &str,
        id: &str,
        action: &str,
        token: &str,
        body: Option<Value>,
    ) -> Value {
        let v = self
            .ok(
                "POST",
                &format!("/api/workspaces/{ws}/requests/{id}/{action}"),
                token,
                body,
                200,
            )
            .await;
        self.settle().await;
        v
    }

    pub async fn get(&self, ws: &str, id: &str, token: &str) -> Value {
        self.ok(
            "GET",
            &format!("/api/workspaces/{ws}/requests/{id}"),
            token,
            None,
            200,
        )
        .await["airlockRequest"]
            .clone()
    }

    /// The request's whole audit trail: the history store's entries and the record's tail.
    pub async fn history(&self, id: &str) -> Vec<HistoryEntry> {
        airlock::app::record::full_history(&self.deps, &self.record(id))
            .await
            .expect("history readable")
    }

    /// `GET .../history` as `token` (200 expected): the trail and whether it verified.
    pub async fn trail(&self, ws: &str, id: &str, token: &str) -> Value {
        self.ok(
            "GET",
            &format!("/api/workspaces/{ws}/requests/{id}/history"),
            token,
            None,
            200,
        )
        .await
    }

    /// The actions of the request's audit trail, in order.
    pub async fn actions(&self, id: &str) -> Vec<String> {
        self.history(id)
            .await
            .into_iter()
            .map(|h| h.action)
            .collect()
    }

    pub fn record(&self, id: &str) -> AirlockRequest {
        self.requests
            .all()
            .into_iter()
            .find(|r| r.id == id)
            .expect("request exists")
    }

    /// Where the request's data is: stage prefix → blob names.
    pub fn data_of(&self, id: &str) -> BTreeMap<String, Vec<String>> {
        self.blobs
            .inventory()
            .into_iter()
            .filter(|((_, c), _)| c == id)
            .map(|((account, _), names)| {
                let stage = airlock::domain::Stage::ALL
                    .into_iter()
                    .find(|s| {
                        self.deps
                            .names
                            .parse(&account)
                            .is_some_and(|p| p.stage == *s)
                    })
                    .map(|s| s.prefix().to_string())
                    .unwrap_or(account);
                (stage, names)
            })
            .collect()
    }
}
