//! The OpenAPI 3 document, generated from the code: the operations table below and the JSON
//! schemas `schemars` derives from the Rust types the API reads and writes (`super::types`,
//! the same types the handlers use). Served at
//! `/api/openapi.json` and committed as `docs/openapi.json` (a test keeps them equal).

use super::types::{
    AuditTrail, CommentRequest, ContainerLink, CreateRequest, Error, GateAnswerReceipt,
    GateAnswerRequest, Health, JustifyRequest, PreflightReport, RequestEnvelope, RequestList,
    ReviewRequest, RevokeRequest, WebConfig, WorkspaceLimits, WorkspaceList, WorkspaceRecordList,
    WorkspaceRecordView, WorkspaceTrail,
};
use super::{
    actions, admin, comments, diff, gates, history, links, lists, preflight, preview, record,
    requests, stats, web, workspaces,
};
use crate::app::Deps;
use crate::domain::policy::WorkspacePolicy;
use crate::domain::preview::FilePreview;
use crate::domain::registry::RESERVED_ID;
use crate::domain::request::{
    Comment, GateReport, MAX_COMMENT_CHARS, MAX_JUSTIFICATION_CHARS, MAX_TITLE_CHARS, RevisionDiff,
    SubmitContext,
};
use crate::domain::stats::Stats;
use airlock_api::governance::GovernanceRecord;
use axum::routing::{MethodRouter, get, post, put};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// A query or path parameter.
struct Param {
    name: &'static str,
    location: &'static str,
    schema: Value,
    description: String,
    /// Path parameters always are; a query parameter when the call means nothing without it.
    required: bool,
}

fn path(name: &'static str) -> Param {
    Param {
        name,
        location: "path",
        schema: json!({"type": "string"}),
        description: String::new(),
        required: true,
    }
}

fn query(name: &'static str, schema: Value, description: impl Into<String>) -> Param {
    Param {
        name,
        location: "query",
        schema,
        description: description.into(),
        required: false,
    }
}

/// One endpoint, declared once: the router serves `handler` at `method` `path`
/// (`super::router`), and the document describes it from the rest.
pub(super) struct Op {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    status: u16,
    response: &'static str,
    params: Vec<Param>,
    secured: bool,
    pub(super) handler: MethodRouter<Arc<Deps>>,
}

fn paging(awaiting: bool) -> Vec<Param> {
    let statuses: Vec<&str> = crate::domain::Status::ALL
        .iter()
        .map(|s| s.as_str())
        .collect();
    let mut params = vec![
        query(
            "type",
            json!({"type": "string", "enum": ["import", "export"]}),
            "only this type",
        ),
        query(
            "status",
            json!({"type": "string"}),
            format!("comma-separated statuses, any of: {}", statuses.join(", ")),
        ),
        query(
            "orderBy",
            json!({"type": "string", "enum": ["createdWhen", "createdWhen desc", "createdWhen asc", "updatedWhen", "updatedWhen desc", "updatedWhen asc"]}),
            "newest first by default",
        ),
        query(
            "pageSize",
            json!({"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
            "items per page",
        ),
        query(
            "continuationToken",
            json!({"type": "string"}),
            "from the previous page",
        ),
    ];

    params.push(query(
        "order_by",
        json!({"type": "string", "enum": ["createdWhen", "updatedWhen"]}),
        "AzureTRE's order: the field (with order_ascending)",
    ));
    params.push(query(
        "order_ascending",
        json!({"type": "boolean", "default": true}),
        "AzureTRE's direction for order_by",
    ));
    if awaiting {
        params.push(query(
            "airlock_manager",
            json!({"type": "boolean", "default": false}),
            "AzureTRE's: every request in the workspaces where the caller is an airlock manager (answered as AzureTRE does, a bare array, when none of pageSize, continuationToken, awaitingMyReview, orderBy is given)",
        ));
        params.push(query(
            "awaitingMyReview",
            json!({"type": "boolean"}),
            "airlock managers: requests they can review now",
        ));
    } else {
        params.push(query(
            "creator",
            json!({"type": "string"}),
            "creator's user id (researchers always see their own)",
        ));
        params.push(query(
            "creator_user_id",
            json!({"type": "string"}),
            "AzureTRE's name for creator",
        ));
    }
    params
}

/// An endpoint of the workspace registry: a TRE admin's, on one workspace unless the path
/// names none.
fn registry(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<&'static str>,
    response: &'static str,
    handler: MethodRouter<Arc<Deps>>,
) -> Op {
    Op {
        method,
        path,
        summary,
        body,
        status: 200,
        response,
        params: if path.contains("{workspaceId}") {
            vec![self::path("workspaceId")]
        } else {
            vec![]
        },
        secured: true,
        handler,
    }
}

/// The statistics' time range.
fn stats_range() -> Vec<Param> {
    vec![
        query(
            "from",
            json!({"type": "string", "format": "date-time"}),
            "requests created from this time (RFC 3339) [default: 30 days before to]",
        ),
        query(
            "to",
            json!({"type": "string", "format": "date-time"}),
            "requests created before this time [default: now]; after from",
        ),
    ]
}

/// A workspace's path parameter and the version a change is conditional on.
fn if_match() -> Vec<Param> {
    vec![
        path("workspaceId"),
        Param {
            name: "If-Match",
            location: "header",
            schema: json!({"type": "string"}),
            description: "the etag of the record read (GET answers with it); 412 if it changed since, 428 without".into(),
            required: false,
        },
    ]
}

/// The header that makes a create of `what` safe to send again.
fn idempotency_key(what: &str) -> Param {
    Param {
        name: "Idempotency-Key",
        location: "header",
        schema: json!({"type": "string", "pattern": "^(\"[ !#-\\[\\]-~]{1,255}\"|[!#-~]([ -~]{0,253}[!-~])?)$"}),
        description: format!(
            "makes the call safe to send again: a new value (e.g. a UUID) per {what} to make, the same on each retry of it; a retry is answered with the {what} the key made (201), the key with a different body is refused (409). A Structured Field string (\"...\") or the bare text, 1 to 255 visible ASCII characters"
        ),
        required: false,
    }
}

/// Every endpoint of the API (the catch-all 404 aside).
pub(super) fn operations() -> Vec<Op> {
    let ws = || vec![path("workspaceId")];
    let req = || vec![path("workspaceId"), path("requestId")];
    let action = |path: &'static str,
                  summary: &'static str,
                  body: Option<&'static str>,
                  handler: MethodRouter<Arc<Deps>>| Op {
        method: "post",
        path,
        summary,
        body,
        status: 200,
        response: "RequestEnvelope",
        params: req(),
        secured: true,
        handler,
    };
    // The web app's address, typed with or without its slash: a redirect to its page.
    let app_start = |path: &'static str| Op {
        method: "get",
        path,
        summary: "The web app (a redirect to its page)",
        body: None,
        status: 308,
        response: "",
        params: vec![],
        secured: false,
        handler: get(web::start),
    };
    let mut list_params = ws();
    list_params.extend(paging(false));
    vec![
        Op {
            method: "post",
            path: "/api/workspaces/{workspaceId}/requests",
            summary: "Create a draft request",
            body: Some("CreateRequest"),
            status: 201,
            response: "RequestEnvelope",
            params: vec![path("workspaceId"), idempotency_key("request")],
            secured: true,
            handler: post(requests::create),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests",
            summary: "List the workspace's requests",
            body: None,
            status: 200,
            response: "RequestList",
            params: list_params,
            secured: true,
            handler: get(lists::list),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/limits",
            summary: "What the workspace's airlock accepts (checked again at submit)",
            body: None,
            status: 200,
            response: "WorkspaceLimits",
            params: ws(),
            secured: true,
            handler: get(history::limits),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}",
            summary: "Read a request",
            body: None,
            status: 200,
            response: "RequestEnvelope",
            params: req(),
            secured: true,
            handler: get(requests::read),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/link",
            summary: "A container link for the request's files (upload in draft, read in review and once approved)",
            body: None,
            status: 200,
            response: "ContainerLink",
            params: req(),
            secured: true,
            handler: get(links::link),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/history",
            summary: "The audit trail and whether its hash chain verifies",
            body: None,
            status: 200,
            response: "AuditTrail",
            params: req(),
            secured: true,
            handler: get(history::history),
        },
        action(
            "/api/workspaces/{workspaceId}/requests/{requestId}/submit",
            "Submit a draft (its files are checked against the workspace's limits); the body (optional) gives the purpose and each file's description and disclosure controls",
            Some("SubmitContext"),
            post(actions::submit),
        ),
        Op {
            method: "post",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/comments",
            summary: "Comment on the request or one of its files (visible to everyone who may read it, or to reviewers only)",
            body: Some("CommentRequest"),
            status: 201,
            response: "Comment",
            params: {
                let mut params = req();
                params.push(idempotency_key("comment"));
                params
            },
            secured: true,
            handler: post(comments::comment),
        },
        Op {
            response: "PreflightReport",
            ..action(
                "/api/workspaces/{workspaceId}/requests/{requestId}/preflight",
                "Check a draft before submitting it: the workspace's built-in gates over each file now, each finding with what to do about it (remediation); nothing is sealed or changed. Whoever may submit it; once per request every 30 s (429 with Retry-After); on the record",
                None,
                post(preflight::preflight),
            )
        },
        action(
            "/api/workspaces/{workspaceId}/requests/{requestId}/cancel",
            "Cancel a draft or a request in review",
            None,
            post(actions::cancel),
        ),
        Op {
            params: {
                let mut params = req();
                params.push(Param {
                    name: "If-Match",
                    location: "header",
                    schema: json!({"type": "string", "pattern": "^(|\\*|(W/)?\"[!#-~]*\")$"}),
                    description: "the ETag of the version read (GET answers with it), or * for any (empty: none); 412 if it changed since".into(),
                    required: false,
                });
                params
            },
            ..action(
                "/api/workspaces/{workspaceId}/requests/{requestId}/review",
                "Approve, reject or request changes (airlock managers; never the creator)",
                Some("ReviewRequest"),
                post(actions::review),
            )
        },
        action(
            "/api/workspaces/{workspaceId}/requests/{requestId}/justify",
            "Justify a file's gate warnings (the researcher, while in review)",
            Some("JustifyRequest"),
            post(actions::justify),
        ),
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/gates",
            summary: "Each gate's result on the current revision, with the evidence per file",
            body: None,
            status: 200,
            response: "GateReport",
            params: req(),
            secured: true,
            handler: get(gates::gates),
        },
        Op {
            method: "post",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/gates/{gateName}",
            summary: "An external gate's verdict on every file (service identities with the AirlockGate role only)",
            body: Some("GateAnswerRequest"),
            status: 200,
            response: "GateAnswerReceipt",
            params: {
                let mut params = req();
                params.push(path("gateName"));
                params
            },
            secured: true,
            handler: post(gates::answer_gate),
        },
        action(
            "/api/workspaces/{workspaceId}/requests/{requestId}/revoke",
            "Revoke an approval; approved data is deleted",
            Some("RevokeRequest"),
            post(actions::revoke),
        ),
        Op {
            method: "get",
            path: "/api/requests",
            summary: "The caller's requests across the workspaces their token is for: a page (RequestList) with any of pageSize, continuationToken, awaitingMyReview, orderBy; else AzureTRE's bare array (at most 1000)",
            body: None,
            status: 200,
            response: "RequestsAnswer",
            params: paging(true),
            secured: true,
            handler: get(lists::requests),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/diff",
            summary: "What changed in this revision: each file added, changed, identical (same sha256 and name) or removed, against the previous revision and against your last decisions (identical files' decisions carry over when the workspace carries votes)",
            body: None,
            status: 200,
            response: "RevisionDiff",
            params: req(),
            secured: true,
            handler: get(diff::diff),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/preview",
            summary: "A file as a page shows it: a table's first rows (numbered as the gates number them) with the gates' findings and a summary per column, or a text's first characters; with content=true a PNG or JPEG image's bytes. For those who may read the files (as for a download link); on the record once per person and file",
            body: None,
            status: 200,
            response: "FilePreview",
            params: {
                let mut params = req();
                params.push(Param {
                    name: "file",
                    location: "query",
                    schema: json!({"type": "string"}),
                    description: "the file's name in the request".into(),
                    required: true,
                });
                params.push(query(
                    "content",
                    json!({"type": "boolean", "default": false}),
                    "the image's bytes (PNG or JPEG only) instead of the preview document",
                ));
                params
            },
            secured: true,
            handler: get(preview::preview),
        },
        Op {
            method: "get",
            path: "/api/workspaces",
            summary: "The workspaces whose airlock is on, with the token audience and scope each needs (a token for the TRE-wide API or for any of them)",
            body: None,
            status: 200,
            response: "WorkspaceList",
            params: vec![],
            secured: true,
            handler: get(workspaces::list),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/requests/{requestId}/record",
            summary: "The governance record of a finished request: files and sealed sha256, each gate's evidence, every vote, override and comment the caller may see, the policy versions, the whole hash-chained trail; format json (GovernanceRecord), html (print-ready) or ro-crate (Five Safes RO-Crate metadata)",
            body: None,
            status: 200,
            response: "GovernanceRecord",
            params: {
                let mut params = req();
                params.push(query(
                    "format",
                    json!({"type": "string", "enum": ["json", "html", "ro-crate"], "default": "json"}),
                    "the record's form",
                ));
                params
            },
            secured: true,
            handler: get(record::record),
        },
        Op {
            method: "get",
            path: "/api/workspaces/{workspaceId}/stats",
            summary: "The workspace's statistics over the requests created in [from, to) (the last 30 days by default): by type and status, time in each status, review turnaround, overrides, findings by rule, what was released (owners, airlock managers, TRE admins, auditors)",
            body: None,
            status: 200,
            response: "Stats",
            params: {
                let mut params = ws();
                params.extend(stats_range());
                params
            },
            secured: true,
            handler: get(stats::workspace),
        },
        Op {
            method: "get",
            path: "/api/admin/stats",
            summary: "Every workspace's statistics added up (TRE admins and auditors, with a token for the TRE-wide API)",
            body: None,
            status: 200,
            response: "Stats",
            params: stats_range(),
            secured: true,
            handler: get(stats::tre),
        },
        registry(
            "get",
            "/api/admin/workspaces",
            "Every registered workspace, as written and in force (TRE admins, with a token for the TRE-wide API)",
            None,
            "WorkspaceRecordList",
            get(admin::list),
        ),
        Op {
            status: 201,
            params: vec![],
            ..registry(
                "post",
                "/api/admin/workspaces",
                "Register a workspace (validated as the airlock reads it; the registration is the first entry of its audit trail)",
                Some("WorkspaceRecord"),
                "WorkspaceRecordView",
                post(admin::register),
            )
        },
        registry(
            "get",
            "/api/admin/workspaces/{workspaceId}",
            "A workspace's record as written, its policy in force and version; ETag for the next change",
            None,
            "WorkspaceRecordView",
            get(admin::get),
        ),
        Op {
            params: if_match(),
            ..registry(
                "put",
                "/api/admin/workspaces/{workspaceId}",
                "Change a workspace's record (airlockEnabled false disables it); audited with what changed",
                Some("WorkspaceRecord"),
                "WorkspaceRecordView",
                put(admin::replace),
            )
        },
        Op {
            params: if_match(),
            ..registry(
                "put",
                "/api/admin/workspaces/{workspaceId}/policy",
                "Set the policy the record sets (fields left out come from the operator's defaults); audited with the fields changed and the versions before and after",
                Some("WorkspacePolicy"),
                "WorkspaceRecordView",
                put(admin::set_policy),
            )
        },
        registry(
            "get",
            "/api/admin/workspaces/{workspaceId}/history",
            "A workspace's audit trail: every registration and change, with its diff and the policy as set, and whether the hash chain verifies",
            None,
            "WorkspaceTrail",
            get(admin::history),
        ),
        app_start("/api/app"),
        app_start("/api/app/"),
        Op {
            method: "get",
            path: "/api/app/{asset}",
            summary: "The web app's files (index.html, app.js, auth.js, app.css) and config.json (WebConfig: how it signs in), with a Content-Security-Policy that allows nothing inline or from elsewhere",
            body: None,
            status: 200,
            response: "text/html",
            params: vec![path("asset")],
            secured: false,
            handler: get(web::asset),
        },
        Op {
            method: "get",
            path: "/api/health",
            summary: "Liveness",
            body: None,
            status: 200,
            response: "Health",
            params: vec![],
            secured: false,
            handler: get(|| async {
                axum::Json(Health {
                    status: "healthy".into(),
                })
            }),
        },
        Op {
            method: "get",
            path: "/api/openapi.json",
            summary: "This document",
            body: None,
            status: 200,
            response: "",
            params: vec![],
            secured: false,
            handler: get(|| async { axum::Json(document()) }),
        },
    ]
}

/// What the API answers to AzureTRE's list call (the `airlock_manager` form) or ours; the
/// registry's bodies (checked by the handler's own record parser, which says what to fix).
fn as_served(schemas: &mut Map<String, Value>) {
    // An address as the registry checks one: something, `@`, a domain with a dot; no white
    // space or control character; at most 254 characters.
    let plain = format!("[^\\u0000-\\u001f\\u007f-\\u009f{WHITE_SPACE_CHARS}");
    let address = json!({
        "type": "string",
        "maxLength": 254,
        "pattern": format!("^{plain}@]+@{plain}]*\\.{plain}]*$"),
    });
    schemas.insert(
        "WorkspaceRecord".into(),
        json!({
            "type": "object",
            "description": "A workspace record as a TRE admin writes it (docs/configuration.md)",
            "required": ["id", "displayName", "shortId", "tokenAudience"],
            "additionalProperties": false,
            "properties": {
                "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$", "not": {"enum": [RESERVED_ID]}},
                "displayName": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": not_only_white_space()},
                "shortId": {"type": "string", "pattern": "^[a-z0-9]{1,9}$"},
                "airlockEnabled": {"type": "boolean", "default": true},
                "tokenAudience": {
                    "type": "string",
                    "maxLength": 512,
                    "pattern": format!("^[^{WHITE_SPACE_CHARS}]([\\s\\S]*[^{WHITE_SPACE_CHARS}])?$"),
                },
                "policy": schema_ref("WorkspacePolicy"),
                "contacts": {"type": "object", "properties": {
                    "workspaceOwner": {"type": "array", "items": address.clone()},
                    "airlockManager": {"type": "array", "items": address},
                }},
            },
        }),
    );
    // What a person writes: at least one character that is not white space (the airlock
    // trims it), at most `max` characters.
    for (schema, field, max) in [
        ("CreateRequest", "title", MAX_TITLE_CHARS),
        (
            "CreateRequest",
            "businessJustification",
            MAX_JUSTIFICATION_CHARS,
        ),
        ("CommentRequest", "text", MAX_COMMENT_CHARS),
        ("JustifyRequest", "justification", MAX_JUSTIFICATION_CHARS),
        ("RevokeRequest", "reason", MAX_JUSTIFICATION_CHARS),
    ] {
        if let Some(p) = property_mut(schemas, schema, field) {
            p["minLength"] = json!(1);
            p["maxLength"] = json!(max);
            p["pattern"] = json!(not_only_white_space());
        }
    }
    for field in ["explanation", "decisionExplanation"] {
        if let Some(p) = property_mut(schemas, "ReviewRequest", field) {
            p["maxLength"] = json!(MAX_JUSTIFICATION_CHARS);
        }
    }
    // AzureTRE's boolean, exactly as the server reads it (any case, white space around).
    let spellings = [
        "true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0",
    ]
    .map(|word| {
        word.chars()
            .map(|c| match (c.to_ascii_lowercase(), c.to_ascii_uppercase()) {
                (l, u) if l != u => format!("[{u}{l}]"),
                (l, _) => l.to_string(),
            })
            .collect::<String>()
    })
    .join("|");
    let space = format!("[{WHITE_SPACE_CHARS}]*");
    schemas.insert(
        "LaxBool".into(),
        json!({
            "description": "A boolean as AzureTRE's model reads one",
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer", "enum": [0, 1]},
                {"type": "string", "pattern": format!("^{space}({spellings}){space}$")},
            ],
        }),
    );
    // A review says what it decides: a decision, AzureTRE's approval, or a decision per file.
    if let Some(review) = schemas.get_mut("ReviewRequest") {
        review["anyOf"] = json!([
            {"required": ["decision"], "properties": {"decision": schema_ref("Decision")}},
            {"required": ["approval"], "properties": {"approval": schema_ref("LaxBool")}},
            {"required": ["files"], "properties": {"files": {"type": "array", "minItems": 1}}},
        ]);
    }
    // A link carries one IPv4 address or range (`sip`): an address or a CIDR block as the
    // server reads them. A `from-to` range is read too, but its order (from <= to) is not a
    // thing a pattern can say, so the document offers only the two forms it can state whole.
    if let Some(ranges) = property_mut(schemas, "WorkspacePolicy", "allowedIpRanges") {
        let octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
        ranges["maxItems"] = json!(1);
        ranges["items"]["pattern"] =
            json!(format!("^{octet}(\\.{octet}){{3}}(/(3[0-2]|[12]?[0-9]))?$"));
    }
    if let Some(policy) = schemas.get_mut("WorkspacePolicy") {
        policy["description"] = json!(
            "Workspace policy fields (docs/configuration.md); those left out come from the operator's defaults"
        );
    }
    schemas.insert(
        "RequestsAnswer".into(),
        json!({"oneOf": [
            schema_ref("RequestList"),
            {"type": "array", "items": schema_ref("RequestView"), "maxItems": 1000},
        ]}),
    );
}

/// Unicode's White_Space (what the server's trim removes), the inside of a regex class,
/// spelled out so every regex engine reads it alike.
const WHITE_SPACE_CHARS: &str =
    "\\t-\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

/// A JSON Schema pattern (unanchored): some character outside Unicode's White_Space.
fn not_only_white_space() -> String {
    format!("[^{WHITE_SPACE_CHARS}]")
}

/// A property's schema in one of the derived schemas, to say more than the type does.
fn property_mut<'a>(
    schemas: &'a mut Map<String, Value>,
    schema: &str,
    field: &str,
) -> Option<&'a mut Value> {
    schemas
        .get_mut(schema)?
        .pointer_mut(&format!("/properties/{field}"))
}

/// Integers the server reads as `u32` or `u64` say their largest value (a larger one is
/// refused as bad input, so the document must not invite it).
fn bound_unsigned(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let max = match map.get("format").and_then(Value::as_str) {
                Some("uint32") => Some(json!(u32::MAX)),
                Some("uint64") => Some(json!(u64::MAX)),
                Some("uint16") => Some(json!(u16::MAX)),
                Some("uint8") => Some(json!(u8::MAX)),
                _ => None,
            };
            if let Some(max) = max {
                map.entry("maximum").or_insert(max);
            }
            map.values_mut().for_each(bound_unsigned);
        }
        Value::Array(items) => items.iter_mut().for_each(bound_unsigned),
        _ => {}
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The document.
pub fn document() -> Value {
    let mut generator = schemars::generate::SchemaSettings::openapi3().into_generator();
    let mut schemas = Map::new();
    macro_rules! add {
        ($($t:ty),*) => {$(
            let schema = generator.subschema_for::<$t>();
            let name = stringify!($t).to_string();
            // Named types become refs; keep the schema itself under its name.
            if schema.as_value().get("$ref").is_none() {
                schemas.insert(name, schema.to_value());
            }
        )*};
    }
    add!(
        CreateRequest,
        ReviewRequest,
        RevokeRequest,
        JustifyRequest,
        SubmitContext,
        CommentRequest,
        Comment,
        GateAnswerRequest,
        GateAnswerReceipt,
        GateReport,
        RequestEnvelope,
        RequestList,
        ContainerLink,
        AuditTrail,
        WorkspaceLimits,
        WorkspaceList,
        PreflightReport,
        RevisionDiff,
        WebConfig,
        FilePreview,
        WorkspaceRecordList,
        WorkspaceRecordView,
        WorkspaceTrail,
        Stats,
        GovernanceRecord,
        Error,
        Health,
        WorkspacePolicy
    );
    for (name, schema) in generator.take_definitions(true) {
        schemas.insert(name, schema);
    }
    as_served(&mut schemas);
    schemas.values_mut().for_each(bound_unsigned);
    let error = |description: &str| json!({"description": description, "content": {"application/json": {"schema": schema_ref("Error")}}});
    let operation_id = |op: &Op| {
        format!(
            "{}{}",
            op.method,
            op.path.replace(['/', '{', '}', '.'], "_")
        )
    };
    let ops = operations();
    // Links: what a created request's id unlocks (clients and test tools follow them).
    let mut links = Map::new();
    for op in ops.iter().filter(|o| o.path.contains("{requestId}")) {
        let name = format!(
            "{}{}",
            op.method,
            op.path
                .rsplit('/')
                .next()
                .unwrap_or("")
                .replace(['{', '}'], "")
        );
        links.insert(name, json!({
            "operationId": operation_id(op),
            "parameters": {"workspaceId": "$request.path.workspaceId", "requestId": "$response.body#/airlockRequest/id"},
        }));
    }
    let mut paths = Map::new();
    for op in ops {
        let mut operation = json!({
            "summary": op.summary,
                        "operationId": operation_id(&op),
            "parameters": op.params.iter().map(|p| {
                let mut v = json!({"name": p.name, "in": p.location, "required": p.required, "schema": p.schema});
                if !p.description.is_empty() {
                    v["description"] = json!(p.description);
                }
                v
            }).collect::<Vec<_>>(),
        });
        let mut success = if (300..400).contains(&op.status) {
            json!({"description": "A redirect, without a body", "headers": {"Location": {"schema": {"type": "string"}}}})
        } else if op.response.is_empty() {
            json!({"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}})
        } else if op.response.contains('/') {
            // A media type, not a schema: the web app's files.
            json!({"description": "OK", "content": {op.response: {"schema": {"type": "string"}}}})
        } else {
            json!({"description": "OK", "content": {"application/json": {"schema": schema_ref(op.response)}}})
        };
        // The links lead from a created request to what can be done with it.
        if op.status == 201 && op.response == "RequestEnvelope" {
            success["links"] = Value::Object(links.clone());
        }
        let mut responses = Map::new();
        responses.insert(op.status.to_string(), success);
        if op.secured {
            operation["security"] = json!([{"bearer": []}]);
            responses.insert("400".into(), error("Bad input"));
            responses.insert(
                "401".into(),
                error("No token, or a token that does not verify or is not for this workspace"),
            );
            responses.insert("403".into(), error("The caller's role does not allow this"));
            responses.insert(
                "404".into(),
                error("Unknown workspace, or a request that is not in this workspace"),
            );
            responses.insert(
                "409".into(),
                error("The request's status does not allow this now, it changed concurrently (read it again), or the Idempotency-Key named a different call"),
            );
            responses.insert("413".into(), error("The body is too large"));
            if op.params.iter().any(|p| p.name == "If-Match") {
                responses.insert(
                    "412".into(),
                    error("The request changed since the version named in If-Match"),
                );
            }
            if op.path.starts_with("/api/admin/") && op.method == "put" {
                responses.insert(
                    "428".into(),
                    error("A change to a versioned record needs If-Match with its etag"),
                );
            }
            responses.insert(
                "429".into(),
                error("Too many calls from this caller: wait the `Retry-After` seconds"),
            );
            responses.insert(
                "503".into(),
                error("A service the airlock depends on is unavailable; try again"),
            );
        } else {
            operation["security"] = json!([]);
            if op.path.contains('{') {
                responses.insert("404".into(), error("Nothing by that name"));
            }
        }
        responses.insert(
            "500".into(),
            error("A fault of the airlock's own: the message carries a correlation id to quote"),
        );
        operation["responses"] = Value::Object(responses);
        if let Some(body) = op.body {
            operation["requestBody"] = json!({"required": !op.path.ends_with("/submit"), "content": {"application/json": {"schema": schema_ref(body)}}});
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Airlock API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The data airlock of a Trusted Research Environment: import and export requests, reviews, links and audit trails."
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": schemas,
        },
        "security": [{"bearer": []}],
    })
}
