"""Property tests: rounding bounds, caps, NDC digit order, and 'ToolResult or CalcError, nothing else'."""

from __future__ import annotations

import re
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.tools import CalcError, ToolResult, run_tool
from assistant.tools.cell_dose import cell_dose
from assistant.tools.ndc import normalize_ndc
from assistant.tools.tocilizumab import tocilizumab_dose
from assistant.tools.units import dose_units

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("20000"), places=3, allow_nan=False, allow_infinity=False)
weights = st.decimals(min_value=Decimal("1"), max_value=Decimal("350"), places=2)


@SETTINGS
@given(code=st.sampled_from(["J9185", "J9075", "J9071", "J3262", "J9380", "J1323", "J9070"]), amount=amounts)
def test_units_cover_amount_by_less_than_one_unit(code, amount):
    r = dose_units(code, amount)
    size = r.values["unit_size_mg"]
    units = r.values["units_per_day"]
    assert units * size >= amount
    assert units * size < amount + size


@SETTINGS
@given(w=weights)
def test_cell_dose_caps_hold(w):
    for product, ind, cap in (("carvykti", None, 100_000_000), ("tecartus", "mcl", 200_000_000), ("tecartus", "all", 100_000_000)):
        v = cell_dose(product, ind, w).values
        assert v["min_cells"] <= v["max_cells"] <= cap
        assert v["capped"] == (v["uncapped_max_cells"] > cap)


@SETTINGS
@given(w=weights)
def test_tocilizumab_cap_holds(w):
    v = tocilizumab_dose(w).values
    assert 0 < v["dose_mg"] <= 800
    assert v["mg_per_kg"] == (8 if w >= 30 else 12)


@SETTINGS
@given(parts=st.sampled_from([(4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2)]).flatmap(
    lambda lay: st.tuples(*[st.text(alphabet="0123456789", min_size=n, max_size=n) for n in lay])))
def test_ndc_round_trip_keeps_digit_order(parts):
    out, _ = normalize_ndc("-".join(parts))
    assert re.fullmatch(r"\d{5}-\d{4}-\d{2}", out)
    for given_part, out_part in zip(parts, out.split("-"), strict=True):  # both 3 parts: the fullmatch above
        assert out_part.lstrip("0") == given_part.lstrip("0") and out_part.endswith(given_part)
    assert out.replace("-", "").replace("0", "") == "".join(parts).replace("0", "")


anything = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10**15, max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.lists(st.one_of(st.floats(), st.integers(), st.text(max_size=5)), max_size=4),
    st.sampled_from(["72 kg", "1.85", "Carvykti", "tecartus", "all", "mcl", "J9185", "Q2055", "2026Q2", "2026-05-20",
                     "71287-119-01", "57894", "lb", "in", "dubois", "-3", "nan", "inf", "1e400"]),
)

PARAMS = {
    "bsa": ["height", "weight", "height_unit", "weight_unit", "method"],
    "dose_units": ["code", "amount_mg", "days", "vial_sizes"],
    "lymphodepletion_plan": ["product", "indication", "bsa_m2", "height", "weight", "infusion_date"],
    "cell_dose": ["product", "indication", "weight", "weight_unit"],
    "tocilizumab_dose": ["weight", "weight_unit", "vial_sizes"],
    "payment": ["code", "units", "quarter"],
    "ndc": ["ndc"],
}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(sorted(PARAMS)))
def test_any_input_gives_result_or_calcerror(data, name):
    keys = data.draw(st.lists(st.sampled_from(PARAMS[name] + ["bogus"]), unique=True, max_size=6))
    kwargs = {k: data.draw(anything) for k in keys}
    try:
        r = run_tool(name, **kwargs)
    except CalcError as exc:
        assert isinstance(exc.message, str) and exc.message
        return
    assert isinstance(r, ToolResult)
    r.to_dict()
