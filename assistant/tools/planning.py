"""What calculators' plan functions read from an understood question, in one place.

Deterministic on purpose: "units of J9185 for 55.5 mg" must reach the units calculator every
time. A plan only reads figures the user typed (with their units) or that the conversation
carried over; it never fills a missing weight or BSA with a guess: it asks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property, lru_cache
from typing import Any

from assistant.core.quantities import number_float
from assistant.core.question import COVERAGE_ASKED, Question, taken_back
from assistant.core.reference import Reference, load_reference

# What the user wants a number for (vs. "what is the LD regimen for X", which quotes a source).
QUANTITY = re.compile(r"\bhow (?:many|much)\b|\bunits?\b|\bcalc|\bwork out\b|\bfigure out\b|\bcompute\b|"
                      r"\bmg\b|\bdoses?\b|\bdosing\b|\bregimens?\b|\brange\b|\bplan\b|\bschedule\b|\bdates?\b|\bcells?\b|"
                      # how often: "given 3 days or once", "daily x3?", "which days"
                      r"\b(?:how many|which|what) days\b|\bdays?\b[^.?]{0,15}\bor\b[^.?]{0,10}\bonce\b|\bonce\b[^.?]{0,20}\bor\b", re.I)
# A question about a particular patient (ask back for a missing figure) vs. about the rule
# (answer from the sources: "carvykti target dose cells per kg").
PATIENT = re.compile(r"\b(?:my|our|this|the) (?:pt|patient|guy|lady|man|woman)\b|\bpt\b|\bfor (?:him|her)\b|"
                     r"\b(?:she|he) (?:weighs|is)\b|\bcalc(?:ulate)?\b|\bwork out\b|\bfigure out\b|\bcompute\b", re.I)
UNITS_WORD = re.compile(r"\bunits?\b", re.I)
# a question about a code's billing unit, not an amount to convert ("is J9185 per 50mg?", "J9075 unit size")
UNIT_SIZE = re.compile(r"\bper \d+(?:\.\d+)? ?mg\s*\??\s*$|\bunit size\b|\bmg (?:per|in|=) (?:a |one |1 )?unit\b|"
                       r"\bhow many mg (?:is|per|in) (?:a |one |1 )?unit\b|\bwhat is (?:a|one|1) unit\b|"
                       r"\bwhat(?:'?s| is) the (?:billing )?unit (?:for|of|on)\b|\bbilling unit (?:for|of)\b", re.I)
DAYS = re.compile(r"\b(?:x|×|for|over)\s*(\d{1,2})\s*(?:days?|dates? of service|DOS)\b|"
                  r"\b(\d{1,2})\s*(?:days?|dates? of service)\b|"
                  r"\b(?:daily|qd|/day|per day)\s*(?:x|×)\s*(\d{1,2})\b|"
                  # "flu 30mg/m2 x3": a rate times a count is that many days (not "2 x 400 mg vials")
                  r"(?:mg/m2|mg/m²|mg/m\^2|mg/kg)\s*(?:x|×)\s*(\d)\b(?!\s*(?:mg|vials?|bags?))", re.I)
# "days -5 to -3", "days -4, -3, -2": the count of the listed days
DAY_RANGE = re.compile(r"\bdays?\s*(-?\d{1,2})\s*(?:to|through|-|–)\s*(-?\d{1,2})\b", re.I)
DAY_LIST = re.compile(r"\bdays?\s*(-?\d{1,2}(?:\s*(?:,|and)\s*-?\d{1,2})+)\b", re.I)


@lru_cache(maxsize=8)
def _amounts_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    """A drug name (or a J-code) followed by its own mg or mg/m²: "cy 1,200 mg", "J9185 60mg", "flu 30 mg/m2"."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b({alternatives}|J\d{{4}})\b\s*:?\s*(\d[\d,]*(?:\.\d+)?)\s*mg\b"
                      r"(\s*/\s*m(?:2|²|\^2))?(?!\s*/)", re.I)


def dosing_unknown(q: Question, ref: Reference) -> list[str]:
    """'kymriah flu/cy doses bsa 1.8': the CAR-T products asked about, none of which has a regimen
    or cell dose in the sources, when the question asks for one and gives no rate of its own (no
    calculator may stand in for it; the answer says it is missing). Not a payer question that
    names another drug ("never had tecvayli ... meets centene?")."""
    f = q.figures
    if ("policy" in q.intents or q.payers or not {"lymphodepletion", "cell_dose"} & set(q.intents)
            or f.dose_mg is not None or f.mg_per_m2 is not None or f.mg_per_kg is not None):
        return []
    products = [ref.product_by_id(pid) for pid in q.products]
    if not products or set(q.products) & set(ref.dosing_products()) or not all(p is not None and p.car_t for p in products):
        return []
    return list(q.products)


@dataclass(frozen=True)
class Planning:
    """An understood question as the calculators' plan functions read it."""

    q: Question
    today: dt.date

    @property
    def text(self) -> str:
        return self.q.asked

    @cached_property
    def ref(self) -> Reference:
        return load_reference()

    @cached_property
    def wants_number(self) -> bool:
        f = self.q.figures
        return bool(QUANTITY.search(self.text)) or bool(f.bsa_m2 or f.weight_kg or f.height_cm or f.dose_mg or f.mg_per_m2)

    @cached_property
    def about_patient(self) -> bool:
        f = self.q.figures
        return bool(PATIENT.search(self.text)) or bool(f.weight_kg or f.bsa_m2 or f.height_cm)

    @property
    def says_units(self) -> bool:
        return bool(UNITS_WORD.search(self.text))

    @property
    def asks_unit_size(self) -> bool:
        """'how many mg in 1 unit of J3262': the code's unit, answered by the code, not a dose."""
        return bool(UNIT_SIZE.search(self.text))

    def has(self, intent: str) -> bool:
        return intent in self.q.intents

    @property
    def dos(self) -> dt.date:
        """The date of service the turn answers for (today when none was given)."""
        return self.q.service_day(self.today)

    @property
    def given_dos(self) -> dt.date | None:
        """A date of service the user gave (question, field or conversation) that falls in one
        quarter: what a price is looked up by. None for today or a whole year."""
        d = self.q.service_date
        return d.day if d is not None and d.source != "today" and d.quarter is not None else None

    # --- figures as calculator arguments ---------------------------------------------------
    def weight_args(self) -> dict:
        """The weight as typed (154 lb stays 154 lb: the calculator shows the conversion)."""
        f = self.q.figures
        if f.weight_kg is None:
            return {}
        if f.weight_value is not None:
            return {"weight": f.weight_value, "weight_unit": f.weight_unit}
        return {"weight": round(f.weight_kg, 3), "weight_unit": "kg"}

    def height_args(self) -> dict:
        f = self.q.figures
        if f.height_cm is None:
            return {}
        if f.height_value is not None and f.height_unit == "in":
            return {"height": f.height_value, "height_unit": "in"}
        return {"height": round(f.height_cm, 2), "height_unit": "cm"}

    def administered_mg(self) -> tuple[float | None, list[str]]:
        """The administered mg: typed, or mg/m² × BSA, or mg/kg × weight, with the step shown.
        One reading for every calculator: a code question with a derivable amount ("cy 300 mg/m2
        bsa 2.05, j code and units") is the units calculator's, whose answer names the code too."""
        f = self.q.figures
        if f.dose_mg is not None:
            return f.dose_mg, []
        if f.mg_per_m2 and f.bsa_m2:
            exact = Decimal(str(f.mg_per_m2)) * Decimal(str(f.bsa_m2))
            return float(exact), [f"{f.mg_per_m2:g} mg/m² × {f.bsa_m2:g} m² = {exact.normalize():f} mg"]
        if f.mg_per_kg and f.weight_kg:
            kg = round(f.weight_kg, 3)
            exact = Decimal(str(f.mg_per_kg)) * Decimal(str(kg))
            return float(exact), [f"{f.mg_per_kg:g} mg/kg × {kg:g} kg = {exact.normalize():f} mg"]
        return None, []

    def vial_sizes(self) -> list[float]:
        return [size for _, size in self.q.figures.vials]

    def vial_args(self) -> dict:
        """vial_sizes, and vial_counts when the question says how many of each were opened
        ("2 x 400mg + 1 x 200mg"): the waste comes from those vials, not the fewest that cover."""
        vials = self.q.figures.vials or ()
        if not vials:
            return {}
        args: dict = {"vial_sizes": self.vial_sizes()}
        if any(count for count, _ in vials):
            args["vial_counts"] = [count for count, _ in vials]
        return args

    def days(self) -> int | None:
        """How many dates of service: 'x3 days', 'for 3 days', 'daily x3', 'days -5 to -3'."""
        if m := DAYS.search(self.text):
            return int(m.group(1) or m.group(2) or m.group(3) or m.group(4))
        if m := DAY_RANGE.search(self.text):
            return abs(int(m.group(2)) - int(m.group(1))) + 1
        if m := DAY_LIST.search(self.text):
            return len(re.findall(r"-?\d{1,2}", m.group(1)))
        return None

    # --- entities ----------------------------------------------------------------------------
    def drug_code(self) -> str | None:
        """The J/Q code the question is about: a code it names, else the code billed on the date
        of service for a drug name it uses ("cytoxan" in 2023: J9070; in 2025: J9075)."""
        drug = next((m for m in self.ref.drug_mentions(self.text) if not taken_back(self.text, m.start())),
                    None)  # "scratch the tecvayli, it was elrexfio"
        for code in self.q.codes:
            if self.ref.code(code.upper()) is not None and (not code.upper().startswith("Q") or not drug):
                return code.upper()
        code = self._code_of_name(drug.group(1)) if drug else None
        row = self.ref.code(code) if code else None
        maker = self.ref.maker_code(row.drug, self.text, self.dos) if row is not None and row.drug else None
        return maker.code if maker is not None else code  # "dr reddys cyclophosphamide": its own code

    def _code_of_name(self, name: str) -> str | None:
        """The code a drug name is billed under on the date of service (a J-code typed: itself)."""
        if re.fullmatch(r"[jJ]\d{4}", name):
            return name.upper()
        today_code = self.ref.code(self.ref.code_for_name()[name.lower()])
        on_dos = self.ref.drug_code_on(today_code.drug, self.dos) if today_code and today_code.drug else None
        return on_dos.code if on_dos else today_code.code if today_code else None

    def drug_amounts(self) -> tuple[list[tuple[str, float]], list[str]]:
        """'cy 1,200 mg + flu 60 mg same DOS', 'cy 300 mg/m2 and flu 30 mg/m2 bsa 1.8': each drug
        (or J-code) named with its own amount, in the order typed, as (code on the date of service,
        mg), with the mg/m² × BSA steps shown. Fewer than two drugs: none (the one-amount reading)."""
        out: list[tuple[str, float]] = []
        steps: list[str] = []
        bsa = self.q.figures.bsa_m2
        pattern = _amounts_pattern(tuple(self.ref.code_for_name()))
        # a follow-up naming its own drug and amount replaces the thread's ("scratch the tecvayli, it was elrexfio 76mg")
        text = self.q.text if self.q.follows and pattern.search(self.q.text) else self.text
        for m in pattern.finditer(text):
            code, rate = self._code_of_name(m.group(1)), Decimal(str(number_float(m.group(2))))
            if code is None or (m.group(3) and not bsa):
                continue  # a rate per m² without a BSA gives no amount
            mg = rate * Decimal(str(bsa)) if m.group(3) else rate
            if m.group(3):
                steps.append(f"{code}: {rate.normalize():f} mg/m² × {bsa:g} m² = {mg.normalize():f} mg")
            out.append((code, float(mg)))
        return (out, steps) if len({c for c, _ in out}) > 1 else ([], [])

    def dosing_product(self) -> str | None:
        """The single product the question is about, if the reference has dosing rules for it."""
        product = self.q.product
        return product if product and product in self.ref.dosing_products() else None

    @property
    def asks_coverage(self) -> bool:
        """'reauth for another dose', 'continued therapy for a 2nd infusion': a payer's coverage
        rule is asked, not a dose or a service's code."""
        return bool(COVERAGE_ASKED.search(self.q.text))

    @property
    def dosing_unknown(self) -> bool:
        return bool(dosing_unknown(self.q, self.ref))

    def indications(self, product: str) -> list[str]:
        return list(self.ref.indications(product))

    def labelers(self, product_ids: Sequence[str]) -> list[str]:
        """Labeler codes of products, from the CMS crosswalk rows of their HCPCS codes."""
        out: list[str] = []
        for pid in product_ids:
            prod = self.ref.product_by_id(pid)
            for row in self.ref.crosswalk:
                if prod and row.hcpcs == prod.hcpcs and row.ndc11 and row.ndc11[:5] not in out:
                    out.append(row.ndc11[:5])
        return out

    def product_codes(self) -> list[str]:
        """HCPCS codes the question names, else those of the products it names."""
        codes = [c.upper() for c in self.q.codes if self.ref.code(c.upper()) is not None]
        if codes:
            return codes
        found = [p.hcpcs for p in (self.ref.product_by_id(pid) for pid in self.q.products) if p and p.hcpcs]
        if not found and (self.q.figures.dose_mg is not None or self.administered_mg()[0] is not None) and (drug := self.drug_code()):
            return [drug]  # "and 1,700mg cy in may 24?", "flu 30mg/m2 bsa 1.9": the drug named with its amount, its code on the DOS
        return found


# --- which passages back a result -----------------------------------------------------------

def names_product(passage_products: Sequence[str], args: Mapping[str, Any], ref: Reference) -> bool:
    """The passage is about the calculator's product argument."""
    prod = ref.product(str(args.get("product", "")))
    return bool(prod and prod.id in passage_products)


def names_code(text: str, passage_products: Sequence[str], args: Mapping[str, Any], ref: Reference) -> bool:
    """The sentence names the calculator's code or its drug, or the passage is about its product."""
    code = str(args.get("code", "")).upper()
    row = ref.code(code)
    drug = (row.drug if row and row.drug else "~").lower()
    prod = ref.product(code) if code.startswith("Q") else None
    return code in text or drug in text.lower() or bool(prod and prod.id in passage_products)


def backed_by(topic: re.Pattern[str], *, product: bool = False, code: bool = False):
    """A component's `supports`: the sentence is on its topic and, when asked, about the
    calculator's product or code argument."""

    def supports(text: str, passage_products: Sequence[str], args: Mapping[str, Any], ref: Reference) -> bool:
        if not topic.search(text):
            return False
        if product and not names_product(passage_products, args, ref):
            return False
        return not code or names_code(text, passage_products, args, ref)

    return supports
