"""Proposed metadata of a downloaded document: each value read from its text, with the line it came from.

The five corpus documents are the answer key: their bodies are the text another module would
extract from the downloaded file, their front matter what a person filled in. What the text
cannot give is asserted empty (with the reason), never looked up per document.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant import config
from index import propose as propose_module
from index.codes import codes_in
from index.corpus import parse_document, split_front_matter
from index.propose import FIELDS, MAX_CODES, Proposal, Proposed, propose, read_date

DOCUMENTS = config.PROJECT_ROOT / "sources" / "documents"
NAMES = sorted(p.stem for p in DOCUMENTS.glob("*.md"))
COMPARED = ("title", "publisher", "kind", "payer", "line_of_business", "products", "effective", "reviewed",
            "price_quarter", "id", "policy_number")
# The CarePartners body has no title line (it starts at "Effective: September 1, 2025"; the PDF's
# heading did not come through as text), so its front-matter title cannot be read from the text.
NO_TITLE_IN_TEXT = {"carepartners-ct-abecma-policy"}


def _document(name: str) -> tuple[dict, str]:
    path = DOCUMENTS / f"{name}.md"
    return split_front_matter(path.read_text(encoding="utf-8"), path)


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def _expected(meta: dict, name: str):
    value = meta.get(name)
    if name in ("line_of_business", "products"):
        return list(value or [])
    return None if value in (None, "") else str(value)


def _assert_evidence(proposal: Proposal, text: str, file_name: str = "", hints: tuple[str, ...] = ()) -> None:
    """Every non-empty field says where it came from, and that evidence is really there."""
    for name, field in proposal.fields.items():
        assert field.name == name
        if field.value in (None, ()):
            assert (field.evidence, field.source) == ("", ""), name
            continue
        assert len(field.evidence) <= 200, name
        if field.source == "text":
            assert field.evidence and field.evidence in text, name
        elif field.source == "file name":
            assert field.evidence and field.evidence in file_name, name
        elif field.source == "file metadata":
            assert any(field.evidence in hint for hint in hints), name
        else:
            assert (field.source, field.evidence) == ("derived", ""), name


@pytest.mark.parametrize("name", NAMES)
def test_proposal_reproduces_the_corpus_front_matter(name):
    meta, body = _document(name)
    proposal = propose(body, file_name=f"{name}.pdf")
    for field in COMPARED:
        if field == "title" and name in NO_TITLE_IN_TEXT:
            continue
        assert _plain(proposal.value(field)) == _expected(meta, field), field
    assert set(proposal.fields) == set(FIELDS)
    assert proposal.problems() == []
    _assert_evidence(proposal, body, f"{name}.pdf")


@pytest.mark.parametrize("name", sorted(NO_TITLE_IN_TEXT))
def test_a_document_without_a_title_line_takes_the_files_title_then_its_name(name):
    meta, body = _document(name)
    bare = propose(body, file_name=f"{name}.pdf")
    assert (bare.value("title"), bare.fields["title"].source) == (name, "file name")
    hinted = propose(body, file_name=f"{name}.pdf", title_hint=meta["title"])
    assert (hinted.value("title"), hinted.fields["title"].source) == (meta["title"], "file metadata")
    assert hinted.fields["title"].evidence == meta["title"]


def test_the_evidence_is_the_line_each_value_came_from():
    _, body = _document("centene-abecma-policy")
    p = propose(body, file_name="centene-abecma-policy.pdf")
    assert p.fields["title"].evidence == "Clinical Policy: Idecabtagene Vicleucel (Abecma)"
    assert p.value("title") == "Clinical Policy: Idecabtagene Vicleucel (Abecma), CP.PHAR.481"  # the corpus appends the number
    assert p.fields["effective"].evidence == "Effective Date: 03.26.21"
    assert p.fields["reviewed"].evidence == "Last Review Date: 05.26"
    assert p.fields["policy_number"].evidence == "Reference Number: CP.PHAR.481"
    assert p.fields["line_of_business"].evidence == "Line of Business: Commercial, HIM/ICHRA, Medicaid"
    assert p.fields["publisher"].evidence.startswith("It is the policy of health plans affiliated with Centene Corporation")
    assert p.fields["id"] == Proposed("id", "centene-abecma-policy", "", "derived")
    assert p.value("revised") is None  # the revision log's dates are reviews and changes, no "Revised:" field

    _, cpct = _document("carepartners-ct-abecma-policy")
    p = propose(cpct)
    # no review-date field: the newest entry of its "Approval And Revision History" gives it
    assert p.fields["reviewed"].evidence.startswith("- July 16, 2025: Reviewed by MPAC.")
    assert p.fields["effective"].evidence == "Effective: September 1, 2025"
    assert p.value("line_of_business") == ("Medicare Advantage HMO", "Medicare Advantage PPO")  # checked boxes of "Applies to:"
    assert p.value("codes") == ("Q2055", "0537T", "0538T", "0539T", "0540T")

    _, guide = _document("abecma-billing-guide")
    p = propose(guide)
    assert p.fields["price_quarter"].evidence == "ASP data:Q2 2026 (live)"
    assert p.fields["reviewed"].evidence == "Payer policies:verified May 2026"
    assert p.fields["title"].evidence == "Abecma (idecabtagene vicleucel) — HCPCS Q2055"
    # a guide names competitors in passing (Carvykti 81 times against Abecma's 226): only its own product
    assert p.value("products") == ("abecma",)
    # Medicare is named 31 times, but a guide is not Medicare's document
    assert p.value("payer") is None
    codes = p.value("codes")
    assert len(codes) == MAX_CODES and list(codes) == codes_in(guide)[:MAX_CODES]


def test_a_guides_publisher_is_known_only_because_the_corpus_holds_its_site(monkeypatch):
    """The guides' publisher ("CareCost Estimate") is named only in their footers, and nothing in
    the text says it is the publisher: it is recognised because the corpus already holds guides
    from that site. Without that, the text gives no publisher and the file's author is used."""
    _, body = _document("tecartus-billing-guide")
    monkeypatch.setattr(propose_module, "_corpus_publishers", lambda: set())
    assert propose(body).value("publisher") is None
    authored = propose(body, hints={"author": "CareCost"})
    assert (authored.value("publisher"), authored.fields["publisher"].source) == ("CareCost", "file metadata")
    # the manufacturer line under the title names the product's maker, not the page's publisher
    assert "Kite Pharma (a Gilead company)" in body


def test_a_copyright_notice_names_the_publisher_unless_it_is_a_code_sets():
    guide = "Abecma billing guide\nHow to bill Q2055 on the claim form.\n"
    bms = propose(guide + "CPT copyright 2024 American Medical Association. All rights reserved.\n©2024 Bristol-Myers Squibb\n")
    assert (bms.value("publisher"), bms.fields["publisher"].evidence) == ("Bristol-Myers Squibb", "©2024 Bristol-Myers Squibb")
    assert propose(guide + "CPT® is copyright 2024 American Medical Association.").value("publisher") is None
    # a payer's policy is the payer's, whatever copyrights it quotes
    policy = propose("Clinical Policy: Abecma\nAetna considers Abecma medically necessary.\n© 2024 National Comprehensive Cancer Network.")
    assert (policy.value("kind"), policy.value("payer"), policy.value("publisher")) == ("payer-policy", "aetna", "Aetna")


def test_overrides_are_the_users_and_the_id_follows_them():
    _, body = _document("abecma-billing-guide")
    fixed = propose(body).with_overrides({"payer": "centene", "products": "abecma,carvykti"})
    assert fixed.fields["payer"] == Proposed("payer", "centene", "set by you", "user")
    assert fixed.fields["products"] == Proposed("products", ("abecma", "carvykti"), "set by you", "user")
    policy = fixed.with_overrides({"kind": "payer policy", "products": ["Carvykti"], "effective": "9/1/2025"})
    assert (policy.value("kind"), policy.value("products"), policy.value("effective")) == ("payer-policy", ("carvykti",), "2025-09-01")
    assert policy.value("id") == "centene-carvykti-policy"  # re-derived from the corrected fields
    assert policy.with_overrides({"id": "my-id", "payer": "Care Partners"}).value("id") == "my-id"
    assert policy.with_overrides({"payer": "Care Partners"}).value("payer") == "carepartners-ct"
    cleared = policy.with_overrides({"effective": ""})
    assert cleared.value("effective") is None and "effective:        (cleared by you)" in cleared.render()
    with pytest.raises(ValueError, match="unknown field 'author'"):
        policy.with_overrides({"author": "x"})


def test_problems_name_each_missing_or_invalid_field_once():
    p = propose("Some notes about a CAR-T claim.")
    problems = p.problems()
    for name in ("id", "title", "publisher", "kind", "products"):
        assert sum(line.startswith(f"{name}: required") for line in problems) == 1, name
    bad = p.with_overrides({"id": "x-1", "title": "T", "publisher": "P", "kind": "payer-policy",
                            "products": "abecma,kymria", "effective": "2025-13-40", "price_quarter": "spring"})
    assert bad.problems() == [
        "unknown product(s) kymria; add them to sources/reference/products.yaml first",
        "a payer policy must name its payer",
        "'effective' must be a date like 2025-09-01 or 2026-05, got '2025-13-40'",
        "price_quarter must look like 2026Q2, got 'spring'",
    ]
    worse = bad.with_overrides({"kind": "blog", "id": "Bad Id", "payer": "acme"}).problems()
    assert {"id 'Bad Id' must be lowercase letters, digits and hyphens",
            "kind 'blog' must be one of: billing-guide, payer-policy, reference",
            "unknown payer 'acme'; add it to sources/reference/payers.yaml first"} <= set(worse)
    assert len(worse) == len(set(worse)) == 6
    assert "Problems:\n  - unknown product(s) kymria" in bad.render()


@pytest.mark.parametrize("name", NAMES)
def test_front_matter_round_trips_through_the_corpus_loader(name, tmp_path):
    meta, body = _document(name)
    proposal = propose(body, file_name=f"{name}.pdf", title_hint=meta["title"])
    fm = proposal.front_matter()
    assert "payer" in fm and all(v not in (None, "", []) for k, v in fm.items() if k != "payer")
    path = tmp_path / "x.md"
    path.write_text("---\n" + yaml.safe_dump(fm, allow_unicode=True) + "---\n" + body, encoding="utf-8")
    doc = parse_document(path)
    assert (doc.id, doc.title, doc.kind, doc.products, doc.payer) == (meta["id"], meta["title"], meta["kind"],
                                                                      tuple(meta["products"]), meta["payer"])
    assert doc.text == body and doc.extra.get("codes") == list(proposal.value("codes"))


def test_dates_are_read_only_from_labels_and_only_when_real():
    undated = propose("Abecma billing guide\nHow to bill Q2055 on the claim form, with modifiers.\nCall 2025 0101.")
    assert undated.value("effective") is None
    assert "effective:        (not in the text)" in undated.render()
    assert propose("Effective Date: 13/45/2021").value("effective") is None  # impossible: not re-read as anything
    assert propose("Effective Date: 02/30/2026 (revised 01/01/2026)").value("effective") is None
    assert propose("Effective: March 4").value("effective") is None  # no year: never guessed
    assert propose("effective January 1, 2025 for all claims").value("effective") is None  # prose, not a header field
    dated = propose("Policy Number: MP-123\nEffective Date: 7/1/24\nRevised: January 2025\nDate of Last Revision: 03.15.2025\n"
                    "Last Review Date: 05.26\n")
    assert (dated.value("effective"), dated.value("revised"), dated.value("reviewed")) == ("2024-07-01", "2025-03-15", "2026-05")
    assert dated.value("policy_number") == "MP-123"
    assert [read_date(v) for v in ("2025-09-01", "2026-05", "Sept 1, 2025", "03.26.21", "13.26", "Q2 2026", "today")] == [
        "2025-09-01", "2026-05", "2025-09-01", "2021-03-26", None, None, None]


def test_price_quarter_only_when_prices_are_said_to_be_for_it():
    assert propose("Q1 2026 ASP payment limit: $500,000").value("price_quarter") == "2026Q1"
    assert propose("Payment limits effective January 1, 2026 (from the CMS pricing file)").value("price_quarter") == "2026Q1"
    assert propose("2Q 2022 annual review: no significant changes.").value("price_quarter") is None
    assert propose("The ASP file is published every quarter.").value("price_quarter") is None


_FRAGMENTS = ["Clinical Policy: Idecabtagene Vicleucel (Abecma)", "Effective Date: 03.26.21", "Last Review Date: 13.99",
              "Line of Business: ,, ;", "Applies to: <input checked> Medicare Advantage PPO", "Reference Number: CP.PHAR.481",
              "©", "Copyright 2024 Kite Pharma, Inc.", "Q2 2026 ASP", "Revision Log", "- July 16, 2025: Reviewed",
              "\t05.26\t13.45.21", "Centene Corporation", "verified May 2026", "Q2055 0537T-0541T", "Medicare Advantage",
              "billing guide", "need to bill", "claim form", "coverage criteria"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(st.text(max_size=2000),
                      st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=40)), max_size=30).map("\n".join)),
       file_name=st.text(max_size=40), hint=st.one_of(st.none(), st.text(max_size=80)))
def test_propose_never_raises_and_every_evidence_is_in_its_source(text, file_name, hint):
    proposal = propose(text, file_name=file_name, title_hint=hint, hints={"author": "An Author"})
    _assert_evidence(proposal, text, file_name, (hint or "", "An Author"))
    proposal.render()
    proposal.front_matter()


def test_an_empty_text_gives_nothing_but_the_file_name(tmp_path: Path):
    p = propose("", file_name="Policy 2024.pdf")
    assert p.value("title") == "Policy 2024" and p.fields["title"].source == "file name"
    assert all(p.value(n) in (None, ()) for n in FIELDS if n != "title")
    assert p.render().count("(not in the text)") == len(FIELDS) - 1
