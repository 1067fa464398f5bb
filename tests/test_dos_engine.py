"""The date of service decides, end to end on the real corpus and reference data: codes on either
side of each change date, prices by quarter, dated rules, follow-ups that keep the date, and the
"as of today" line when no date is given."""

from __future__ import annotations

import pytest

from assistant.engine import Conversation
from tests.answers import TODAY, ask


def lead(a) -> str:
    return a.text.split("\n")[0]


@pytest.mark.parametrize("text, code, other", [
    ("is 0540T ok for a 12/30/24 DOS or do i need 38228", "0540T", "38228"),
    ("car-t admin cpt, DOS 1/2/2025 - 0540T or 38228?", "38228", "0540T"),
    ("J9070 ok for DOS 3/31/2024?", "J9070", "J9075"),
    ("J9070 ok for DOS 04/01/24?", "J9075", "J9070"),
    ("abecma IP discharged 9/30/21 which PCS for peripheral infusion", "XW033C3", "XW033K7"),
    ("abecma IP discharged 10/1/21 which PCS for peripheral infusion", "XW033K7", "XW033C3"),
])
def test_the_code_in_force_on_either_side_of_each_change(engine, text, code, other):
    a = ask(engine, text)
    assert lead(a).startswith(f"**{code}** is the"), lead(a)
    assert other in lead(a)  # the change around the date is named
    assert a.to_dict()["date_of_service"]["source"] == "question"


@pytest.mark.parametrize("text, quarter, limit", [
    ("Tecartus infused 2/10/2026, patient coinsurance?", "2026Q1", "$489,450.202"),
    ("abecma Q2055 allowable for DOS 1/15/2024", "2024Q1", "$484,690.3"),
    ("what's medicare paying on a Q2053 line DOS 8/14/25 after coins and seq", "2025Q3", "$489,720"),
])
def test_a_price_comes_from_the_quarter_of_the_date_of_service(engine, text, quarter, limit):
    a = ask(engine, text)
    assert f"({quarter})" in lead(a) and limit in a.text, lead(a)  # the asked figure may lead, the limit follows


def test_a_date_after_the_newest_cms_file_says_so(engine):
    a = ask(engine, "Q2056 DOS 5/12/2026 medicare allowed?")
    shown = "\n".join([a.text, *a.notes])
    assert "2026Q2" in lead(a) and "no CMS file for 2026Q2 on hand" in lead(a)
    # the assumed 20% coinsurance stays out of the copied line, and is said where the split is shown
    assert "20%" not in lead(a) and "At the 20% default coinsurance" in a.text
    assert "the newest CMS file on hand is 2026Q1" in shown


def test_nov_2023_j9070_claim_is_not_corrected(engine):
    a = ask(engine, "Nov 2023 claim billed cyclophosphamide 555 mg as J9070 x 6, was that right?")
    shown = "\n".join([a.text, *a.notes])
    assert lead(a) == "**Yes: 6 unit(s) of J9070 is right for 555 mg.** **J9070: 6 unit(s) per date of service**"
    assert "retired" not in shown.lower() and "111" not in shown


def test_a_follow_up_keeps_the_date_of_service(engine):
    conv = Conversation()
    ask(engine, "Q2055 payment DOS 5/15/2024", conv)
    a = ask(engine, "and carvykti?", conv)
    assert "Q2056 payment limit (2024Q2)" in lead(a), lead(a)
    assert a.to_dict()["date_of_service"] == {
        "date": "2024-05-15", "start": "2024-05-15", "end": "2024-05-15", "precision": "day",
        "label": "2024-05-15", "source": "conversation", "event": "service", "text": "5/15/2024"}
    assert a.notes[0] == "Date of service: 2024-05-15 (from earlier in the conversation)."


def test_without_a_date_the_answer_says_as_of_today(engine):
    a = ask(engine, "What is the Q2055 payment limit?")
    assert a.notes[0] == "As of today, 2026-11-24 (no date of service given)."
    assert a.to_dict()["date_of_service"]["source"] == "today"


def test_the_date_field_is_used_and_a_date_in_the_question_wins(engine):
    a = ask(engine, "Q2053 medicare allowed amount", dos="2/10/2026")
    assert "(2026Q1)" in lead(a) and a.notes[0] == "Date of service: 2026-02-10 (from the date field)."
    b = ask(engine, "Q2053 medicare allowed amount DOS 8/14/25", dos="2/10/2026")
    assert "(2025Q3)" in lead(b)
    bad = engine.ask("Q2053 limit", Conversation(), today=TODAY, dos="13/45/2026")
    assert bad.kind == "clarify" and "is not a date" in bad.text


def test_rems_by_date_of_service(engine):
    before = ask(engine, "carvykti DOS 3/14/25 - did the center need REMS certification?")
    after = ask(engine, "abecma infusion 07/15/2025 - REMS letter needed for the PA?")
    assert "REMS was in force" in lead(before) and "June 26, 2025" in lead(before)
    assert "no REMS applies" in lead(after)


def test_q2055_descriptor_by_quarter(engine):
    assert "460 MILLION" in lead(ask(engine, "Q2055 descriptor cell count, DOS 5/20/2024"))
    assert "510 MILLION" in lead(ask(engine, "Q2055 desc for DOS 07/01/2024 - 460M or 510M"))


def test_lymphodepletion_codes_follow_the_infusion_date(engine):
    a = ask(engine, "carvykti LD plan BSA 1.85, infusion 3/15/24")
    assert "J9070 6 unit(s)/day" in lead(a)
    b = ask(engine, "carvykti LD plan BSA 1.85, infusion 5/15/24")
    assert "J9075 111 unit(s)/day" in lead(b)


def test_a_policy_quoted_for_an_earlier_date_says_its_version_may_differ(engine):
    a = ask(engine, "carepartners abecma PA criteria for DOS 3/10/2025")
    assert any("the version on hand takes effect 2025-09-01" in n and "2025-03-10" in n for n in a.notes), a.notes
    b = ask(engine, "carepartners abecma PA criteria")
    assert not any("version on hand" in n for n in b.notes)
