"""A patient scenario as a prior-authorization specialist types it, read into the facts a payer's
criteria test: age, prior lines, prior drugs (by class), and yes/no findings.

"81 y/o, 5 prior lines incl len/bort/dara, had tecvayli, no CNS" -> age 81, 5 prior lines,
classes {imid, pi, anti_cd38, anti_bcma}, cns False. Drug names and their classes are reference
data (`policies.yaml` `drug_classes`), so a new brand needs no code. A fact the text does not give
stays None ("not stated"): a criterion is never assumed met.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.core.reference import Reference

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_NUM = r"(\d{1,2}|" + "|".join(_WORDS) + r")"
_AGE = re.compile(r"\b(\d{1,3})\s*(?:-?\s*(?:y/?o|yrs?\.?(?:\s*old)?|years?[\s-]*old|yo)\b|[MF]\b(?!\w))|\bage[ds]?\s*:?\s*(\d{1,3})\b",
                  re.I)
_LINES = re.compile(r"\b" + _NUM + r"\+?\s*(?:prior\s+|previous\s+|pr\s+)?(?:lines?|LOT|regimens?)\b(?!\s*(?:of\s+)?(?:infusion|access|item))"
                    r"|\b(?:lines?\s+of\s+(?:therapy|tx|treatment)\s*[:=]?\s*)" + _NUM + r"\b", re.I)
_LINE_SETTING = re.compile(r"\b([1-9])L\b(?!\+)", re.I)  # "going to 4L" = 3 prior lines
_TRIPLE = re.compile(r"\b(?:triple|penta|quad)[\s-]*(?:class[\s-]*)?(?:exposed|refractory)\b|\bTCE\b|\bTCR\b", re.I)
_NEGATION = re.compile(r"\b(?:no|not|never|w/o|without|denies|negative for|naive|nor|hasn'?t|has not|didn'?t|did not|none)\b"
                       r"[\w\s/-]{0,30}$", re.I)
# a requested product counts as a prior therapy only when the words just before say so ("s/p abecma")
_PRIOR_JUST_BEFORE = re.compile(r"(?:\bprior|\bprevious(?:ly)?|\bhad|\breceived|\bs/p|\bpost|\bafter|\bfailed|\bhx(?: of)?|"
                                r"\bhistory of|\bexposed to|\brefractory to|\bgot)\s+(?:\w+\s+)?$", re.I)
_CLAUSE = re.compile(r"[.;:!?\n]|\bbut\b|\band\s+(?=(?:has|is|was|had)\b)", re.I)
_FLAGS = {
    "diagnosis_rrmm": (re.compile(r"\b(?:r/r|rrmm|rel(?:apsed)?/ref(?:ractory)?|relapsed|refractory|relapse|progress(?:ed|ing|ion)|PD)\b", re.I),
                       re.compile(r"\b(?:newly diagnosed|NDMM|in (?:complete |stringent )?remission|smoldering)\b", re.I)),
    "prescriber": (re.compile(r"\b(?:onc|oncolog\w*|hem(?:e|atolog\w*)(?:/onc)?|BMT (?:doc|physician|md)|myeloma (?:doc|specialist))\b", re.I), None),
    "measurable": (re.compile(r"\b(?:measurable|m-?protein|m-?spike|FLC|free light chain|progressive disease|progressed|progressing|PD)\b", re.I),
                   None),
    "cns": (re.compile(r"\b(?:CNS|central nervous system|seizures?|epilep\w*|stroke|dementia|parkinson\w*|aphasia|paresis|psychosis|"
                       r"brain injur\w*|cerebellar)\b", re.I), None),
    "concurrent_cart": (re.compile(r"\b(?:concurrent(?:ly)?|same time|together with)\b[^.;]{0,40}\b(?:car-?\s?t|breyanzi|carvykti|kymriah|"
                                   r"tecartus|yescarta)\b", re.I), None),
}
_DOSE_CELLS = re.compile(r"\b(\d{2,4}(?:\.\d+)?)\s*(?:x|×|\*)\s*10\s*\^?\s*(?:6|⁶)|"
                         r"\b(\d{2,4})\s*(?:million|M)\s*(?:CAR\+?\s*)?(?:T[\s-]?)?cells\b", re.I)
# findings a PA specialist gives that a policy may not test: named, so the answer can say so
_OTHER_FINDINGS = {
    "ECOG": re.compile(r"\bECOG\s*(?:PS\s*)?(?:of\s*)?[0-4]\b", re.I),
    "renal function / dialysis": re.compile(r"\b(?:dialysis|ESRD|CrCl|creatinine|eGFR|renal)\b", re.I),
    "active infection": re.compile(r"\b(?:active|ongoing)\s+(?:\w+\s+)?infection\b|\b(?:hep(?:atitis)?\s*[BC]|HIV)\b", re.I),
    "prior transplant": re.compile(r"\b(?:ASCT|auto[\s-]?(?:HSCT|SCT|transplant)|allo[\s-]?(?:HSCT|SCT|transplant)|transplant)\b", re.I),
    "cardiac function": re.compile(r"\b(?:LVEF|EF\s*\d|ejection fraction)\b", re.I),
}


@dataclass(frozen=True)
class Scenario:
    """The facts a question gives about one patient; None = not stated."""

    age: int | None = None
    prior_lines: int | None = None
    prior_drugs: tuple[str, ...] = ()         # names as typed, that the patient received
    classes: frozenset[str] = frozenset()     # drug classes among the prior therapies
    ruled_out: frozenset[str] = frozenset()   # classes the text says were NOT received ("no prior CAR-T")
    flags: dict[str, bool] = field(default_factory=dict)  # diagnosis_rrmm, prescriber, measurable, cns, concurrent_cart
    dose_cells: int | None = None
    other: tuple[str, ...] = ()               # findings no criterion may test (ECOG, dialysis ...), as typed

    @property
    def given(self) -> bool:
        """Whether the text describes a patient at all (a criteria list is asked otherwise)."""
        return any((self.age is not None, self.prior_lines is not None, self.prior_drugs, self.ruled_out,
                    self.flags, self.dose_cells is not None, self.other))

    def described(self) -> list[str]:
        """The facts read, in words, for the answer's *Input* line."""
        out = [f"age {self.age}"] if self.age is not None else []
        if self.prior_lines is not None:
            out.append(f"{self.prior_lines} prior line{'s' if self.prior_lines != 1 else ''}")
        if self.prior_drugs:
            out.append("prior " + ", ".join(self.prior_drugs))
        out += [f"no prior {c.replace('_', '-')}" for c in sorted(self.ruled_out)]
        out += [f"{k.replace('_', ' ')}: {'yes' if v else 'no'}" for k, v in self.flags.items()]
        return out + list(self.other)


def read_scenario(text: str, ref: Reference, requested: tuple[str, ...] = ()) -> Scenario:
    """The scenario facts of `text`. `requested` are the product ids asked about (their names
    are the request, not a prior therapy, unless the text says they were had before)."""
    drugs, classes, ruled_out = _therapies(text, ref, requested)
    if _TRIPLE.search(text):
        classes |= {"imid", "pi", "anti_cd38"}
    flags = {}
    for name, (yes, no) in _FLAGS.items():
        if no is not None and no.search(text):
            flags[name] = False
        elif (m := yes.search(text)) is not None:
            flags[name] = not _negated(text, m.start())
    return Scenario(age=_age(text), prior_lines=_prior_lines(text), prior_drugs=tuple(drugs),
                    classes=frozenset(classes - ruled_out), ruled_out=frozenset(ruled_out), flags=flags,
                    dose_cells=_dose_cells(text),
                    other=tuple(m.group(0) for rx in _OTHER_FINDINGS.values() if (m := rx.search(text))))


def _age(text: str) -> int | None:
    m = _AGE.search(text)
    if m is None:
        return None
    value = int(m.group(1) or m.group(2))
    return value if 0 < value < 120 else None


def _prior_lines(text: str) -> int | None:
    if (m := _LINES.search(text)) is not None:
        word = (m.group(1) or m.group(2)).lower()
        return _WORDS.get(word) or int(word)
    if (m := _LINE_SETTING.search(text)) is not None:
        return int(m.group(1)) - 1
    return None


def _therapies(text: str, ref: Reference, requested: tuple[str, ...]) -> tuple[list[str], set[str], set[str]]:
    """Drugs the patient had (as typed), their classes, and classes ruled out by a negation."""
    requested_names = {n for pid in requested if (p := ref.product_by_id(pid)) for n in (p.id, *p.names)}
    drugs: list[str] = []
    classes: set[str] = set()
    ruled_out: set[str] = set()
    for cls, names in ref.drug_classes.items():
        for name in names:
            for m in re.finditer(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", text, re.I):
                if _negated(text, m.start()):
                    ruled_out.add(cls)
                    continue
                if _is_requested(name, requested_names) and not prior_mention(text, m.start()):
                    continue  # "does she qualify for abecma": the request, not a prior therapy
                classes.add(cls)
                if m.group(0).lower() not in {d.lower() for d in drugs} and " " not in name and len(name) > 4:
                    drugs.append(m.group(0))
    return drugs, classes, ruled_out


def _is_requested(name: str, requested_names: set[str]) -> bool:
    return any(name == rn or name in rn.split() for rn in requested_names)


def prior_mention(text: str, start: int) -> bool:
    """Whether the name at `start` is a therapy the patient had ("s/p carvykti", "had abecma")."""
    return bool(_PRIOR_JUST_BEFORE.search(text[max(0, start - 30):start]))


def _clause_before(text: str, pos: int) -> str:
    start = max((m.end() for m in _CLAUSE.finditer(text, 0, pos)), default=0)
    return text[start:pos]


def _negated(text: str, pos: int) -> bool:
    """A negation shortly before `pos`, in the same clause ("no prior CAR-T", "never had tecvayli")."""
    return bool(_NEGATION.search(_clause_before(text, pos)[-40:]))


def _dose_cells(text: str) -> int | None:
    m = _DOSE_CELLS.search(text)
    if m is None:
        return None
    return int(float(m.group(1) or m.group(2)) * 1_000_000)
