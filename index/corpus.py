"""Load the source documents: YAML front matter (metadata) + the document's original text.

One file per document under `sources/documents/`. The body after the front matter is the
document's text exactly as received; every citation span and quote is an offset into that body,
so nothing here may alter it (not even line endings). A malformed document is reported with
its file name and the problem and skipped; the others still load.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from assistant.core.files import files_signature
from assistant.core.quarters import Quarter, QuarterError
from index.entities import known_payer_ids, known_product_ids

KINDS = ("billing-guide", "payer-policy", "reference")
REQUIRED = ("id", "title", "publisher", "kind", "products")
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,80}$")


def _is_quarter(text: str) -> bool:
    """A price quarter written the way files write it ('2026Q2')."""
    try:
        return str(Quarter.parse(text)) == text
    except QuarterError:
        return False

_PARTIAL_DATE_RE = re.compile(r"^(19|20)\d{2}-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?$")
DOCUMENT_SUFFIXES = (".md", ".txt")


@dataclass(frozen=True)
class SourceDocument:
    """A document of the corpus: metadata the answers need, and its untouched text."""

    id: str
    title: str
    publisher: str
    kind: str
    products: tuple[str, ...]
    payer: str | None
    line_of_business: tuple[str, ...]
    effective: str | None  # ISO date or year-month: sources often give only a month
    reviewed: str | None
    price_quarter: str | None
    path: Path
    text: str
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def content_hash(self) -> str:
        """Hash of text and metadata: a change to either means the document is re-indexed."""
        meta = repr(sorted(self.metadata().items()))
        return hashlib.sha256((meta + "\x00" + self.text).encode("utf-8")).hexdigest()

    @property
    def newest_date(self) -> str | None:
        """The later of effective and reviewed: what 'which source is newer' compares."""
        dates = [d for d in (self.effective, self.reviewed) if d]
        return max(dates) if dates else None

    @property
    def pages(self) -> tuple[int, ...]:
        """Where each page of the original (a PDF) starts in `text`; () when it has no pages."""
        return tuple(self.extra.get("pages") or ())

    def page_of(self, offset: int) -> int | None:
        """The 1-based page of the original that holds `offset` of the text, None without pages."""
        return bisect.bisect_right(self.pages, offset) if self.pages else None

    @property
    def policy_number(self) -> str:
        return str(self.extra.get("policy_number") or "").strip()

    @property
    def revised(self) -> str | None:
        return self.extra.get("revised") or None

    @property
    def version_date(self) -> str | None:
        """From when this revision is the one in force: the newest of effective, revised and
        reviewed (a policy keeps its first effective date across revisions, so a new revision
        is told apart by its revision or review date)."""
        dates = [d for d in (self.effective, self.revised, self.reviewed) if d]
        return max(dates) if dates else None

    @property
    def original(self) -> str:
        """The file this text was extracted from, relative to the documents folder ('' if typed in)."""
        return str(self.extra.get("original") or "")

    def metadata(self) -> dict[str, str]:
        """Flat, Chroma-safe metadata (scalars only) for every chunk of this document."""
        return {
            "source_id": self.id,
            "title": self.title,
            "publisher": self.publisher,
            "kind": self.kind,
            "doc_products": "|".join(self.products),
            "payer": self.payer or "",
            "line_of_business": "; ".join(self.line_of_business),
            "effective": self.effective or "",
            "reviewed": self.reviewed or "",
            "price_quarter": self.price_quarter or "",
        }


class DocumentError(ValueError):
    """A source file that cannot be used; the message names the file and what is wrong."""

    def __init__(self, path: Path, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path.name}: {problem}")


@dataclass
class LoadReport:
    documents: list[SourceDocument]
    errors: list[DocumentError]


def _date_field(raw: object, name: str, path: Path) -> str | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    text = str(raw).strip()
    if not _PARTIAL_DATE_RE.match(text):
        raise DocumentError(path, f"'{name}' must be a date like 2025-09-01 or 2026-05, got {text!r}")
    if len(text) == 10:
        try:
            dt.date.fromisoformat(text)
        except ValueError:
            raise DocumentError(path, f"'{name}' is not a real calendar date: {text!r}") from None
    return text


def _str_list(raw: object, name: str, path: Path) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise DocumentError(path, f"'{name}' must be a list of names")
    return tuple(x.strip() for x in raw)


class _MetaLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """SafeLoader that leaves dates as text, so the validator can name a bad one; libyaml's parser
    where PyYAML has it (the pure-Python one took 6 of a 16 s rebuild at 1,500 documents)."""


_MetaLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def split_front_matter(raw: str, path: Path) -> tuple[dict, str]:
    """Split '---' YAML front matter from the body; the body is returned byte-for-byte."""
    if raw.startswith("\ufeff"):
        raw = raw[1:]
    if not raw.startswith("---\n"):
        raise DocumentError(path, "missing metadata: the file must start with a '---' front-matter block")
    end = raw.find("\n---\n", 4)
    if end < 0:
        raise DocumentError(path, "front matter is not closed by a '---' line")
    try:
        meta = yaml.load(raw[4:end], Loader=_MetaLoader)  # noqa: S506 (safe loader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark else ""
        raise DocumentError(path, f"front matter is not valid YAML{where}") from None
    if not isinstance(meta, dict):
        raise DocumentError(path, "front matter must be a mapping of field: value")
    return meta, raw[end + 5 :]


def parse_document(path: Path) -> SourceDocument:
    """Read and validate one document; raises DocumentError naming the file and the problem."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DocumentError(path, "not UTF-8 text; save the document as UTF-8") from None
    except OSError as exc:
        raise DocumentError(path, f"cannot be read ({exc.strerror})") from None
    return parse_text(raw, path)


def parse_text(raw: str, path: Path) -> SourceDocument:
    """Validate a document's file content as if read from `path` (`index add` checks what it
    is about to write)."""
    meta, body = split_front_matter(raw, path)

    missing = [k for k in REQUIRED if meta.get(k) in (None, "", [])]
    if missing:
        raise DocumentError(path, f"missing required metadata: {', '.join(missing)}")
    doc_id = str(meta["id"]).strip()
    if not _ID_RE.match(doc_id):
        raise DocumentError(path, f"id {doc_id!r} must be lowercase letters, digits and hyphens")
    kind = str(meta["kind"]).strip()
    if kind not in KINDS:
        raise DocumentError(path, f"kind {kind!r} must be one of: {', '.join(KINDS)}")
    products = _str_list(meta["products"], "products", path)
    unknown = [p for p in products if p not in known_product_ids()]
    if unknown:
        raise DocumentError(
            path,
            f"unknown product(s) {', '.join(unknown)}; add them to sources/reference/products.yaml first",
        )
    payer = meta.get("payer") or None
    if kind == "payer-policy" and not payer:
        raise DocumentError(path, "a payer policy must name its payer")
    if payer is not None and payer not in known_payer_ids():
        raise DocumentError(path, f"unknown payer {payer!r}; add it to sources/reference/payers.yaml first")
    quarter = meta.get("price_quarter") or None
    if quarter is not None and not _is_quarter(str(quarter)):
        raise DocumentError(path, f"price_quarter must look like 2026Q2, got {quarter!r}")
    if not body.strip():
        raise DocumentError(path, "the document has metadata but no text")

    known = {"id", "title", "publisher", "kind", "products", "payer", "line_of_business",
             "effective", "reviewed", "price_quarter"}
    extra = {k: v for k, v in meta.items() if k not in known}
    extra["revised"] = _date_field(extra.get("revised"), "revised", path)
    extra["pages"] = _page_offsets(extra.get("pages"), body, path)
    return SourceDocument(
        id=doc_id,
        title=str(meta["title"]).strip(),
        publisher=str(meta["publisher"]).strip(),
        kind=kind,
        products=products,
        payer=payer,
        line_of_business=_str_list(meta.get("line_of_business"), "line_of_business", path),
        effective=_date_field(meta.get("effective"), "effective", path),
        reviewed=_date_field(meta.get("reviewed"), "reviewed", path),
        price_quarter=str(quarter) if quarter else None,
        path=path,
        text=body,
        extra=extra,
    )


def _page_offsets(raw: object, body: str, path: Path) -> list[int]:
    """`pages:` of an extracted PDF: where each page starts in the body, ascending from 0."""
    if raw in (None, "", []):
        return []
    if (not isinstance(raw, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in raw)
            or raw[0] != 0 or any(b <= a for a, b in itertools.pairwise(raw)) or raw[-1] >= max(len(body), 1)):
        raise DocumentError(path, "'pages' must be ascending offsets into the text, starting at 0 "
                                  "(written by `python -m index add`; do not edit them by hand)")
    return raw


def load_corpus(sources_dir: Path) -> LoadReport:
    """Load every document under `sources_dir/documents`; bad files go to `errors`, not up."""
    folder = sources_dir / "documents"
    documents: list[SourceDocument] = []
    errors: list[DocumentError] = []
    seen: dict[str, Path] = {}
    paths = sorted(p for p in folder.glob("*") if p.suffix in DOCUMENT_SUFFIXES and p.is_file())
    for path in paths:
        try:
            doc = parse_document(path)
        except DocumentError as exc:
            errors.append(exc)
            continue
        if doc.id in seen:
            errors.append(DocumentError(path, f"id {doc.id!r} is already used by {seen[doc.id].name}"))
            continue
        seen[doc.id] = path
        documents.append(doc)
    return LoadReport(documents=documents, errors=errors)


def series_key(doc: SourceDocument) -> str:
    """Which documents are revisions of one another: the same payer's policy number, else the
    same kind, payer and title (letters and digits only, a trailing policy number left out)."""
    if doc.payer and doc.policy_number:
        return f"{doc.payer}|#{re.sub(r'[^a-z0-9]', '', doc.policy_number.lower())}"
    title = re.sub(r"[^a-z0-9]+", " ", doc.title.lower())
    if doc.policy_number:
        title = title.replace(re.sub(r"[^a-z0-9]+", " ", doc.policy_number.lower()).strip(), " ")
    return f"{doc.kind}|{doc.payer or ''}|{' '.join(title.split())}"


@dataclass(frozen=True)
class Version:
    """Where a document stands among its revisions (one entry per document of the corpus)."""

    doc_id: str
    number: int                 # 1 = the oldest revision on hand
    of: int                     # revisions on hand
    in_force_from: str | None   # its version_date; None = as far back as the sources go
    in_force_until: str | None  # the next revision's version_date (exclusive); None = current
    superseded_by: str | None
    supersedes: str | None

    @property
    def current(self) -> bool:
        return self.superseded_by is None

    def in_force_on(self, day: str) -> bool:
        """In force on an ISO date of service. A revision is in force from its date (a
        year-month counts from the month's first day) until the next one's; the oldest on hand
        also answers for earlier dates (the answer then says an older version applied)."""
        starts = self.number == 1 or not self.in_force_from or self.in_force_from[:10] <= day
        return starts and (self.in_force_until is None or day < self.in_force_until[:10])

    def label(self) -> str:
        """How an answer names the version it quotes."""
        if self.of == 1:
            return ""
        since = f" from {self.in_force_from}" if self.in_force_from else ""
        state = "current" if self.current else f"superseded {self.in_force_until} by {self.superseded_by}"
        return f"version {self.number} of {self.of}{since} ({state})"


def versions(documents: list[SourceDocument]) -> dict[str, Version]:
    """Every document's place among its revisions: ordered by version date, each in force
    until the next one's date."""
    series: dict[str, list[SourceDocument]] = {}
    for doc in documents:
        series.setdefault(series_key(doc), []).append(doc)
    out: dict[str, Version] = {}
    for docs in series.values():
        docs.sort(key=lambda d: (d.version_date or "", d.id))
        for i, doc in enumerate(docs):
            nxt = docs[i + 1] if i + 1 < len(docs) else None
            out[doc.id] = Version(doc.id, i + 1, len(docs), doc.version_date,
                                  nxt.version_date if nxt else None, nxt.id if nxt else None,
                                  docs[i - 1].id if i else None)
    return out


@dataclass(frozen=True)
class CorpusView:
    """What the engine asks of the corpus as a whole, computed once per version of the files."""

    documents: dict[str, SourceDocument]
    products: frozenset[str]          # products some document is about
    vocabulary: frozenset[str]        # every word of the documents and the reference data
    versions: dict[str, Version] = field(default_factory=dict)  # doc id -> its place among its revisions

    def in_force(self, doc_id: str, day: str) -> str:
        """The revision of `doc_id`'s series in force on an ISO date of service (itself when alone)."""
        doc = self.documents.get(doc_id)
        if doc is None or self.versions[doc_id].of == 1:
            return doc_id
        key = series_key(doc)
        return next((d for d, v in self.versions.items() if series_key(self.documents[d]) == key and v.in_force_on(day)),
                    doc_id)

    def not_in_force(self, day: str) -> frozenset[str]:
        """Documents another revision replaces on an ISO date of service: left out of the search."""
        return frozenset(d for d, v in self.versions.items() if v.of > 1 and not v.in_force_on(day))


# reference files that list names only to recognise them in questions (drug classes of a patient's
# prior therapies): a name there is not something the sources say anything about
_RECOGNITION_ONLY = {"policies.yaml"}


@lru_cache(maxsize=4)
def _corpus_view(sources_dir: str, reference_dir: str, _signature: tuple) -> CorpusView:
    docs = load_corpus(Path(sources_dir)).documents
    words: set[str] = set()
    for d in docs:
        words |= set(re.findall(r"[a-z]{3,}", d.text.lower()))
    for path in Path(reference_dir).glob("*.yaml"):
        if path.name in _RECOGNITION_ONLY:
            continue
        words |= set(re.findall(r"[a-z]{3,}", path.read_text(encoding="utf-8").lower()))
    return CorpusView(documents={d.id: d for d in docs}, products=frozenset(p for d in docs for p in d.products),
                      vocabulary=frozenset(words), versions=versions(docs))


def cached_corpus(sources_dir: Path, reference_dir: Path) -> CorpusView:
    """The corpus, loaded once and again only when a document or reference file changes
    (one loader for the engine's guards, its not-covered check and the conflict notes)."""
    documents = Path(sources_dir) / "documents"
    signature = files_signature(documents, depth=0) + files_signature(Path(reference_dir), (".yaml", ".yml", ".csv"))
    return _corpus_view(str(sources_dir), str(reference_dir), signature)


# the corpus one answer reads (set by `one_corpus`): its readers ask ~5 times an answer, and each
# ask would otherwise stat every document and reference file again
_PINNED: ContextVar[CorpusView | None] = ContextVar("cart_corpus_pinned", default=None)


def configured_corpus() -> CorpusView:
    """`cached_corpus` of the configured sources and reference folders: what the engine answers from."""
    if (pinned := _PINNED.get()) is not None:
        return pinned
    from assistant import config

    cfg = config.load()
    return cached_corpus(cfg.sources_dir, cfg.reference_dir)


@contextmanager
def one_corpus() -> Iterator[CorpusView]:
    """Every reader within the block (one answer) sees one corpus, checked for edits once."""
    token = _PINNED.set(configured_corpus())
    try:
        yield _PINNED.get()
    finally:
        _PINNED.reset(token)
