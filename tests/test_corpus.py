"""The corpus loader: real documents load with their metadata; malformed ones are named and skipped."""

from pathlib import Path

from assistant import config
from index.corpus import load_corpus

SHARED_NAMES = {
    "abecma-billing-guide": "000_e702d8580195a83a.txt",
    "carvykti-billing-guide": "001_386b1b8cb2486ffa.txt",
    "centene-abecma-policy": "002_c6b69c5c4e22c6c1.txt",
    "tecartus-billing-guide": "003_8aee5b9d2f36c416.txt",
    "carepartners-ct-abecma-policy": "004_17b48494c2e51cb5.txt",
}


def test_the_five_documents_load_with_metadata():
    report = load_corpus(config.PROJECT_ROOT / "sources")
    assert report.errors == []
    docs = {d.id: d for d in report.documents}
    assert set(docs) == set(SHARED_NAMES)
    centene = docs["centene-abecma-policy"]
    assert (centene.kind, centene.payer, centene.products) == ("payer-policy", "centene", ("abecma",))
    assert centene.effective == "2021-03-26" and centene.reviewed == "2026-05"
    assert "Medicaid" in centene.line_of_business
    cpct = docs["carepartners-ct-abecma-policy"]
    assert cpct.payer == "carepartners-ct" and cpct.effective == "2025-09-01"
    assert docs["carvykti-billing-guide"].price_quarter == "2026Q2"
    assert docs["tecartus-billing-guide"].kind == "billing-guide"


def test_document_text_is_the_original_byte_for_byte():
    """Quotes and spans are offsets into the body, so the body must be the shared file exactly."""
    shared = config.load().shared_dir / "sources"
    assert shared.is_dir(), f"../shared/sources is missing at {shared}"
    for doc in load_corpus(config.PROJECT_ROOT / "sources").documents:
        assert doc.text == (shared / SHARED_NAMES[doc.id]).read_text(encoding="utf-8"), doc.id


def _write(folder: Path, name: str, text: str) -> None:
    (folder / "documents" / name).write_text(text, encoding="utf-8")


def test_malformed_documents_are_reported_and_skipped(sources_copy):
    good_meta = "---\nid: {id}\ntitle: T\npublisher: P\nkind: {kind}\nproducts: [{prod}]\n{extra}---\nSome text.\n"
    _write(sources_copy, "no-front-matter.md", "Just text, no metadata.\n")
    _write(sources_copy, "bad-kind.md", good_meta.format(id="bad-kind", kind="blog", prod="abecma", extra=""))
    _write(sources_copy, "bad-product.md", good_meta.format(id="bad-product", kind="billing-guide", prod="kymria", extra=""))
    _write(sources_copy, "bad-date.md", good_meta.format(id="bad-date", kind="billing-guide", prod="abecma", extra="effective: 2025-13-01\n"))
    _write(sources_copy, "policy-no-payer.md", good_meta.format(id="policy-no-payer", kind="payer-policy", prod="abecma", extra=""))
    _write(sources_copy, "dup.md", good_meta.format(id="abecma-billing-guide", kind="billing-guide", prod="abecma", extra=""))
    _write(sources_copy, "broken-yaml.md", "---\nid: [unclosed\n---\ntext\n")
    (sources_copy / "documents" / "latin1.md").write_bytes("---\nid: x\n---\ncaf\xe9".encode("latin-1"))
    report = load_corpus(sources_copy)
    assert len(report.documents) == 5
    problems = {e.path.name: e.problem for e in report.errors}
    assert "must start with a '---'" in problems["no-front-matter.md"]
    assert "kind 'blog'" in problems["bad-kind.md"]
    assert "unknown product(s) kymria" in problems["bad-product.md"]
    assert "2025-13-01" in problems["bad-date.md"]
    assert "must name its payer" in problems["policy-no-payer.md"]
    assert "already used by abecma-billing-guide.md" in problems["dup.md"]
    assert "not valid YAML" in problems["broken-yaml.md"]
    assert "not UTF-8" in problems["latin1.md"]
    # each message names its file
    assert all(str(e).startswith(e.path.name + ": ") for e in report.errors)
