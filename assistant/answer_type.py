"""What a question wants back, read from the way coders type it.

"which rev code goes w/ Q2056", "POS for stage 4?", "dx for relapse", "proc code inpatient",
"what's medicare paying on a Q2053 line": the answer's shape (a code of one system, an amount,
units, a duration, yes/no, a criteria list, a comparison, where to send) decides which passage or
table cell can answer, so it is read before retrieval. Deterministic and table-driven: a new
abbreviation is one more alternative in a pattern below, not new logic.

A code *named* in a question is not a code *asked for*: "what's medicare paying on a Q2053 line"
wants an amount. A code system is asked when the question names the system ("which Q code",
"rev code", "dx") or asks whether a code of it is the right one ("is 0540T ok or do i need 38228").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.codes import find_codes
from index.tables import TableRow

__all__ = ["AnswerType", "answer_type", "code_system_of", "row_answers", "SYSTEMS", "KINDS"]

KINDS = ("code", "amount", "units", "duration", "yes_no", "criteria", "comparison", "contact", "general")
SYSTEMS = ("HCPCS", "CPT", "ICD-10-CM", "ICD-10-PCS", "POS", "revenue", "modifier", "DRG", "NDC", "claim field",
           "claim form")


@dataclass(frozen=True)
class AnswerType:
    """The answer's shape: `kind` (one of KINDS) and, when a code is asked, its system.

    code_systems lists every system the question asks for, in the order it names them
    ("NDC ... 11 digit + which Q code" -> NDC, HCPCS); code_system is the first. detail narrows
    the system: 'Z' (a Z code), 'Q'/'J'/'C' (a HCPCS letter), a claim field number ('44'),
    '11-digit' (NDC), 'JW/JZ'.
    also lists the other kinds the question touches ("does he meet their criteria": yes_no,
    also criteria). setting is 'inpatient' / 'outpatient' when the question says one.
    """

    kind: str
    code_system: str | None = None
    code_systems: tuple[str, ...] = ()
    detail: str | None = None
    also: tuple[str, ...] = ()
    setting: str | None = None

    @property
    def asks_code(self) -> bool:
        return self.code_system is not None


# --- code systems, as coders name them --------------------------------------------------------

_I = re.IGNORECASE
# (system, pattern): in this order, so "icd10 pcs" is PCS before it is ICD-10-CM and
# "NDC 11" is NDC before "11" could be anything else. "proc code" is resolved by the setting.
_SYSTEM_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ICD-10-PCS", re.compile(r"\bicd[- ]?10[- ]?pcs\b|\bpcs\b|\bprocedure code.{0,20}\b(?:inpatient|inpt|ip)\b|"
                              r"\b(?:inpatient|inpt|ip)\b.{0,20}\bproc(?:edure)? codes?\b|\bproc codes?\b.{0,25}\b(?:inpatient|inpt|ip)\b", _I)),
    ("ICD-10-CM", re.compile(r"\bdx\b|\bdiag(?:nosis|nostic)?(?: codes?)?\b|\bicd[- ]?10(?:[- ]?cm)?\b|\bicd\b|"
                             r"\bz[- ]?codes?\b|\b[A-TV-Z]\d{2}(?:\.[0-9x]{1,3})?\s*codes?\b", _I)),  # "which D89 code"
    ("revenue", re.compile(r"\brev(?:enue?)?\.?[- ]?codes?\b|\brev\b|\brevenue\b|\bFL ?42\b", _I)),
    ("POS", re.compile(r"\bPOS\b|\bplace of (?:service|svc)\b", _I)),
    ("modifier", re.compile(r"\bmod(?:ifi?er|ifers?)?s?\b|\bJW\b|\bJZ\b", _I)),
    ("DRG", re.compile(r"\b(?:ms-?)?drg\b", _I)),
    ("NDC", re.compile(r"\bndcs?(?: ?1[01])?\b|\b1[01][- ]?digit\b|\blabeler\b", _I)),
    ("HCPCS", re.compile(r"\bhcpcs?\b|\bh?cpcs code\b|\b[qjc][- ]?codes?\b|\bdrug codes?\b|\bproduct codes?\b", _I)),
    ("CPT", re.compile(r"\bcpts?\b|\badmin(?:istration)? codes?\b|\bcat(?:egory)? ?(?:iii|3) codes?\b|"
                       r"\bproc(?:edure)? codes?\b|\bt[- ]?codes?\b|\binfusion codes?\b", _I)),
    ("claim form", re.compile(r"\bclaim (?:form|type)s?\b|\bwhich form\b|\bwhat form\b|\b837[IP]? or\b|"
                              r"\bUB-?04 or (?:CMS-?)?1500\b|\b(?:CMS-?)?1500 or UB-?04\b", _I)),
    ("claim field", re.compile(r"\bFL ?\d{1,2}[A-Z]?\b|\bform locator\b|\bbox ?\d{1,2}[A-Z]?\b|\bwhich (?:box|field|fl)\b|"
                               r"\b(?:what|which) (?:field|box)\b|\bfield \d{1,2}[A-Z]?\b|"
                               r"\b(?:FL|box|field|form locator)s? (?:for|of)\b|\b(?:UB-?04|1500)\s+(?:FL|box|field)s?\b", _I)),
)
_FIELD_NO = re.compile(r"\b(?:FL|box|field|form locator) ?(\d{1,2}[A-Z]?)\b", _I)


def _details(text: str, system: str) -> str | None:
    """What narrows the asked system: a Z code, a field number, an 11-digit NDC, JW/JZ."""
    if system == "ICD-10-CM" and re.search(r"\bz[- ]?codes?\b", text, _I):
        return "Z"
    if system == "claim field":
        m = _FIELD_NO.search(text)
        return m.group(1).upper() if m else None
    if system == "NDC" and re.search(r"\b11\b|\b11[- ]?digit|\bndc ?11\b", text, _I):
        return "11-digit"
    if system == "modifier" and re.search(r"\bJ[WZ]\b", text, _I):
        return "JW/JZ"
    letter = re.search(r"\b([qjc])[- ]?codes?\b", text, _I) if system == "HCPCS" else None
    return letter.group(1).upper() if letter else None


def _named_systems(text: str) -> list[tuple[int, str]]:
    """(position, system) for each system the text names; a span claimed by an earlier
    system (PCS's "icd10 pcs") is not read again as a later one (ICD-10-CM's "icd10")."""
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for system, pattern in _SYSTEM_WORDS:
        for m in pattern.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append(m.span())
            found.append((m.start(), system))
            break
    return sorted(found)


# --- the answer's shape ----------------------------------------------------------------------

_SETTING = (("inpatient", re.compile(r"\binpatient\b|\binpt\b|\bIP\b|\badmi(?:t|tted|ssion)\b|\bDRG\b", _I)),
            ("outpatient", re.compile(r"\boutpatient\b|\boutpt\b|\bOP\b|\bHOPD\b|\bclinic\b|\boffice\b", _I)))

# Explicit question forms: the first that matches decides (contact before yes/no: "can you give
# me the fax" wants a number; "how much" before everything: "how much does it pay" is an amount).
_FORMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("contact", re.compile(r"\bfax\b|\bwhere (?:do|should|can|would) (?:i|we|u) (?:send|submit|fax|mail)|"
                           r"\bwhat (?:do|should) (?:i|we|u) (?:attach|send|include)|\battach(?:ments?)?\b|"
                           r"\bphone(?: ?(?:#|number))?\b|\bwho do (?:i|we) (?:call|contact)|\bportal\b|\bsubmit (?:it |the pa )?to\b", _I)),
    ("amount", re.compile(r"\bhow much\b|\bhow mcuh\b|\bwhat(?:'s| is| does)? (?:\w+ )?(?:pay(?:ing)?|reimburs\w*)\b", _I)),
    ("units", re.compile(r"\bhow many (?:billable )?units\b|\b(?:#|number|no\.?) (?:of )?units\b|\bunits? (?:each|per|for)\b|"
                         r"\bwhat goes on (?:the |each )?.{0,20}\blines?\b|\bhow many (?:vials|lines)\b", _I)),
    ("duration", re.compile(r"\bhow long\b|\bapproval duration\b|\bduration\b|\bexpire?s?\b|\bhow many (?:months|days|weeks)\b|"
                            r"\b(?:approval|auth(?:orization)?|PA)\b.{0,25}\b(?:good|valid|last)s? (?:for|thru|through|until)\b|"
                            r"\bauth(?:orization)? (?:length|period)\b", _I)),
    ("comparison", re.compile(r"\bvs\.?\b|\bversus\b|\bdiff(?:erence|erent)?\b|\bcompar(?:e|ed|ison)\b", _I)),
)
# A yes/no question starts a clause with an auxiliary ("... - does he meet ...").
_YES_NO = re.compile(r"(?:^|[-–—:;,?.!]\s*|\s-\s)(?:does|do|did|is|are|was|can|could|will|would|should|must|may|has|have|"
                     r"am i|r we|need(?:ed)? (?:a |an )?pa)\b|"
                     # or, with no wh-word, a state asked about: "PA required for carvykti w/ aetna?"
                     r"^(?!.*\b(?:what|which|how|where|when|who|why)\b).*\b(?:required|covered|needed|allowed|ok|okay|billable)\b.*\?\s*$",
                     _I)
_CRITERIA = re.compile(r"\bcriteria\b|\bcriterion\b|\brequirements?\b|\brequire[sd]?\b|\bwhat do (?:i|we|u) need\b|\bqualif|"
                       r"\beligib|\bmeet\b|\bcheck ?list\b|\bwhat(?:'s| is) (?:needed|required)\b", _I)
_AMOUNT = re.compile(r"\ballow(?:able|ed)\b|\bpa(?:ys?|ying|id|yment)\b|\bcoins\b|\bco-?insurance\b|\bASP\b|\bprice\b|"
                     r"\bpayment limit\b|\breimburs|\bcost\b|\bseq(?:uestration)?\b|\brate\b|\$\s?\d", _I)
_UNITS = re.compile(r"\bunits?\b|\bhow many\b", _I)
_ASK_CODE = re.compile(r"\b(?:what|which|wat|wich|whats|what's|wht)\b", _I)
_CODE_USE = re.compile(r"\b(?:ok|okay|valid|right|correct|still|instead|replace[sd]?|deleted|active|use|bill(?:ed)?|report)\b", _I)
# Answers that are not a code even when the question names one or a system.
_NO_CODE_KINDS = ("amount", "duration", "contact", "criteria", "general")


def _setting(text: str) -> str | None:
    found = [name for name, rx in _SETTING if rx.search(text)]
    return found[0] if len(found) == 1 else None


def _kinds(text: str) -> list[str]:
    """Every kind the text shows, the deciding one first (question forms, then a yes/no
    lead, then keywords)."""
    kinds = [kind for kind, rx in _FORMS if rx.search(text)]
    if _YES_NO.search(text):
        kinds.append("yes_no")
    for kind, rx in (("criteria", _CRITERIA), ("amount", _AMOUNT), ("units", _UNITS)):
        if rx.search(text):
            kinds.append(kind)
    return list(dict.fromkeys(kinds))


def _asked_systems(text: str, setting: str | None) -> list[str]:
    systems = [s for _, s in _named_systems(text)]
    if setting == "inpatient" and "CPT" in systems and re.search(r"\bproc(?:edure)? codes?\b", text, _I):
        systems = ["ICD-10-PCS" if s == "CPT" else s for s in systems]
    return list(dict.fromkeys(systems))


def _asks_which_system(text: str) -> bool:
    """'which/what' followed closely by a code system ("which rev code", "what's the POS")."""
    return any(_named_systems(text[m.end():m.end() + 40]) for m in _ASK_CODE.finditer(text))


def _codes_in_question(text: str) -> list[str]:
    systems = [code_system_of(code) for _, _, _, code in find_codes(text)]
    return [s for s in systems if s]


def _kind(text: str, kinds: list[str], systems: list[str]) -> str:
    """The deciding kind: an explicit form ("how much", "fax", "how long", "vs"), then a
    'which <system>' question, then a yes/no lead, then keywords, then a bare system named
    ("rev code q2056 op?"), else general."""
    explicit = [k for k, _ in _FORMS]
    first = next((k for k in kinds if k in explicit), None)
    if first:
        return first
    if systems and _asks_which_system(text):
        return "code"
    if kinds:
        return kinds[0]
    return "code" if systems else "general"


# conditions whose only code is a diagnosis code (a product, drug or service has codes of other systems)
_DIAGNOSIS_ONLY = re.compile(r"\bCRS\b|cytokine release|\bICANS\b|neurotox\w*|immune effector|parkinsonism|\bHLH\b", _I)


def answer_type(text: str) -> AnswerType:
    """What the question wants: the answer's kind and the code system it asks for (if any)."""
    setting = _setting(text)
    kinds = _kinds(text)
    systems = _asked_systems(text, setting)
    kind = _kind(text, kinds, systems)
    if kind in ("yes_no", "comparison") and not systems and _CODE_USE.search(text):
        mentioned = _codes_in_question(text)
        if mentioned and len(set(mentioned)) == 1:
            systems = mentioned[:1]  # "is 0540T ok ... or do i need 38228": which CPT code
    elif not systems and re.search(r"\bor\b", text, _I):
        mentioned = _codes_in_question(text)
        if len(mentioned) >= 2 and len(set(mentioned)) == 1:
            systems, kind = mentioned[:1], "code"  # "D89.832 or D89.833 for CRS gr 3": one code of that system
    elif kind in ("code", "general") and not systems and _DIAGNOSIS_ONLY.search(text) and re.search(r"\bcodes?\b", text, _I):
        # "also had ICANS grade 2 same stay, what code": a condition's code is its diagnosis code
        systems, kind = ["ICD-10-CM"], "code"
    if kind in _NO_CODE_KINDS:
        systems = []  # "what's medicare paying on a Q2053 line" names a code, asks an amount
    primary = systems[0] if systems else None
    return AnswerType(
        kind=kind, code_system=primary, code_systems=tuple(systems),
        detail=_details(text, primary) if primary else None,
        also=tuple(k for k in kinds if k != kind), setting=setting,
    )


# --- a code string's system ----------------------------------------------------------------------

# (system, pattern) on the upper-cased, trimmed code; first match wins.
_CODE_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("NDC", re.compile(r"\d{4,5}-\d{3,4}-(?:\d{1,2}|XX)|\d{5}-\d{4}-\d{2}|\d{10,11}")),
    ("DRG", re.compile(r"(?:MS-?)?DRG[ -]?\d{3}")),
    ("claim field", re.compile(r"(?:FL|BOX|FIELD) ?\d{1,2}[A-Z]?")),
    ("POS", re.compile(r"POS ?\d{2}")),
    ("revenue", re.compile(r"0\d{3}")),
    ("CPT", re.compile(r"\d{5}|\d{4}[TFU]")),
    ("HCPCS", re.compile(r"[A-V]\d{4}")),
    ("ICD-10-PCS", re.compile(r"(?=[0-9A-HJ-NP-Z]*\d)(?=[0-9A-HJ-NP-Z]*[A-Z])[0-9A-HJ-NP-Z]{7}")),
    ("ICD-10-CM", re.compile(r"[A-TV-Z]\d{2}(?:\.[0-9A-Z]{1,4}|\.X+)?|[A-TV-Z]\d[0-9A-Z](?:\.[0-9A-Z]{1,4})?")),
    ("modifier", re.compile(r"[A-Z]{2}|[A-Z]\d|\d[A-Z]")),
)
# Shapes that mean something only in the system the question asks about: a POS is two digits,
# and so are some modifiers (25, 59); a claim field is a number, possibly with a letter (24D);
# a DRG may be typed as its number alone. A shape of its own (Q2055) is never overridden.
_ASKED_SHAPES = {
    "POS": re.compile(r"\d{2}"),
    "modifier": re.compile(r"[A-Z0-9]{2}"),
    "claim field": re.compile(r"\d{1,2}[A-Z]?"),
    "revenue": re.compile(r"0?\d{3}"),
    "DRG": re.compile(r"\d{3}"),
}


def code_system_of(code: str, asked: str | None = None) -> str | None:
    """The system a code string belongs to (Q2055 HCPCS, 38228 CPT, 0540T CPT, XW033C3 PCS,
    Z51.11 ICD-10-CM, 0891 revenue, JW modifier, MS-DRG 018, 57894-502-01 NDC); None when the
    shape says nothing. `asked` is the system the question asks for: '21' is a POS only then."""
    c = " ".join(code.strip().upper().split())
    for system, pattern in _CODE_SHAPES:
        if pattern.fullmatch(c):
            return system
    shape = _ASKED_SHAPES.get(asked or "")
    return asked if shape and shape.fullmatch(c) else None


# --- does a table row answer it ------------------------------------------------------------------

_KIND_SYSTEM = {"hcpcs": "HCPCS", "cpt": "CPT", "cpt3": "CPT", "icd": "ICD-10-CM", "pcs": "ICD-10-PCS",
                "drg": "DRG", "ndc": "NDC"}
# Column names that hold a system's values ("POS", "Rev code", "UB-04 / 1500 field").
_COLUMN_WORDS = {
    "POS": re.compile(r"\bPOS\b|place of service", _I),
    "revenue": re.compile(r"\brev(?:enue)?\b", _I),
    "modifier": re.compile(r"\bmodifiers?\b", _I),
    "claim field": re.compile(r"\bfield\b|\bFL\b|\bbox\b|form locator", _I),
    "NDC": re.compile(r"\bNDC\b", _I),
    "HCPCS": re.compile(r"\bHCPCS\b", _I),
    "CPT": re.compile(r"\bCPT\b", _I),
    "DRG": re.compile(r"\bDRG\b", _I),
    "claim form": re.compile(r"\bclaim form\b|\bform\b", _I),
}


def _row_label_system(row: TableRow) -> set[str]:
    """Systems the row's first cell names ("ICD-10-PCS principal", "Drug HCPCS", "Z-code")."""
    return {s for _, s in _named_systems(row.cells[0])} if row.cells and row.cells[0] else set()


def row_answers(row: TableRow, at: AnswerType) -> bool:
    """Whether the row gives a value of the asked code system: a column named for it with a
    value, a code of that system in a cell, or the row's first cell naming it (a claim table's
    "ICD-10-PCS principal" row). A Z-code question wants a Z code or a "Z-code" row; a field
    question with a number wants that field."""
    system = at.code_system
    if system is None:
        return False
    codes = [code for kind, code in row.codes if _KIND_SYSTEM.get(kind) == system]
    if at.detail == "Z":
        return any(c.startswith("Z") for c in codes) or bool(re.match(r"z[- ]?codes?\b", row.cells[0], _I))
    if system == "HCPCS" and at.detail:  # "which Q code": a Q code, or the HCPCS column's J-code
        named_hcpcs = [v for n, v in zip(row.columns, row.cells, strict=True) if re.search(r"\bHCPCS\b", n)]
        return any(c.startswith(at.detail) for c in [*codes, *named_hcpcs])
    column = _COLUMN_WORDS.get(system)
    named = [v for name, v in zip(row.columns, row.cells, strict=True) if v and column and column.search(name)]
    if system == "claim field" and at.detail:
        return any(re.search(rf"(?<![\dA-Z]){re.escape(at.detail)}(?![\dA-Z])", v) for v in named)
    if system == "modifier" and any(re.search(r"\bJ[WZ]\b", v) for v in row.cells):
        return True
    if system == "DRG" and any(re.search(r"\bDRG\b", v) for v in row.cells[1:]):
        return True  # "Stage 5 CRS readmit ... DRG by principal manifestation": the DRG a stage takes
    return bool(codes or named or system in _row_label_system(row))
