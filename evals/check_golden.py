"""Validate the golden files (every evals/golden*.yaml): schema, ids unique across the files, exact
evidence quotes, compilable regexes. Given files (a case drafted on the Review page, a file being
written), it validates those instead, with ids unique among them.

    python evals/check_golden.py [--stats] [FILE.yaml ...]
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "evals" / "golden.yaml"
# Every evals/golden*.yaml file, golden.yaml first: validated together (one id space across the files)
# and scored together by evals/run.py, so a new file needs no registration.
GOLDEN_FILES = [GOLDEN] + sorted(p for p in (ROOT / "evals").glob("golden*.yaml") if p != GOLDEN)
DOCS = ROOT / "sources" / "documents"

KINDS = {"code", "payment", "dosing", "calc", "policy", "comparison", "conflict", "followup",
         "not_covered", "off_topic", "adversarial", "malformed", "dos", "scenario", "setting"}
SPLITS = {"dev", "heldout"}
EXPECTS = {"answer", "not_covered", "refusal", "clarify", "error"}
TOOLS = {None, "bsa", "dose_units", "lymphodepletion_plan", "cell_dose", "tocilizumab_dose",
         "payment", "ndc", "code_on_date", "rule_on_date", "payment_change", "payer_policy", "label_check"}
REQUIRED = ["id", "kind", "split", "question", "expect", "must", "must_not", "docs"]
ALLOWED = set(REQUIRED) | {"turns", "tool", "evidence", "note", "lead"}
ID_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9.]+)*$")


def body(text: str) -> str:
    """Document text after the YAML front matter."""
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end != -1:
            return text[end + 4:]
    return text


def _key_problems(row: dict) -> list[str]:
    """Required keys present and no unknown ones, so a typo in a key name is caught."""
    problems = [f"missing key {key}" for key in REQUIRED if key not in row]
    problems += [f"unknown key {key}" for key in row if key not in ALLOWED]
    return problems


def _id_problems(cid, kind, seen: set[str]) -> list[str]:
    """A unique kebab-case id prefixed by its kind, so ids sort and filter by kind."""
    problems = []
    if cid in seen:
        problems.append("duplicate id")
    seen.add(cid)
    if not ID_RE.match(str(cid)):
        problems.append("id not kebab-case")
    if kind not in KINDS:
        problems.append(f"bad kind {kind}")
    elif not str(cid).startswith(kind.replace("_", "-") + "-"):
        problems.append(f"id should start with {kind.replace('_', '-')}-")
    return problems


def _field_problems(row: dict, kind) -> list[str]:
    """Enumerated fields take known values and the question/turns are strings, as the runner expects."""
    problems = []
    if row.get("split") not in SPLITS:
        problems.append(f"bad split {row.get('split')}")
    if row.get("expect") not in EXPECTS:
        problems.append(f"bad expect {row.get('expect')}")
    if row.get("tool") not in TOOLS:
        problems.append(f"bad tool {row.get('tool')}")
    if not isinstance(row.get("question"), str):
        problems.append("question must be a string")
    turns = row.get("turns") or []
    if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
        problems.append("turns must be a list of strings")
    if kind == "followup" and not turns:
        problems.append("followup without turns")
    return problems


def _pattern_problems(row: dict) -> list[str]:
    """must/must_not/lead are lists of regexes that compile with the flags the runner uses."""
    problems = []
    for key in ("must", "must_not", "lead"):
        pats = row.get(key) or []
        if not isinstance(pats, list):
            problems.append(f"{key} must be a list")
            continue
        for p in pats:
            try:
                re.compile(p, re.IGNORECASE | re.DOTALL)
            except (re.error, TypeError) as exc:
                problems.append(f"{key} regex {p!r}: {exc}")
    return problems


def _evidence_problems(row: dict, docs: dict[str, str]) -> list[str]:
    """Listed docs exist and each evidence quote is a verbatim, reasonably sized excerpt of one of them."""
    problems = [f"unknown doc {d}" for d in row.get("docs") or [] if d not in docs]
    for ev in row.get("evidence") or []:
        d, quote = ev.get("doc"), ev.get("quote")
        if d not in docs:
            problems.append(f"evidence unknown doc {d}")
        elif not quote or quote not in docs[d]:
            problems.append(f"evidence quote not in {d}: {quote!r}")
        elif not (10 <= len(quote) <= 300):
            problems.append(f"evidence quote length {len(quote)}")
        if row.get("docs") and d not in row["docs"]:
            problems.append(f"evidence doc {d} not among docs")
    return problems


def _answer_problems(row: dict) -> list[str]:
    """An answer case must be checkable (patterns, plus evidence or a tool); a tool case must explain itself."""
    problems = []
    if row.get("expect") == "answer":
        if not row.get("must"):
            problems.append("answer case without must patterns")
        if not row.get("evidence") and not row.get("tool"):
            problems.append("answer case without evidence (and no tool)")
    if row.get("tool") and not row.get("note"):
        problems.append("calc/tool case without note")
    return problems


def row_problems(i: int, row: dict, docs: dict[str, str], seen: set[str]) -> list[str]:
    """Every problem with one case, prefixed by its id (or #index), in a fixed order."""
    cid = row.get("id", f"#{i}")
    kind = row.get("kind")
    problems = (_key_problems(row) + _id_problems(cid, kind, seen) + _field_problems(row, kind)
                + _pattern_problems(row) + _evidence_problems(row, docs) + _answer_problems(row))
    return [f"{cid}: {msg}" for msg in problems]


def print_stats(rows: list[dict]) -> None:
    """Case counts by kind and split, and by expected behaviour, to see the set's balance at a glance."""
    by = collections.Counter((r["kind"], r["split"]) for r in rows)
    for kind in sorted(KINDS):
        dev, held = by.get((kind, "dev"), 0), by.get((kind, "heldout"), 0)
        print(f"  {kind:12s} dev={dev:3d} heldout={held:3d} total={dev + held:3d}")
    ex = collections.Counter(r["expect"] for r in rows)
    sp = collections.Counter(r["split"] for r in rows)
    print("  expect:", dict(ex), " split:", dict(sp))


def _read_cases(path: Path) -> tuple[list[dict], list[str]]:
    """A file's cases, or the one problem that keeps them from being read."""
    try:
        rows = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [], [f"{path.name}: cannot read: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]
    if not isinstance(rows, list):
        return [], [f"{path.name}: must be a list of cases"]
    bad = [f"{path.name}: #{i}: a case must be a mapping of keys" for i, row in enumerate(rows) if not isinstance(row, dict)]
    return [row for row in rows if isinstance(row, dict)], bad


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python evals/check_golden.py", description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="validate these files instead of evals/golden*.yaml")
    parser.add_argument("--stats", action="store_true", help="accepted; the stats are always printed")
    files = parser.parse_args(argv).files or GOLDEN_FILES
    docs = {p.stem: body(p.read_text(encoding="utf-8")) for p in DOCS.glob("*.md")}
    seen: set[str] = set()  # shared by the files, so an id repeated in another file is a duplicate
    rows: list[dict] = []
    errors: list[str] = []
    for path in files:
        file_rows, problems = _read_cases(path)
        errors += problems + [f"{path.name}: {msg}" for i, row in enumerate(file_rows)
                              for msg in row_problems(i, row, docs, seen)]
        rows += file_rows
    if errors:
        print("\n".join(errors))
        print(f"{len(errors)} problem(s) in {len(rows)} cases")
        return 1
    print(f"OK: {len(rows)} cases ({', '.join(p.name for p in files)})")
    # The stats are printed with or without --stats (the flag is accepted but always on).
    print_stats(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
