"""Calculators: exact hand-worked values, source disagreements shown, bad input -> CalcError."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from assistant import config
from assistant.core.reference import load_reference
from assistant.tools import TOOLS, CalcError, ToolResult, function_tools, run_tool
from assistant.tools._dosing import resolve_product
from assistant.tools.bsa import bsa
from assistant.tools.cell_dose import cell_dose
from assistant.tools.lymphodepletion import lymphodepletion_plan
from assistant.tools.ndc import ndc, normalize_ndc
from assistant.tools.payment import payment
from assistant.tools.tocilizumab import tocilizumab_dose
from assistant.tools.units import dose_units

REF = config.PROJECT_ROOT / "sources" / "reference"
DOCS = config.PROJECT_ROOT / "sources" / "documents"
D = Decimal


# --- reference data -------------------------------------------------------------------------

def _quotes(node, path=""):
    """Every (doc, quote) pair in a YAML tree: dicts with doc + quote keys."""
    if isinstance(node, dict):
        if "quote" in node and "doc" in node:
            yield node["doc"], node["quote"], path
        for k, v in node.items():
            yield from _quotes(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _quotes(v, f"{path}[{i}]")


@pytest.mark.parametrize("name", ["hcpcs.yaml", "dosing.yaml", "products.yaml", "payment_limits/2026Q2-guides.yaml"])
def test_every_quote_is_in_its_document(name):
    data = yaml.safe_load((REF / name).read_text(encoding="utf-8"))
    found = list(_quotes(data))
    assert found, name
    for doc, quote, where in found:
        text = (DOCS / f"{doc}.md").read_text(encoding="utf-8")
        assert quote in text, f"{name}{where}: quote not in {doc}: {quote!r}"


def test_guide_limit_cites_are_exact():
    data = yaml.safe_load((REF / "payment_limits" / "2026Q2-guides.yaml").read_text(encoding="utf-8"))
    assert data["quarter"] == "2026Q2" and data["source"]["kind"] == "guide"
    assert {k: v["payment_limit"] for k, v in data["rows"].items()} == {
        "Q2053": "489290.601", "Q2055": "559781.081", "Q2056": "588494.808"}
    for row in data["rows"].values():
        m = re.match(r'doc:(\S+) §(.+?) "(.+)"$', row["cite"])
        assert m, row["cite"]
        assert m.group(3) in (DOCS / f"{m.group(1)}.md").read_text(encoding="utf-8")
        digits = row["payment_limit"].replace(".", "")
        assert digits in m.group(3).replace(",", "").replace(".", "")


def test_every_hcpcs_row_is_cited_and_units_match_reference():
    data = yaml.safe_load((REF / "hcpcs.yaml").read_text(encoding="utf-8"))
    for section in ("codes", "cpt", "modifiers"):
        for code, row in data[section].items():
            assert row.get("cite"), code
    units = {c: r["unit"]["value"] for c, r in data["codes"].items()}
    assert units["J9185"] == "50" and units["J9075"] == "5" and units["J9070"] == "100"
    assert all(units[c] == "5" for c in ("J9071", "J9072", "J9073", "J9074", "J9076"))
    assert units["J3262"] == "1" and units["J9380"] == "0.5" and units["J1323"] == "1"
    assert all(data["codes"][c]["unit"]["unit"] == "dose" for c in ("Q2041", "Q2042", "Q2053", "Q2054", "Q2055", "Q2056"))
    assert data["codes"]["J9070"]["status"] == "retired"
    assert [data["cpt"][c]["replaced_by"] for c in ("0537T", "0538T", "0539T", "0540T")] == ["38225", "38226", "38227", "38228"]


def test_resolve_product_by_any_name():
    for name in ("cilta-cel", "Carvykti", "ciltacabtagene autoleucel", "Q2056", "carvikti"):
        assert resolve_product(name, load_reference()).id == "carvykti"
    with pytest.raises(CalcError, match="Known products"):
        resolve_product("notaproduct", load_reference())


def test_quarters_listed_from_all_files():
    qs = load_reference().quarters()
    assert "2026Q2" in qs and qs == sorted(qs)


# --- BSA ------------------------------------------------------------------------------------

def test_bsa_mosteller():
    r = bsa(170, 70)
    assert isinstance(r, ToolResult)
    assert r.values["bsa_m2"] == D("1.82")
    assert abs(r.values["bsa_m2_exact"] - D("1.8181186857726")) < D("1e-12")
    assert "sqrt(170 cm × 70 kg / 3600)" in r.formula


def test_bsa_dubois_and_imperial():
    r = bsa(170, 70, method="dubois")
    expected = D("0.007184") * D(170) ** D("0.725") * D(70) ** D("0.425")
    assert abs(r.values["bsa_m2_exact"] - expected) < D("1e-9")
    assert r.values["bsa_m2"] == D("1.81")
    r2 = bsa(66.929133858, 154.323583529, "in", "lb")  # = 170 cm, 70 kg
    assert r2.values["bsa_m2"] == D("1.82")


@pytest.mark.parametrize("kwargs, field", [
    ({"height": 0, "weight": 70}, "height"), ({"height": 170, "weight": -1}, "weight"),
    ({"height": 170, "weight": 351}, "weight"), ({"height": 29, "weight": 70}, "height"),
    ({"height": 251, "weight": 70}, "height"), ({"height": "72 kg", "weight": 70}, "height"),
    ({"height": 170, "weight": 70, "method": "haycock"}, "method"),
    ({"height": 170, "weight": 70, "weight_unit": "stone"}, "weight_unit"),
    ({"height": float("nan"), "weight": 70}, "height"),
])
def test_bsa_rejects_implausible(kwargs, field):
    with pytest.raises(CalcError) as exc:
        bsa(**kwargs)
    assert exc.value.field == field and len(exc.value.message) > 10


# --- units ----------------------------------------------------------------------------------

def test_fludarabine_units():
    r = dose_units("J9185", 55.5, days=3)
    assert r.values["units_per_day"] == 2 and r.values["units_total"] == 6
    # the guides' "1 mg = 1 unit" is shown with its quote
    assert any(c["quote"] == "Bill: J9185 167 units (1 mg = 1 unit) across 3 dates of service" for c in r.citations)


def test_lymphodepletion_before_april_2024_bills_cyclophosphamide_as_j9070():
    r = lymphodepletion_plan("Abecma", bsa_m2=1.85, infusion_date="2024-03-05")
    flu, cy = r.values["drugs"]
    assert (cy["hcpcs"], cy["unit_size_mg"], cy["units_per_day"], cy["units_total"]) == ("J9070", D("100"), 6, 18)
    assert cy["dates"][0] == "2024-02-29" and flu["hcpcs"] == "J9185"
    assert any("J9070 (100 mg per unit), the code in force on 2024-02-29" in a for a in r.assumptions)
    assert "J9070 is not valid" not in " ".join(r.warnings)
    after = lymphodepletion_plan("Abecma", bsa_m2=1.85, infusion_date="2024-04-10")
    assert after.values["drugs"][1]["hcpcs"] == "J9075"


def test_cyclophosphamide_units_j9075():
    r = dose_units("J9075", "555")
    assert r.values["units_per_day"] == 111


def test_retired_j9070_warns_and_shows_replacement():
    r = dose_units("J9070", 555, days=3, dos="2025-02-03")
    assert r.values["units_per_day"] == 6 and not r.values["in_force"]
    assert r.values["replacement"]["code"] == "J9075" and r.values["replacement"]["units_per_day"] == 111
    assert "not valid for a date of service of 2025-02-03" in r.warnings[0] and "bill J9075" in r.summary
    assert "333 total" in r.summary  # 111 units on each of 3 dates


def test_j9070_is_right_for_a_date_of_service_before_april_2024():
    r = dose_units("J9070", 555, dos="2023-11-10")
    assert r.values["in_force"] and r.values["units_per_day"] == 6 and "replacement" not in r.values
    assert r.summary == "**J9070: 6 unit(s) per date of service**" and not r.warnings
    assert "from 2024-04-01 it is J9075" in r.assumptions[0]


def test_j9075_before_it_existed_points_to_j9070():
    r = dose_units("J9075", 555, dos="2024-03-31")
    assert r.values["replacement"] == {"code": "J9070", "unit_size_mg": Decimal("100"), "units_per_day": 6, "units_total": 6}
    assert "did not exist on 2024-03-31" in r.warnings[0]
    assert dose_units("J9075", 555, dos="2024-04-01").values["in_force"]


def test_q_code_is_one_unit():
    r = dose_units("Q2056", 1234)
    assert r.values["units_total"] == 1 and r.warnings


def test_waste_jw_and_jz():
    r = tocilizumab_dose(72.5, vial_sizes=[80, 200, 400])  # 580 mg -> 400 + 200
    w = r.values["waste_per_dose"]
    assert w["vial_content"] == D(600) and w["discarded"] == D(20) and w["jw_units"] == 20 and w["modifier"] == "JW"
    z = dose_units("J3262", 400, vial_sizes=[400])
    assert z.values["waste_per_day"]["modifier"] == "JZ" and z.values["waste_per_day"]["jw_units"] == 0
    f = dose_units("J9185", 55.5, vial_sizes=[50])  # 44.5 mg discarded but inside the rounded-up units
    assert f.values["waste_per_day"]["jw_units"] == 0 and f.values["waste_per_day"]["discarded"] == D("44.5")


def test_waste_from_the_vials_said_opened_not_the_fewest_that_cover():
    r = tocilizumab_dose(105, vial_sizes=[400, 200], vial_counts=[2, 1])  # 800 mg from 2 x 400 + 1 x 200
    w = r.values["waste_per_dose"]
    assert w["vial_content"] == D(1000) and w["jw_units"] == 200 and w["vial_text"] == "2 × 400 mg + 1 × 200 mg"
    assert tocilizumab_dose(105, vial_sizes=[400, 200]).values["waste_per_dose"]["modifier"] == "JZ"  # 2 x 400 covers it
    for counts, field in (([1], "vial_counts"), ([1, 0], "vial_counts"), ([1.5, 1], "vial_counts")):
        with pytest.raises(CalcError) as e:  # too few, less than the dose, not whole
            dose_units("J3262", 800, vial_sizes=[400, 200], vial_counts=counts)
        assert e.value.field == field


@pytest.mark.parametrize("kwargs", [
    {"code": "J9185", "amount_mg": 0}, {"code": "J9185", "amount_mg": -5}, {"code": "J9999", "amount_mg": 5},
    {"code": "38228", "amount_mg": 5}, {"code": "J9185", "amount_mg": 55, "days": 0},
    {"code": "J9185", "amount_mg": 55, "days": 1.5}, {"code": "J9185", "amount_mg": 55, "vial_sizes": "50"},
    {"code": "J9185"},
])
def test_units_bad_input(kwargs):
    with pytest.raises(CalcError):
        dose_units(**kwargs)


# --- lymphodepletion ------------------------------------------------------------------------

def test_abecma_lymphodepletion_at_185():
    r = lymphodepletion_plan("Abecma", bsa_m2=1.85, infusion_date="2026-05-20")
    flu, cy = r.values["drugs"]
    assert (flu["drug"], flu["daily_mg"], flu["hcpcs"], flu["units_per_day"], flu["units_total"]) == \
        ("fludarabine", D("55.50"), "J9185", 2, 6)
    assert (cy["drug"], cy["daily_mg"], cy["hcpcs"], cy["units_per_day"], cy["units_total"]) == \
        ("cyclophosphamide", D("555.00"), "J9075", 111, 333)
    assert flu["dates"] == ["2026-05-15", "2026-05-16", "2026-05-17"]
    text = " ".join(r.warnings)
    assert "167 units" in text and "1 mg = 1 unit" in text and "J9070 is not valid on 2026-05-20" in text
    quotes = [c["quote"] for c in r.citations]
    assert "Bill: J9185 167 units (1 mg = 1 unit) across 3 dates of service" in quotes


def test_carvykti_from_height_weight():
    r = lymphodepletion_plan("cilta-cel", "mm", height=170, weight=70)
    assert r.values["bsa_m2"] == D("1.82")
    flu, cy = r.values["drugs"]
    assert flu["daily_mg"] == D("54.60") and flu["units_per_day"] == 2
    assert cy["daily_mg"] == D("546.00") and cy["units_per_day"] == 110


def test_tecartus_all_label_and_guide_both_shown():
    r = lymphodepletion_plan("Tecartus", "ALL", bsa_m2="1.85")
    flu, cy = r.values["drugs"]
    assert flu["mg_per_m2"] == D(25) and flu["days"] == [-4, -3, -2] and flu["daily_mg"] == D("46.25")
    assert cy["mg_per_m2"] == D(900) and cy["days"] == [-2] and cy["daily_mg"] == D("1665.00")
    assert cy["units_per_day"] == 333 and cy["units_total"] == 333
    alt = r.values["source_regimens"][0]
    assert alt["doc"] == "tecartus-billing-guide"
    alt_cy = [d for d in alt["drugs"] if d["drug"] == "cyclophosphamide"][0]
    assert alt_cy["days"] == [-4, -3, -2] and alt_cy["units_total"] == 999
    assert any("900 mg/m^2 IV daily x 3 days" in w for w in r.warnings)


def test_tecartus_mcl():
    r = lymphodepletion_plan("brexu-cel", "mantle cell lymphoma", bsa_m2=1.85)
    cy = r.values["drugs"][1]
    assert cy["daily_mg"] == D("925.00") and cy["units_per_day"] == 185 and cy["units_total"] == 555
    assert any("Bill: J9070 3 units" in w for w in r.warnings)


@pytest.mark.parametrize("kwargs", [
    {"product": "Tecartus", "bsa_m2": 1.8},                    # indication needed
    {"product": "Abecma", "indication": "mcl", "bsa_m2": 1.8},  # not its indication
    {"product": "Yescarta", "bsa_m2": 1.8},                     # no dose rule
    {"product": "Abecma", "height": 170},                       # height without weight
    {"product": "Abecma", "bsa_m2": 9},
    {"product": "Abecma", "bsa_m2": 1.8, "infusion_date": "20/05/2026"},
])
def test_lymphodepletion_bad_input(kwargs):
    with pytest.raises(CalcError):
        lymphodepletion_plan(**kwargs)


def test_lymphodepletion_without_patient_figures_is_the_label_regimen():
    r = lymphodepletion_plan(product="Tecartus", indication="all")
    assert r.values["regimen"] == [{"drug": "fludarabine", "mg_per_m2": "25", "days": [-4, -3, -2]},
                                   {"drug": "cyclophosphamide", "mg_per_m2": "900", "days": [-2]}]
    assert "cyclophosphamide 900 mg/m² IV on day -2 (1 dose)" in r.summary and "mg/day" not in r.summary
    # the guide's daily-x3 cyclophosphamide is shown beside it, never taken
    assert any("900 mg/m^2 IV daily x 3 days" in w for w in r.warnings)
    assert lymphodepletion_plan(product="Abecma").values["regimen"][1]["mg_per_m2"] == "300"


# --- cell dose ------------------------------------------------------------------------------

def test_carvykti_cap_at_120_kg():
    r = cell_dose("Carvykti", weight=120)
    assert r.values["min_cells"] == D(60_000_000) and r.values["max_cells"] == D(100_000_000)
    assert r.values["capped"] is True and r.values["units"] == 1 and "Q2056 × 1 unit" in r.summary


def test_tecartus_doses():
    mcl = cell_dose("Tecartus", "mcl", 70)
    assert mcl.values["max_cells"] == D(140_000_000) and not mcl.values["capped"]
    big = cell_dose("Tecartus", "mcl", 150)
    assert big.values["max_cells"] == D(200_000_000) and big.values["capped"]
    all_ = cell_dose("Tecartus", "all", 120)
    assert all_.values["max_cells"] == D(100_000_000) and all_.values["capped"]


def test_abecma_flat_shows_both_ranges():
    r = cell_dose("ide-cel")
    assert (r.values["min_cells"], r.values["max_cells"]) == (D(300_000_000), D(510_000_000))
    srcs = {x["source"]: (x["min_cells"], x["max_cells"]) for x in r.values["ranges"]}
    assert srcs["doc:abecma-billing-guide"] == (D(150_000_000), D(450_000_000))
    assert srcs["doc:centene-abecma-policy"] == (D(300_000_000), D(510_000_000))
    assert any("150 × 10^6 to 450 × 10^6" in w for w in r.warnings)


@pytest.mark.parametrize("args", [("Carvykti", "all", 70), ("Carvykti", None, None), ("Tecartus", None, 70),
                                  ("Carvykti", None, 0), ("Kymriah", None, 70)])
def test_cell_dose_bad_input(args):
    with pytest.raises(CalcError):
        cell_dose(*args)


# --- tocilizumab ----------------------------------------------------------------------------

def test_tocilizumab():
    big = tocilizumab_dose(120)
    assert big.values["dose_mg"] == D(800) and big.values["capped"] and big.values["units_per_dose"] == 800
    small = tocilizumab_dose(25)
    assert small.values["mg_per_kg"] == D(12) and small.values["dose_mg"] == D(300)
    assert tocilizumab_dose(30).values["dose_mg"] == D(240)
    assert big.values["max_doses_total"] == 4 and big.values["max_doses_24h"] == 3
    assert tocilizumab_dose(220, "lb").values["dose_mg"] == D(220) * D("0.45359237") * 8


# --- payment --------------------------------------------------------------------------------

def _tmp_reference(tmp_path: Path) -> Path:
    ref = tmp_path / "reference"
    (ref / "payment_limits").mkdir(parents=True)
    (ref / "payment_limits" / "2026Q1-cms.yaml").write_text(yaml.safe_dump({
        "quarter": "2026Q1", "effective": "2026-01-01", "through": "2026-03-31",
        "source": {"kind": "cms-file", "title": "Payment Allowance Limits, January 2026", "file": "2026Q1-payment-limit-file.csv"},
        "rows": {
            "Q2055": {"description": "Idecabtagene vicleucel", "dosage": "per therapeutic dose", "payment_limit": "558081.726",
                      "coinsurance_pct": "18.857", "notes": "", "cite": "CMS 2026Q1-payment-limit-file.csv row Q2055"},
            "Q2056": {"description": "Ciltacabtagene autoleucel", "dosage": "per therapeutic dose", "payment_limit": "587649.574",
                      "coinsurance_pct": "18.291", "notes": "", "cite": "CMS 2026Q1-payment-limit-file.csv row Q2056"},
        }}), encoding="utf-8")
    (ref / "payment_limits" / "2026Q1-guides.yaml").write_text(yaml.safe_dump({
        "quarter": "2026Q1", "effective": "2026-01-01", "through": "2026-03-31",
        "source": {"kind": "guide", "title": "A guide", "file": None},
        "rows": {"Q2055": {"description": "x", "dosage": "x", "payment_limit": "558000.000", "coinsurance_pct": None,
                           "notes": "", "cite": "doc:x"}}}), encoding="utf-8")
    return ref


def test_payment_q2055_2026q1(tmp_path):
    ref = load_reference(_tmp_reference(tmp_path))
    r = payment("Q2055", 1, "2026Q1", today=date(2026, 2, 1), reference=ref)
    v = r.values
    assert v["payment_limit"] == D("558081.726") and v["coinsurance_pct"] == D("18.857")
    assert v["coinsurance_exact"] == D("105237.47107182") and v["coinsurance"] == D("105237.47")
    assert v["allowed"] == D("558081.73")
    assert v["medicare"] == D("452844.26")
    assert v["sequestration"] == D("9056.89") and v["medicare_after_sequestration"] == D("443787.37")
    assert v["source"]["kind"] == "cms-file" and not v["stale"]
    assert v["alternatives"][0]["payment_limit"] == D("558000.000")  # the guide kept as an alternative
    assert any("MS-DRG 018" in a for a in r.assumptions)
    assert "$105,237.47" in r.summary


def test_payment_stale_and_default_quarter(tmp_path, monkeypatch):
    monkeypatch.setenv("CART_REFERENCE_DIR", str(_tmp_reference(tmp_path)))
    r = payment("Q2056", today=date(2026, 8, 1))
    assert r.values["quarter"] == "2026Q1" and r.values["stale"]
    assert any("out of date" in w for w in r.warnings)
    with pytest.raises(CalcError, match="2026Q1"):
        payment("Q2056", quarter="2025Q3")
    with pytest.raises(CalcError):
        payment("Q2053")


def test_payment_guides_quarter_default_coinsurance():
    r = payment("Q2053", quarter="2026Q2", today=date(2026, 5, 1))
    assert r.values["payment_limit"] == D("489290.601") and r.values["coinsurance_pct"] == D(20)
    assert r.values["allowed"] == D("489290.60") and r.values["coinsurance"] == D("97858.12")
    assert any("20%" in a for a in r.assumptions)


@pytest.mark.parametrize("kwargs", [{"code": "Q2055", "units": 0}, {"code": "Q2055", "quarter": "spring"},
                                    {"code": "Q2055", "quarter": "1999Q1"}, {"code": "ZZZ"}])
def test_payment_bad_input(kwargs):
    with pytest.raises(CalcError):
        payment(**kwargs)


# --- NDC ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, out", [("71287-119-01", "71287-0119-01"), ("1234-5678-90", "01234-5678-90"),
                                      ("12345-678-90", "12345-0678-90"), ("12345-6789-0", "12345-6789-00"),
                                      ("71287011901", "71287-0119-01"), ("N471287011901", "71287-0119-01"),
                                      ("71287-0119-01", "71287-0119-01")])
def test_ndc_normalize(raw, out):
    assert normalize_ndc(raw)[0] == out


def test_ndc_ambiguous_and_bad():
    with pytest.raises(CalcError, match="hyphens"):
        ndc("7128711901")
    for bad in ("123", "12-34-56", "abc-def-gh", ""):
        with pytest.raises(CalcError):
            ndc(bad)


def test_ndc_lookup_sources_vs_crosswalk():
    y = ndc("71287-119-01")
    assert y.values["ndc11"] == "71287-0119-01" and y.values["products"] == ["yescarta"]
    t = ndc("71287-129-01")  # the Tecartus guide's pattern, not the crosswalk's NDC
    assert t.values["products"] == ["tecartus"]
    assert any(m["source"] == "doc:tecartus-billing-guide" for m in t.values["matches"])
    assert any("71287-0219-01" in w for w in t.warnings)
    j = ndc("57894")
    assert {"carvykti", "tecvayli"} <= set(j.values["products"])
    b = ndc("73154")
    assert b.values["products"] == ["breyanzi"] and any("73153" in w for w in b.warnings)


# --- registry / FunctionTools ---------------------------------------------------------------

def test_run_tool_and_errors():
    assert run_tool("bsa", height=170, weight="70").values["bsa_m2"] == D("1.82")
    with pytest.raises(CalcError, match="no parameter"):
        run_tool("bsa", height=170, weight=70, colour="red")
    with pytest.raises(CalcError):
        run_tool("bsa", height=[170], weight=70)
    with pytest.raises(CalcError):
        run_tool("bsa", height=True, weight=70)
    with pytest.raises(CalcError, match="Available"):
        run_tool("nope")
    with pytest.raises(CalcError, match="needs"):
        run_tool("payment")


def test_function_tools_schemas_and_call():
    tools = {t.metadata.name: t for t in function_tools()}
    assert set(tools) == set(TOOLS) == {"bsa", "dose_units", "lymphodepletion_plan", "cell_dose",
                                        "tocilizumab_dose", "payment", "ndc", "code_on_date", "rule_on_date",
                                        "payer_policy", "payment_change", "label_check"}
    schema = tools["bsa"].metadata.get_parameters_dict()
    assert schema["required"] == ["height", "weight"] and schema["properties"]["height"]["type"] == "number"
    assert tools["dose_units"].metadata.get_parameters_dict()["properties"]["vial_sizes"]["anyOf"][0]["type"] == "array"
    assert all(p.get("description") for t in tools.values()
               for p in t.metadata.get_parameters_dict()["properties"].values())  # every parameter described
    out = tools["cell_dose"].call(product="Carvykti", weight=120)
    assert isinstance(out.raw_output, ToolResult) and not out.is_error
    assert json.loads(out.content)["values"]["max_cells"] == "100000000"
    err = tools["bsa"].call(height=-1, weight=70)
    assert err.is_error and isinstance(err.raw_output, CalcError) and err.content.startswith("Error:")
    assert "greater than zero" in err.content
    json.dumps(run_tool("lymphodepletion_plan", product="Abecma", bsa_m2=1.85).to_dict())
