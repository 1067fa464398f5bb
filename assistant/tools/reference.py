"""Reference data for the calculators, loaded once per reference directory and cached.

The directory comes from `assistant.config.load().reference_dir` at call time (so
`CART_REFERENCE_DIR` set by a test or a deployment applies), or is passed explicitly. The cache
key includes every file's modification time, so edited data is picked up without a restart.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant import config
from assistant.tools.errors import CalcError

_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.I)
_QUARTER_REV = re.compile(r"^\s*Q([1-4])\s*[- ]?\s*(\d{4})\s*$", re.I)


@dataclass(frozen=True)
class LimitSource:
    """One file's payment limits for one quarter (a CMS file or the guides' quoted figures)."""

    quarter: str
    effective: str
    through: str
    kind: str            # cms-file | guide
    title: str
    file: str | None
    path: str            # the YAML file it was read from (relative name)
    rows: dict           # HCPCS -> row dict


@dataclass
class Reference:
    ref_dir: Path
    products: list[dict]
    hcpcs: dict[str, dict]
    cpt: dict[str, dict]
    modifiers: dict[str, dict]
    dosing: dict
    ndc: dict
    limits: dict[str, list[LimitSource]] = field(default_factory=dict)  # quarter -> sources, preferred first
    crosswalk: list[dict] = field(default_factory=list)

    # --- look-ups -------------------------------------------------------------------------
    def product(self, name: str) -> dict | None:
        """Product by id, brand, generic, short name, alias or HCPCS code (case-insensitive)."""
        key = _norm(name)
        if not key:
            return None
        for p in self.products:
            names = [p.get("id"), p.get("brand"), p.get("generic"), p.get("hcpcs"),
                     *(p.get("short_names") or []), *(p.get("aliases") or [])]
            if any(_norm(n) == key for n in names if n):
                return p
        return None

    def code(self, code: str) -> dict | None:
        """A HCPCS code's row (J/Q codes), or None."""
        return self.hcpcs.get(str(code).strip().upper())

    def quarters(self) -> list[str]:
        """Available payment-limit quarters, oldest first."""
        return sorted(self.limits, key=quarter_key)

    def limit_sources(self, quarter: str) -> list[LimitSource]:
        return self.limits.get(quarter, [])


def _norm(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower()) if text is not None else ""


def normalize_quarter(text: str) -> str:
    """'2026Q1', '2026-Q1', 'Q1 2026' -> '2026Q1'; anything else -> CalcError."""
    s = str(text)
    m = _QUARTER.match(s)
    if m:
        return f"{m.group(1)}Q{m.group(2)}"
    m = _QUARTER_REV.match(s)
    if m:
        return f"{m.group(2)}Q{m.group(1)}"
    raise CalcError(f"'{text}' is not a quarter; write it like 2026Q1.", field="quarter")


def quarter_key(q: str) -> tuple[int, int]:
    return int(q[:4]), int(q[-1])


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def _read_yaml(path: Path) -> dict:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return data if isinstance(data, dict) else {}


def _read_limits(ref_dir: Path) -> dict[str, list[LimitSource]]:
    out: dict[str, list[LimitSource]] = {}
    for path in sorted((ref_dir / "payment_limits").glob("*.yaml")):
        data = _read_yaml(path)
        try:
            quarter = normalize_quarter(str(data.get("quarter", "")))
        except CalcError:
            continue  # not a payment-limit file in our format
        source = data.get("source") or {}
        rows = {str(k).strip().upper(): (v or {}) for k, v in (data.get("rows") or {}).items()}
        out.setdefault(quarter, []).append(LimitSource(
            quarter=quarter,
            effective=str(data.get("effective") or ""),
            through=str(data.get("through") or ""),
            kind=str(source.get("kind") or "guide"),
            title=str(source.get("title") or path.stem),
            file=source.get("file"),
            path=path.name,
            rows=rows,
        ))
    for sources in out.values():  # CMS files first: they are the primary source
        sources.sort(key=lambda s: (s.kind != "cms-file", s.path))
    return out


def _read_crosswalk(ref_dir: Path) -> list[dict]:
    rows: list[dict] = []
    folder = ref_dir / "crosswalk"
    if not folder.is_dir():
        return rows
    for path in sorted(folder.glob("*.csv")):
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    clean = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
                    if clean.get("ndc11") or clean.get("hcpcs"):
                        clean["_file"] = path.name
                        rows.append(clean)
        except (OSError, UnicodeDecodeError, csv.Error):
            continue  # a broken crosswalk must not break the calculators; the NDC tool says so
    return rows


def _signature(ref_dir: Path) -> tuple:
    files = []
    if ref_dir.is_dir():
        for p in sorted(ref_dir.rglob("*")):
            if p.is_file() and p.suffix in (".yaml", ".yml", ".csv"):
                try:
                    files.append((str(p), p.stat().st_mtime_ns))
                except OSError:
                    pass
    return tuple(files)


@lru_cache(maxsize=8)
def _load(ref_dir: str, _signature: tuple) -> Reference:
    path = Path(ref_dir)
    products = _read_yaml(path / "products.yaml")
    hcpcs = _read_yaml(path / "hcpcs.yaml")
    return Reference(
        ref_dir=path,
        products=list(products.get("products") or []),
        hcpcs={str(k).upper(): v for k, v in (hcpcs.get("codes") or {}).items()},
        cpt={str(k): v for k, v in (hcpcs.get("cpt") or {}).items()},
        modifiers=dict(hcpcs.get("modifiers") or {}),
        dosing=_read_yaml(path / "dosing.yaml"),
        ndc=dict(products.get("ndc") or {}),
        limits=_read_limits(path),
        crosswalk=_read_crosswalk(path),
    )


def load_reference(ref_dir: str | Path | None = None) -> Reference:
    """The reference data in `ref_dir` (default: the configured reference directory)."""
    path = Path(ref_dir) if ref_dir is not None else config.load().reference_dir
    path = path.expanduser().resolve()
    return _load(str(path), _signature(path))


def get_reference(reference: Reference | str | Path | None) -> Reference:
    """Accept a loaded Reference, a directory, or None (configured default)."""
    if isinstance(reference, Reference):
        return reference
    return load_reference(reference)


def list_quarters(reference: Reference | str | Path | None = None) -> list[str]:
    """Payment-limit quarters available from all files in payment_limits/*.yaml, oldest first."""
    return get_reference(reference).quarters()


def resolve_product(name: str, reference: Reference | str | Path | None = None) -> dict:
    """Product by any of its names or its HCPCS code; CalcError naming the known products."""
    ref = get_reference(reference)
    found = ref.product(name)
    if found is None:
        known = ", ".join(p["brand"] for p in ref.products)
        raise CalcError(f"I don't know the product '{name}'. Known products: {known}.", field="product")
    return found
