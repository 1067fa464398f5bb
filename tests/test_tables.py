"""Table rows as records, over the real corpus: cells split to the header's width, quotes exact,
no text lost; and the splitter on tables it has never seen."""

from __future__ import annotations

import re

import pytest

from assistant import config
from index.corpus import load_corpus
from index.tables import TableRow, all_table_rows, header_columns, readable, split_row, table_rows


@pytest.fixture(scope="module")
def docs():
    return {d.id: d for d in load_corpus(config.PROJECT_ROOT / "sources").documents}


@pytest.fixture(scope="module")
def rows(docs):
    return {doc_id: table_rows(doc) for doc_id, doc in docs.items()}


def _row(rows, doc_id: str, first_cell: str, column: str | None = None) -> TableRow:
    found = [r for r in rows[doc_id] if r.cells[0] == first_cell and (column is None or column in r.columns)]
    assert len(found) >= 1, (doc_id, first_cell, [r.cells[0] for r in rows[doc_id]])
    return found[0]


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- every row of every document -------------------------------------------------------------

def test_every_quote_is_verbatim_and_no_text_is_lost(docs, rows):
    total = 0
    for doc_id, rs in rows.items():
        body = docs[doc_id].text
        for r in rs:
            assert body[r.start:r.end] == r.quote and r.quote == r.quote.strip() and r.quote
            assert len(r.cells) == len(r.columns) >= 2
            # the cells, whitespace aside, are the row: nothing dropped, nothing invented
            assert _squash("".join(r.cells)) == _squash(r.quote), r.quote
            assert r.fit in {"tabs", "exact", "chosen", "partial"}
            assert r.section
            total += 1
    assert total > 250


def test_most_rows_split_to_the_header_width(rows):
    every = [r for rs in rows.values() for r in rs]
    glued = [r for r in every if r.fit != "tabs"]
    exact = [r for r in glued if r.fit == "exact"]
    full = [r for r in glued if r.complete]
    assert len(exact) / len(glued) > 0.85
    assert len(full) / len(glued) > 0.93
    tables = {(r.doc_id, r.table) for r in every}
    assert len(tables) >= 50


def test_rows_are_in_document_order_and_tables_numbered(rows):
    for rs in rows.values():
        assert [r.start for r in rs] == sorted(r.start for r in rs)
        assert [r.table for r in rs] == sorted(r.table for r in rs)
        assert all(a.end <= b.start for a, b in zip(rs, rs[1:], strict=False))


def test_prose_and_captions_after_a_table_are_not_rows(rows):
    quotes = [r.quote for rs in rows.values() for r in rs]
    for start in ("Do not substitute Q-codes.", "Category III status as of CPT 2026.", "Why this matters for billing:",
                  "Different target class", "Phase 3 Get paid"):
        assert not any(q.startswith(start) for q in quotes), start


def test_all_table_rows_is_every_document(rows):
    everything = all_table_rows()
    assert len(everything) == sum(len(rs) for rs in rows.values())
    assert {r.doc_id for r in everything} == {d for d, rs in rows.items() if rs}


# --- real rows, split right -------------------------------------------------------------------

def test_place_of_service_table(rows):
    inpatient = _row(rows, "abecma-billing-guide", "Stage 4 CAR-T (inpatient - default)")
    assert inpatient.columns == ("Stage", "Setting", "POS", "Claim form", "Payment mechanism")
    assert inpatient.cell("POS") == "21" and inpatient.fit == "exact"
    assert inpatient.cell("Setting") == "Inpatient FACT-accredited center"
    assert inpatient.cell("claim form") == "UB-04 / 837I"
    assert inpatient.cell("Payment mechanism") == "MS-DRG 018 (CAR-T Immunotherapy) bundled"
    assert ("drg", "MS-DRG 018") in inpatient.codes
    outpatient = _row(rows, "abecma-billing-guide", "Stage 4 CAR-T (outpatient - emerging)")
    assert outpatient.cell("POS") == "22" and outpatient.cell("Claim form") == "UB-04 / 837I"
    assert outpatient.cell("Payment mechanism").startswith("OPPS APC 9248")
    office = _row(rows, "abecma-billing-guide", "Stage 1 Apheresis (office)")
    assert office.cell("POS") == "11" and office.cell("Claim form") == "CMS-1500 / 837P"
    assert office.cell("Payment mechanism") == "MPFS line-item 38206/0540T"
    surveillance = _row(rows, "carvykti-billing-guide", "Stage 5 Extended MNT surveillance")
    assert surveillance.cell("POS") == "11 or 22" and surveillance.cell("Claim form") == "CMS-1500 / 837P"
    assert readable(inpatient) == ("Stage: Stage 4 CAR-T (inpatient - default); Setting: Inpatient FACT-accredited center; "
                                   "POS: 21; Claim form: UB-04 / 837I; Payment mechanism: MS-DRG 018 (CAR-T Immunotherapy) bundled")


def test_claim_field_tables(rows):
    pcs = _row(rows, "abecma-billing-guide", "ICD-10-PCS principal")
    assert pcs.columns == ("Information", "Field", "Notes")
    assert pcs.cell("Field") == "74 (UB-04)"
    assert pcs.cell("Notes").startswith("XW033C3 (peripheral) or XW043C3 (central)")
    assert {("pcs", "XW033C3"), ("pcs", "XW043C3")} <= set(pcs.codes)
    zcode = _row(rows, "tecartus-billing-guide", "Z-code")
    assert zcode.cell("Field") == "67 (UB-04)" and zcode.cell("Notes").startswith("Z51.11 history of CAR-T")
    assert ("icd", "Z51.11") in zcode.codes
    flu = _row(rows, "abecma-billing-guide", "Fludarabine")
    assert flu.cell("Field") == "24D" and flu.cell("Notes").startswith("J9185 units = mg administered")
    admin = _row(rows, "abecma-billing-guide", "Admin CPT")
    assert admin.cell("Field") == "24D" and {("cpt", "96413"), ("cpt", "96415")} <= set(admin.codes)
    ndc = _row(rows, "abecma-billing-guide", "NDC", "Field")
    assert ndc.cell("Field") == "24A shaded" and ndc.cell("Notes").startswith("N4 + 11-digit NDC")
    icd = _row(rows, "abecma-billing-guide", "ICD-10", "Field")
    assert icd.cell("Field") == "21" and icd.cell("Notes").startswith("Underlying C90.0x diagnosis")
    rems = _row(rows, "abecma-billing-guide", "REMS confirmation")
    assert rems.cell("Field") == "Chart attachment + PA" and rems.cell("Notes").startswith("ABECMA REMS certification")


def test_a_table_the_chunker_does_not_see_is_read(rows):
    # the header has more than two digits, so index.chunking leaves these lines as a paragraph
    row = _row(rows, "abecma-billing-guide", "ICD-10-PCS (inpatient only)")
    assert row.columns == ("Information", "UB-04 / 1500 field", "Notes")
    assert row.cell("UB-04 / 1500 field") == "74 (UB-04)" and row.cell("Notes").startswith("6A550Z2")
    hcpcs = _row(rows, "abecma-billing-guide", "HCPCS / CPT")
    assert hcpcs.cell("UB-04 / 1500 field") == "24D (1500) or 44 (UB-04)"


def test_code_tables(rows):
    admin = _row(rows, "abecma-billing-guide", "0540T", "When to use")
    infusion = [r for r in rows["abecma-billing-guide"] if r.cells[0] == "0540T" and "Category III)" in r.cells[1]][0]
    assert infusion.cells == ("0540T", "CAR-T therapy; CAR-T cell administration, autologous (Category III)",
                              "The infusion service itself. Bill on the day of Q2055 infusion.")
    assert ("cpt3", "0540T") in infusion.codes and admin.fit == "exact"
    pcs = _row(rows, "tecartus-billing-guide", "XW043C3")
    assert pcs.cell("Use").startswith("For central-line CAR-T administration.")
    crs = _row(rows, "carvykti-billing-guide", "CRS")
    assert crs.cell("Code") == "D89.831 - D89.835"
    assert {"D89.831", "D89.832", "D89.835"} <= {c for _, c in crs.codes}  # the range's members too
    icans = _row(rows, "tecartus-billing-guide", "ICANS")
    assert icans.cell("Code") == "G92.0x" and icans.cell("Description").startswith("Immune effector")


def test_rowspan_rows_leave_the_merged_first_cell_empty(rows):
    relapse = [r for r in rows["abecma-billing-guide"] if r.cell("Code") == "C90.02"][0]
    assert relapse.cells == ("", "C90.02", "Multiple myeloma in relapse") and relapse.complete
    site = [r for r in rows["tecartus-billing-guide"] if r.cell("Code") == "C83.11 - C83.18"][0]
    assert site.cells[0] == "" and site.cell("Description").startswith("MCL, site-specified")  # not "C83.18MC" + "L"


def test_product_tables(rows):
    abecma = _row(rows, "abecma-billing-guide", "Abecma")
    assert abecma.cells == ("Abecma", "idecabtagene vicleucel", "Q2055", "CAR-T", "BCMA (single binding domain, 4-1BB)",
                            "R/R MM 2L+ triple-class exposed (KarMMa-3); 4L+ (KarMMa)", "BMS / 2seventy bio")
    elrexfio = _row(rows, "abecma-billing-guide", "Elrexfio")
    assert elrexfio.cell("HCPCS") == "J-code" and elrexfio.cell("Class") == "BCMA bispecific Ab"
    yescarta = _row(rows, "carvykti-billing-guide", "Yescarta")
    assert yescarta.cell("Target / construct") == "CD19 (CD28 costim)"
    assert yescarta.cell("Manufacturer") == "Kite / Gilead"


def test_numbered_and_labelled_tables(rows):
    second = [r for r in rows["abecma-billing-guide"] if r.columns[0] == "#" and r.cells[0] == "2"][0]
    assert second.cell("Denial reason").startswith("2L+: triple-class exposure not documented")
    payer = _row(rows, "abecma-billing-guide", "UnitedHealthcare Oncology Cellular Therapy Policy")
    assert payer.cell("PA?") == "Yes" and payer.quote.startswith("UnitedHealthcare\nOncology Cellular Therapy Policy\nYes")
    cigna = _row(rows, "abecma-billing-guide", "Cigna CAR-T Coverage Policy")
    assert cigna.cell("Site-of-care UM") == "Plan-specific; inpatient typical"


def test_tab_separated_tables(rows):
    review = [r for r in rows["centene-abecma-policy"] if r.cells[0].startswith("Template changes")][0]
    assert review.columns == ("Reviews, Revisions, and Approvals", "Date", "P&T Approval Date")
    assert review.cells[1:] == ("10.03.22", "") and review.fit == "tabs"
    q = _row(rows, "carepartners-ct-abecma-policy", "Q2055")
    assert q.columns == ("HCPCS Codes", "Description") and ("hcpcs", "Q2055") in q.codes


# --- the splitter, on tables it has not seen -----------------------------------------------------

@pytest.mark.parametrize("line, names", [
    ("StageSettingPOSClaim formPayment mechanism", ("Stage", "Setting", "POS", "Claim form", "Payment mechanism")),
    ("ServiceHCPCSUnits per doseModifier", ("Service", "HCPCS", "Units per dose", "Modifier")),
    ("PayerPA?Key requirementsSite-of-care UM", ("Payer", "PA?", "Key requirements", "Site-of-care UM")),
    ("#Denial reasonHow to fix / appeal", ("#", "Denial reason", "How to fix / appeal")),
    ("Drug (brand)Rev codeNotes", ("Drug (brand)", "Rev code", "Notes")),
    ("Plan\tFax\tTurnaround", ("Plan", "Fax", "Turnaround")),
])
def test_header_columns(line, names):
    assert header_columns(line) == names


@pytest.mark.parametrize("line", [
    "Do not substitute Q-codes. Each CAR-T product has its own Q-code.",
    "Q2055Idecabtagene vicleucel",      # a row, not a header
    "Claim A — Apheresis (Stage 1)",    # a heading: one name
    "Prior Authorization Required If <u>REQUIRED</u> , submit supporting clinical documentation pertinent to service request.\tYes",
])
def test_not_headers(line):
    assert header_columns(line) is None


def test_split_row_on_an_unseen_glued_table():
    cols = ("Service", "POS", "Claim form", "Code", "Notes")
    cells, fit = split_row("Home infusion nursing visit12CMS-1500 / 837P99601Per diem; first 2 hours", cols)
    assert cells == ("Home infusion nursing visit", "12", "CMS-1500 / 837P", "99601", "Per diem; first 2 hours")
    assert fit == "exact"
    cells, _ = split_row("Tocilizumab (IV)J3262JW when vial partly wasted", ("Drug", "HCPCS", "Notes"))
    assert cells == ("Tocilizumab (IV)", "J3262", "JW when vial partly wasted")


def test_split_row_keeps_all_text_when_it_cannot_reach_the_width():
    cols = ("Plan", "Requirement", "Turnaround", "Contact")
    text = "Acme Health medicare advantage plans require the form and a letter within fourteen days"
    cells, fit = split_row(text, cols)
    assert fit == "partial" and len(cells) == 4
    assert cells[0] == text and not any(cells[1:])  # the rest stays in the cell it starts in


def test_split_row_on_tabs():
    assert split_row("Q2056\tCiltacabtagene autoleucel", ("Code", "Description")) == (
        ("Q2056", "Ciltacabtagene autoleucel"), "tabs")
    assert split_row("a\tb\tc\td", ("X", "Y", "Z")) == (("a", "b", "c d"), "partial")


def test_a_document_it_has_not_seen(tmp_path):
    from index.corpus import SourceDocument

    text = ("Drug coding grid\n\n"
            "DrugHCPCSUnits billedWaste modifier\n"
            "TocilizumabJ3262per 1 mg: 1 unitJW / JZ\n"
            "FludarabineJ9185per 50 mg: 1 unitJW / JZ\n"
            "J9186per 10 mg: 1 unitJZ only\n"
            "The grid is an example. It quotes no prices.\n")
    doc = SourceDocument(id="synthetic-grid", title="Drug coding grid", publisher="test", kind="reference",
                         products=(), payer=None, line_of_business=(), effective=None, reviewed=None,
                         price_quarter=None, path=tmp_path / "synthetic-grid.md", text=text)
    got = table_rows(doc)
    assert [r.cells for r in got] == [
        ("Tocilizumab", "J3262", "per 1 mg: 1 unit", "JW / JZ"),
        ("Fludarabine", "J9185", "per 50 mg: 1 unit", "JW / JZ"),
        ("", "J9186", "per 10 mg: 1 unit", "JZ only"),  # the drug cell is merged with the row above
    ]
    assert all(text[r.start:r.end] == r.quote for r in got) and got[0].codes == (("hcpcs", "J3262"),)
