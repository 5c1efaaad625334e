"""AzureTRE's airlock end-to-end flow, replayed against the local stack with AzureTRE's own
request bodies, its list parameters, and the Azure Storage Python SDK for the files.

The steps and bodies follow AzureTRE's e2e_tests/test_airlock.py (test_airlock_flow): create an
import request without a title, poll for the container link, upload with BlobClient, submit,
wait for in_review, review with {"approval": "True", "decisionExplanation": ...}, wait for
approved, check the draft container is empty or gone, get the approved link, then create an
export request and get its link. Every request document is read into a model with the field
types AzureTRE's API models declare (epoch-second float timestamps, its status and decision
enums), the way AzureTRE's UI and API read them.

One difference is ours on purpose: AzureTRE lets the workspace owner who created the request
review it; the airlock refuses that (403, checked here) and an airlock manager reviews.

Usage: replay.py API_BASE ROUTER_BASE WORKSPACE_ID
"""

import sys
import time
from enum import Enum
from typing import Dict, List, Optional
from urllib.parse import urlparse

import httpx
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient, ContainerClient
from pydantic import BaseModel, Field

API, ROUTER, WORKSPACE = sys.argv[1], sys.argv[2], sys.argv[3]
TIMEOUT = httpx.Timeout(10, read=30)
SAMPLE = b"AzureTRE airlock sample\n"


class Status(str, Enum):
    draft = "draft"
    submitted = "submitted"
    in_review = "in_review"
    approval_in_progress = "approval_in_progress"
    approved = "approved"
    rejection_in_progress = "rejection_in_progress"
    rejected = "rejected"
    cancelled = "cancelled"
    blocking_in_progress = "blocking_in_progress"
    blocked_by_scan = "blocked_by_scan"
    failed = "failed"
    revoked = "revoked"


class RequestType(str, Enum):
    import_ = "import"
    export = "export"


class ReviewDecision(str, Enum):
    approved = "approved"
    rejected = "rejected"
    revoked = "revoked"


class File(BaseModel):
    name: str
    size: float


class Review(BaseModel):
    id: str
    reviewer: dict = Field(default_factory=dict)
    dateCreated: float = 0.0
    reviewDecision: ReviewDecision
    decisionExplanation: str = ""


class Request(BaseModel):
    """The field types of AzureTRE's AirlockRequest model."""

    id: str
    resourceVersion: int = 0
    createdBy: dict = Field(default_factory=dict)
    createdWhen: Optional[float] = None
    updatedBy: dict = Field(default_factory=dict)
    updatedWhen: float = 0.0
    workspaceId: str = ""
    type: Optional[RequestType] = None
    files: List[File] = Field(default_factory=list)
    title: str = "Airlock Request"
    businessJustification: str = "Business Justification"
    status: Status = Status.draft
    statusMessage: Optional[str] = None
    reviews: Optional[List[Review]] = None
    reviewUserResources: Dict[str, dict] = Field(default_factory=dict)


class WithActions(BaseModel):
    airlockRequest: Request
    allowedUserActions: List[str] = Field(default_factory=list)


class InList(BaseModel):
    airlockRequests: List[WithActions] = Field(default_factory=list)


def token(user: str, roles: str) -> str:
    r = httpx.get(f"{ROUTER}/token", params={"user": user, "roles": roles, "workspace": WORKSPACE})
    r.raise_for_status()
    return r.json()["accessToken"]


def call(method: str, path: str, tok: str, expected: int, payload=None):
    headers = {"Authorization": f"Bearer {tok}", "accept": "application/json"}
    r = httpx.request(method, f"{API}/api{path}", headers=headers, json=payload, timeout=TIMEOUT)
    assert r.status_code == expected, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def request_doc(body) -> Request:
    return WithActions.model_validate(body).airlockRequest


def wait_for_status(status: str, tok: str, request_id: str) -> Request:
    final = {"approved", "rejected", "cancelled", "blocked_by_scan", "failed"}
    for _ in range(240):
        r = request_doc(call("GET", f"/workspaces/{WORKSPACE}/requests/{request_id}", tok, 200))
        if r.status.value == status:
            return r
        assert r.status.value not in final, f"ended {r.status.value}: {r.statusMessage}"
        time.sleep(0.5)
    raise AssertionError(f"never reached {status}")


def upload_blob_using_sas(sas_url: str) -> dict:
    # As AzureTRE's e2e helper does: the blob URL from the container link.
    parsed = urlparse(sas_url)
    container = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    blob_url = f"{parsed.scheme}://{parsed.netloc}/{container}/test_airlock_sample.txt?{parsed.query}"
    return BlobClient.from_blob_url(blob_url).upload_blob(SAMPLE)


def main() -> None:
    owner = token("tre-owner", "WorkspaceOwner")
    manager = token("tre-manager", "AirlockManager")
    ws = f"/workspaces/{WORKSPACE}"

    # 1-2. Create an import request with AzureTRE's body (no title), upload, submit.
    payload = {"type": "import", "businessJustification": "some business justification"}
    created = call("POST", f"{ws}/requests", owner, 201, payload)
    r = request_doc(created)
    assert r.type == RequestType.import_
    assert r.businessJustification == "some business justification"
    assert r.status == Status.draft
    assert r.title == "Airlock Request"
    request_id = r.id
    container_url = call("GET", f"{ws}/requests/{request_id}/link", owner, 200)["containerUrl"]
    for attempt in range(10):
        try:
            uploaded = upload_blob_using_sas(container_url)
            assert "etag" in uploaded
            break
        except ResourceNotFoundError:
            time.sleep(1)
    else:
        raise AssertionError("the container never appeared")
    submitted = request_doc(call("POST", f"{ws}/requests/{request_id}/submit", owner, 200))
    assert submitted.status == Status.submitted
    wait_for_status("in_review", owner, request_id)

    # 3. Approve with AzureTRE's body. The creator may not review it here (our rule).
    review = {"approval": "True", "decisionExplanation": "the reason why this request was approved/rejected"}
    call("POST", f"{ws}/requests/{request_id}/review", owner, 403, review)
    result = request_doc(call("POST", f"{ws}/requests/{request_id}/review", manager, 200, review))
    assert result.reviews[0].decisionExplanation == "the reason why this request was approved/rejected"
    assert result.reviews[0].reviewDecision == ReviewDecision.approved
    approved = wait_for_status("approved", owner, request_id)
    assert approved.createdWhen and approved.updatedWhen >= approved.createdWhen
    assert [f.name for f in approved.files] == ["test_airlock_sample.txt"]

    # 4. The draft container is empty or gone. The clean-up follows the final status (it runs
    # on that status change's delivery), so give it a few seconds.
    blobs = None
    for attempt in range(30):
        try:
            blobs = list(ContainerClient.from_container_url(container_url).list_blobs())
        except ResourceNotFoundError:
            blobs = []
        if not blobs:
            break
        time.sleep(0.5)
    assert not blobs, f"the draft should be empty: {[b.name for b in blobs]}"

    # 5. A link to the approved data, and the data through it.
    approved_url = call("GET", f"{ws}/requests/{request_id}/link", owner, 200)["containerUrl"]
    parsed = urlparse(approved_url)
    blob_url = f"{parsed.scheme}://{parsed.netloc}{parsed.path}/test_airlock_sample.txt?{parsed.query}"
    assert BlobClient.from_blob_url(blob_url).download_blob().readall() == SAMPLE

    # 6-7. An export request and its link.
    justification = "another business justification"
    exported = request_doc(call("POST", f"{ws}/requests", owner, 201, {"type": "export", "businessJustification": justification}))
    assert exported.type == RequestType.export and exported.status == Status.draft
    assert exported.businessJustification == justification
    call("GET", f"{ws}/requests/{exported.id}/link", owner, 200)

    # The lists AzureTRE's UI reads, with its parameters.
    listed = InList.model_validate(
        call("GET", f"{ws}/requests?creator_user_id=tre-owner&order_by=createdWhen&order_ascending=false", manager, 200)
    )
    ids = [x.airlockRequest.id for x in listed.airlockRequests]
    assert ids == [exported.id, request_id], ids
    mine = [Request.model_validate(x) for x in call("GET", "/requests", owner, 200)]
    assert {x.id for x in mine} >= {request_id, exported.id}
    managed = [Request.model_validate(x) for x in call("GET", "/requests?airlock_manager=true", manager, 200)]
    assert request_id in {x.id for x in managed}
    print(f"AzureTRE's airlock flow passed: import {request_id} approved, export {exported.id} created")


if __name__ == "__main__":
    main()
