"""The understood question: what it is about, what it asks for and the figures it gives.

Only the types live here (the bottom layer), so the calculators' plan functions can read a
question without depending on how it was read; `assistant.understand` does the reading.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from assistant.core.dates import ServiceDate


@dataclass(frozen=True)
class Figures:
    """Patient and claim figures read from a question (canonical units, and the value and unit
    as typed, so a calculator can show the conversion)."""

    weight_kg: float | None = None
    weight_text: str | None = None   # as typed, e.g. "154 lb"
    weight_value: float | None = None
    weight_unit: str | None = None   # kg | lb
    height_cm: float | None = None
    height_text: str | None = None
    height_value: float | None = None
    height_unit: str | None = None   # cm | in (feet+inches and metres are kept in cm)
    bsa_m2: float | None = None
    mg_per_m2: float | None = None
    mg_per_kg: float | None = None
    dose_mg: float | None = None
    units: int | None = None
    vials: tuple[tuple[int, float], ...] = ()
    date: dt.date | None = None
    quarter: str | None = None

    # Patient figures carry over to follow-ups; a dose, vial list, unit count or quarter
    # belongs to the question that stated it.
    def merged_over(self, older: Figures, whole: bool = False) -> Figures:
        """These figures, with missing patient figures taken from an earlier turn; `whole`: every
        missing figure (the follow-up asks the same question again, e.g. for another date)."""
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if whole:
            for name in ("mg_per_m2", "mg_per_kg", "dose_mg", "units"):
                if values[name] is None:
                    values[name] = getattr(older, name)
            if not values["vials"]:
                values["vials"] = older.vials
        if self.weight_kg is None:
            for key in ("weight_kg", "weight_text", "weight_value", "weight_unit"):
                values[key] = getattr(older, key)
        if self.height_cm is None:
            for key in ("height_cm", "height_text", "height_value", "height_unit"):
                values[key] = getattr(older, key)
        if self.bsa_m2 is None and self.height_cm is None and self.weight_kg is None:
            values["bsa_m2"] = older.bsa_m2
        if self.date is None:
            values["date"] = older.date
        if self.quarter is None:
            values["quarter"] = older.quarter
        return Figures(**values)


@dataclass(frozen=True)
class Question:
    text: str
    products: tuple[str, ...] = ()
    payers: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    indication: str | None = None
    intents: tuple[str, ...] = ()
    figures: Figures = field(default_factory=Figures)
    off_topic: bool = False
    treatment_decision: bool = False
    injection: bool = False
    comparison: bool = False
    inherited: tuple[str, ...] = ()  # what came from earlier turns, for transparency
    service_date: ServiceDate | None = None  # the date of service the turn answers for
    dates: tuple[ServiceDate, ...] = ()  # every date the question names, in order (a comparison of two periods)
    setting: str | None = None  # "inpatient" | "outpatient" | "both" when the question says (decides how CAR-T is paid)
    prior_products: tuple[str, ...] = ()  # products named only as therapies the patient had ("s/p carvykti")
    history: tuple[str, ...] = ()  # earlier turns of the same thread, oldest first (a scenario builds up over them)
    follows: str = ""  # the earlier question this turn keeps asking, changing only what it says ("same but DOS 4/11/24")

    @property
    def asked(self) -> str:
        """The text the calculators plan from: the question it follows, then this turn's words."""
        return f"{self.follows} {self.text}".strip() if self.follows else self.text

    @property
    def product(self) -> str | None:
        return self.products[0] if len(self.products) == 1 else None

    def service_day(self, today: dt.date) -> dt.date:
        """The date of service the turn answers for (today when none was given)."""
        return self.service_date.day if self.service_date is not None else today


# the words of a correction that takes a named thing back ("scratch the tecvayli", "remove blenrep")
TAKE_BACK_WORDS = r"scratch|strike|remove|delete|cross (?:out|off)|take out"
# a payer's coverage rule asked ("reauth for another dose", "continued therapy for a 2nd infusion"),
# not a dose or a service's code; a follow-up that asks it keeps the thread's payer
COVERAGE_ASKED = re.compile(r"\b(?:re-?)?auth\w*|\bcontinued therapy\b|\bcover(?:ed|age|s)?\b|\bapprov\w*|\bcriteria\b|"
                            r"\beligib\w*|\bprior auth\w*|\bPA\b", re.I)
_TAKEN_BACK = re.compile(rf"\b(?:{TAKE_BACK_WORDS}|not|instead of|no)\s+(?:the\s+)?$", re.I)


def taken_back(text: str, start: int) -> bool:
    """Whether the name at `start` is taken back by the words just before it ("scratch the tecvayli")."""
    return bool(_TAKEN_BACK.search(text[max(0, start - 25):start]))
