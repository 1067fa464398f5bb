"""Adding a downloaded document to the corpus: read it, propose its metadata, write it on confirmation.

    stage(file)   -> Staged: the extracted text, the proposed metadata with its evidence, the
                     revision it would replace, or the reason it cannot be added (IngestError)
    commit(staged) -> the document written: `documents/<id>.md` (front matter + the extracted
                     text, which is what answers quote) and the original file kept beside it in
                     `documents/originals/`, so every quote can be traced to a page of the original

Nothing is written until the required metadata are valid, and the corpus folder never holds a
half-written document (original first, then the Markdown file, each written atomically). The index
is rebuilt by the caller (`python -m index add` or the Documents page), with the same atomic,
incremental build as always.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from assistant.core.files import write_atomic
from index.corpus import SourceDocument, load_corpus, parse_document, parse_text, series_key, versions
from index.propose import Proposal, Proposed, propose
from index.readers import SUFFIXES, Extracted, ReadError, read_file

ORIGINALS = "originals"  # beside the Markdown files, under the documents folder


class IngestError(ValueError):
    """A file that is not added; str(exc) is one line naming the file and the reason."""

    def __init__(self, name: str, reason: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name, self.reason, self.message = name, reason, message


@dataclass
class Staged:
    """A file read and its metadata proposed, not yet in the corpus."""

    path: Path                  # the file as given (or as uploaded)
    name: str                   # its file name, for messages and the stored original
    extracted: Extracted
    proposal: Proposal
    sha256: str                 # of the original file's bytes
    supersedes: str | None = None   # the revision on hand this one follows, once metadata are final
    notes: list[str] = field(default_factory=list)
    same_revision: str | None = None  # why it cannot be added: the corpus holds this very revision

    def problems(self) -> list[str]:
        return self.proposal.problems() + ([self.same_revision] if self.same_revision else [])


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _documents(sources_dir: Path) -> list[SourceDocument]:
    return load_corpus(sources_dir).documents


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _duplicate_of(sha: str, extracted: Extracted, docs: list[SourceDocument]) -> str | None:
    """A document already in the corpus with the same original file or the same text."""
    for doc in docs:
        if doc.extra.get("original_sha256") == sha or _same_text(doc.text, extracted.text):
            return doc.id
    return None


def stage(path: Path, sources_dir: Path, overrides: dict | None = None, *, name: str | None = None,
          max_bytes: int | None = None) -> Staged:
    """Read `path` and propose its metadata (with the user's `overrides` applied). Raises
    IngestError for a file that cannot be added (unreadable, a duplicate), and changes nothing."""
    path = Path(path)
    name = name or path.name
    try:
        extracted = read_file(path, max_bytes) if max_bytes else read_file(path)
    except ReadError as exc:
        raise IngestError(name, exc.reason, exc.message.removeprefix(f"{path.name}: ")) from None
    sha = file_sha256(path)
    docs = _documents(sources_dir)
    if (dup := _duplicate_of(sha, extracted, docs)) is not None:
        raise IngestError(name, "duplicate", f"the corpus already holds this document as {dup!r}; nothing to add")
    proposal = propose(extracted.text, file_name=name, title_hint=extracted.title_hint, hints=extracted.hints)
    staged = Staged(path=path, name=name, extracted=extracted, proposal=proposal, sha256=sha)
    return revise(staged, sources_dir, overrides or {})


def revise(staged: Staged, sources_dir: Path, overrides: dict) -> Staged:
    """The staged file with the user's corrections applied (a new Staged), and which revision on
    hand it follows: a new revision of a policy gets its own id (the old one stays for earlier
    dates of service)."""
    staged = replace(staged, proposal=staged.proposal.with_overrides(overrides) if overrides else staged.proposal,
                     supersedes=None, notes=[], same_revision=None)  # a copy: a refused correction changes nothing
    candidate = _as_document(staged, sources_dir)
    if candidate is None:
        return staged
    docs = _documents(sources_dir)
    same = [d for d in docs if series_key(d) == series_key(candidate)]
    if twin := next((d for d in same if d.version_date == candidate.version_date), None):
        staged.same_revision = (f"the corpus already holds this revision (dated {twin.version_date}) as {twin.id!r}: a new "
                                f"revision has a later effective, revised or reviewed date (to replace {twin.id!r}, "
                                f"remove documents/{twin.path.name} first)")
        return staged
    if same:
        order = versions([*same, candidate])[candidate.id]
        staged.supersedes = order.supersedes
        if order.superseded_by:
            staged.notes.append(f"an older revision than {order.superseded_by} (on hand): it will answer only for "
                                f"dates of service before {order.in_force_until}")
        if any(d.id == candidate.id for d in same) and "id" not in overrides:
            new_id = f"{candidate.id}-{candidate.version_date or 'new'}"
            # still derived (not the person's): a later correction derives it again
            staged.proposal = Proposal(fields={**staged.proposal.fields, "id": Proposed("id", new_id, "", "derived")})
            staged.notes.append(f"a new revision of {candidate.id!r}: added as {new_id!r}")
    if staged.supersedes:
        staged.notes.append(f"replaces {staged.supersedes!r} for dates of service from {candidate.version_date}; "
                            f"{staged.supersedes!r} stays for earlier dates")
    taken = {d.id for d in docs}
    if staged.proposal.value("id") in taken and not same:
        staged.notes.append(f"the id {staged.proposal.value('id')!r} is taken by another document: choose another (--set id=...)")
    return staged


def id_taken(staged: Staged, sources_dir: Path) -> bool:
    return any(d.id == staged.proposal.value("id") for d in _documents(sources_dir))


def _markdown(staged: Staged, original: str) -> str:
    meta = staged.proposal.front_matter() | {"original": original, "original_sha256": staged.sha256}
    if len(staged.extracted.pages) > 1:
        meta["pages"] = list(staged.extracted.pages)
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{head}---\n{staged.extracted.text}"


def _as_document(staged: Staged, sources_dir: Path) -> SourceDocument | None:
    """The document this would become, checked by the corpus's own loader (None while the
    required metadata are not valid)."""
    if staged.proposal.problems():
        return None
    path = sources_dir / "documents" / f"{staged.proposal.value('id')}.md"
    try:
        return parse_text(_markdown(staged, "pending"), path)
    except ValueError:
        return None


def commit(staged: Staged, sources_dir: Path) -> Path:
    """Write the document into the corpus; returns its Markdown file. Refuses (IngestError,
    nothing written) while a required field is missing or invalid, or the id is taken."""
    if problems := staged.problems():
        raise IngestError(staged.name, "metadata", "not added: " + "; ".join(problems))
    doc_id = str(staged.proposal.value("id"))
    folder = sources_dir / "documents"
    target = folder / f"{doc_id}.md"
    if target.exists() or id_taken(staged, sources_dir):
        raise IngestError(staged.name, "id-taken", f"not added: the id {doc_id!r} is already used; choose another (--set id=...)")
    suffix = staged.path.suffix.lower() if staged.path.suffix.lower() in SUFFIXES else Path(staged.name).suffix.lower()
    original = folder / ORIGINALS / f"{doc_id}{suffix}"
    text = _markdown(staged, f"{ORIGINALS}/{original.name}")
    original.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = original.with_name(f".{original.name}.tmp")
        shutil.copyfile(staged.path, tmp)
        tmp.replace(original)
        write_atomic(target, text, sync_dir=True)
        parse_document(target)  # read back by the loader the build uses
    except BaseException:
        target.unlink(missing_ok=True)
        original.unlink(missing_ok=True)
        raise
    return target


def safe_name(name: str) -> str:
    """An uploaded file's name reduced to a plain file name (no folders, no odd characters)."""
    base = Path(name.replace("\\", "/")).name
    stem, suffix = Path(base).stem, Path(base).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip(".-")[:80] or "upload"
    return f"{stem}{suffix}"
