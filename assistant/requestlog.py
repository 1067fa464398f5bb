"""One log line per request (API ask, Gradio chat ask, feedback), without the question verbatim.

    2025-05-01T14:03:12.481+00:00 event=ask interface=api status=200 latency_ms=61.2 kind=answer
        tools=- citations=2 conv=3f9a1c2b user=h:9c2e41d0 q=h:5d0c9e1a7b42 len=35

(one line; wrapped here). Fields: ISO time (UTC, ms), event (ask | feedback), interface (api |
gradio), HTTP status for the API, latency in ms, the answer's kind (or `rejected` for a request
refused before the engine ran), the calculators called (names only, `-` if none), the number of
citations, the first 8 characters of the conversation id, who asked (`user=h:<8 hex>`, a salted
hash of the signed-in user's name; `-` without sign-in), and the question:

    CART_LOG_QUESTIONS=hash    (default) `q=h:<12 hex>` a salted SHA-256 of the question, and its length
    CART_LOG_QUESTIONS=redact  the question with personal details and figures replaced, quoted, cut to 200 chars:
                               "Pt John Smith DOB 3/4/1961 MRN 00123456, 82 kg, carvykti dose"
                               -> "Pt <name> DOB <dob> MRN <id>, <n> kg, carvykti dose"
    CART_LOG_QUESTIONS=full    the question verbatim (quoted, cut to 500 chars): patient figures included

What `redact` replaces: e-mail addresses (<email>), phone numbers (<phone>), a date after "DOB",
"d.o.b.", "date of birth" or "born" (<dob>), the value after an identifier label such as MRN, MR#,
account, member/subscriber/policy/claim id, MBI, SSN, and SSN-shaped 123-45-6789 (<id>), any other
date (<date>), anything with 5+ digits in a row (<id>), any other number (<n>), and person names
(<name>). Codes stay: Q2055, J9185, 0537T, XW033C3, C90.00 are words, not numbers, and the
reference data's codes (CPT 38228) and ICD-10 / UB-04 / CMS-1500 are set aside before the figures.

Names are found by heuristics, there being no offline name recogniser: a word is a name when it is
not on the allow-list (common English words, months and weekdays, US states, and the billing
vocabulary: products and drugs, regimens, payers and contractors, code systems, modifiers and
clinical abbreviations; plus every product, drug and payer name and every code in the reference
data) and it is
  - the word (up to three) after name, named, called, mr, mrs, ms, miss, dr, in any case ("mrs j");
  - a capitalised word after patient, pt, member, subscriber, insured ("Pt John Smith"), or two
    lowercase words after them neither of which is allow-listed ("pt john smith"; "pt coins for" stays);
  - a capitalised word that does not start a sentence ("... for Smith"), two capitalised words in a
    row anywhere ("John Smith", "JOHN SMITH"), or "Lastname, Firstname" (also in capitals);
  - a middle initial in a name ("John Q. Smith", "JONES, MARY A").
Mixed-case abbreviations (VRd, CrCl, NDCs, BCMA-naive) are never names.
What it cannot catch: a single name starting a sentence ("Smith needs ..."), a lone all-capitals
name ("FOR SMITH"), lowercase names without a cue or a single one after "pt" ("pt smith needs"),
names that are also allow-listed words (Will, May, June, Kaiser, Parkinson), addresses, and
identifiers with neither a label nor 5+ digits in a row. It also over-redacts: an unknown
capitalised word mid-sentence (a new drug, a hospital) becomes <name>. Use `hash` (the default)
where any such leak is unacceptable.

The salt is CART_LOG_SALT, or a random one per process (hashes then match within one run only:
enough to see the same question repeated, useless for recovering it). Lines go to the logger
"cart.requests": to stderr, or appended to CART_LOG_FILE when set. That file is created with mode
0600 (an existing one is tightened to 0600), because even hashed lines carry conversation ids and
timings, and it is reopened when logrotate moves it (a WatchedFileHandler; no `copytruncate` needed),
the new file again 0600. A deployment that configures logging itself can attach its own handler
to that logger instead (it then gets no default one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import logging.handlers
import os
import re
import secrets
import stat
import sys
import threading
from typing import NamedTuple

from assistant import config
from assistant.core import reference

LOGGER_NAME = "cart.requests"
MODES = config.spec("CART_LOG_QUESTIONS").choices  # ("hash", "redact", "full")
_REDACT_MAX, _FULL_MAX = 200, 500

logger = logging.getLogger(LOGGER_NAME)
_configured = False
_config_lock = threading.Lock()
_random_salt = secrets.token_hex(16)  # used when CART_LOG_SALT is unset: hashes match within one run


def mode() -> str:
    """CART_LOG_QUESTIONS (one of MODES); a bad value is a config.ConfigError."""
    return config.load().log_questions


def _salt() -> str:
    return config.load().log_salt or _random_salt


def configure() -> logging.Logger:
    """Attach the default handler once (stderr, or CART_LOG_FILE); checks the settings.

    An unusable CART_LOG_FILE (a missing directory, a file this user cannot open or chmod) raises
    here, at start-up, rather than losing every line later."""
    global _configured
    path = config.load().log_file
    with _config_lock:
        if _configured or logger.handlers:
            _configured = True
            return logger
        handler = PrivateWatchedFileHandler(path) if path else logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        _configured = True
    return logger


def _private_opener(path: str, flags: int) -> int:
    """os.open with mode 0600 for a new file (the umask can only remove bits from it), and an
    existing file readable by group or others tightened to 0600: the lines say who asked what when."""
    fd = os.open(path, flags, 0o600)
    try:
        st = os.fstat(fd)
        # a regular file only: never /dev/null or a pipe some deployment points the log at
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


class PrivateWatchedFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to a 0600 file and reopens it (0600 again) when logrotate renames or removes it.

    WatchedFileHandler checks the path's device and inode before each line; a plain FileHandler
    would keep writing into the rotated file forever. Its own reopen uses the builtin open (the
    umask's mode, often 0644), hence the opener here on every open, the first and each reopen."""

    def __init__(self, filename: os.PathLike | str) -> None:
        super().__init__(filename, mode="a", encoding="utf-8")

    def _open(self):
        # _builtin_open: FileHandler keeps it so that a reopen still works during interpreter shutdown
        return self._builtin_open(self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors,
                                  opener=_private_opener)


# --- the question, not verbatim --------------------------------------------------------------

_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
# dates: 2024-03-05, 03/05/2024, 3.5.24, 5 March 2024, March 5, 2024, Mar 2024
_DATES = (r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b",
          r"\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b",
          rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?(?:,?\s+\d{{2,4}})?\b",
          rf"\b(?=[adfjmnos]){_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{2,4}})?\b",
          rf"\b(?=[adfjmnos]){_MONTHS}\.?\s+\d{{4}}\b")  # the lookaheads: 2x faster over text without dates
# labels whose value is a person's identifier ("MRN: A12345", "mrn#12345", "member id XJ123456789")
_ID_LABELS = (r"mrn|mr\s?#|med(?:ical)?\s+rec(?:ord)?s?(?:\s+(?:number|no\.?))?|chart\s+(?:number|no\.?|#)|"
              r"acct|account(?:\s+(?:number|no\.?|id))?|(?:member|subscriber|policy|group|claim|patient|pt|medicare|"
              r"medicaid|insurance|encounter|visit|auth(?:orization)?|ref(?:erence)?)\s*(?:id|number|no\.?|#)|"
              r"subscriber|mbi|hicn|ssn|social\s+security(?:\s+(?:number|no\.?))?|fin|csn|id\s*(?=[:#])")
_ID_VALUE = r"(?:\d{3}[\s.-]\d{2}[\s.-]\d{4}\b|(?=[A-Za-z-]*\d)[A-Za-z0-9][A-Za-z0-9-]{1,})"
_PERSONAL = [  # first, while their shape is intact
    (re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"(?<![\w+])(?:\+?1[\s.-]?)?(?:\(\d{3}\)[\s.-]?\d{3}[\s.-]|\d{3}(?P<sep>[\s.-])\d{3}(?P=sep))\d{4}(?!\w)"),
     "<phone>"),
    (re.compile(r"(?P<label>\b(?=[bd])(?:dob|d\.o\.b\.?|date\s+of\s+birth|birth\s?date|born(?:\s+(?:on|in))?)\s*[:#=-]?\s*)"
                rf"(?:{'|'.join(_DATES)}|\b\d{{6,8}}\b|\b(?:19|20)\d\d\b)", re.I), r"\g<label><dob>"),
    (re.compile(rf"(?P<label>\b(?=[acefghimprsv])(?:{_ID_LABELS})\s*(?:#|no\.?|number)?\s*[:#=]?\s*){_ID_VALUE}", re.I), r"\g<label><id>"),
    (re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])"), "<id>"),  # SSN-shaped, unlabelled
]
# A code of the reference data (CPT 38228, ICD-10-CM D89.831, policy CP.PHAR.481, bb2121) or a code set's
# name (ICD-10, UB-04), set aside before the figures are replaced: a five-digit CPT code is no <id>.
_CODE = re.compile(r"(?<![\w.-])(?:(?P<form>(?:icd|ub|cms)-(?:9|10|11|04|1500))(?!\w)"
                   r"|(?=[a-z.-]*\d)[a-z0-9]+(?:[.-][a-z0-9]+){0,3}(?![\w-]|\.\w))", re.I)
_SET_ASIDE = "\x00"  # never in the text: _CONTROL removes it first
_FIGURES = [
    *((re.compile(d, re.I), "<date>") for d in _DATES),
    # identifiers with a long run of digits (MRN123456, account numbers), kept codes are short
    (re.compile(r"\b\w*\d{5,}\w*\b"), "<id>"),
    # any other number not part of a word: weights, doses, BSA, ages, amounts (codes like Q2055 stay,
    # and so do the decimals of an ICD-10 code: C90.00)
    (re.compile(r"(?<![A-Za-z0-9])\.\d+(?![A-Za-z0-9])"), "<n>"),
    (re.compile(r"(?<![A-Za-z0-9])(?<![A-Za-z]\d\d\.)[-+]?\d[\d,]*(?:\.\d+)?(?![A-Za-z0-9])"), "<n>"),
    # digits glued to units: 120kg, 1.85m2, 30mg (not a CPT category III code: 0537T)
    (re.compile(r"(?<![A-Za-z0-9])(?!\d{4}[A-Z]\b)\d+(?:[.,]\d+)?(?=[A-Za-z])"), "<n>"),
]
_DIGIT = re.compile(r"\d")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def redact(text: str) -> str:
    """The question with personal details, numbers, dates and long identifiers replaced, on one line."""
    text = _CONTROL.sub(" ", text)
    digits = _DIGIT.search(text) is not None  # every pattern but the e-mail one needs a digit
    for pattern, repl in _PERSONAL[:1] + (_PERSONAL[1:] if digits else []):
        text = pattern.sub(repl, text)
    allowed = _allow_list()
    kept: list[str] = []

    def set_aside(m: re.Match) -> str:
        if m["form"] or m[0].upper() in allowed.codes:
            kept.append(m[0])
            return _SET_ASIDE
        return m[0]

    text = _CODE.sub(set_aside, text) if digits else text
    text = _redact_names(text, allowed)  # before the figures: "D-5" is a code word, "D-<n>" would not be
    for pattern, repl in _FIGURES if digits else ():
        text = pattern.sub(repl, text)
    if kept:
        codes = iter(kept)
        text = re.sub(_SET_ASIDE, lambda _: next(codes, ""), text)
    text = " ".join(text.split())
    return text if len(text) <= _REDACT_MAX else text[:_REDACT_MAX] + "…"


# --- person names: heuristics over an allow-list (see the module docstring for what they miss)

# A word: letters with inner apostrophes or hyphens (O'Brien, Smith-Jones, CAR-T), not part of a
# code (Q2055, 0537T, C90.00, ICD-10) nor of a placeholder (<n>).
_WORD = re.compile(r"(?<![\w<>])[^\W\d_]+(?:['’-][^\W\d_]+)*(?![\w>])(?!-\d)")
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?:\s|$)")
_CUE_GAP = re.compile(r"[\s.:#,=(\[\"'“-]+")
_JOIN_GAP = {"", ".", ","}  # between two name words that become one <name>
# the next word is a name unless allow-listed, in any case ("Dr. Lee", "mrs j", "name: Smith, John")
_NAME_CUES = frozenset("name named called mr mrs ms miss mx dr".split())
# the next capitalised word is a name ("Pt John Smith", "PATIENT SMITH"), or the next two lowercase
# words when neither is allow-listed ("pt john smith"; but "pt coins for ..." keeps "coins")
_PERSON_CUES = frozenset("patient patients pt pts member beneficiary subscriber insured guarantor".split())
# drug abbreviations allowed inside a hyphenated regimen (Isa-Kd, Dara-Pd), not alone (Isa, Dara, Len are names)
_REGIMEN_PARTS = frozenset("isa dara elo len pom dex bort carfil cy flu kd pd rd vd".split())
_PLURAL_ACRONYM = re.compile(r"[A-Z]{2,}s")  # NDCs, CPTs

# The allow-list. Words typed in billing questions, kept so that a redacted log line still says
# what was asked. Words that are common given names or surnames (bill, mark, price, page, long,
# washington, georgia, isa, dara...) are left out on purpose: their lowercase use is redacted only
# after a cue, and capitalised they are more likely a name.
_COMMON = """
a about above according across actual actually add added additional address adjust adjusted adjustment admin administer
administered administering administration admission admit admitted adult adults advance advice advise after again against
age aged ago all allow allowable allowed alone along already also alternative although always am amount amounts among an
and another answer any anyone anything appeal appeals apply applies applied appropriate approval approve approved approx
april are around as ask asked asking at attach attached august available average avoid away
back based basis be because become been before begin being below benefit benefits between beyond billable billed billing
both breakdown bring but by
calculate calculated calculating calculation calculator call can cannot care case cases category cause change changed
changes charge charged charges check checked claim claims class clinic clinical code coded codes coding collect come
coming common compare complete completed compute concurrent condition conditions confirm consider considered contain
contains continue contract copay correct cost costs could count cover coverage covered covers criteria current currently
cycle
daily date dates day days dear deductible default define denial denials denied deny depend depends describe described
detail details determine did different direct discarded discharge discharged document documentation does doing done dose
doses dosing down drug drugs due during
each early effective either eligibility eligible else end enough ensure entire entry equal error estimate even ever every
example except expected explain
facility fee fees few final find first follow following follows for form format found frequency from full fully further
gave general generic get gets getting give given gives go goes going good got guidance guide guideline guidelines
had half happen happens has have having he hello help her here hey hi high his history hold home hospital how however
i if in include included includes including increase indicate indicated indication individual infuse infused infusion
initial inpatient instead instructions insurance insurer into invoice is issue it item items its
just keep kind know
label last late later least left less let letter level like limit limits line list listed look looking lookup low
made main make making many match max maximum me mean means medical medically medication medications meet method might
min minimum missing modifier modifiers month monthly months more most much multiple must my
necessary necessity need needed needs never new next no non none nor normal not note notes nothing now number numbers
of off office often ok okay old on once one ones only open or order ordered orders other others our out outpatient outside
over own
paid part partial past pay payable payer payers paying payment payments per percent perform performed period pharmacy
physician place plan plans please plus policy portion possible post pre prescribed prescriber prescribing prescription
previous pricing primary prior probably procedure procedures process product products professional program provide
provided provider providers purpose put
quantity quarter quarterly question questions quick
rate rather reason receive received receiving recent record records reduce refer reference regards regimen reimbursement
related release report reported request require required requirement requirements requires response result results
return revenue review right round rounded rounding rule rules
said same say schedule second secondary section see seen separate separately service services session set setting several
shall share she should show side since single site so some someone something specific start started state status stay
step still stop submit submitted such supply support sure
table take taken takes team tell than thank thanks that the their them then there these they thing this those though
three through time times today total treat treated treatment treatments trial true try two type types
under unit units unless unlisted until up update updated us use used uses using usual usually
valid value various versus very via visit vs
waste wastage want wanted was way we week weekly weeks weigh weighed weighing weighs weight well were what when where
whether which while who whom whose why will with within without work would write written wrong
year yearly years yes yet you your
do should does can which are did has have what how is could would may might must
january february march june july september october november december jan feb mar apr jun jul aug sep sept oct nov dec
monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun
"""
_DOMAIN = """
abecma carvykti tecartus breyanzi kymriah yescarta aucatzyl tecvayli elrexfio talvey lynozyfic amtagvi tecelra
idecabtagene vicleucel ciltacabtagene autoleucel brexucabtagene axicabtagene ciloleucel tisagenlecleucel lisocabtagene
maraleucel obecabtagene ide-cel cilta-cel brexu-cel axi-cel tisa-cel liso-cel obe-cel car-t car cart
fludarabine cyclophosphamide bendamustine tocilizumab actemra tofidence tyenne siltuximab sylvant anakinra kineret
dexamethasone decadron methylprednisolone solu-medrol steroids corticosteroids levetiracetam keppra emapalumab
ruxolitinib ivig filgrastim neupogen pegfilgrastim neulasta granix acyclovir valacyclovir fluconazole posaconazole
letermovir bactrim pentamidine rituximab rituxan cytoxan fludara treanda bendeka belrapzo mesna ondansetron zofran
diphenhydramine benadryl acetaminophen tylenol lenalidomide revlimid pomalidomide pomalyst bortezomib velcade
carfilzomib kyprolis daratumumab darzalex isatuximab sarclisa teclistamab elranatamab talquetamab belantamab blenrep
medicare medicaid centene carepartners connecticut aetna cigna humana unitedhealthcare uhc anthem elevance bcbs
highmark carefirst optum evernorth wellcare ambetter wellpoint tricare champva caresource amerigroup magellan evicore
carelon novitas palmetto noridian wps cgs ngs fcso emblemhealth fidelis premera regence wellmark excellus medi-cal
masshealth tenncare husky kaiser cvs
kite gilead novartis janssen squibb bristol-myers celgene autolus pfizer genentech amgen sanofi takeda
hcpcs cpt icd icd-cm icd-pcs pcs cm drg ms-drg ndc asp wac awp jw jz jg jb kx ga gz tb rems cms mac macs opps ipps apc
ntap bsa dos dob mrn mbi npi tin all mcl dlbcl lbcl fl mm rrmm cll sll pmbcl hgbcl tfl mzl nhl aml bcma crs icans hlh
tls iv po sc subq icu er snf hopd asc op ip pos tob ub hcfa rc rev nci fda nccn asco astct fact cibmtr ncd lcd
lca mln pa ppo hmo epo ma mapd medigap hipaa phi eob era edi clia mue ncci ptp oig cob abn ffs pbm ecog kg mg ml mcg
lb lbs cms-1500 ub-04 id no qty dx rx hx tx
lymphoma lymphomas myeloma leukemia lymphoblastic lymphocytic follicular mantle diffuse mediastinal marginal refractory
relapsed relapse remission cancer tumor oncology hematology transplant marrow stem apheresis leukapheresis
lymphodepletion lymphodepleting chemotherapy chemo bridging therapy therapies cytokine syndrome neurotoxicity neurologic
hospitalization toxicity adverse event monitoring cell cells hodgkin non-hodgkin acute chronic large grade transformed
b-cell t-cell product manufacturing infusion reinfusion
advantage supplement traditional original commercial government federal managed authorization precertification
preauthorization reconsideration redetermination peer-to-peer formulary specialty buy-and-bill investigational
certification outlier pass-through add-on carve-out coinsurance out-of-pocket fee-for-service single-dose vial bag
alabama alaska arizona arkansas california colorado delaware florida hawaii idaho illinois indiana iowa kansas kentucky
louisiana maine maryland massachusetts michigan minnesota mississippi missouri montana nebraska nevada ohio oklahoma
oregon pennsylvania tennessee texas utah vermont wisconsin wyoming
calculate compute explain list show tell give find verify confirm
vrd krd dpd drd kpd ird dkd kcd epd vd kd rd pd dvrd dkrd cy flu dex pom bort carfil
cns spep upep flc pcp hd ld ct ecog crcl imwg pet mrd sct asct auto md np rn op ip ppo hmo him cva uti cr scr vgpr
ef lvef gfr egfr cbc cmp ldh crp anc plt hgb wbc ot dx hx tx rx sx dz pmh hpi ros bmt hct gvhd cmv ebv hbv hcv hiv
mri ekg ecg echo bm fish ccs cpc hcc mdc los cc mcc poa pdx sdx si fy ytd carc rarc tpl dme lab labs neg nl
parkinson alzheimer hodgkin crohn burkitt richter castleman kaposi waldenstrom sjogren epstein barr guillain barre
meets met meet everything says chart coins coinsurance pick survival candidate safer safe wants consolidation
progressed progressing progression exposed triple maintenance maint induction tandem harvest prep transport receipt
box wk mo yo male female ratio kappa lambda involved measurable secretory lesions lytic ordering prescribing consult
file internal med heme onc peds came stopped intolerance neuropathy seizures stroke dementia infection active
weakness residual shows documented crit overall qualify pass reqs naive refractory relapsed exposure
"""
# pairs that are allowed together, though not alone ("West Virginia", "Blue Cross", "New York")
_PHRASES = """new hampshire|new jersey|new mexico|new york|north carolina|north dakota|south carolina|south dakota|
rhode island|west virginia|puerto rico|district of|of columbia|washington state|blue cross|cross blue|blue shield|
florida blue|health net|kaiser permanente|united healthcare|first coast|harvard pilgrim|tufts health|bristol myers|
myers squibb|part a|part b|part c|part d|medicare advantage|care partners|partners of"""
_STATIC_WORDS = frozenset(_COMMON.split()) | frozenset(_DOMAIN.split()) | _NAME_CUES | _PERSON_CUES
_STATIC_PHRASES = frozenset(" ".join(p.split()) for p in _PHRASES.split("|"))
class _Allowed(NamedTuple):
    ref: object  # the Reference these were built from (None: the static lists only)
    words: frozenset[str]  # never a name
    phrases: frozenset[str]  # word pairs never a name ("blue cross")
    codes: frozenset[str]  # the reference's codes and names with digits, kept as they are (CPT 38228, KTE-X19)


_allow_cache: _Allowed | None = None


def _allow_list() -> _Allowed:
    """The static lists plus every product, drug and payer name and every code in the reference
    data, so that a product added there is kept in the log without an edit here. Rebuilt only
    when the reference data changes (load_reference re-checks its files at most once a second)."""
    global _allow_cache
    try:
        ref = reference.load_reference()
    except (Exception, config.ConfigError):  # a broken reference directory must not break logging
        ref = None
    cached = _allow_cache
    if cached is not None and cached.ref is ref:
        return cached
    words, phrases = set(_STATIC_WORDS), set(_STATIC_PHRASES)
    for name in _reference_names(ref):
        parts = [_norm(m.group()) for m in _WORD.finditer(name)]
        if len(parts) == 1 and len(parts[0]) >= 5:  # short aliases (len, isa, dara, elo) are also given names
            words.add(parts[0])
        phrases.update(f"{a} {b}" for a, b in zip(parts, parts[1:], strict=False))
    codes = {str(c).upper() for table in (ref.hcpcs, ref.cpt, ref.pcs, ref.icd10cm) for c in table} if ref else set()
    codes |= {name.upper() for name in _reference_names(ref) if _DIGIT.search(name) and " " not in name}
    _allow_cache = _Allowed(ref, frozenset(words), frozenset(phrases), frozenset(codes))
    return _allow_cache


def _reference_names(ref) -> list[str]:
    """Product brands, generics, short names and aliases, payer names and aliases, drug-class names."""
    if ref is None:
        return []
    names = [n for p in ref.products for n in (p.brand, p.generic, *p.short_names, *p.aliases)]
    names += [n for p in ref.payers for n in (p.name, *p.aliases)]
    names += [n for members in ref.drug_classes.values() for n in members]
    return [n for n in names if isinstance(n, str)]


def _norm(word: str) -> str:
    """Lowercase, one apostrophe, no possessive: "Smith’s" -> "smith"."""
    word = word.lower().replace("’", "'")
    return word[:-2] if word.endswith("'s") else word.rstrip("'")


def _shape(word: str) -> str:
    """title (John, McDonald, O'Brien, Garcia-Lopez), upper (SMITH), initial (J), lower (john), or
    abbr: a mixed-case abbreviation or compound (VRd, CrCl, NDCs, BCMA-naive, M-spike, D-Rd), never a name."""
    if "-" in word:
        shapes = {_shape(part) for part in word.split("-")}
        if len(shapes) == 1 and shapes <= {"title", "upper"}:
            return shapes.pop()  # Garcia-Lopez, SMITH-JONES (or a regimen: Isa-Kd, allowed by its parts)
        return "lower" if word[0].islower() else "abbr"
    if not word[0].isupper():
        return "lower"
    if len(word) == 1:
        return "initial"
    if word.isupper():
        return "upper"
    if sum(c.isupper() for c in word) >= 2 and (len(word) <= 4 or _PLURAL_ACRONYM.fullmatch(word)):
        return "abbr"
    return "title"


class _NameScan:
    """One left-to-right pass over the words of a question, deciding for each whether it is part
    of a person's name. A word's decision may depend on the previous word's (a chain after a cue:
    "pt john q smith") and on the next word's shape (a run of two capitalised words)."""

    def __init__(self, text: str, matches: list[re.Match], words: frozenset[str], phrases: frozenset[str]):
        self.norms = [_norm(m.group()) for m in matches]
        self.shapes = [_shape(m.group()) for m in matches]
        ends = [0] + [m.end() for m in matches[:-1]]
        self.gaps = [text[e:m.start()] for e, m in zip(ends, matches, strict=True)]
        self.known = [self._is_known(i, words, phrases) for i in range(len(matches))]
        self.names: list[bool] = []
        self.chain: list[int] = []  # >0: the n-th word of a name that followed a cue

    def _is_known(self, i: int, words: frozenset[str], phrases: frozenset[str]) -> bool:
        norm, norms = self.norms[i], self.norms
        if self.shapes[i] == "abbr" or norm in words or norm.endswith("n't"):
            return True
        if "-" in norm and all(part in words or part in _REGIMEN_PARTS for part in norm.split("-")):
            return True
        return ((i > 0 and f"{norms[i - 1]} {norm}" in phrases)
                or (i + 1 < len(norms) and f"{norm} {norms[i + 1]}" in phrases))

    def _cue(self, i: int) -> str:
        """"name" or "person" when word i directly follows such a cue word, else ""."""
        if i == 0 or not _CUE_GAP.fullmatch(self.gaps[i]):
            return ""
        prev = self.norms[i - 1]
        return "name" if prev in _NAME_CUES else "person" if prev in _PERSON_CUES else ""

    def _joined(self, i: int) -> bool:
        """Word i continues word i-1's name: only spaces between ("John Smith"), or ". " after an initial."""
        if i <= 0 or i >= len(self.gaps) or not self.gaps[i]:
            return False
        gap = self.gaps[i].strip()
        return gap == "" or (gap == "." and self.shapes[i - 1] == "initial")

    def _unknown(self, i: int, lower: bool) -> bool:
        """Word i exists, is not allow-listed, and is lowercase (or capitalised, for lower=False)."""
        return i < len(self.norms) and not self.known[i] and (self.shapes[i] == "lower") == lower

    def _chain_after(self, i: int) -> int:
        """Word i's place in a name begun right after a cue (1, 2, 3), or 0."""
        cue, lower = self._cue(i), self.shapes[i] == "lower"
        if cue == "name" or (cue == "person" and (not lower or (self._unknown(i + 1, True) and self._joined(i + 1)))):
            return 1
        prev = self.chain[i - 1] if i > 0 else 0
        return prev + 1 if 0 < prev < 3 and self._joined(i) else 0

    def _capitalised_is_name(self, i: int) -> bool:
        if i > 0 and self.names[i - 1] and (self._joined(i) or self.gaps[i].strip() == ","):
            return True  # the next word of a name ("John SMITH", "SMITH, JOHN")
        if self.shapes[i] == "title" and i > 0 and not _SENTENCE_END.search(self.gaps[i]):
            return True  # capitalised mid-sentence: "... for Smith"
        nxt = i + 1  # a run of two ("John Smith", "JOHN SMITH", "J. Smith") or "Smith, John"
        return (self._unknown(nxt, False) and (self._joined(nxt) or self.gaps[nxt].strip() == ",")
                and not self.shapes[i] == self.shapes[nxt] == "initial")

    def _allowed_here(self, i: int) -> bool:
        """Allow-listed, unless an initial right after a name ("JONES, MARY A": "A" is no article there)."""
        return self.known[i] and not (self.shapes[i] == "initial" and i > 0 and self.names[i - 1] and self._joined(i))

    def run(self) -> list[bool]:
        for i in range(len(self.norms)):
            allowed = self._allowed_here(i)
            chain = 0 if allowed else self._chain_after(i)
            if allowed:
                named = False
            elif self.shapes[i] == "lower":
                named = chain > 0
            else:
                named = chain > 0 or self._capitalised_is_name(i)
            self.names.append(named)
            self.chain.append(chain if named else 0)
        return self.names


def _redact_names(text: str, allowed: _Allowed) -> str:
    """Person names -> <name>; a run of name words ("John Q. Smith", "Smith, John") is one <name>."""
    matches = list(_WORD.finditer(text))
    if not matches:
        return text
    scan = _NameScan(text, matches, allowed.words, allowed.phrases)
    names = scan.run()
    out, pos = [], 0
    for i, m in enumerate(matches):
        if not names[i]:
            continue
        if i > 0 and names[i - 1] and scan.gaps[i].strip() in _JOIN_GAP:
            pos = m.end()  # the previous <name> covers this word too
            continue
        out += [text[pos:m.start()], "<name>"]
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def question_hash(text: str) -> str:
    return hashlib.sha256((_salt() + "\x00" + text).encode("utf-8", "surrogatepass")).hexdigest()[:12]


def question_field(text: str, how: str | None = None) -> str:
    text = text if isinstance(text, str) else ""
    how = how or mode()
    if how == "full":
        shown = " ".join(_CONTROL.sub(" ", text).split())
        shown = shown if len(shown) <= _FULL_MAX else shown[:_FULL_MAX] + "…"
        return f"q={_quote(shown)} len={len(text)}"
    if how == "redact":
        return f"q={_quote(redact(text))} len={len(text)}"
    return f"q=h:{question_hash(text)} len={len(text)}"


def _quote(text: str) -> str:
    # JSON string escaping: one line, no raw control characters, unambiguous to parse back
    return json.dumps(text, ensure_ascii=False).encode("utf-8", "backslashreplace").decode("utf-8")


def user_field(user: object) -> str:
    """Who asked, as a salted hash (`h:<8 hex>`): one user's lines can be joined, the name is not
    written; `-` for the anonymous local user of CART_AUTH=none."""
    if not isinstance(user, str) or not user or user == "local":
        return "-"
    return "h:" + question_hash("user\x00" + user)[:8]


def short_id(conv_id: object) -> str:
    return str(conv_id)[:8] if isinstance(conv_id, str) and conv_id else "-"


def _token(value: object) -> str:
    """A field value without spaces or quotes (kinds and tool names are identifiers anyway)."""
    s = re.sub(r"[^\w.:+-]", "_", str(value))[:40]
    return s or "-"


# --- the lines -----------------------------------------------------------------------------

def line(*, event: str, interface: str, latency_ms: float, question: str = "", kind: str = "-",
         tools: list[str] | None = None, citations: int = 0, conversation_id: object = None,
         status: int | None = None, rating: int | None = None, how: str | None = None,
         user: str | None = None) -> str:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
    parts = [now, f"event={_token(event)}", f"interface={_token(interface)}"]
    if status is not None:
        parts.append(f"status={int(status)}")
    parts.append(f"latency_ms={float(latency_ms):.1f}")
    parts.append(f"kind={_token(kind)}")
    if rating is not None:
        parts.append(f"rating={int(rating):+d}")
    names = [_token(t) for t in (tools or [])]
    parts.append(f"tools={','.join(dict.fromkeys(names)) or '-'}")
    parts.append(f"citations={int(citations)}")
    parts.append(f"conv={_token(short_id(conversation_id))}")
    parts.append(f"user={user_field(user)}")
    parts.append(question_field(question, how))
    return " ".join(parts)


def _emit(text: str) -> None:
    try:
        configure()
        logger.info(text)
    except Exception:  # logging must never break a request
        pass


def log_ask(interface: str, question: str, answer=None, conversation_id=None, latency_ms: float = 0.0,
            status: int | None = None, kind: str | None = None, user: str | None = None) -> None:
    """One line for an ask. `answer`: the engine's Answer (or its dict), None if rejected before it."""
    try:
        data = answer.to_dict() if hasattr(answer, "to_dict") else (answer or {})
        tools = [c.get("name", "?") for c in data.get("tool_calls", []) if isinstance(c, dict)]
        text = line(event="ask", interface=interface, latency_ms=latency_ms, question=question,
                    kind=kind or data.get("kind", "-"), tools=tools,
                    citations=len(data.get("citations") or []), conversation_id=conversation_id,
                    status=status, user=user)
    except Exception:
        return
    _emit(text)


def log_feedback(interface: str, rating: int | None, question: str = "", answer: dict | None = None,
                 conversation_id=None, latency_ms: float = 0.0, status: int | None = None,
                 kind: str | None = None, user: str | None = None) -> None:
    try:
        data = answer if isinstance(answer, dict) else {}
        cits = data.get("citations")
        calls = data.get("tool_calls")
        tools = [c.get("name", "?") for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
        text = line(event="feedback", interface=interface, latency_ms=latency_ms,
                    question=question if isinstance(question, str) else "",
                    kind=kind or data.get("kind", "-"), tools=tools,
                    citations=len(cits) if isinstance(cits, list) else 0,
                    conversation_id=conversation_id, status=status, user=user,
                    rating=rating if rating in (1, -1) and not isinstance(rating, bool) else None)
    except Exception:
        return
    _emit(text)
