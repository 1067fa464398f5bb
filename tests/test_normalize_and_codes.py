"""Normalization repairs glued extraction without changing the original; codes stay whole."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.codes import codes_in, tokenize
from index.normalize import glue_points, normalize, normalize_with_map


@pytest.mark.parametrize("raw, expected", [
    ("Abecmaidecabtagene vicleucelQ2055CAR-TBCMA (single", "Abecma idecabtagene vicleucel Q2055 CAR-T BCMA (single"),
    ("38206Blood-derived hematopoietic", "38206 Blood-derived hematopoietic"),
    ("CRSD89.831 - D89.835Cytokine Release", "CRS D89.831 - D89.835 Cytokine Release"),
    ("CodeDescriptionWhen to use", "Code Description When to use"),
    ("ProductGenericHCPCSClassTarget / constructPrimary indicationManufacturer",
     "Product Generic HCPCS Class Target / construct Primary indication Manufacturer"),
    ("XW033C3Introduction of engineered", "XW033C3 Introduction of engineered"),
    ("0540TInsertion of central venous catheter", "0540T Insertion of central venous catheter"),
    ("6A550Z2 / 6A551Z2Apheresis, leukapheresis", "6A550Z2 / 6A551Z2 Apheresis, leukapheresis"),
    # already clean text and brand spellings are left alone
    ("Q2055 is billed as 1 unit; IMiD, mAb, KarMMa, CARTITUDE-4.", "Q2055 is billed as 1 unit; IMiD, mAb, KarMMa, CARTITUDE-4."),
])
def test_glued_extraction_is_split_for_search(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("text, code", [
    ("bill Q2055 once", "Q2055"), ("use 0540T", "0540T"), ("J9185 units", "J9185"),
    ("grade 3 is D89.833", "D89.833"), ("PCS XW033C3 drives", "XW033C3"), ("G20.A1 codes", "G20.A1"),
    ("NDC 57894-502-XX pattern", "57894-502-XX"), ("paid under MS-DRG 018", "MS-DRG 018"),
    ("38206Blood-derived", "38206"), ("vicleucelQ2055CAR-T", "Q2055"),
])
def test_codes_are_found_whole(text, code):
    assert code in codes_in(text)


def test_prices_and_phone_numbers_are_not_codes():
    assert codes_in("$559,781.081 per dose; fax 617-673-0956; FY 2026") == []


def test_ranges_imply_their_members():
    assert {"0538T", "0539T", "0540T"} <= set(codes_in("0537T–0541T"))
    assert "D89.833" in codes_in("D89.831 - D89.835Cytokine")


def test_tokenizer_keeps_codes_whole_and_adds_families():
    toks = tokenize(normalize("Bill J9185 with D89.833 under MS-DRG 018, NDC 57894-502-XX, G20.A1, XW033C3, 0540T"))
    for t in ["j9185", "d89.833", "d89", "ms-drg-018", "drg", "018", "57894-502-xx", "57894", "g20.a1", "xw033c3", "0540t"]:
        assert t in toks, t


def test_all_as_leukemia_is_not_a_stopword():
    assert "all_" in tokenize("Tecartus in adult B-ALL") and "all_" not in tokenize("all payers")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("aAbBzZ019.-()[]: QJTD\nXW"), max_size=80) | st.text(max_size=60))
def test_normalization_only_inserts_spaces_and_maps_back(text):
    norm, offsets = normalize_with_map(text)
    points = glue_points(text)
    assert len(norm) == len(text) + len(points) == len(offsets)
    # deleting the inserted spaces gives the original back, and offsets never go backwards
    inserted = {p + k for k, p in enumerate(points)}  # where the spaces sit in `norm`
    assert all(norm[i] == " " for i in inserted)
    assert "".join(c for i, c in enumerate(norm) if i not in inserted) == text
    assert offsets == sorted(offsets)
    assert all(text[offsets[i]] == c for i, c in enumerate(norm) if i not in inserted)
