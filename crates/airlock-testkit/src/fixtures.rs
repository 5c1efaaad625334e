//! The records tests build again and again, in one place: a workspace with a policy, a
//! person, a request created at a fixed instant. Each suite states only what its test is
//! about (the policy, who creates, when) and takes the rest from here.
//!
//! The domain crate's own tests keep theirs (it cannot depend on this crate, which depends
//! on it).

use airlock::domain::request::{Ctx, RequestType};
use airlock::domain::{AirlockRequest, User, Workspace};
use serde_json::{Value, json};

pub use crate::demo::audience;

/// A workspace as it is stored: `policy` is a partial policy document (`{}` for the
/// defaults), read by the same parser as a stored one; contacts for notifications.
pub fn workspace(id: &str, short: &str, policy: Value) -> Workspace {
    serde_json::from_value(json!({
        "id": id,
        "displayName": format!("Workspace {short}"),
        "shortId": short,
        "tokenAudience": audience(id),
        "policy": policy,
        "contacts": {
            "workspaceOwner": [format!("owner@{short}.test")],
            "airlockManager": [format!("managers@{short}.test")],
        },
    }))
    .expect("a workspace fixture")
}

/// A person, with an e-mail address at `example.org`.
pub fn user(id: &str) -> User {
    User {
        id: id.into(),
        name: id.into(),
        email: Some(format!("{id}@example.org")),
    }
}

/// A draft request `id` of `kind` in `ws`, created by `creator` `minute` minutes after a
/// fixed instant (2027-01-15T08:00:00Z), so that orderings by time are the test's choice.
pub fn request(
    ws: &Workspace,
    id: &str,
    creator: &str,
    kind: RequestType,
    minute: i64,
) -> AirlockRequest {
    let ctx = Ctx {
        now: at_minute(minute),
        workspace: ws,
    };
    AirlockRequest::create(
        id.into(),
        kind,
        format!("Results {id}"),
        "Figures for the paper".into(),
        user(creator),
        &ctx,
    )
    .expect("a request fixture")
}

/// The fixed instant plus `minute` minutes.
pub fn at_minute(minute: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).expect("a valid instant")
}

/// Every file under `dir` (its subfolders too), named as a researcher's upload of the folder
/// would name them: `prefix` and the path inside `dir`, with `/` between folders.
pub fn folder_files(dir: &std::path::Path, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut folders = vec![(dir.to_path_buf(), prefix.to_string())];
    while let Some((folder, named)) = folders.pop() {
        for entry in std::fs::read_dir(&folder).expect("a readable folder") {
            let entry = entry.expect("a folder entry");
            let name = format!("{named}{}", entry.file_name().to_string_lossy());
            if entry.file_type().expect("its type").is_dir() {
                folders.push((entry.path(), format!("{name}/")));
            } else {
                files.push((name, std::fs::read(entry.path()).expect("a readable file")));
            }
        }
    }
    files.sort();
    files
}
