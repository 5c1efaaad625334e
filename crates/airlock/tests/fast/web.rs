//! What the web app stands on: its files and their policy, the workspace list, and previews
//! through the API (who may, what is recorded, and that researcher content is never served
//! as anything that runs).

use crate::common::*;
use serde_json::json;

/// A request in review in WS1 with `files`, submitted by alice.
async fn in_review(s: &Stack, files: &[(&str, &[u8])]) -> String {
    let alice = s.token("alice", &[RESEARCHER], WS1);
    let id = s.create(WS1, &alice, "export").await;
    let link = s.link(WS1, &id, &alice).await;
    for (name, data) in files {
        link.upload(name, data.to_vec()).unwrap();
    }
    s.action(WS1, &id, "submit", &alice, None).await;
    s.settle().await;
    assert_eq!(s.record(&id).status.to_string(), "in_review");
    id
}

fn preview_path(id: &str, file: &str) -> String {
    format!(
        "/api/workspaces/{WS1}/requests/{id}/preview?file={}",
        airlock::domain::url::encode_path(file).replace('&', "%26")
    )
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

#[tokio::test]
async fn a_reviewer_previews_a_table_with_its_flagged_cells_and_it_is_on_the_record() {
    let s = Stack::start(json!({"gates": [
        {"name": "small counts", "kind": "disclosure", "mode": "warn", "threshold": 10}
    ]}))
    .await;
    let id = in_review(&s, &[("t.csv", b"region,n\nNorth,120\nSouth,3\n")]).await;
    let rita = s.token("rita", &[MANAGER], WS1);
    let p = s
        .ok("GET", &preview_path(&id, "t.csv"), &rita, None, 200)
        .await;
    assert_eq!(p["kind"], "table");
    assert_eq!(p["columns"], json!(["region", "n"]));
    assert_eq!(p["rows"][1], json!({"row": 3, "cells": ["South", "3"]}));
    assert_eq!(
        p["findings"][0]["cell"],
        json!({"row": 3, "columnIndex": 1, "column": "n"})
    );
    assert_eq!(p["summaries"][1]["minAboveZero"], 3.0);
    assert_eq!(p["sha256"], json!(s.record(&id).files[0].sha256));
    // Once on the record per person and file, however often the page asks.
    s.ok("GET", &preview_path(&id, "t.csv"), &rita, None, 200)
        .await;
    let previews: Vec<_> = s
        .history(&id)
        .await
        .into_iter()
        .filter(|e| e.action == airlock::domain::request::FILE_PREVIEWED)
        .collect();
    assert_eq!(previews.len(), 1, "{previews:?}");
    assert_eq!(previews[0].by, "rita");
}

#[tokio::test]
async fn a_preview_is_for_those_who_may_read_the_files() {
    let s = Stack::start(json!({})).await;
    let id = in_review(&s, &[("a.csv", b"x,n\na,1\n")]).await;
    let path = preview_path(&id, "a.csv");
    // Under review: managers and owners read; another researcher, the author, another
    // workspace's token and no token do not.
    let cases = [
        (s.token("rita", &[MANAGER], WS1), 200),
        (s.token("olga", &[OWNER], WS1), 200),
        (s.token("bob", &[RESEARCHER], WS1), 403),
        (s.token("alice", &[RESEARCHER], WS1), 403),
        (s.token("rita", &[MANAGER], WS2), 401),
    ];
    for (token, expected) in cases {
        let (status, body) = s.call("GET", &path, Some(&token), None).await;
        assert_eq!(status.as_u16(), expected, "{body}");
    }
    let (status, _) = s.call("GET", &path, None, None).await;
    assert_eq!(status.as_u16(), 401);
    // A name that is not the request's, or climbs out of it.
    let rita = s.token("rita", &[MANAGER], WS1);
    for name in ["b.csv", "../a.csv", "a.csv/", ""] {
        let (status, body) = s
            .call("GET", &preview_path(&id, name), Some(&rita), None)
            .await;
        assert_eq!(status.as_u16(), 404, "{name:?}: {body}");
    }
    let (status, _) = s
        .call(
            "GET",
            &format!("/api/workspaces/{WS1}/requests/{id}/preview"),
            Some(&rita),
            None,
        )
        .await;
    assert_eq!(status.as_u16(), 400, "no file named");
}

#[tokio::test]
async fn researcher_content_is_never_served_as_something_that_runs() {
    let s = Stack::start(json!({})).await;
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
    let id = in_review(
        &s,
        &[
            ("plot.png", PNG),
            ("evil.svg", svg),
            ("fake.png", b"<html><script>alert(1)</script></html>"),
            // (`<` and `>` never get this far: names are refused at submit)
            (
                "x&y onerror='alert(1)'.csv",
                b"a,n\n<script>alert(1)</script>,5\n",
            ),
        ],
    )
    .await;
    let rita = s.token("rita", &[MANAGER], WS1);
    // A real PNG: its bytes, typed by its content, under a policy that runs nothing.
    let response = reqwest::Client::new()
        .get(format!(
            "{}{}&content=true",
            s.base,
            preview_path(&id, "plot.png")
        ))
        .bearer_auth(&rita)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
    // SVG and HTML named .png: text in a document, never their bytes as an image.
    for name in ["evil.svg", "fake.png"] {
        let p = s
            .ok("GET", &preview_path(&id, name), &rita, None, 200)
            .await;
        assert_eq!(p["kind"], "text", "{name}");
        let (status, body) = s
            .call(
                "GET",
                &format!("{}&content=true", preview_path(&id, name)),
                Some(&rita),
                None,
            )
            .await;
        assert_eq!(status.as_u16(), 400, "{name}: {body}");
    }
    let p = s
        .ok(
            "GET",
            &preview_path(&id, "x&y onerror='alert(1)'.csv"),
            &rita,
            None,
            200,
        )
        .await;
    assert_eq!(p["name"], "x&y onerror='alert(1)'.csv");
    assert_eq!(p["rows"][0]["cells"][0], "<script>alert(1)</script>");
}

#[tokio::test]
async fn the_workspace_list_is_for_tokens_of_the_airlock() {
    let s = Stack::start(json!({})).await;
    let rita = s.token("rita", &[MANAGER], WS1);
    let list = s.ok("GET", "/api/workspaces", &rita, None, 200).await;
    let ids: Vec<&str> = list["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![WS1, WS2]);
    assert_eq!(
        list["workspaces"][0]["scope"],
        format!("{}/.default", audience(WS1))
    );
    // A token of the same issuer for another application: refused.
    let other = s.issuer.mint(&airlock_testkit::TokenSpec::new(
        "rita",
        &[MANAGER],
        "api://payroll",
    ));
    let (status, _) = s.call("GET", "/api/workspaces", Some(&other), None).await;
    assert_eq!(status.as_u16(), 401);
}

#[tokio::test]
async fn the_app_is_served_under_a_policy_that_runs_only_its_own_scripts() {
    let s = Stack::start(json!({})).await;
    let http = reqwest::Client::new();
    for (asset, kind) in [
        ("index.html", "text/html"),
        ("app.js", "text/javascript"),
        ("auth.js", "text/javascript"),
        ("app.css", "text/css"),
        ("config.json", "application/json"),
    ] {
        let r = http
            .get(format!("{}/api/app/{asset}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        let h = r.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(kind));
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
    }
    // No sign-in configured: the page is told so, nothing is made up.
    let config: serde_json::Value = http
        .get(format!("{}/api/app/config.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config, json!({}));
    for name in [
        "../Cargo.toml",
        "%2e%2e%2fCargo.toml",
        "missing.js",
        "index.html.bak",
    ] {
        let r = http
            .get(format!("{}/api/app/{name}", s.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{name}");
    }
}
