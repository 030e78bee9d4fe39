#!/usr/bin/env python3
"""Builds the fuzz targets' seed corpora from the project's own fixtures, at run time.

    seeds.py REPO_ROOT OUT_DIR    ->  OUT_DIR/{template,dynref,ticket}/<sha1 of the seed>

- template: every template under tests/fixtures (YAML and JSON);
- dynref: every line of a fixture that holds a dynamic reference, and each such file;
- ticket: the events of crates/*/src/**/fixtures*.rs (their `json!` blocks, with the
  fixture's constants and a few values for its parameters), a manual ticket made of the
  same names, and the JSON fixtures (documents of other shapes: unknown-shape seeds).

Nothing fetched, nothing committed: OUT_DIR lives under /target.
"""

import hashlib
import itertools
import json
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
out = pathlib.Path(sys.argv[2])


def fixture_files():
    files = [p for p in (root / "tests" / "fixtures").rglob("*") if p.is_file()]
    for crate_src in (root / "crates").glob("*/src"):
        for p in crate_src.rglob("fixtures*"):
            files += [p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]
    return sorted(files)


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def json_blocks(source):
    """The text inside each `json!( ... )` of Rust source, brackets balanced."""
    for m in re.finditer(r"json!\(", source):
        i, depth, in_str = m.end(), 1, False
        start = i
        while i < len(source) and depth:
            c = source[i]
            if in_str:
                if c == "\\":
                    i += 1
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            i += 1
        yield source[start : i - 1]


TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_]+\(\))?')


def substitute(block, values):
    def repl(m):
        t = m.group(0)
        if t.startswith('"') or t in ("true", "false", "null"):
            return t
        return json.dumps(values.get(t.split(".")[0], "x"))

    return TOKEN.sub(repl, block)


files = fixture_files()
counts = {}
for path in files:
    text = path.read_text(errors="replace")
    if path.suffix in (".yaml", ".yml", ".json") and "sfn" not in path.parts:
        write("template", text)
    if "{{resolve:" in text:
        write("dynref", text)
        for line in text.splitlines():
            if "{{resolve:" in line:
                write("dynref", line.strip())
    if path.suffix == ".json":
        write("ticket", text)
    if path.suffix == ".rs":
        consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([^"]*)";', text))
        params = {
            "name": ["mySecret", consts.get("ARN", "x")],
            "arn": [consts.get("ARN", "x"), ""],
            "label": ["AWSCURRENT", "AWSPREVIOUS"],
            "event_name": ["PutSecretValue", "UpdateSecret", "DeleteSecret"],
        }
        for block in json_blocks(text):
            names = [p for p in params if re.search(rf"\b{p}\b", block)]
            for combo in itertools.product(*(params[p] for p in names)):
                values = dict(consts, **dict(zip(names, combo)))
                try:
                    event = json.loads(substitute(block, values))
                except json.JSONDecodeError:
                    continue
                write("ticket", json.dumps(event))
                write("ticket", json.dumps(event, indent=2))
        if consts:
            for secret in consts.values():
                manual = {"kind": "manual", "secret": secret, "requested_by": "ops"}
                write("ticket", json.dumps(manual))
                write("ticket", json.dumps(dict(manual, stacks=["orders", "billing"])))

for target in ("template", "dynref", "ticket"):
    n = len(list((out / target).glob("*"))) if (out / target).exists() else 0
    print(f"seeds: {target}: {n} from {len(files)} fixture files")
