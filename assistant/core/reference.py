"""The typed reference layer: one loader and one cache over `sources/reference/`.

Products and payers (the names people type), HCPCS and CPT codes with their history, dosing
rules, payment limits by quarter (CMS files and the guides' quoted figures), the CMS NDC-HCPCS
crosswalk and the known source conflicts. The index (which products a passage names), the
question reader, the calculators, the engine's notes and the CMS importer all ask this module;
none of them reads the YAML/CSV files itself.

The cache key is every file's path and modification time, so edited or newly imported data is
picked up on the next look-up without a restart, and a look-up costs one `stat` per file.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

from assistant import config
from assistant.core.files import files_signature
from assistant.core.quarters import Quarter, QuarterError


def _norm(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower()) if text is not None else ""


def _tuple(value: Any) -> tuple:
    if value in (None, ""):
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


@dataclass(frozen=True)
class Product:
    id: str
    brand: str
    generic: str
    hcpcs: str
    target: str = ""
    car_t: bool = True
    short_names: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    manufacturer: str = ""
    cite: str = ""

    @cached_property
    def names(self) -> tuple[str, ...]:
        """Every lowercase name that means this product, longest first (for matching)."""
        every = {self.brand, self.generic, self.hcpcs, *self.short_names, *self.aliases}
        every |= {n.replace("-", " ") for n in self.short_names}  # "ide cel", "brexu cel" as typed
        return tuple(sorted({n.lower() for n in every if n}, key=len, reverse=True))

    def is_named(self, text: str) -> bool:
        """`text` is one of this product's names or its HCPCS code (case and punctuation ignored)."""
        key = _norm(text)
        return bool(key) and any(_norm(n) == key for n in (self.id, *self.names))


@dataclass(frozen=True)
class Payer:
    id: str
    name: str
    aliases: tuple[str, ...] = ()

    @cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({self.name.lower(), *(a.lower() for a in self.aliases)}, key=len, reverse=True))


@dataclass(frozen=True)
class Code:
    """A HCPCS (J/Q) or CPT code with its billing unit, status and history."""

    code: str
    system: str                          # "HCPCS" or "CPT"
    descriptor: str = ""
    status: str = "active"               # active | retired | unverified
    unit_value: Decimal = Decimal(1)     # billing unit size (HCPCS)
    unit_kind: str = "mg"                # mg | dose
    drug: str = ""                       # generic drug name (J-codes)
    product: str = ""                    # product id (Q-codes)
    names: tuple[str, ...] = ()          # drug names people type for the code billed today
    makers: tuple[str, ...] = ()         # a manufacturer-specific code's maker or brand as typed ("dr reddys")
    added: str = ""
    retired: str = ""
    last_seen: str = ""
    replaced_by: tuple[str, ...] = ()
    replacement_default: str = ""
    replaces: str = ""
    note: str = ""
    cite: str = ""
    corpus_quotes: tuple[Mapping[str, Any], ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    valid_from: dt.date | None = None    # first day in force (None: before the oldest record on hand)
    valid_to: dt.date | None = None      # last day in force (None: still in force)
    validity_cite: str = ""              # where the dates come from (the CMS files, the code set)
    dosages: tuple[tuple[str, str], ...] = ()  # (quarter, the CMS file's dosage text), oldest first
    route: str = ""                      # ICD-10-PCS: peripheral | central
    condition: str = ""                  # ICD-10-CM: the condition family (mm, mcl, all, crs, icans)

    def in_force(self, day: dt.date) -> bool:
        """Whether the code could be billed for a date of service (or discharge) of `day`."""
        return (self.valid_from is None or day >= self.valid_from) and (self.valid_to is None or day <= self.valid_to)

    def descriptor_on(self, day: dt.date) -> str:
        """The descriptor in force on `day`: the CMS file's dosage text of that quarter (or the
        nearest quarter on hand), else the reference descriptor."""
        if not self.dosages:
            return self.descriptor
        wanted = str(Quarter.of(day))
        earlier = [text for q, text in self.dosages if Quarter.parse(q) <= Quarter.parse(wanted)]
        dosage = earlier[-1] if earlier else self.dosages[0][1]
        if re.fullmatch(r"[\d.]+\s*MG", dosage.strip(), re.I):  # a unit size, not a descriptor
            return f"{self.descriptor}, {dosage.strip().lower()} per unit"
        return dosage

    def validity(self) -> str:
        """'valid through 2024-03-31', 'valid from 2024-04-01', 'valid 2024-04-01 to ...' or ''."""
        if self.valid_from and self.valid_to:
            return f"valid {self.valid_from.isoformat()} to {self.valid_to.isoformat()}"
        if self.valid_to:
            return f"valid through {self.valid_to.isoformat()}"
        if self.valid_from:
            return f"valid from {self.valid_from.isoformat()}"
        return ""

    @property
    def per_dose(self) -> bool:
        """Q-codes bill one therapeutic dose: always 1 unit."""
        return self.unit_kind == "dose"

    @property
    def replacement(self) -> str:
        """The code to bill instead of a retired one."""
        return self.replacement_default or (self.replaced_by[0] if self.replaced_by else "")


@dataclass(frozen=True)
class LimitRow:
    payment_limit: Decimal
    coinsurance_pct: Decimal | None
    description: str = ""
    dosage: str = ""
    cite: str = ""
    notes: str = ""  # the CMS file's Notes column ("Inflation-adjusted coinsurance")


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
    rows: Mapping[str, LimitRow]


@dataclass(frozen=True)
class CrosswalkRow:
    """One row of the CMS NDC-HCPCS crosswalk as imported (`python -m index import-cms`)."""

    quarter: str
    hcpcs: str
    ndc11: str
    short_description: str = ""
    labeler_name: str = ""
    drug_name: str = ""
    hcpcs_dosage: str = ""
    billunits: str = ""
    billunitspkg: str = ""
    file: str = ""


@dataclass(frozen=True)
class Reference:
    ref_dir: Path
    products: tuple[Product, ...]
    payers: tuple[Payer, ...]
    hcpcs: Mapping[str, Code]
    cpt: Mapping[str, Code]
    modifiers: Mapping[str, Mapping[str, Any]]
    dosing: Mapping[str, Any]        # dosing.yaml as written: rules with their label/source quotes
    ndc: Mapping[str, Any]           # products.yaml `ndc:` (crosswalk facts and the sources' patterns)
    pcs: Mapping[str, Code] = field(default_factory=dict)      # ICD-10-PCS (the CAR-T infusion codes)
    icd10cm: Mapping[str, Code] = field(default_factory=dict)  # ICD-10-CM codes the guides get wrong
    conflicts: tuple[Mapping[str, Any], ...] = ()
    rules: tuple[Mapping[str, Any], ...] = ()   # rules that changed on a date (rules.yaml)
    policies: tuple[Mapping[str, Any], ...] = ()  # payer policies as checkable criteria (policies.yaml)
    labels: tuple[Mapping[str, Any], ...] = ()    # FDA-approved indications as checkable criteria (policies.yaml)
    drug_classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # class -> names (policies.yaml)
    generic_names: frozenset[str] = frozenset()  # class words ("car-t", "bcma"): a prior therapy only when said so
    class_names: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, tuple[LimitSource, ...]] = field(default_factory=dict)  # quarter -> sources
    crosswalk: tuple[CrosswalkRow, ...] = ()

    # --- products and payers ---------------------------------------------------------------
    def product(self, name: str) -> Product | None:
        """Product by id, brand, generic, short name, alias or HCPCS code (case-insensitive)."""
        return next((p for p in self.products if p.is_named(name)), None) if name else None

    def product_by_id(self, product_id: str) -> Product | None:
        return next((p for p in self.products if p.id == product_id), None)

    def payer(self, payer_id: str) -> Payer | None:
        return next((p for p in self.payers if p.id == payer_id), None)

    # --- codes -----------------------------------------------------------------------------
    def code(self, code: str) -> Code | None:
        """A HCPCS (J/Q) code's row, or None."""
        return self.hcpcs.get(str(code).strip().upper())

    def any_code(self, code: str) -> Code | None:
        """A code of any system the reference knows (HCPCS, CPT, ICD-10-PCS, ICD-10-CM)."""
        key = str(code).strip().upper()
        for table in (self.hcpcs, self.cpt, self.pcs, self.icd10cm):
            if key in table:
                return table[key]
        return None

    def drug_code_on(self, drug: str, day: dt.date) -> Code | None:
        """The code billed for a drug on a date of service: the default code (the one with the
        names people type) if in force, else another code of that drug in force that day
        (cyclophosphamide before April 2024: J9070)."""
        codes = [c for c in self.hcpcs.values() if c.drug == drug and c.in_force(day)]
        codes.sort(key=lambda c: (not c.names, c.code != self.drug_code(drug), c.code))
        return codes[0] if codes else None

    def successors(self, code: Code) -> list[Code]:
        """The codes that replaced `code` (replaced_by, or a later code that `replaces` it)."""
        out = [self.any_code(c) for c in code.replaced_by]
        out += [c for table in (self.hcpcs, self.cpt, self.pcs) for c in table.values() if c.replaces == code.code]
        return list(dict.fromkeys(c for c in out if c is not None))

    def drug_code(self, drug: str) -> str | None:
        """The current HCPCS code billed for a lymphodepletion drug (dosing.yaml `drug_codes`)."""
        return (self.dosing.get("drug_codes") or {}).get(drug)

    def maker_code(self, drug: str | None, text: str, day: dt.date) -> Code | None:
        """The manufacturer-specific code of `drug` (any drug when None) whose maker `text` names
        ("dr reddys cyclophosphamide": J9073), when in force on `day`."""
        for c in self.hcpcs.values():
            if (drug is None or c.drug == drug) and c.makers and c.in_force(day) and any(
                    re.search(r"(?<!\w)" + re.escape(m).replace(r"\ ", r"[\s.']*") + r"(?!\w)", text, re.I) for m in c.makers):
                return c
        return None

    def code_for_name(self) -> dict[str, str]:
        """Drug names people type ("flu", "cytoxan", "actemra") -> the HCPCS code billed for it."""
        return {name: c.code for c in self.hcpcs.values() for name in c.names}

    def drug_mentions(self, text: str) -> list[re.Match[str]]:
        """Every drug name of `code_for_name` in `text`, in order (group 1 is the name as typed)."""
        return list(_names_pattern(tuple(self.code_for_name())).finditer(text))

    def codes_used(self) -> set[str]:
        """Every HCPCS code the reference data knows: what a default CMS import keeps."""
        return set(self.hcpcs) | {p.hcpcs for p in self.products if p.hcpcs}

    # --- dosing ----------------------------------------------------------------------------
    def dosing_products(self) -> Mapping[str, Any]:
        return self.dosing.get("products") or {}

    def indications(self, product_id: str) -> Mapping[str, Any]:
        """A product's dosing rules by indication key (mm, mcl, all)."""
        return (self.dosing_products().get(product_id) or {}).get("indications") or {}

    # --- payment limits --------------------------------------------------------------------
    def quarters(self) -> list[str]:
        """Payment-limit quarters on hand, oldest first."""
        return sorted(self.limits, key=Quarter.parse)

    def limit_sources(self, quarter: str) -> tuple[LimitSource, ...]:
        return self.limits.get(quarter, ())

    def policy(self, payer: str, product: str) -> Mapping[str, Any] | None:
        """The payer's coverage policy for the product, when the corpus holds one."""
        return next((p for p in self.policies if p.get("payer") == payer and p.get("product") == product), None)

    def label(self, product: str) -> Mapping[str, Any] | None:
        """The product's FDA-approved indications as checkable criteria, when reference data has them."""
        return next((x for x in self.labels if x.get("product") == product), None)

    def cms_quarters(self) -> list[str]:
        """Quarters with an imported CMS payment limit file, oldest first."""
        return [q for q in self.quarters() if any(s.kind == "cms-file" for s in self.limits[q])]


# --- reading the files ---------------------------------------------------------------------

def _read_yaml(path: Path) -> dict:
    if not path.exists():
        return {}
    with path.open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    return data if isinstance(data, dict) else {}


def _product(row: Mapping[str, Any]) -> Product:
    return Product(id=str(row["id"]), brand=str(row.get("brand") or row["id"]), generic=str(row.get("generic") or ""),
                   hcpcs=str(row.get("hcpcs") or ""), target=str(row.get("target") or ""),
                   car_t=bool(row.get("car_t", True)), short_names=_tuple(row.get("short_names")),
                   aliases=_tuple(row.get("aliases")), manufacturer=str(row.get("manufacturer") or ""),
                   cite=str(row.get("cite") or ""))


def _code(code: str, system: str, row: Mapping[str, Any]) -> Code:
    unit = row.get("unit") or {}
    return Code(
        code=code, system=system, descriptor=str(row.get("descriptor") or ""),
        status=str(row.get("status") or "active"),
        unit_value=Decimal(str(unit.get("value", "1"))), unit_kind=str(unit.get("unit", "mg")),
        drug=str(row.get("drug") or ""), product=str(row.get("product") or ""),
        names=tuple(str(n).lower() for n in _tuple(row.get("names"))),
        makers=tuple(str(n).lower() for n in _tuple(row.get("makers"))),
        added=str(row.get("added") or ""), retired=str(row.get("retired") or ""),
        last_seen=str(row.get("last_seen") or ""), replaced_by=_tuple(row.get("replaced_by")),
        replacement_default=str(row.get("replacement_default") or ""), replaces=str(row.get("replaces") or ""),
        note=str(row.get("note") or ""), cite=str(row.get("cite") or ""),
        corpus_quotes=tuple(row.get("corpus_quotes") or ()), history=tuple(row.get("history") or ()),
        valid_from=iso_date(row.get("valid_from")), valid_to=iso_date(row.get("valid_to")),
        validity_cite=str(row.get("validity_cite") or ""), route=str(row.get("route") or ""),
        condition=str(row.get("condition") or ""))


def iso_date(value: Any) -> dt.date | None:
    """A date as the reference files write it (YAML dates or ISO text); None when empty."""
    if value in (None, ""):
        return None
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _with_cms_history(code: Code, limits: Mapping[str, tuple[LimitSource, ...]]) -> Code:
    """A HCPCS code's validity and descriptor history, read from the CMS files on hand: in force
    from the first quarter whose file lists it (unknown when that is the oldest file), through the
    last quarter that lists it (still in force when the newest file lists it)."""
    cms = sorted((q for q, srcs in limits.items() if any(s.kind == "cms-file" for s in srcs)), key=Quarter.parse)
    seen = [(q, src.rows[code.code]) for q in cms for src in limits[q] if src.kind == "cms-file" and code.code in src.rows]
    if not seen:
        return code
    first, last = Quarter.parse(seen[0][0]), Quarter.parse(seen[-1][0])
    valid_from = code.valid_from or (first.start if seen[0][0] != cms[0] else None)
    valid_to = code.valid_to or (last.end if seen[-1][0] != cms[-1] else None)
    dosages = tuple((q, row.dosage) for q, row in seen if row.dosage)
    return replace(code, valid_from=valid_from, valid_to=valid_to, dosages=dosages,
                   validity_cite=f"CMS Medicare Part B payment limit files {cms[0]}-{cms[-1]}: {code.code} listed "
                                 f"{seen[0][0]} to {seen[-1][0]}")


def _limit_row(row: Mapping[str, Any]) -> LimitRow:
    pct = row.get("coinsurance_pct")
    return LimitRow(payment_limit=Decimal(str(row["payment_limit"])),
                    coinsurance_pct=Decimal(str(pct)) if pct not in (None, "") else None,
                    description=str(row.get("description") or ""), dosage=str(row.get("dosage") or ""),
                    cite=str(row.get("cite") or ""), notes=str(row.get("notes") or ""))


def _read_limits(ref_dir: Path) -> dict[str, tuple[LimitSource, ...]]:
    out: dict[str, list[LimitSource]] = {}
    for path in sorted((ref_dir / "payment_limits").glob("*.yaml")):
        data = _read_yaml(path)
        try:
            quarter = str(Quarter.parse(data.get("quarter", "")))
        except QuarterError:
            continue  # not a payment-limit file in our format
        source = data.get("source") or {}
        rows = {str(k).strip().upper(): _limit_row(v) for k, v in (data.get("rows") or {}).items()
                if isinstance(v, dict) and v.get("payment_limit") not in (None, "")}
        out.setdefault(quarter, []).append(LimitSource(
            quarter=quarter, effective=str(data.get("effective") or ""), through=str(data.get("through") or ""),
            kind=str(source.get("kind") or "guide"), title=str(source.get("title") or path.stem),
            file=source.get("file"), path=path.name, rows=rows))
    # CMS files first: they are the primary source
    return {q: tuple(sorted(s, key=lambda x: (x.kind != "cms-file", x.path))) for q, s in out.items()}


def _read_crosswalk(ref_dir: Path) -> tuple[CrosswalkRow, ...]:
    rows: list[CrosswalkRow] = []
    folder = ref_dir / "crosswalk"
    if not folder.is_dir():
        return ()
    for path in sorted(folder.glob("*.csv")):
        try:
            with path.open(encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    clean = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
                    if clean.get("ndc11") or clean.get("hcpcs"):
                        rows.append(CrosswalkRow(
                            quarter=clean.get("quarter", ""), hcpcs=clean.get("hcpcs", "").upper(),
                            ndc11=clean.get("ndc11", ""), short_description=clean.get("short_description", ""),
                            labeler_name=clean.get("labeler_name", ""), drug_name=clean.get("drug_name", ""),
                            hcpcs_dosage=clean.get("hcpcs_dosage", ""), billunits=clean.get("billunits", ""),
                            billunitspkg=clean.get("billunitspkg", ""), file=path.name))
        except (OSError, UnicodeDecodeError, csv.Error):
            continue  # a broken crosswalk must not break the calculators; the NDC tool says so
    return tuple(rows)


@lru_cache(maxsize=8)
def _load(ref_dir: str, _signature: tuple) -> Reference:
    path = Path(ref_dir)
    products = _read_yaml(path / "products.yaml")
    hcpcs = _read_yaml(path / "hcpcs.yaml")
    payers = _read_yaml(path / "payers.yaml")
    limits = _read_limits(path)
    policies = _read_yaml(path / "policies.yaml")
    return Reference(
        ref_dir=path,
        products=tuple(_product(r) for r in products.get("products") or []),
        payers=tuple(Payer(id=str(r["id"]), name=str(r["name"]), aliases=_tuple(r.get("aliases")))
                     for r in payers.get("payers") or []),
        hcpcs={str(k).upper(): _with_cms_history(_code(str(k).upper(), "HCPCS", v), limits)
               for k, v in (hcpcs.get("codes") or {}).items()},
        cpt={str(k): _code(str(k), "CPT", v) for k, v in (hcpcs.get("cpt") or {}).items()},
        pcs={str(k).upper(): _code(str(k).upper(), "ICD-10-PCS", v) for k, v in (hcpcs.get("icd10pcs") or {}).items()},
        icd10cm={str(k).upper(): _code(str(k).upper(), "ICD-10-CM", v) for k, v in (hcpcs.get("icd10cm") or {}).items()},
        modifiers=dict(hcpcs.get("modifiers") or {}),
        dosing=_read_yaml(path / "dosing.yaml"),
        ndc=dict(products.get("ndc") or {}),
        conflicts=tuple(_read_yaml(path / "conflicts.yaml").get("conflicts") or ()),
        rules=tuple(_read_yaml(path / "rules.yaml").get("rules") or ()),
        policies=tuple(policies.get("policies") or ()),
        labels=tuple(policies.get("labels") or ()),
        drug_classes={str(k): tuple(str(n).lower() for n in v or ()) for k, v in (policies.get("drug_classes") or {}).items()},
        generic_names=frozenset(str(n).lower() for n in policies.get("generic_names") or ()),
        class_names={str(k): str(v) for k, v in (policies.get("class_names") or {}).items()},
        limits=limits,
        crosswalk=_read_crosswalk(path),
    )


_RECHECK_S = 1.0  # the configured data is re-checked for edits at most once a second
_default: tuple[float, tuple, Reference] | None = None


def load_reference(ref_dir: str | Path | None = None) -> Reference:
    """The reference data in `ref_dir` (default: the configured reference directory).

    An explicit directory is checked for changed files on every call. The configured one is
    asked for a hundred times a turn (every product-name match), so its files are re-checked at
    most once a second: an edit or a newly imported quarter is in use within a second."""
    global _default
    if ref_dir is None:
        key = config.reference_dir_key()
        now = time.monotonic()
        cached = _default
        if cached is not None and cached[1] == key and now - cached[0] < _RECHECK_S:
            return cached[2]
        ref = _checked(config.reference_dir())
        _default = (now, key, ref)
        return ref
    return _checked(Path(ref_dir))


def _checked(path: Path) -> Reference:
    path = path.expanduser().resolve()
    return _load(str(path), files_signature(path, (".yaml", ".yml", ".csv")))


def get_reference(reference: Reference | str | Path | None) -> Reference:
    """Accept a loaded Reference, a directory, or None (configured default)."""
    if isinstance(reference, Reference):
        return reference
    return load_reference(reference)


@lru_cache(maxsize=8)
def _names_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """Whole-word names, the longest first (so "fludara" is read before "flu")."""
    return re.compile(r"\b(" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b", re.I)
