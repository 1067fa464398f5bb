"""A patient scenario as a prior-authorization specialist types it, read into the facts a payer's
criteria test: age, prior lines, prior drugs (by class), and yes/no findings.

"81 y/o, 5 prior lines incl len/bort/dara, had tecvayli, no CNS" -> age 81, 5 prior lines,
classes {imid, pi, anti_cd38, anti_bcma}, cns False. Drug names and their classes are reference
data (`policies.yaml` `drug_classes`), so a new brand needs no code. A fact the text does not give
stays None ("not stated"): a criterion is never assumed met.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from assistant.core.dates import ServiceDate, find_service_dates, month_number
from assistant.core.question import TAKE_BACK_WORDS
from assistant.core.reference import Reference

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_NUM = r"(\d{1,2}|" + "|".join(_WORDS) + r")"
_AGE = re.compile(r"\b(\d{1,3})\s*(?:-?\s*(?:y/?o|yrs?\.?(?:\s*old)?|years?[\s-]*old|yo)\b|[MF]\b(?!\w))|\bage[ds]?\s*:?\s*(\d{1,3})\b|"
                  r"\b(?:pt|patient|member|she|he)\s*(?:is|'s)\s+(?:only\s+|now\s+|actually\s+)?(\d{1,3})\b(?!\s*(?:kg|lbs?|cm|mg|%|days?|mo|wks?))|"
                  r"\b(?:pt|patient|member)\s+(\d{2})\s*(?=,|;)",  # "pt 45, IgG kappa MM"
                  re.I)
_LINES = re.compile(r"(?:\b|(?<=x))" + _NUM + r"\+?\s*(?:more\s+|additional\s+|other\s+)?"
                    r"(?:prior\s+|previous\s+|pr\s+)?(?:lines?|LOT|regimens?)\b(?!\s*(?:of\s+)?(?:infusion|access|item))"
                    r"|\b(?:lines?\s+of\s+(?:therapy|tx|treatment)\s*[:=]?\s*)" + _NUM + r"\b", re.I)
_DOB = re.compile(r"\b(?:DOB|d\.o\.b\.?|born)\s*:?\s*([\d/.-]{6,10})", re.I)
_REGIMEN_WORDS = re.compile(r"\b(?:len|pom|bort|dara|carfil|kyprolis|velcade|revlimid|pomalyst|darzalex|sarclisa|elo|selinexor|"
                            r"teclistamab|tecvayli|elrexfio|talvey|blenrep|cilta-cel|carvykti)\w*", re.I)
# "going to 4L", "going into 3rd line": the line about to start, so one fewer prior lines
_LINE_SETTING = re.compile(r"\b([1-9])L\b(?!\+)|\b(?:into|for|starting|start|at|in)\s+(?:the\s+)?([1-9])(?:st|nd|rd|th)[\s-]+line\b", re.I)
_LINE_CHOICE = re.compile(r"(?:\b(?:or|vs\.?|versus|says?|said|guide|label(?:ed)?|approved|indicated|per)\s*|/)$", re.I)
_LINE_CHOICE_AFTER = re.compile(r"\s*(?:or|vs\.?|versus|/)\s*[1-9]L\b", re.I)
_TRIPLE = re.compile(r"\b(?:triple|penta|quad)[\s-]*(?:class(?:[\s-]*(?:exposed|refractory|exp))?|exposed|refractory|exp|ref)\b|"
                     r"\bTCE\b|\bTCR\b", re.I)
_NEGATION = re.compile(r"\b(?:no|not|never|w/o|without|denies|negative for|naive|nor|hasn'?t|has not|didn'?t|did not|none|"
                       # a correction that takes a therapy back: "scratch the blenrep", "remove tecvayli"
                       rf"{TAKE_BACK_WORDS}|minus)\b", re.I)
_NAIVE_AFTER = re.compile(r"[\s-]*(?:naive|na[iï]ve|negative|free|never)\b", re.I)  # "BCMA-naive", "CAR-T naive"
# a finding said absent after its name: "CNS hx negative", "CNS: neg", "CNS involvement none", "CNS clear"
_ABSENT_AFTER = re.compile(r"[\s:/-]*(?:(?:hx|history|involvement|disease|dz|w/?u|workup|imaging|MRI|mets?)\b[\s:/-]*){0,2}"
                           r"(?:negative|neg\b|none\b|clear\b|not involved|not present|ruled out|absent|-ve\b|\(-\))", re.I)
# a class word with the member's exposure after it: "BCMA-exposed", "car-t experienced"
_EXPOSED_AFTER = re.compile(r"[\s-]*(?:exposed|refractory|experienced|treated|pretreated|(?:clinical\s+)?trial)\b", re.I)
_REFRACTORY_AFTER = re.compile(r"[\s-]*(?:refractory|refract|ref|refr|sensitive)\b", re.I)
_NEGATED_VERB = re.compile(r"^\s*(?:(?:had|got|gotten|received|been|on|given|any|prior|previous|hx|history|of)\b\s*)+", re.I)
_REASSERT = re.compile(r"\b(?:had|has|got|received|s/p|post|on|then|after|incl\w*|with|w/|but)\b", re.I)
# a requested product counts as a prior therapy only when the words just before say so ("s/p abecma")
_PRIOR_JUST_BEFORE = re.compile(r"(?:\bprior|\bprevious(?:ly)?|\bhad|\breceived|\bs/p|\bpost|\bafter|\bfailed|\bhx(?: of)?|"
                                r"\bhistory of|\bexposed to|\brefractory to|\bgot|\b(?:was|were|been) on)\s+(?:\w+\s+)?$", re.I)
_CLAUSE = re.compile(r"[.;:!?\n()]|\s[-–—]\s|\bbut\b|\band\s+(?=(?:has|is|was|had)\b)", re.I)
_FLAGS = {
    "diagnosis_rrmm": (re.compile(r"\b(?:r/r|rrmm|rel(?:apsed)?/ref(?:ractory)?|relapsed|refractory|relapse|progress(?:ed|ing|ion)|"
                                  r"progressive disease|\w+-refractory|(?-i:PD))\b", re.I),
                       re.compile(r"\b(?:newly diagnosed|NDMM|in (?:complete |stringent )?remission|smoldering|sCR|MRD-?neg\w*|"
                                  r"never (?:progressed|relapsed))\b", re.I)),
    "prescriber": (re.compile(r"\b(?:onc|oncolog\w*|hem(?:e|atolog\w*)(?:/onc)?|BMT (?:doc|physician|md)|myeloma (?:doc|specialist))\b", re.I),
                   re.compile(r"\b(?:PCP|primary care|internal med\w*|internist|family (?:med\w*|doc\w*|practice))\b", re.I)),
    "cns": (re.compile(r"\b(?:CNS|central nervous system|seizures?|epilep\w*|stroke|CVA|dementia|parkinson\w*|aphasia|paresis|psychosis|"
                       r"brain (?:injur\w*|mets?|metastas\w*)|cerebellar|leptomening\w*)\b", re.I), None),
    # refractory to lenalidomide (the Carvykti CARTITUDE-4 indication): "len-refractory", "progressed on len maint"
    "len_refractory": (re.compile(r"\b(?:len(?:alidomide)?|revlimid|rev|R)[\s-]*(?:refractory|refract|ref|refr)\b|"
                                  r"\brefractory to (?:len(?:alidomide)?|revlimid)\b|"
                                  r"\bprogress\w* (?:on|while on|during|thru|through) (?:len(?:alidomide)?|revlimid)\b", re.I),
                       re.compile(r"\b(?:len(?:alidomide)?|revlimid)[\s-]*(?:sensitive|naive|na[iï]ve)\b", re.I)),
    "concurrent_cart": (re.compile(r"\b(?:concurrent(?:ly)?|same time|together with)\b[^.;]{0,40}\b(?:car-?\s?t|breyanzi|carvykti|kymriah|"
                                   r"tecartus|yescarta)\b", re.I), None),
}
_DOSE_CELLS = re.compile(r"(?<![\d.])(\d{2,4}(?:\.\d+)?)\s*(?:x|×|\*)\s*10\s*\^?\s*(?:6|⁶)(?!\s*(?:/|per)\s*kg)|"
                         r"\b(\d{2,4})\s*(?:million|M)\s*(?:CAR\+?\s*)?(?:T[\s-]?)?cells\b|"
                         r"\b(?:dose|target)\s*(?:dose\s*)?(?:of\s*)?(\d{3})(?:\s*(?:M|million)\b)?(?![\d.,/])"
                         r"(?!\s*(?:kg|lbs?|pounds|cm|mg|m2|m²)\b)|"  # "cell dose 154 lb" is a weight
                         r"\b(\d{3})\s*M\b(?![\w/])", re.I)  # "450M": three digits (an age with a sex is two, "54M")
# Myeloma regimens by their letters ("VRd", "DKd", "Pd", "dara-VRd", "elo-pom-dex"): the capitals
# before the lowercase d (dexamethasone) name the drugs. Case matters ("PD" is progressive disease).
_REGIMEN = re.compile(r"(?<![A-Za-z])(?:(?:[Dd]ara|[Ii]sa|[Ee]lo|D(?=-))-?)?(?P<letters>[VRKPCTDIES]{1,3})d(?![A-Za-z])")  # "D-VRd": dara
_REGIMEN_LETTERS = {"V": "pi", "K": "pi", "I": "pi", "R": "imid", "P": "imid", "T": "imid", "D": "anti_cd38"}
_REGIMEN_PREFIX = {"dara": "anti_cd38", "isa": "anti_cd38"}
REGIMEN_CLASSES = frozenset(_REGIMEN_LETTERS.values())  # the classes a myeloma regimen's letters can name
# Lines of therapy from a listed sequence when no count is given: induction -> transplant ->
# maintenance is one line (IMWG; Centene: "Induction with or without hematopoietic stem cell
# transplant and with or without maintenance therapy is considered a single regimen").
_STEP_SPLIT = re.compile(r"->|→|=>|;|,|\bthen\b|\band\b|&", re.I)
_SEQUENCE = re.compile(r"->|→|=>|\bthen\b|\b(?:before|prior to|after) that\b|\bfollowed by\b", re.I)
_SAME_LINE = re.compile(r"\b(?:tandem|auto|allo|ASCT|SCT|HSCT|transplant|maint\w*|consolidation)\b", re.I)
# Measurable disease (Centene I.A.4a): serum M-protein >= 0.5 g/dL, urine >= 200 mg/24 h, involved FLC
# >= 10 mg/dL with an abnormal ratio, assessed within 30 days; or progression (I.A.4b).
_LABS = {
    "serum": (re.compile(r"\b(?:SPEP|M[-\s]?spike|serum M[-\s]?protein|(?<!urine )(?<!24h urine )M[-\s]?protein)\b"
                         r"\D{0,12}?(\d+(?:\.\d+)?)(?![\d/.-])\s*(?:g/dL)?", re.I), 0.5),
    "urine": (re.compile(r"\b(?:UPEP|urine M(?:[-\s]?(?:protein|spike))?|24\s*h(?:ou)?r? urine)\b"
                         r"\D{0,12}?(\d+(?:\.\d+)?)(?![\d/.-])\s*mg", re.I), 200.0),
    "flc": (re.compile(r"\b(?:FLC|(?:involved\s+)?(?:kappa|lambda)(?:\s+(?:FLC|free light chains?))?)\b\D{0,16}?"
                       r"(\d+(?:\.\d+)?)(?![\d/.-])\s*mg/(d?L)\b", re.I), 10.0),  # mg/dL or mg/L (10 mg/dL = 100 mg/L)
}
_LAB_DATED = re.compile(r"\b(SPEP|UPEP|M[-\s]?spike|M[-\s]?protein|FLC|labs?)\b"
                        r"[^.;?]{0,25}?\b(?:from|drawn|dated|done|on|in|was|were)\b[^.;?]{0,20}", re.I)
_NORMAL_RATIO = re.compile(r"\b(?:nl|normal)\s+(?:FLC\s+)?ratio\b", re.I)
_PROGRESSION = re.compile(r"\b(?:progressed|progressing|progressive disease|progression|PD|"
                          r"new (?:lytic |bone |osteolytic )?(?:lesions?|plasmacytomas?))\b")
_LAB_WINDOW_DAYS = 30
# findings a PA specialist gives that a policy may not test: named, so the answer can say so
_OTHER_FINDINGS = {
    "ECOG": re.compile(r"\bECOG\s*(?:PS\s*)?(?:of\s*)?[0-4]\b", re.I),
    "renal function / dialysis": re.compile(r"\b(?:dialysis|ESRD|CrCl|creatinine|eGFR|renal)\b", re.I),
    "active infection": re.compile(r"\b(?:active|ongoing)\s+(?:\w+\s+)?(?:infection|viremia)\b|\b(?:hep(?:atitis)?\s*[BC]|HIV|viremia|"
                                   r"bacteremia|sepsis|line infection|pneumonia)\b|\bon (?:IV )?(?:vanc\w*|antibiotics|abx)\b", re.I),
    "prior transplant": re.compile(r"\b(?:ASCT|auto[\s-]?(?:HSCT|SCT|transplant)|allo[\s-]?(?:HSCT|SCT|transplant)|transplant)\b", re.I),
    "cardiac function": re.compile(r"\b(?:LVEF|EF\s*\d|ejection fraction)\b", re.I),
}


# The disease a question names; a myeloma drug or regimen named implies myeloma.
DISEASES = {"mm": "multiple myeloma", "mcl": "mantle cell lymphoma", "ball": "B-cell precursor ALL",
            "lbcl": "large B-cell lymphoma", "fl": "follicular lymphoma", "cll": "CLL/SLL"}
_DISEASE = [
    ("mm", re.compile(r"\b(?:R/?R\s*)?MM\b|\bRRMM\b|\bNDMM\b|myeloma|\bIg[GAD]\s*(?:kappa|lambda|κ|λ)", re.I)),
    ("mcl", re.compile(r"\bMCL\b|mantle[\s-]cell|\bmantle\b", re.I)),
    ("ball", re.compile(r"\bB-?ALL\b|\bB-cell (?:precursor )?ALL\b|lymphoblastic|(?-i:\bALL\b)", re.I)),
    ("lbcl", re.compile(r"\bD?LBCL\b|large B-?cell", re.I)),
    ("fl", re.compile(r"(?-i:\bFL\b)|follicular", re.I)),
    ("cll", re.compile(r"\bCLL\b|\bSLL\b|chronic lymphocytic", re.I)),
]
_MYELOMA_CLASSES = frozenset({"imid", "pi", "anti_cd38", "anti_bcma"})


def _disease(text: str, classes: set[str]) -> str | None:
    """The disease named first in the text; myeloma when only myeloma drugs are named."""
    found = min(((m.start(), key) for key, rx in _DISEASE if (m := rx.search(text))), default=None)
    if found is not None:
        return found[1]
    return "mm" if classes & _MYELOMA_CLASSES else None


@dataclass(frozen=True)
class Scenario:
    """The facts a question gives about one patient; None = not stated."""

    age: int | None = None
    prior_lines: int | None = None
    prior_drugs: tuple[str, ...] = ()         # names as typed, that the patient received
    classes: frozenset[str] = frozenset()     # drug classes among the prior therapies
    ruled_out: frozenset[str] = frozenset()   # classes the text says were NOT received ("no prior CAR-T")
    flags: dict[str, bool] = field(default_factory=dict)  # diagnosis_rrmm, prescriber, measurable, cns, concurrent_cart
    said: dict[str, str] = field(default_factory=dict)    # flag -> the words it was read from ("hx of seizures")
    dose_cells: int | None = None
    lines_counted: bool = False               # prior_lines counted from a listed sequence (not a number typed)
    other: tuple[str, ...] = ()               # findings no criterion may test (ECOG, dialysis ...), as typed
    disease: str | None = None                # a DISEASES key: the disease named (or implied by myeloma drugs)
    regimens_listed: int = 0                  # regimens listed as lines ("1 prior line DRd": 1): all lines named when >= prior_lines

    def lines_all_named(self) -> bool:
        """Every prior line is named by its regimen ("1 prior line DRd"), so a class none of them has was not had."""
        return self.prior_lines is not None and 0 < self.prior_lines <= self.regimens_listed

    @property
    def facts(self) -> int:
        """How many facts the text gives (a coverage question with two or more describes a patient)."""
        return sum((self.age is not None, self.prior_lines is not None, bool(self.prior_drugs or self.classes),
                    bool(self.ruled_out), len(self.flags), self.dose_cells is not None))

    @property
    def given(self) -> bool:
        """Whether the text describes a patient at all (a criteria list is asked otherwise)."""
        return any((self.age is not None, self.prior_lines is not None, self.prior_drugs, self.ruled_out,
                    self.flags, self.dose_cells is not None, self.other))

    def described(self, class_names: dict[str, str] | None = None) -> list[str]:
        """The facts read, in words, so the user sees what the verdict rests on."""
        names = class_names or {}
        out = [f"age {self.age}"] if self.age is not None else []
        if self.disease is not None:
            out.append(DISEASES.get(self.disease, self.disease))
        if self.prior_lines is not None:
            out.append(f"{self.prior_lines} prior line{'s' if self.prior_lines != 1 else ''}"
                       + (" (counted from the regimens listed: induction, transplant and maintenance count as one line)"
                          if self.lines_counted else ""))
        if self.prior_drugs:
            out.append("prior " + ", ".join(self.prior_drugs))
        if self.classes:
            out.append("prior classes: " + ", ".join(names.get(c, c) for c in sorted(self.classes)))
        out += [f"no prior {re.sub(r'^an? ', '', names.get(c, c))}" for c in sorted(self.ruled_out)]
        out += [f"{k.replace('_', ' ')}: {'yes' if v else 'no'}" + (f" (“{self.said[k]}”)" if k in self.said else "")
                for k, v in self.flags.items()]
        out += [f"{k.replace('_', ' ')}: not shown ({v})" for k, v in self.said.items() if k not in self.flags]
        return out + list(self.other)


def read_scenario(text: str, ref: Reference, requested: tuple[str, ...] = (), today: dt.date | None = None) -> Scenario:
    """The scenario facts of `text`. `requested` are the product ids asked about (their names
    are the request, not a prior therapy, unless the text says they were had before); `today`
    dates a lab value ("drawn 8/28/26") and turns a date of birth into an age."""
    today = today or dt.date.today()
    drugs, classes, ruled_out = _therapies(text, ref, requested)
    classes |= _regimen_classes(text)
    if _TRIPLE.search(text):
        classes |= {"imid", "pi", "anti_cd38"}
    flags, said = {}, {}
    for name, (yes, no) in _FLAGS.items():
        if no is not None and (n := no.search(text)) and not (yes.search(text) and not _negated(text, yes.search(text).start())):
            flags[name], said[name] = False, n.group(0)
        elif (mentions := list(yes.finditer(text))):
            # "no CNS disease but hx of seizures": any mention said present decides, not the first one
            m = next((x for x in mentions if not _negated(text, x.start()) and not _ABSENT_AFTER.match(text, x.end())), None)
            if m is not None:
                flags[name], said[name] = True, m.group(0)
            elif name != "diagnosis_rrmm":  # "no progression documented" says nothing against the diagnosis
                flags[name], said[name] = False, "no " + mentions[0].group(0)
    if (measurable := _measurable(text, today)) is not None:
        if measurable[0] is not None:
            flags["measurable"] = measurable[0]
        said["measurable"] = measurable[1]
    if "cart" in ruled_out and "concurrent_cart" not in flags:
        flags["concurrent_cart"] = False  # no CAR-T at all: none prescribed alongside either
    lines, counted = _prior_lines(text)
    if "diagnosis_rrmm" not in flags and lines:
        # a member who had a line of therapy and is treated again has relapsed or refractory disease
        flags["diagnosis_rrmm"], said["diagnosis_rrmm"] = True, f"{lines} prior line{'s' if lines != 1 else ''}, treated again"
    return Scenario(age=_age(text, today), prior_lines=lines, lines_counted=counted, prior_drugs=tuple(drugs),
                    disease=_disease(text, classes - ruled_out),
                    regimens_listed=_counted_lines(text) or 0,
                    classes=frozenset(classes - ruled_out), ruled_out=frozenset(ruled_out), flags=flags, said=said,
                    dose_cells=dose_cells_in(text),
                    other=tuple(m.group(0) for rx in _OTHER_FINDINGS.values() if (m := rx.search(text))))


def _last_day_named(text: str, today: dt.date) -> dt.date | None:
    """The last day of the date a phrase names: a full date, or a bare month ("from august": its most
    recent occurrence up to today)."""
    found = next(iter(find_service_dates(text, today)), None)
    if found is not None:
        return found.end
    month = next((n for w in re.findall(r"[a-z]+", text.lower()) if (n := month_number(w))), None)
    if month is None:
        return None
    year = today.year if month <= today.month else today.year - 1
    return (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1))


_RULE_BEFORE = re.compile(r"\b(?:need|needs|needed|requires?|required|must (?:have|be)|minimum(?: of)?|min)\s+(?:at least\s+)?$", re.I)


def _age(text: str, today: dt.date) -> int | None:
    if (m := _DOB.search(text)) is not None:
        born = next((d for d in find_service_dates(m.group(1), today) if d.precision == "day"), None)
        if born is not None and born.day < today:
            b = born.day
            return today.year - b.year - ((today.month, today.day) < (b.month, b.day))
    for m in _AGE.finditer(text):
        if _RULE_BEFORE.search(text[max(0, m.start() - 30):m.start()]):
            continue  # "does centene require age 18": the policy's rule, not the member's age
        value = int(m.group(1) or m.group(2) or m.group(3) or m.group(4))
        return value if 0 < value < 120 else None
    return None


def _prior_lines(text: str) -> tuple[int | None, bool]:
    """The number of prior lines, and whether it was counted from a listed sequence."""
    for m in _LINES.finditer(text):
        if _RULE_BEFORE.search(text[max(0, m.start() - 30):m.start()]):
            continue  # "does pt need 4 prior lines?": the policy's rule is asked, not the member's count
        word = (m.group(1) or m.group(2)).lower()
        return _WORDS.get(word) or int(word), False
    for m in _LINE_SETTING.finditer(text):
        if _LINE_CHOICE.search(text[max(0, m.start() - 25):m.start()]) or _LINE_CHOICE_AFTER.match(text, m.end()):
            continue  # "2L or 3L+ per label? guide says 2L+": the label's line setting asked, not the member's
        return int(m.group(1) or m.group(2)) - 1, False
    counted = _counted_lines(text)
    return counted, counted is not None


_HISTORY_WORDS = re.compile(r"\b(?:prior|previous(?:ly)?|s/p|had|hx|history|treated with|received|failed|refractory to)\b", re.I)


def _counted_lines(text: str) -> int | None:
    """Lines in a listed sequence ("dara-VRd -> auto SCT -> len maint, then DKd" = 2): each step
    with a regimen is a line, a transplant or maintenance step belongs to the line before it. A
    plain list of drug names ("prior Revlimid, Velcade, Darzalex") gives no count: one regimen
    may hold all three."""
    sequence = len(_SEQUENCE.split(text)) > 1
    lines = 0
    for step in _STEP_SPLIT.split(text):
        if not (_REGIMEN.search(step) or (sequence and _REGIMEN_WORDS.search(step))):
            continue
        if _SAME_LINE.search(step) and lines:
            continue
        lines += 1
    # one regimen named alone, not as the history ("5 wks after last KPd dose"), gives no count;
    # "prior DRd", "VRd induction, ASCT, len maint" do
    if lines == 1 and not sequence and not (_SAME_LINE.search(text) or _HISTORY_WORDS.search(text)):
        return None
    return lines or None


def _regimen_classes(text: str) -> set[str]:
    out: set[str] = set()
    for m in _REGIMEN.finditer(text):
        out |= {_REGIMEN_LETTERS[c] for c in m.group("letters") if c in _REGIMEN_LETTERS}
        prefix = m.group(0)[:4].lower()
        if prefix in _REGIMEN_PREFIX:
            out.add(_REGIMEN_PREFIX[prefix])
        elif m.group(0).startswith("D-"):
            out.add("anti_cd38")
    return out


def _measurable(text: str, today: dt.date) -> tuple[bool | None, str] | None:
    """Measurable disease from lab values (any one at its threshold, drawn within 30 days) or a
    stated progression, with the words it rests on; False when values are given and none
    qualifies (below the threshold, or drawn more than 30 days ago); None when neither is said."""
    reasons = []
    # "labs from 6 wks ago": the date of every lab value that has none of its own
    all_drawn = _ago(dated.group(0), today) if (dated := _LAB_DATED.search(text)) and dated.group(1).lower().startswith("lab") else None
    for name, (rx, threshold) in _LABS.items():
        for m in rx.finditer(text):
            if name == "flc" and _NORMAL_RATIO.search(text[m.end():m.end() + 40]):
                reasons.append(f"{m.group(0)} with a normal ratio")
                continue
            drawn = (next(iter(find_service_dates(text[m.end():m.end() + 30], today)), None) or _ago(text[m.end():m.end() + 40], today)
                     or all_drawn)
            stale = drawn is not None and (today - drawn.day).days > _LAB_WINDOW_DAYS
            value = float(m.group(1)) / (10 if name == "flc" and m.group(2).lower() == "l" else 1)  # mg/L in mg/dL
            if value >= threshold and not stale:
                return True, m.group(0)
            reasons.append(f"{m.group(0)} drawn {drawn.label()}, more than {_LAB_WINDOW_DAYS} days ago" if stale
                           else f"{m.group(0)} below the threshold")
    if not reasons and (m := _LAB_DATED.search(text)):
        # "what if the SPEP is from august": a lab's date alone, in a thread that gave its value
        last_day = _last_day_named(m.group(0), today)
        if last_day is not None and (today - last_day).days > _LAB_WINDOW_DAYS:
            reasons.append(f"{m.group(1)} from {m.group(0)[m.end(1) - m.start():].strip()}, more than {_LAB_WINDOW_DAYS} days ago")
    mentions = list(_PROGRESSION.finditer(text))
    progression = next((m for m in mentions if not _negated(text, m.start())), None)
    if progression is not None:
        return True, f"progression: {progression.group(0)}"
    if reasons and mentions:  # labs that do not qualify and progression said not to be documented: not met
        return False, "; ".join(reasons) + "; no progression documented"
    # labs that do not qualify, progression not mentioned: criterion 4b (progression within 60 days) is still open
    return (None, "; ".join(reasons) + "; progression (IMWG, within 60 days of the last regimen) not stated") if reasons else None


_AGO = re.compile(r"\b(\d{1,3})\s*(d|days?|wks?|weeks?|mos?|months?)\s+ago\b", re.I)


def _ago(text: str, today: dt.date) -> ServiceDate | None:
    """'drawn 5 wks ago': the day it names (a month counted as 30 days)."""
    m = _AGO.search(text)
    if m is None:
        return None
    unit = m.group(2).lower()
    days = int(m.group(1)) * (1 if unit.startswith("d") else 7 if unit.startswith("w") else 30)
    day = today - dt.timedelta(days=days)
    return ServiceDate(day, day, "day", m.group(0), "question")


def _therapies(text: str, ref: Reference, requested: tuple[str, ...]) -> tuple[list[str], set[str], set[str]]:
    """Drugs the patient had (as typed), their classes, and classes ruled out by a negation."""
    requested_names = {n for pid in requested if (p := ref.product_by_id(pid)) for n in (p.id, *p.names)}
    drugs: list[str] = []
    classes: set[str] = set()
    ruled_out: set[str] = set()
    for cls, names in ref.drug_classes.items():
        for name in names:
            for m in re.finditer(r"(?<![A-Za-z])" + re.escape(name) + r"(?![A-Za-z])", text, re.I):
                if _is_requested(name, requested_names) and not prior_mention(text, m.start()):
                    continue  # "does she qualify for abecma": the request, not a prior therapy
                if _negated(text, m.start(), ref) or _NAIVE_AFTER.match(text, m.end()):
                    if not _REFRACTORY_AFTER.match(text, m.end()):  # "not len refractory" says nothing against having had len
                        ruled_out.add(cls)
                    continue
                if name in ref.generic_names and not (prior_mention(text, m.start()) or _EXPOSED_AFTER.match(text, m.end())):
                    continue  # "which codes need auth, do the car-t admin cpts": the topic, not the member's history
                classes.add(cls)
                if m.group(0).lower() not in {d.lower() for d in drugs} and " " not in name and len(name) > 4:
                    drugs.append(m.group(0))
    return drugs, classes, ruled_out


def _is_requested(name: str, requested_names: set[str]) -> bool:
    return any(name == rn or name in rn.split() for rn in requested_names)


def prior_mention(text: str, start: int) -> bool:
    """Whether the name at `start` is a therapy the patient had ("s/p carvykti", "had abecma")."""
    return bool(_PRIOR_JUST_BEFORE.search(text[max(0, start - 30):start]))


def negated_mention(text: str, start: int) -> bool:
    """Whether the name at `start` is a therapy the patient did NOT have ("never had tecvayli")."""
    return _negated(text, start)


def _clause_before(text: str, pos: int) -> str:
    start = max((m.end() for m in _CLAUSE.finditer(text, 0, pos)), default=0)
    return text[start:pos]


def _negated(text: str, pos: int, ref: Reference | None = None) -> bool:
    """A negation shortly before `pos`, in the same clause ("no prior CAR-T", "never got dara or
    sarclisa"), not taken back by a verb in between ("no CNS hx, had tecvayli"). With `ref` (a
    therapy mention) the negation runs on across a comma-separated list of therapy names ("never
    had velcade, kyprolis or ninlaro"); otherwise a comma ends it ("no car-t, heme onc ordering")."""
    window = _clause_before(text, pos)[-50:]
    last = next(reversed(list(_NEGATION.finditer(window))), None)
    if last is None:
        return False
    scope = _NEGATED_VERB.sub("", window[last.end():])  # "never had velcade": 'had' is part of the negation
    if _REASSERT.search(scope):
        return False
    if "," not in scope:
        return True
    names = {n for ns in ref.drug_classes.values() for n in ns} if ref is not None else set()
    pieces = [p.strip().lower() for p in re.split(r",|\bor\b|\bnor\b|\band\b|/", scope)]
    return all(not p or p in names or p.removeprefix("prior ") in names for p in pieces)


_DOSE_RANGE = re.compile(r"(?<![\d.])(\d{2,4})\s*(?:-|–|to)\s*(\d{2,4})\s*(?:(?:x|×|\*)\s*10\s*\^?\s*(?:6|⁶)|million\b|M\b)"
                         r"(?!\s*(?:/|per)\s*kg)", re.I)


def dose_range_in(text: str) -> tuple[int, int] | None:
    """A CAR-T cell range the text states ("guide says 150-450 x10^6", "300 to 510 million"), in cells."""
    m = _DOSE_RANGE.search(text)
    if m is None or int(m.group(1)) >= int(m.group(2)):
        return None
    return int(m.group(1)) * 1_000_000, int(m.group(2)) * 1_000_000


# "4.9 x10^8", "2.6x10^8", "3.2e8" cells (a count per kg is a dose rate, not a count)
_DOSE_CELLS_E8 = re.compile(r"(?<![\d.])(\d{1,2}(?:\.\d+)?)\s*(?:(?:x|×|\*)\s*10\s*\^?\s*(?:8|⁸)|e\+?8)\b(?!\s*(?:/|per)\s*kg)", re.I)


_PER_KG = re.compile(r"(?<![\d.])(\d{1,2}(?:\.\d+)?)\s*(?:(?:x|×|\*)\s*10\s*\^?\s*(5|6|⁵|⁶)|e\+?(5|6)|(million|M))\s*"
                     r"(?:(?:CAR\+?\s*)?(?:T[\s-]?)?cells?\s*)?(?:/|per)\s*kg\b", re.I)


def dose_per_kg_in(text: str) -> Decimal | None:
    """A per-kg CAR-T cell dose the text gives, in cells per kg ("0.42x10^6/kg", "2 x 10^6 cells/kg",
    "5e5 per kg", "0.6 million/kg")."""
    m = _PER_KG.search(text)
    if m is None:
        return None
    power = {"5": 5, "⁵": 5}.get(m.group(2) or m.group(3) or "", 6)
    return Decimal(m.group(1)) * Decimal(10) ** power


def dose_cells_in(text: str) -> int | None:
    """A CAR-T cell count the text gives ("450M", "300 million cells", "4.9 x10^8", "3.2e8")."""
    if (e8 := _DOSE_CELLS_E8.search(text)) is not None:
        return int(round(float(e8.group(1)) * 100)) * 1_000_000
    m = _DOSE_CELLS.search(text)
    if m is None:
        return None
    return int(float(m.group(1) or m.group(2) or m.group(3) or m.group(4)) * 1_000_000)
