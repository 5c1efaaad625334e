#!/usr/bin/env python3
"""Checks every resource, data source, provider block and module call in infra/azure against
the azurerm provider's real schema, without a provider download.

`terraform validate` needs the provider binary, which cannot be fetched here. npm's
`@cdktf/provider-azurerm@14.23.1` was generated from azurerm 4.55.0, and its `.jsii` manifest
lists every resource and data source with each argument and nested block, required or
optional. This script reduces that manifest to a schema (cached under target/) and checks:

- the resource or data source type exists;
- every argument and nested block exists, recursively (dynamic blocks included);
- every required argument and nested block is present;
- arguments the schema documents as deprecated are reported;
- module calls pass only variables the module declares, every variable without a default,
  and `module.X.Y` references name outputs the module has.

`--self-test` runs it on a deliberately wrong fixture and fails unless each mistake is found.
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

import hcl2

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
PACKAGE = "@cdktf/provider-azurerm@14.23.1"
PROVIDER_VERSION = "4.55.0"
CACHE = REPO / "target" / "azurerm-schema" / f"azurerm-{PROVIDER_VERSION}.json"
FIXTURE = HERE / "tests" / "schema-fixture"

META = {"count", "for_each", "depends_on", "provider", "lifecycle", "provisioner", "connection"}
POSITION = {"__start_line__", "__end_line__"}
LINK = re.compile(r"/docs/(resources|data-sources)/([a-z0-9_]+)#([a-z0-9_]+)")


def snake(name):
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def struct_fqn(type_ref, types):
    """The struct a property's type refers to (a nested block), if any."""
    if not isinstance(type_ref, dict):
        return None
    fqn = type_ref.get("fqn")
    if fqn:
        t = types.get(fqn)
        return fqn if t and t.get("datatype") else None
    if "collection" in type_ref:
        return struct_fqn(type_ref["collection"].get("elementtype"), types)
    if "union" in type_ref:
        for option in type_ref["union"].get("types", []):
            found = struct_fqn(option, types)
            if found:
                return found
    return None


def build_schema(jsii):
    types = jsii["types"]
    structs = {}

    def reduce(fqn):
        if fqn in structs:
            return
        structs[fqn] = None  # cycles
        props = {}
        for p in types[fqn].get("properties") or []:
            docs = p.get("docs", {})
            text = f"{docs.get('summary', '')} {docs.get('remarks', '')}"
            m = LINK.search(text)
            name = m.group(3) if m else snake(p["name"])
            nested = struct_fqn(p.get("type"), types)
            if nested:
                reduce(nested)
            props[name] = {
                "required": not p.get("optional", False),
                "block": nested,
                "deprecated": "deprecated" in text.lower(),
            }
        structs[fqn] = props

    top = {"resource": {}, "data": {}}
    for fqn, t in types.items():
        if not t.get("datatype") or "cdktf.TerraformMetaArguments" not in (t.get("interfaces") or []):
            continue
        links = [LINK.search(json.dumps(p.get("docs", {}))) for p in t.get("properties") or []]
        links = [m for m in links if m]
        if not links:
            continue
        kind = "resource" if links[0].group(1) == "resources" else "data"
        top[kind][f"azurerm_{links[0].group(2)}"] = fqn
        reduce(fqn)
    provider = "@cdktf/provider-azurerm.provider.AzurermProviderConfig"
    reduce(provider)
    return {"version": PROVIDER_VERSION, "top": top, "provider": provider, "structs": structs}


def load_schema():
    if CACHE.exists():
        return json.loads(CACHE.read_text())
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching {PACKAGE} (the azurerm {PROVIDER_VERSION} schema) from npm", file=sys.stderr)
        out = subprocess.run(
            ["npm", "pack", PACKAGE, "--pack-destination", tmp, "--silent"],
            check=True, capture_output=True, text=True,
        ).stdout.strip().splitlines()[-1]
        with tarfile.open(pathlib.Path(tmp) / out) as tar:
            jsii = json.load(tar.extractfile("package/.jsii"))
    schema = build_schema(jsii)
    CACHE.write_text(json.dumps(schema))
    return schema


def is_block_body(value):
    """python-hcl2 writes a block's attributes as one-element lists; an object attribute's
    values are plain."""
    return isinstance(value, dict) and all(
        isinstance(v, list) or k in POSITION or k == "dynamic" for k, v in value.items()
    )


class Checker:
    def __init__(self, schema):
        self.schema = schema
        self.errors = []
        self.warnings = []

    def body(self, where, fqn, body):
        props = self.schema["structs"][fqn]
        present = set()
        for key, value in body.items():
            if key in POSITION or key in META:
                continue
            if key == "dynamic":
                for dyn in value:
                    for label, spec in dyn.items():
                        present.add(label)
                        prop = props.get(label)
                        if not prop or not prop["block"]:
                            self.errors.append(f"{where}: unknown nested block {label!r}")
                            continue
                        for content in spec.get("content", []):
                            self.body(f"{where}.{label}", prop["block"], content)
                continue
            present.add(key)
            prop = props.get(key)
            if prop is None:
                self.errors.append(f"{where}: unknown argument {key!r}")
                continue
            if prop["deprecated"]:
                self.warnings.append(f"{where}: {key!r} is deprecated")
            if prop["block"]:
                for item in value if isinstance(value, list) else [value]:
                    if is_block_body(item):
                        self.body(f"{where}.{key}", prop["block"], item)
        for name, prop in props.items():
            if prop["required"] and name not in present:
                what = "nested block" if prop["block"] else "argument"
                self.errors.append(f"{where}: required {what} {name!r} missing")

    def file(self, path, tree):
        for kind in ("resource", "data"):
            for entry in tree.get(kind, []):
                for rtype, named in entry.items():
                    for name, body in named.items():
                        where = f"{path}:{body.get('__start_line__', '?')} {rtype}.{name}"
                        if not rtype.startswith("azurerm_"):
                            continue
                        fqn = self.schema["top"][kind].get(rtype)
                        if not fqn:
                            self.errors.append(f"{where}: no {kind} type {rtype!r} in azurerm {PROVIDER_VERSION}")
                            continue
                        self.body(where, fqn, body)
        for entry in tree.get("provider", []):
            for name, body in entry.items():
                if name == "azurerm":
                    self.body(f"{path} provider.azurerm", self.schema["provider"], body)


def first(v):
    return v[0] if isinstance(v, list) and v else v


def module_interface(directory):
    variables, outputs = {}, set()
    for path in sorted(directory.glob("*.tf")):
        tree = hcl2.load(path.open())
        for entry in tree.get("variable", []):
            for name, body in entry.items():
                variables[name] = "default" in body
        for entry in tree.get("output", []):
            outputs.update(entry.keys())
    return variables, outputs


def check_modules(directory, checker):
    calls = {}
    texts = {}
    for path in sorted(directory.glob("*.tf")):
        texts[path] = path.read_text()
        tree = hcl2.load(path.open())
        for entry in tree.get("module", []):
            for name, body in entry.items():
                source = first(body.get("source"))
                where = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{body.get('__start_line__', '?')} module.{name}"
                if not isinstance(source, str) or not source.startswith("."):
                    continue
                target = (directory / source).resolve()
                if not target.is_dir():
                    checker.errors.append(f"{where}: module source {source} does not exist")
                    continue
                variables, outputs = module_interface(target)
                calls[name] = outputs
                given = {k for k in body if k not in POSITION and k not in META | {"source", "version", "providers"}}
                for k in sorted(given - variables.keys()):
                    checker.errors.append(f"{where}: the module has no variable {k!r}")
                for k in sorted(v for v, has_default in variables.items() if not has_default and v not in given):
                    checker.errors.append(f"{where}: required variable {k!r} not given")
    for path, text in texts.items():
        for m in re.finditer(r"\bmodule\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)", text):
            module, output = m.groups()
            line = text.count("\n", 0, m.start()) + 1
            if module not in calls:
                checker.errors.append(f"{path.name}:{line}: no module {module!r} here")
            elif output not in calls[module]:
                checker.errors.append(f"{path.name}:{line}: module {module!r} has no output {output!r}")


def run(root, schema):
    checker = Checker(schema)
    files = sorted(p for p in root.rglob("*.tf") if FIXTURE not in p.parents or root == FIXTURE)
    for path in files:
        checker.file(path.relative_to(root), hcl2.load(path.open()))
    for directory in sorted({p.parent for p in files}):
        check_modules(directory, checker)
    return files, checker


# The mistakes the fixture makes, each of which must be reported.
EXPECTED = [
    "no resource type 'azurerm_storage_acount'",
    "unknown argument 'enable_https_traffic_only'",
    "required argument 'account_replication_type' missing",
    "network_rules: unknown argument 'default_actions'",
    "network_rules: required argument 'default_action' missing",
    "unknown nested block 'blob_propertie'",
    "required nested block 'site_config' missing",
    "features.storage: unknown argument 'data_plane'",
    "the module has no variable 'nmae'",
    "required variable 'name' not given",
    "module 'stage' has no output 'missing'",
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    schema = load_schema()
    if args.self_test:
        _, checker = run(FIXTURE, schema)
        missed = [e for e in EXPECTED if not any(e in err for err in checker.errors)]
        extra = [err for err in checker.errors if not any(e in err for e in EXPECTED)]
        if missed or extra:
            print("schema check self-test failed", file=sys.stderr)
            for e in missed:
                print(f"  not reported: {e}", file=sys.stderr)
            for e in extra:
                print(f"  unexpected: {e}", file=sys.stderr)
            return 1
        print(f"schema check self-test: all {len(EXPECTED)} planted mistakes reported")
        return 0
    files, checker = run(HERE, schema)
    resources = len(checker.schema["top"]["resource"])
    for w in checker.warnings:
        print(f"warning: {w}")
    for e in checker.errors:
        print(f"error: {e}")
    print(f"checked {len(files)} files against azurerm {PROVIDER_VERSION} ({resources} resource types): "
          f"{len(checker.errors)} errors, {len(checker.warnings)} warnings")
    return 1 if checker.errors else 0


if __name__ == "__main__":
    sys.exit(main())
