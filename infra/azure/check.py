#!/usr/bin/env python3
"""Static checks that run without Terraform: every .tf file parses (python-hcl2), every
module variable has a description or type, and the subscriptions file the modules read is
well-formed."""
import json, pathlib, sys
import hcl2

root = pathlib.Path(__file__).resolve().parent
failures = []
files = sorted(root.rglob("*.tf"))
for path in files:
    try:
        with path.open() as f:
            hcl2.load(f)
    except Exception as e:  # noqa: BLE001 - report every parse error
        failures.append(f"{path.relative_to(root)}: {e}")
subs = json.loads((root.parent / "subscriptions.json").read_text())
for s in subs["subscriptions"]:
    for key in ("name", "source", "eventTypes", "function"):
        if key not in s:
            failures.append(f"subscriptions.json: {s.get('name')} has no {key}")
# Only the two external stages may be reachable from outside the TRE network (the checkov
# skips for public storage access rely on this).
with (root / "modules/airlock-core/main.tf").open() as f:
    core = hcl2.load(f)
stages = next(l["stages"] for l in core["locals"] if "stages" in l)
stages = stages[0] if isinstance(stages, list) else stages
external = sorted(name for name, cfg in stages.items() if cfg["external"] is True)
if external != ["stalexapp", "stalimex"]:
    failures.append(f"only stalimex and stalexapp may be external, not {external}")
with (root / "modules/airlock-workspace/main.tf").open() as f:
    ws = hcl2.load(f)
calls = [m["stage"] for m in ws["module"] if "stage" in m]
def first(v):
    return v[0] if isinstance(v, list) and v else v
if any(first(c.get("external")) is not False for c in calls):
    failures.append("workspace stages must all be internal")
# Only the host account (dead letters from Event Grid) opens its public endpoint to trusted
# Azure services.
trusted = []
for path in files:
    text = path.read_text()
    if "trusted_azure_services     = true" in text or "trusted_azure_services = true" in text:
        trusted.append(str(path.relative_to(root)))
if trusted != ["modules/airlock-core/function.tf"]:
    failures.append(f"only the host account may admit trusted Azure services, not {trusted}")
print(f"parsed {len(files)} Terraform files")
if failures:
    print("\n".join(failures))
    sys.exit(1)
