"""Checks a Five Safes RO-Crate written by `airlock record --format ro-crate` the way a
receiving TRE would: parsed by `rocrate` (ro-crate-py) and validated by `roc-validator`
against the RO-Crate 1.1 profile, without any network access.

    python check_ro_crate.py CRATE_DIR CONTEXT_1_1

CONTEXT_1_1 is the RO-Crate 1.1 JSON-LD context (`tests/python/venv` takes it from the
`rocrate` 0.9.0 package on PyPI, which ships it). The validator resolves the crate's
`@context` URL through its HTTP requester; here that requester answers from this file and
refuses every other URL, and every socket connection is refused, so nothing is fetched.

Prints the validator's issues at every severity; exits 1 if any REQUIRED check fails or the
crate does not have the entities the airlock promises (one AssessAction per gate and review).
"""

import json
import socket
import sys


def refuse(*_args, **_kwargs):
    raise OSError("network access refused: the RO-Crate check runs offline")


socket.socket.connect = refuse
socket.create_connection = refuse

import requests  # noqa: E402
from rocrate.rocrate import ROCrate  # noqa: E402
from rocrate_validator import models, services  # noqa: E402
from rocrate_validator.utils.http import HttpRequester  # noqa: E402

CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"
crate_dir, context_path = sys.argv[1], sys.argv[2]
context = open(context_path, "rb").read()
if json.loads(context).get("@id") != CONTEXT_URL:
    sys.exit(f"{context_path} is not the RO-Crate 1.1 context")


def offline_get(_self, url, **_kwargs):
    if url.rstrip("/") != CONTEXT_URL:
        raise OSError(f"not available offline: {url}")
    answer = requests.models.Response()
    answer.status_code = 200
    answer.url = url
    answer.headers["Content-Type"] = "application/ld+json"
    answer._content = context
    return answer


HttpRequester.get = offline_get

# 1. ro-crate-py reads it: the root, the data entities, the actions.
crate = ROCrate(crate_dir)
actions = [e for e in crate.get_entities() if e.type == "AssessAction"]
files = [e for e in crate.get_entities() if e.type == "File"]
print(f"rocrate: {len(files)} file(s), {len(actions)} AssessAction(s), root {crate.root_dataset.id}")
problems = []
if not actions:
    problems.append("no AssessAction")
for action in actions:
    kind = action.get("additionalType")
    kind = kind.get("@id") if isinstance(kind, dict) else getattr(kind, "id", kind)
    if kind != "shp:DisclosureCheck":
        problems.append(f"{action.id} is not a shp:DisclosureCheck")

# 2. roc-validator: every RO-Crate 1.1 requirement, recommendations shown.
settings = services.ValidationSettings(
    rocrate_uri=crate_dir,
    profile_identifier="ro-crate-1.1",
    requirement_severity=models.Severity.OPTIONAL,
)
result = services.validate(settings)
for issue in result.get_issues():
    line = " ".join(str(issue.message).split())
    print(f"roc-validator {issue.severity.name}: {issue.check.identifier}: {line}")
required = [i for i in result.get_issues() if i.severity == models.Severity.REQUIRED]
problems += [f"REQUIRED {i.check.identifier}" for i in required]
print("roc-validator: RO-Crate 1.1 requirements", "met" if not required else "NOT met")
if problems:
    sys.exit("; ".join(problems))
