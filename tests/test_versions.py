"""Revisions of one policy: the one in force on the date of service answers, the older one stays
for earlier dates and is named when quoted; pages of an extracted PDF carry into citations."""

import datetime as dt
import shutil
from pathlib import Path

import pytest

from assistant import config
from index import build as build_mod
from index.corpus import DocumentError, load_corpus, parse_document, series_key, versions

CENTENE = "centene-abecma-policy"


def _revision(sources: Path, *, reviewed: str, old: str, new: str, doc_id: str | None = None,
              policy_number: str = "CP.PHAR.481") -> Path:
    """A new revision of the Centene policy: the same file with one sentence changed and a later review date."""
    raw = (sources / "documents" / f"{CENTENE}.md").read_text(encoding="utf-8")
    assert old in raw
    doc_id = doc_id or f"{CENTENE}-{reviewed}"
    raw = raw.replace(f"id: {CENTENE}\n", f"id: {doc_id}\n").replace("reviewed: 2026-05\n", f"reviewed: {reviewed}\n")
    raw = raw.replace("policy_number: CP.PHAR.481\n", f"policy_number: {policy_number}\n").replace(old, new)
    path = sources / "documents" / f"{doc_id}.md"
    path.write_text(raw, encoding="utf-8")
    return path


def test_a_later_revision_supersedes_the_earlier_one_from_its_date(sources_copy):
    _revision(sources_copy, reviewed="2027-05", old="Approval duration: 3 months", new="Approval duration: 6 months")
    docs = load_corpus(sources_copy).documents
    order = versions(docs)
    old, new = order[CENTENE], order[f"{CENTENE}-2027-05"]
    assert (old.number, old.of, old.superseded_by, old.in_force_until) == (1, 2, f"{CENTENE}-2027-05", "2027-05")
    assert (new.number, new.supersedes, new.current) == (2, CENTENE, True)
    assert not old.current and "superseded 2027-05" in old.label() and "current" in new.label()
    # a date of service picks one revision: the old one up to April 2027, the new one from May
    assert old.in_force_on("2027-04-30") and not new.in_force_on("2027-04-30")
    assert new.in_force_on("2027-05-01") and not old.in_force_on("2027-05-01")
    # the oldest revision on hand also answers for dates before it (its answer says so in a note)
    assert old.in_force_on("2019-01-01")
    # every other document is the only version of itself
    assert all(v.of == 1 and v.label() == "" for d, v in order.items() if not d.startswith(CENTENE))


def test_revisions_are_matched_by_policy_number_not_by_file_name(sources_copy):
    other = _revision(sources_copy, reviewed="2027-05", old="Approval duration: 3 months", new="Approval duration: 6 months",
                      doc_id="centene-other-policy", policy_number="CP.PHAR.999")
    docs = {d.id: d for d in load_corpus(sources_copy).documents}
    assert series_key(docs[CENTENE]) != series_key(docs["centene-other-policy"])
    assert versions(list(docs.values()))[CENTENE].of == 1
    other.unlink()
    # without a policy number, the same kind, payer and title make a series
    carepartners = docs["carepartners-ct-abecma-policy"]
    assert series_key(carepartners) == "payer-policy|carepartners-ct|" + " ".join(
        "medical necessity guidelines abecma idecabtagene vicleucel carepartners of connecticut medicare advantage".split())


def test_page_offsets_are_validated_and_give_the_page(tmp_path):
    body = "Page one text.\n\nPage two text.\n\nPage three.\n"
    head = "---\nid: x-policy\ntitle: X\npublisher: Centene Corporation\nkind: payer-policy\nproducts: [abecma]\npayer: centene\n"
    good = tmp_path / "good.md"
    good.write_text(head + "pages: [0, 16, 32]\n---\n" + body, encoding="utf-8")
    doc = parse_document(good)
    assert [doc.page_of(body.index(s)) for s in ("Page one", "Page two", "Page three")] == [1, 2, 3]
    for bad in ("[3, 16]", "[0, 16, 16]", "[0, 9999]", "[0, 'x']", "12"):
        path = tmp_path / "bad.md"
        path.write_text(head + f"pages: {bad}\n---\n" + body, encoding="utf-8")
        with pytest.raises(DocumentError, match="'pages' must be ascending offsets"):
            parse_document(path)
    typed = tmp_path / "typed.md"
    typed.write_text(head + "---\n" + body, encoding="utf-8")
    assert parse_document(typed).page_of(5) is None  # a document typed in has no pages


def _engine(index_env, tmp_path, monkeypatch, sources_copy):
    from assistant.engine import Engine

    data = tmp_path / "data"
    shutil.copytree(index_env["CART_DATA_DIR"], data)
    monkeypatch.setenv("CART_DATA_DIR", str(data))
    monkeypatch.setenv("CART_SOURCES_DIR", str(sources_copy))
    report = build_mod.build(config.load(), quiet=True)
    assert report.status == "built" and report.documents == 6
    return Engine(cfg=config.load(), llm=None)


TODAY = dt.date(2027, 8, 1)
QUESTION = "centene abecma approval duration"


@pytest.mark.slow
def test_a_revision_that_keeps_the_records_passages_is_cited_from_its_date(index_env, tmp_path, monkeypatch, sources_copy):
    """Real index, real engine: the payer-policy record still holds for a revision that kept its
    quotes, and the citation moves to the revision in force; an earlier date cites the old one."""
    _revision(sources_copy, reviewed="2027-05", old="Idecabtagene vicleucel (Abecma[®]) is an anti-B cell",
              new="Idecabtagene vicleucel (Abecma®), revised, is an anti-B cell")
    engine = _engine(index_env, tmp_path, monkeypatch, sources_copy)
    later = engine.ask(QUESTION, today=TODAY, dos="2027-06-15")
    earlier = engine.ask(QUESTION, today=TODAY, dos="2026-09-01")
    for answer in (later, earlier):
        assert "3 months" in answer.text.split("\n\n")[0]
    assert {c.doc_id for c in later.citations} == {f"{CENTENE}-2027-05"}
    assert all("version 2 of 2" in c.version and "current" in c.version for c in later.citations)
    assert not any("revision in force" in n for n in later.notes)
    assert {c.doc_id for c in earlier.citations} == {CENTENE}
    assert all("version 1 of 2" in c.version for c in earlier.citations)
    assert any("revision in force on the date of service" in n and "2027-05" in n for n in earlier.notes)
    from assistant.render import citations_html
    assert "version 1 of 2" in citations_html(earlier.citations)


@pytest.mark.slow
def test_a_revision_that_changed_the_records_passage_is_never_answered_from_the_old_record(
        index_env, tmp_path, monkeypatch, sources_copy):
    _revision(sources_copy, reviewed="2027-05", old="Approval duration: 3 months", new="Approval duration: 6 months")
    engine = _engine(index_env, tmp_path, monkeypatch, sources_copy)
    later = engine.ask(QUESTION, today=TODAY, dos="2027-06-15")
    earlier = engine.ask(QUESTION, today=TODAY, dos="2026-09-01")
    assert "3 months" not in later.text and {c.doc_id for c in later.citations} == {f"{CENTENE}-2027-05"}
    assert "3 months" in earlier.text.split("\n\n")[0] and "6 months" not in earlier.text
    assert {c.doc_id for c in earlier.citations} == {CENTENE}
