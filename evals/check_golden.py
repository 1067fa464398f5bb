"""Validate evals/golden.yaml: schema, unique ids, exact evidence quotes, compilable regexes.

    python evals/check_golden.py [--stats]
"""

from __future__ import annotations

import collections
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "evals" / "golden.yaml"
DOCS = ROOT / "sources" / "documents"

KINDS = {"code", "payment", "dosing", "calc", "policy", "comparison", "conflict", "followup",
         "not_covered", "off_topic", "adversarial", "malformed"}
SPLITS = {"dev", "heldout"}
EXPECTS = {"answer", "not_covered", "refusal", "clarify", "error"}
TOOLS = {None, "bsa", "dose_units", "lymphodepletion_plan", "cell_dose", "tocilizumab_dose",
         "payment", "ndc"}
REQUIRED = ["id", "kind", "split", "question", "expect", "must", "must_not", "docs"]
ALLOWED = set(REQUIRED) | {"turns", "tool", "evidence", "note"}
ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9.]+)*$")


def body(text: str) -> str:
    """Document text after the YAML front matter."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4:]
    return text


def main(argv: list[str]) -> int:
    docs = {p.stem: body(p.read_text(encoding="utf-8")) for p in DOCS.glob("*.md")}
    rows = yaml.safe_load(GOLDEN.read_text(encoding="utf-8")) or []
    errors: list[str] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        cid = row.get("id", f"#{i}")
        err = lambda msg: errors.append(f"{cid}: {msg}")  # noqa: E731
        for key in REQUIRED:
            if key not in row:
                err(f"missing key {key}")
        for key in row:
            if key not in ALLOWED:
                err(f"unknown key {key}")
        if cid in seen:
            err("duplicate id")
        seen.add(cid)
        if not ID_RE.match(str(cid)):
            err("id not kebab-case")
        kind = row.get("kind")
        if kind not in KINDS:
            err(f"bad kind {kind}")
        elif not str(cid).startswith(kind.replace("_", "-") + "-"):
            err(f"id should start with {kind.replace('_', '-')}-")
        if row.get("split") not in SPLITS:
            err(f"bad split {row.get('split')}")
        expect = row.get("expect")
        if expect not in EXPECTS:
            err(f"bad expect {expect}")
        if row.get("tool") not in TOOLS:
            err(f"bad tool {row.get('tool')}")
        q = row.get("question")
        if not isinstance(q, str):
            err("question must be a string")
        turns = row.get("turns") or []
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            err("turns must be a list of strings")
        if kind == "followup" and not turns:
            err("followup without turns")
        for key in ("must", "must_not"):
            pats = row.get(key) or []
            if not isinstance(pats, list):
                err(f"{key} must be a list")
                continue
            for p in pats:
                try:
                    re.compile(p, re.IGNORECASE | re.DOTALL)
                except (re.error, TypeError) as exc:
                    err(f"{key} regex {p!r}: {exc}")
        for d in row.get("docs") or []:
            if d not in docs:
                err(f"unknown doc {d}")
        evidence = row.get("evidence") or []
        for ev in evidence:
            d, quote = ev.get("doc"), ev.get("quote")
            if d not in docs:
                err(f"evidence unknown doc {d}")
            elif not quote or quote not in docs[d]:
                err(f"evidence quote not in {d}: {quote!r}")
            elif not (10 <= len(quote) <= 300):
                err(f"evidence quote length {len(quote)}")
            if row.get("docs") and d not in row["docs"]:
                err(f"evidence doc {d} not among docs")
        if expect == "answer":
            if not row.get("must"):
                err("answer case without must patterns")
            if not evidence and not row.get("tool"):
                err("answer case without evidence (and no tool)")
        if row.get("tool") and not row.get("note"):
            err("calc/tool case without note")
    if errors:
        print("\n".join(errors))
        print(f"{len(errors)} problem(s) in {len(rows)} cases")
        return 1
    print(f"OK: {len(rows)} cases")
    if "--stats" in argv or True:
        by = collections.Counter((r["kind"], r["split"]) for r in rows)
        for kind in sorted(KINDS):
            dev, held = by.get((kind, "dev"), 0), by.get((kind, "heldout"), 0)
            print(f"  {kind:12s} dev={dev:3d} heldout={held:3d} total={dev + held:3d}")
        ex = collections.Counter(r["expect"] for r in rows)
        sp = collections.Counter(r["split"] for r in rows)
        print("  expect:", dict(ex), " split:", dict(sp))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
