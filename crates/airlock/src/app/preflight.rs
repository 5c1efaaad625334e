//! A researcher's pre-flight check of a draft: the workspace's built-in gates over each file,
//! with the same runner and the same streaming read as the seal (bounded memory whatever the
//! size: `GateRunner` keeps only its sniff, zip-tail and table-prefix buffers), but nothing is
//! sealed, copied or changed. External gates and the malware scan run only on a submitted
//! request, and the release ledger needs the sealed table: the report says so.

use super::Deps;
use super::movement::container;
use crate::domain::gates::{GateKind, GateMode, GateRunner};
use crate::domain::{AirlockRequest, StageRole, Workspace};
use crate::ports::PortError;
use airlock_api::types::{FilePreflight, PreflightReport};
use futures::StreamExt;

pub async fn check_draft(
    deps: &Deps,
    ws: &Workspace,
    request: &AirlockRequest,
) -> Result<PreflightReport, PortError> {
    let draft = container(deps, ws, request, StageRole::Draft);
    let listed = deps.blobs.list_blobs(&draft).await?;
    let named: Vec<(String, u64)> = listed.iter().map(|b| (b.name.clone(), b.size)).collect();
    let problems: Vec<String> = crate::domain::policy::check_files(&named, &ws.policy)
        .err()
        .into_iter()
        .collect();
    let mut files = Vec::with_capacity(listed.len());
    for blob in &listed {
        let mut findings = Vec::new();
        if let Some(mut runner) = GateRunner::new(&ws.policy.gates, &blob.name) {
            let (_, mut stream) = deps.blobs.read(&draft.blob(&blob.name)).await?;
            while let Some(chunk) = stream.next().await {
                runner.feed(&chunk?);
            }
            findings = runner.finish().0;
        }
        files.push(FilePreflight {
            name: blob.name.clone(),
            size: blob.size,
            findings,
        });
    }
    let would_block = !problems.is_empty()
        || files
            .iter()
            .flat_map(|f| &f.findings)
            .any(|f| f.mode == GateMode::Block);
    let mut not_checked =
        vec!["the malware scan (it runs on the sealed copy after submit)".to_string()];
    for gate in ws.policy.gates.iter().filter(|g| g.mode != GateMode::Off) {
        match &gate.kind {
            GateKind::External(_) => not_checked.push(format!(
                "{:?}: an external gate, asked after submit",
                gate.name
            )),
            GateKind::ReleaseLedger {} => not_checked.push(format!(
                "{:?}: compares the sealed tables with earlier releases at the seal",
                gate.name
            )),
            _ => {}
        }
    }
    Ok(PreflightReport {
        request_id: request.id.clone(),
        would_block,
        problems,
        files,
        not_checked,
    })
}
