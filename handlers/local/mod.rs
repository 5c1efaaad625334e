//! Local stand-ins for what Azure provides around the handler, over the in-memory adapters:
//! an Entra-shaped token issuer and a delivery loop that plays Event Grid, Defender for
//! Storage and the Functions host (same envelopes, retry on non-2xx, dead letters, optional
//! duplicate and shuffled delivery). The end-to-end tests and the in-memory run mode use it.

pub mod clamav;
pub mod emulators;
pub mod router;
pub mod stack;

use crate::adapters::memory::{BlobNotice, MemoryBlobStore, MemoryPublisher};
use crate::domain::{AccountNames, EventGridEvent, StageRole, Topic};
use crate::functions::FunctionName;
use crate::functions::inbound::{blob_event, percent_encode_path, scan_result_event};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// The development signing key; its public half is `infra/local/dev-jwks.json`.
/// It signs local tokens only and must never be trusted outside a developer machine.
pub const DEV_SIGNING_KEY: &str = include_str!("../../infra/local/dev-signing-key.pem");
pub const DEV_JWKS: &str = include_str!("../../infra/local/dev-jwks.json");
pub const DEV_KEY_ID: &str = "airlock-dev-1";
pub const DEV_ISSUER: &str = "https://login.airlock.local/tre/v2.0";

/// Mints Entra-shaped RS256 access tokens.
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
    pub issuer: String,
}

/// One person's token request.
#[derive(Clone, Debug)]
pub struct TokenSpec {
    pub oid: String,
    pub name: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub audience: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

impl TokenSpec {
    pub fn new(oid: &str, roles: &[&str], audience: &str) -> Self {
        let now = Utc::now();
        TokenSpec {
            oid: oid.to_string(),
            name: format!("{oid} (local)"),
            email: Some(format!("{oid}@airlock.local")),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            audience: audience.to_string(),
            valid_from: now - chrono::Duration::minutes(1),
            valid_until: now + chrono::Duration::hours(8),
        }
    }
}

impl TokenIssuer {
    pub fn from_pem(
        pem: &str,
        kid: &str,
        issuer: &str,
    ) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(TokenIssuer {
            key: EncodingKey::from_rsa_pem(pem.as_bytes())?,
            kid: kid.to_string(),
            issuer: issuer.to_string(),
        })
    }

    pub fn dev() -> Self {
        Self::from_pem(DEV_SIGNING_KEY, DEV_KEY_ID, DEV_ISSUER).expect("the dev key parses")
    }

    pub fn mint(&self, spec: &TokenSpec) -> String {
        self.mint_claims(&json!({
            "iss": self.issuer,
            "aud": spec.audience,
            "oid": spec.oid,
            "sub": spec.oid,
            "tid": "00000000-0000-0000-0000-000000000000",
            "name": spec.name,
            "preferred_username": spec.email,
            "email": spec.email,
            "roles": spec.roles,
            "iat": spec.valid_from.timestamp(),
            "nbf": spec.valid_from.timestamp(),
            "exp": spec.valid_until.timestamp(),
            "ver": "2.0",
        }))
    }

    /// Signs arbitrary claims (tests use it to build malformed tokens).
    pub fn mint_claims(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.key).expect("RS256 signing works")
    }
}

/// Knobs for how the local host delivers events.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// Deliver every event twice.
    pub duplicate: bool,
    /// Shuffle each round's deliveries with this seed.
    pub shuffle_seed: Option<u64>,
    /// Send `Data.event` as a JSON string instead of an object.
    pub event_as_string: bool,
    /// Play Defender: scan every blob that lands in an in-progress stage.
    pub scan: bool,
    /// Attempts before an event is dead-lettered.
    pub max_attempts: u32,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            duplicate: false,
            shuffle_seed: None,
            event_as_string: false,
            scan: true,
            max_attempts: 5,
        }
    }
}

#[derive(Clone, Debug)]
struct Delivery {
    function: FunctionName,
    event: EventGridEvent,
    attempts: u32,
}

/// A verdict the local scanner gives a blob's bytes: (scanResultType, malware names).
pub type Scanner = dyn Fn(&[u8]) -> (String, Vec<String>) + Send + Sync;

/// The EICAR test string: scanners report it as malware by convention.
pub const EICAR: &str = r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// Flags the EICAR test file, passes everything else (stands in for Defender).
pub fn eicar_scanner(bytes: &[u8]) -> (String, Vec<String>) {
    let needle = EICAR.as_bytes();
    if bytes.windows(needle.len()).any(|w| w == needle) {
        ("Malicious".into(), vec!["EICAR-Test-File".into()])
    } else {
        ("No threats found".into(), vec![])
    }
}

/// A hook run on each blob notice before its event is delivered.
pub type BlobHook = Box<dyn Fn(&BlobNotice) + Send + Sync>;
/// Decides whether a delivery is lost (once).
pub type DropRule = Box<dyn Fn(&FunctionName, &EventGridEvent) -> bool + Send + Sync>;

/// Plays Event Grid + Defender + the Functions host for a handler at `base_url`.
pub struct LocalHost {
    pub base_url: String,
    pub publisher: Arc<MemoryPublisher>,
    pub blobs: Arc<MemoryBlobStore>,
    pub names: AccountNames,
    pub options: Mutex<DeliveryOptions>,
    pub scanner: Box<Scanner>,
    /// Runs on every blob notice before its event is delivered (tests tamper here).
    pub on_blob: Mutex<Option<BlobHook>>,
    /// Drops matching deliveries once, as a lost event (tests).
    pub drop_if: Mutex<Option<DropRule>>,
    notifications: Mutex<Vec<EventGridEvent>>,
    dead_letters: Mutex<Vec<(FunctionName, EventGridEvent, String)>>,
    retries: Mutex<Vec<Delivery>>,
    delivered: Mutex<usize>,
    http: reqwest::Client,
    rng: Mutex<u64>,
}

impl LocalHost {
    pub fn new(
        base_url: String,
        publisher: Arc<MemoryPublisher>,
        blobs: Arc<MemoryBlobStore>,
        names: AccountNames,
    ) -> Self {
        LocalHost {
            base_url,
            publisher,
            blobs,
            names,
            options: Mutex::new(DeliveryOptions::default()),
            scanner: Box::new(eicar_scanner),
            on_blob: Mutex::new(None),
            drop_if: Mutex::new(None),
            notifications: Mutex::new(Vec::new()),
            dead_letters: Mutex::new(Vec::new()),
            retries: Mutex::new(Vec::new()),
            delivered: Mutex::new(0),
            http: reqwest::Client::new(),
            rng: Mutex::new(0x2545_F491_4F6C_DD1D),
        }
    }

    pub fn set_options(&self, options: DeliveryOptions) {
        if let Some(seed) = options.shuffle_seed {
            *self.rng.lock().unwrap() = seed.max(1);
        }
        *self.options.lock().unwrap() = options;
    }

    pub fn notifications(&self) -> Vec<EventGridEvent> {
        self.notifications.lock().unwrap().clone()
    }

    pub fn dead_letters(&self) -> Vec<(FunctionName, EventGridEvent, String)> {
        self.dead_letters.lock().unwrap().clone()
    }

    pub fn delivered(&self) -> usize {
        *self.delivered.lock().unwrap()
    }

    fn blob_url(&self, notice: &BlobNotice) -> String {
        format!(
            "https://{}.blob.core.windows.net/{}/{}",
            notice.blob.account,
            notice.blob.container,
            percent_encode_path(&notice.blob.name)
        )
    }

    /// Turns what happened since the last round into deliveries.
    fn collect(&self) -> Vec<Delivery> {
        let now = Utc::now();
        let options = self.options.lock().unwrap().clone();
        let mut out: Vec<Delivery> = std::mem::take(&mut *self.retries.lock().unwrap());
        let delivery = |function, event| Delivery {
            function,
            event,
            attempts: 0,
        };
        for (topic, event) in self.publisher.take_new() {
            match topic {
                Topic::StatusChanged => out.push(delivery(FunctionName::StatusChanged, event)),
                Topic::Notification => self.notifications.lock().unwrap().push(event),
            }
        }
        for notice in self.blobs.take_notices() {
            let Some(parsed) = self.names.parse(&notice.blob.account) else {
                continue;
            };
            if let Some(hook) = self.on_blob.lock().unwrap().as_ref() {
                hook(&notice);
            }
            let url = self.blob_url(&notice);
            out.push(delivery(
                FunctionName::BlobCreated,
                blob_event(
                    &notice.blob,
                    &url,
                    &notice.etag,
                    notice.size,
                    notice.deleted,
                    now,
                ),
            ));
            if options.scan && !notice.deleted && parsed.stage.role() == StageRole::InProgress {
                // Defender scans the version that raised the event; a later write is another scan.
                if let Some(bytes) = self.blobs.get(&notice.blob) {
                    let (result, names) = (self.scanner)(&bytes);
                    out.push(delivery(
                        FunctionName::ScanCompleted,
                        scan_result_event(
                            &notice.blob,
                            &url,
                            &notice.etag,
                            &result,
                            &names,
                            None,
                            now,
                        ),
                    ));
                }
            }
        }
        if options.duplicate {
            let copies: Vec<Delivery> = out.iter().filter(|d| d.attempts == 0).cloned().collect();
            out.extend(copies);
        }
        if options.shuffle_seed.is_some() {
            let mut state = self.rng.lock().unwrap();
            for i in (1..out.len()).rev() {
                // xorshift64: deterministic for a seed, no dependency needed.
                *state ^= *state << 13;
                *state ^= *state >> 7;
                *state ^= *state << 17;
                let j = (*state % (i as u64 + 1)) as usize;
                out.swap(i, j);
            }
        }
        out
    }

    /// POSTs one event as the Functions host would; `Err` describes a failed invocation.
    pub async fn invoke(
        &self,
        function: FunctionName,
        event: &EventGridEvent,
    ) -> Result<Value, String> {
        let as_string = self.options.lock().unwrap().event_as_string;
        let event_json = serde_json::to_value(event).expect("events serialise");
        let data = if as_string {
            Value::String(event_json.to_string())
        } else {
            event_json
        };
        let envelope = json!({
            "Data": {"event": data},
            "Metadata": {"sys": {"MethodName": function.as_str(), "UtcNow": Utc::now(), "RandGuid": uuid::Uuid::new_v4()}}
        });
        self.post(function, &envelope).await
    }

    async fn post(&self, function: FunctionName, envelope: &Value) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/{}", self.base_url, function.as_str()))
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .json(envelope)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            Err(format!("{status}: {body}"))
        }
    }

    /// Runs the `Reconcile` timer once.
    pub async fn reconcile(&self) -> Result<Value, String> {
        let envelope = json!({"Data": {"timer": {"Schedule": {"AdjustForDST": true}, "IsPastDue": false}}, "Metadata": {}});
        self.post(FunctionName::Reconcile, &envelope).await
    }

    /// Delivers until nothing is left to deliver; returns how many invocations it made.
    /// Failed invocations are retried in later rounds and dead-lettered after
    /// `max_attempts`.
    pub async fn settle(&self) -> Result<usize, String> {
        let mut invocations = 0;
        for _ in 0..500 {
            let round = self.collect();
            if round.is_empty() {
                return Ok(invocations);
            }
            let max_attempts = self.options.lock().unwrap().max_attempts;
            for mut d in round {
                let dropped = self
                    .drop_if
                    .lock()
                    .unwrap()
                    .as_ref()
                    .is_some_and(|f| f(&d.function, &d.event));
                if dropped {
                    *self.drop_if.lock().unwrap() = None;
                    continue;
                }
                invocations += 1;
                *self.delivered.lock().unwrap() += 1;
                if let Err(e) = self.invoke(d.function, &d.event).await {
                    d.attempts += 1;
                    if d.attempts >= max_attempts {
                        self.dead_letters
                            .lock()
                            .unwrap()
                            .push((d.function, d.event, e));
                    } else {
                        self.retries.lock().unwrap().push(d);
                    }
                }
            }
        }
        Err("deliveries never settled after 500 rounds".into())
    }
}
