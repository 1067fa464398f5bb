"""A payer's coverage policy, checked: each criterion met, failed or not stated for a patient
scenario, with the policy's own words; or, with no scenario, the criteria as a readable list;
or the policy fact asked for (approval duration, fax, what to attach).

A prior-authorization specialist with a member in front of them needs the verdict and the
criterion that decides it ("does not meet criterion 7: prior anti-BCMA therapy"), not the
nearest sentence of the policy. The criteria are reference data (`sources/reference/policies.yaml`,
each with its exact quote); this component compares the scenario's facts with them. A payer or
product whose policy the corpus does not hold is said to be missing, never answered from
another policy.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any

from assistant.core.reference import Reference, get_reference
from assistant.core.scenario import DISEASES, Scenario, read_scenario
from assistant.tools.component import Calculator, IsoDate, Plan, Text, call, param
from assistant.tools.errors import CalcError, MissingDataError
from assistant.tools.planning import PATIENT, Planning
from assistant.tools.result import ToolResult, cite

_MA = re.compile(r"\bMA\b|medicare advantage|\bMAPD\b|\bD-?SNP\b", re.I)  # a Medicare Advantage member or plan
TOPICS = ("criteria", "duration", "fax", "phone", "documentation", "pa_required", "outpatient", "redose", "review", "basis", "tocilizumab",
          "dates", "lines", "dose")
MET, FAILED, UNKNOWN = "met", "not met", "not stated"
MARK = {MET: "✓", FAILED: "✗", UNKNOWN: "?"}


def payer_policy(
        payer: Annotated[Text, param("The payer (centene, carepartners-ct)", label="Payer", example="centene",
                                     choices="payers")],
        product: Annotated[Text, param("The product the request is for", label="Product", example="abecma",
                                       choices="products")],
        scenario: Annotated[Text, param("The patient's facts as written: age, prior lines, prior drugs by name, "
                                        "findings (e.g. '72 y/o, 4 prior lines incl len, bort, dara; had Tecvayli')",
                                        label="Patient scenario", example="72 y/o, 4 prior lines incl len, bort, dara")] = None,
        topic: Annotated[Text, param("What is asked: criteria (default), duration, fax, documentation, pa_required, "
                                     "outpatient, redose, review, basis, tocilizumab, dates, lines", label="Topic",
                                     choices=list(TOPICS))] = "criteria",
        history: Annotated[Text, param("Earlier turns of the conversation, oldest first, one per line (their facts "
                                       "apply unless the scenario changes them)", form=False)] = None,
        today: Annotated[IsoDate, param("Today's date (YYYY-MM-DD): dates lab values and turns a date of birth into "
                                        "an age", form=False)] = None,
        asked_about: Annotated[Text, param("The question as typed: a criterion it names leads a criteria list",
                                           form=False)] = None,
        codes: Annotated[Text, param("Codes the question names, comma-separated: a policy fact about those codes "
                                     "answers before the general one", form=False)] = None,
        reference: Reference | None = None) -> ToolResult:
    """The verdict (or criteria list, or policy fact) for one payer's policy on one product."""
    ref = get_reference(reference)
    pol = _policy(ref, payer, product)
    topics = [t.strip() for t in str(topic or "criteria").split(",") if t.strip()]
    if unknown := [t for t in topics if t not in TOPICS]:
        raise CalcError(f"Unknown topic {unknown[0]!r}; known: {', '.join(TOPICS)}.", field="topic")
    doc, name = pol["doc"], pol["name"]
    if topics != ["criteria"] and "criteria" not in topics:
        return _facts(pol, topics, ref, _with_replaced(ref, codes))
    texts = [t for t in (history or "").splitlines() if t.strip()] + ([scenario] if scenario else [])
    facts = merged(ref, texts, (pol["product"],), dt.date.fromisoformat(today) if today else dt.date.today())
    if facts.given and not PATIENT.search(asked_about or "") and (
            not facts.facts and _absent_focus(pol, asked_about or "") or _rule_asked(pol, asked_about or "", ref, today)):
        # "centene renal function requirement?", "does abecma require a hem/onc prescriber": a rule is
        # asked about (its words are not a member's findings)
        facts = Scenario()
    rows = [(c, check(c["check"], facts)) for c in pol["criteria"]]
    citations = [cite(f"doc:{doc}", pol.get("criteria_section", ""), c["quote"]) for c in pol["criteria"]]
    lines = [(f"- {MARK[state]} {c['n']}. {c['text']}{why(c, state, facts, ref)} [{i}]" if facts.given
              else f"- {c['n']}. {c['text']} [{i}]") for i, (c, state) in enumerate(rows, 1)]
    failed = [c for c, s in rows if s == FAILED]
    unknown = [c for c, s in rows if s == UNKNOWN]
    unchecked = not_criteria(pol, facts, ref)
    verdict = _verdict(pol, rows, facts, ref)
    answered_first = bool(unchecked) and not any(s in (MET, FAILED) for _, s in rows)
    if answered_first:
        # "pt had Tecvayli - is that a problem?": the one fact the question gives is answered first
        verdict = f"**Not a criterion of {pol['name']}: {', '.join(unchecked)}.** " + verdict
    verdict = _asked_criterion(pol, rows, facts, asked_about or "", ref) + verdict
    if _MA.search(asked_about or "") and "medicare advantage" not in str(pol.get("lines_of_business", "")).lower():
        # "wellcare MA member - which centene criteria apply": this policy is not the one for that plan
        verdict = (f"**{name} does not apply to Medicare Advantage (it covers {pol['lines_of_business']}); my sources do not "
                   "hold this payer's Medicare Advantage criteria.** The policy's own criteria, for its plans: " + verdict)
    if not facts.given and (focus := _focus(pol, asked_about or "")) is not None:
        reading = facts.said.get(focus["check"]["fact"])  # "M-protein 0.3 g/dL, is that measurable?": the figure's reading
        verdict = (f"**{name}, criterion {focus['n']}: {focus['text']}.** [{pol['criteria'].index(focus) + 1}] "
                   + (f"**From the question: {reading}.** " if reading else "") + verdict)
    elif not facts.given and (absent := _absent_focus(pol, asked_about or "")):
        # "does carepartners require a specific prescriber": this policy has no such criterion
        verdict = f"**{name} has no criterion on {absent}: its {len(rows)} criteria are listed below.** " + verdict
    if facts.given:
        verdict += f" Read from the question: {'; '.join(facts.described(dict(ref.class_names)))}."
        if unchecked and not answered_first:
            verdict += f" Not criteria of this policy: {', '.join(unchecked)}."
    notes = [f"Not a criterion of this policy: {o} (the policy sets no limit for it; the plan's reviewer may still ask)."
             for o in unchecked]
    notes += [f"{name}: {f['text']} — not in my sources, so its requirements are not checked here."
              for f in pol.get("facts") or [] if f["topic"] == "basis"]
    asked_facts = _also_asked(pol, [t for t in topics if t != "criteria"], ref, codes, len(citations))
    if asked_facts is not None:
        verdict += " " + asked_facts[0]
        citations += asked_facts[1]
    summary = verdict + "\n\n" + "\n".join(lines)
    counts = {s: sum(1 for _, x in rows if x == s) for s in (MET, FAILED, UNKNOWN)}
    return ToolResult(
        name="payer_policy", inputs={"payer": pol["payer"], "product": pol["product"], "scenario": scenario, "topic": "criteria"},
        values={"policy": pol["id"], "verdict": ("criteria" if not facts.given else "not met" if failed
                                                  else "not stated" if any(c.get("of") != "request" for c in unknown)
                                                  else "met on condition" if unknown else "met"),
                "criteria": [{"n": c["n"], "state": s} for c, s in rows], **{k.replace(" ", "_"): v for k, v in counts.items()}},
        summary=summary,
        formula=(f"{len(rows)} criteria of {name}: {counts[MET]} met, {counts[FAILED]} not met, {counts[UNKNOWN]} not stated; "
                 f"read from the question: {', '.join(facts.described(dict(ref.class_names)))}" if facts.given else ""),
        assumptions=["A criterion the question gives no fact for is 'not stated', never assumed met."],
        warnings=notes, citations=citations)


# the question's own ask is about one criterion: "enough lines?", "over their limit?", "is that ok"
_ASKS_ONE = re.compile(r"\benough\b|\bsufficient\b|\bhow many\b|\bover (?:their|the|its) (?:limit|max\w*)|\bwithin\b|"
                       r"\bis (?:that|this|it) (?:ok|okay|enough|a problem)|"
                       r"\b(?:meet|satisfy|count for|pass)\w*\s+(?:the\s+)?[\w/-]+(?:\s+[\w/-]+)?\s+(?:criterion|requirement|crit)\b|"
                       r"\b(?:criterion|requirement|crit)\s+(?:pass\w*|met|ok|okay|count\w*|satisfied)\b|"
                       # "meets measurable dz?", "is that an exclusion"
                       r"\b(?:meet|satisfy|pass)\w*\s+(?:the\s+)?[\w/-]+\s+(?:dz|disease)\b|\b(?:dz|disease)\s+met\b|\b(?:an?|the) exclusion\b", re.I)


def _asked_criterion(pol: Mapping[str, Any], rows: list[tuple[Mapping[str, Any], str]], facts: Scenario, asked: str,
                     ref: Reference) -> str:
    """The criterion the question asks about, decided, before the overall verdict: the one fact a
    question gives ("planned dose 480 x10^6 cells, over their limit?"), or the criterion its last
    clause asks about ("... then KPd at relapse. does she have enough lines for abecma?")."""
    decided = [(c, state) for c, state in rows if state != UNKNOWN]
    if facts.facts == 1 and len(decided) == 1 and decided[0][1] == MET:
        c = decided[0][0]
        return (f"**{pol['name']}, criterion {c['n']} ({c['short']}): met{why(c, MET, facts, ref)}.** "
                "The question gives no other fact about the member. ")
    clause = re.split(r"[.;!?]\s+|\s[-–—]\s", asked.strip(" ?"))[-1]
    # "..., serum FLC 250 mg/L, no m-spike, meets measurable dz?": the last comma's part names the criterion
    focus = _focus(pol, clause) or _focus(pol, clause.rsplit(",", 1)[-1])
    if not (facts.given and _ASKS_ONE.search(clause)) or focus is None:
        return ""
    state = next(st for c, st in rows if c is focus)
    if state == FAILED and next(c for c, st in rows if st == FAILED) is focus:
        return ""  # the verdict leads with this criterion already
    if state == UNKNOWN and focus["check"]["fact"] not in facts.said:
        return ""  # (a fact read but not deciding it is said: "FLC 6 mg/dL below the threshold; progression not stated")
    return f"**{pol['name']}, criterion {focus['n']} ({focus['short']}): {state}{why(focus, state, facts, ref)}.** "


def _shown_short(c: Mapping[str, Any], facts: Scenario) -> str:
    fact = c["check"]["fact"]
    return f": not shown — {facts.said[fact]}" if fact in facts.said and fact not in facts.flags else ""


def _verdict(pol: Mapping[str, Any], rows: list[tuple[Mapping[str, Any], str]], facts: Scenario, ref: Reference) -> str:
    """The first line: the verdict and the criterion that decides it."""
    name = pol["name"]
    failed = [c for c, s in rows if s == FAILED]
    unknown = [c for c, s in rows if s == UNKNOWN]
    if not facts.given:
        return f"**{name}: the member must meet all of these criteria** ({pol.get('criteria_section', '')}):"
    if failed:
        first = failed[0]
        text = f"**Does not meet {name}: criterion {first['n']} ({first['short']}){why(first, FAILED, facts, ref)}.**"
        if len(failed) > 1:
            text += " Also not met: " + "; ".join(f"{c['n']} ({c['short']})" for c in failed[1:]) + "."
        return text
    if member := [c for c in unknown if c.get("of") != "request"]:
        # a figure given that does not settle it is said with the criterion ("urine M 150 mg below the threshold")
        return (f"**Cannot tell yet whether this member meets {name}**: nothing in the question fails a criterion, but "
                f"{len(member)} of {len(rows)} are not stated or not shown: "
                + "; ".join(f"{c['n']} ({c['short']}{_shown_short(c, facts)})" for c in member) + ".")
    if unknown:
        # only a condition on the request is left (the dose): the member meets the policy on it
        return (f"**Meets {name} on every criterion about the member; the request must also meet "
                + "; ".join(f"criterion {c['n']} ({c['short']})" for c in unknown) + ".**")
    return f"**Meets all {len(rows)} criteria of {name}.**"


# a question about what the policy requires, not about a member
_RULE_ASKED = re.compile(r"\bdo(?:es)?\b.{0,40}\brequire|\brequire[sd]?\b.{0,30}\?|\brequirement|"
                         r"\bdo(?:es)? (?:they|it|centene|carepartners|the (?:plan|policy|payer)) (?:need|want|ask)", re.I)
# a member described ("if she had tecvayli"): not a rule question, whatever else it says
_MEMBER_HAD = re.compile(r"\b(?:had|has had|got|received|was on|s/p|hx of)\b", re.I)
_FOCUS_WORDS = {"prescriber": r"prescrib|onc|hem|doctor|physician", "age": r"\bage\b|how old|years? old|\by/?o\b",
                "measurable": r"measurable|m-?protein|m-?spike|FLC|labs?\b|SPEP|UPEP", "prior_lines": r"\blines?\b|regimens?",
                "cns": r"\bCNS\b|seizure|stroke|neuro", "anti_bcma": r"BCMA|tecvayli|blenrep|elrexfio|bispecific",
                "cart": r"prior car-?t|car-?t before|previous car-?t",
                "dose_cells": r"\bdose\b|cells|\b(?:over|above|exceeds?|under|within) (?:their|the|its) (?:limit|max\w*)",
                "diagnosis_rrmm": r"diagnos|\bdx\b",
                # asked about, tested by no policy in the corpus: said plainly instead of a bare list
                "ecog": r"\bECOG\b|performance status|\bKPS\b|karnofsky",
                "organ": r"organ function|creatinine|\bCrCl\b|renal|dialysis|\bLFTs?\b|bilirubin|ejection fraction|\bLVEF\b",
                "infection": r"active infection|hepatitis|\bHIV\b|\bHBV\b|\bHCV\b"}


def _rule_asked(pol: Mapping[str, Any], text: str, ref: Reference, today: IsoDate | None) -> bool:
    """'carepartners require no prior car-t?': a criterion's requirement is asked, and the
    question says nothing about a member once the words naming that criterion are taken out."""
    focus = _focus(pol, text)
    if focus is None or not _RULE_ASKED.search(text) or _MEMBER_HAD.search(text):
        return False
    rest = re.sub(_FOCUS_WORDS[focus["check"]["fact"]], " ", text, flags=re.I)
    day = dt.date.fromisoformat(today) if today else dt.date.today()
    return not read_scenario(rest, ref, (pol["product"],), day).given


def _focus(pol: Mapping[str, Any], text: str) -> Mapping[str, Any] | None:
    """The criterion a question asks about ("centene prescriber req for abecma"), if exactly one fits."""
    hits = [c for c in pol["criteria"] if (rx := _FOCUS_WORDS.get(c["check"]["fact"])) and re.search(rx, text, re.I)]
    return hits[0] if len(hits) == 1 else None


_FOCUS_NAMES = {"prescriber": "the prescriber", "age": "age", "measurable": "measurable disease (labs)",
                "prior_lines": "the number of prior lines", "cns": "CNS disease", "anti_bcma": "prior anti-BCMA therapy",
                "cart": "prior CAR-T", "diagnosis_rrmm": "the diagnosis", "ecog": "performance status (ECOG)",
                "organ": "organ function", "infection": "active infections"}


def _absent_focus(pol: Mapping[str, Any], text: str) -> str | None:
    """What the question asks about that none of the policy's criteria tests, if exactly one thing."""
    tested = {c["check"]["fact"] for c in pol["criteria"]}
    hits = [f for f, rx in _FOCUS_WORDS.items() if f in _FOCUS_NAMES and f not in tested and re.search(rx, text, re.I)]
    return _FOCUS_NAMES[hits[0]] if len(hits) == 1 else None


def not_criteria(pol: Mapping[str, Any], facts: Scenario, ref: Reference) -> list[str]:
    """Findings the question gives that no criterion of this policy tests (ECOG, dialysis, CNS
    disease where the policy has no CNS criterion): said, so silence is not read as a check."""
    tested = {c["check"]["fact"] for c in pol["criteria"]}
    words = {"cns": "CNS disease", "prescriber": "the prescriber", "measurable": "measurable disease",
             "concurrent_cart": "concurrent CAR-T"}
    flags = [words.get(k, k) for k, v in facts.flags.items()
             if k not in tested and k in facts.said and v is (k == "cns")]  # only findings the question states
    bcma_only = set(ref.drug_classes.get("anti_bcma", ())) - set(ref.drug_classes.get("cart", ()))
    had = [d for d in facts.prior_drugs if d.lower() in bcma_only]
    if had and "anti_bcma" not in tested:
        flags.append(f"prior anti-BCMA therapy ({', '.join(had)})")
    return list(facts.other) + flags


def _policy(ref: Reference, payer: str, product: str) -> Mapping[str, Any]:
    payer_id = next((p.id for p in ref.payers if p.id == payer or payer.lower() in p.names), payer)
    prod = ref.product(product) or ref.product_by_id(product)
    pol = ref.policy(payer_id, prod.id if prod else product)
    if pol is not None:
        return pol
    payer_name = next((p.name for p in ref.payers if p.id == payer_id), payer)
    held = [p["name"] for p in ref.policies if p.get("payer") == payer_id]
    what = f"{payer_name}'s policy for {prod.brand if prod else product}"
    raise MissingDataError(f"My sources do not hold {what}, so I can't tell you its criteria"
                             + (f" (for {payer_name} they hold only {', '.join(held)}, which is about another product)."
                                if held else ".") + " Check the payer's own policy or portal.", field="payer")


def _with_replaced(ref: Reference, codes: Text) -> set[str]:
    """The codes asked and the codes they replaced: a policy written about 0540T speaks to 38228's service."""
    asked = {c.strip().upper() for c in str(codes or "").split(",") if c.strip()}
    return asked | {row.replaces for c in asked if (row := ref.any_code(c)) is not None and row.replaces}


def _also_asked(pol: Mapping[str, Any], topics: list[str], ref: Reference, codes: Text, offset: int) -> tuple[str, list] | None:
    """The policy facts asked beside a criteria check, as one bold sentence numbered after its citations."""
    if not topics:
        return None
    try:
        found = _facts(pol, topics, ref, _with_replaced(ref, codes), offset)
    except MissingDataError as exc:
        return str(exc), []
    return found.summary.split("\n\n")[0], found.citations


def _facts(pol: Mapping[str, Any], topics: list[str], ref: Reference, codes: set[str] = frozenset(), offset: int = 0) -> ToolResult:
    """The policy facts asked for, each in the policy's words; a fact about particular codes
    ("PA removed from 0537T-0540T") only when the question names one, and then instead of the
    general fact."""
    # "PA phone #": no policy gives one; the fax it gives is where the request goes, said as such
    no_phone = "phone" in topics and not any("phone" in _topics_of(f) for f in pol.get("facts") or [])
    looked = [*topics, "fax"] if no_phone and "fax" not in topics else topics
    rows = list({id(f): f for t in looked for f in pol.get("facts") or [] if t in _topics_of(f)}.values())
    about_codes = [r for r in rows if codes & set(r.get("codes") or [])]
    rows = about_codes or [r for r in rows if not r.get("codes")]
    if not rows:
        asked = " or ".join(_TOPIC_NAMES.get(t, t) for t in topics)
        raise MissingDataError(f"My sources do not give {asked} for this: {pol['name']}, the policy they hold, does not "
                               "say. Check the payer's portal or provider manual.", field="topic")
    lead = "; ".join(f"{r['text']} [{i}]" for i, r in enumerate(rows, offset + 1))
    if no_phone:
        lead = "My sources give no phone number for this; the policy gives a fax: " + lead
    successors = [(c, row) for c in sorted(codes) if (row := ref.any_code(c)) is not None and row.replaces
                  and any(row.replaces in (r.get("codes") or []) and c not in (r.get("codes") or []) for r in about_codes)]
    lead += "".join(f" ({c} replaced {row.replaces} on {row.valid_from.isoformat()}; the policy names the old code)"
                    for c, row in successors if row.valid_from)
    quotes = "\n".join(f"- \"{' '.join(r['quote'].split())}\" [{i}]" for i, r in enumerate(rows, offset + 1))
    return ToolResult(
        name="payer_policy", inputs={"payer": pol["payer"], "product": pol["product"], "topic": ",".join(topics)},
        values={"policy": pol["id"], "topics": topics},
        summary=f"**{pol['name']}: {lead}**\n\nThe policy's words:\n{quotes}", formula="",
        citations=[cite(f"doc:{pol['doc']}", ", ".join(_topics_of(r)), r["quote"]) for r in rows])


_TOPIC_NAMES = {"duration": "an approval duration", "fax": "a fax number or where to send the request", "phone": "a phone number",
                "documentation": "what to attach", "pa_required": "whether prior authorization is required",
                "outpatient": "an outpatient rule", "redose": "a re-dosing rule", "review": "who reviews the request",
                "basis": "the coverage basis", "tocilizumab": "a tocilizumab requirement",
                "dates": "the policy's effective or review date", "dose": "a dose limit", "lines": "which lines of business the policy applies to"}


def _topics_of(fact: Mapping[str, Any]) -> list[str]:
    topic = fact["topic"]
    return list(topic) if isinstance(topic, list) else [topic]


def merged(ref: Reference, texts: list[str], requested: tuple[str, ...], today: dt.date) -> Scenario:
    """The scenario of a thread: each turn's facts over the earlier ones ("what if she had
    Tecvayli" adds anti-BCMA even when an earlier turn said none)."""
    out = Scenario()
    for text in texts:
        new = read_scenario(text, ref, requested, today)
        if new.age is not None and out.age is not None and new.age != out.age:
            out = Scenario()  # "59yo, 2 prior lines ..." after a 66-year-old: another member, not the same one changed
        if out.prior_drugs and not new.prior_drugs and _NEVER_IT.search(text):
            # "what if she never had it": the therapy the thread named last, now ruled out
            last = out.prior_drugs[-1].lower()
            gone = {c for c, names in ref.drug_classes.items() if last in names}
            out = replace(out, prior_drugs=out.prior_drugs[:-1], classes=out.classes - gone)
            new = replace(new, ruled_out=new.ruled_out | gone)
        classes = (out.classes - new.ruled_out) | new.classes
        ruled = (out.ruled_out - new.classes) | new.ruled_out
        # a finding the new turn speaks to (even undecided, e.g. a new lab value) replaces the earlier reading
        kept = {k: v for k, v in out.flags.items() if k not in new.said}
        out = Scenario(age=new.age if new.age is not None else out.age,
                       # a count typed in a turn replaces the thread's; one counted from a drug named in passing does
                       # not, unless the turn adds it ("and if she then got KPd")
                       prior_lines=_lines(out, new, text),
                       prior_drugs=tuple(d for d in dict.fromkeys(out.prior_drugs + new.prior_drugs)
                                         if not _classes_of(ref, d) <= new.ruled_out),  # "scratch the blenrep"
                       classes=frozenset(classes), ruled_out=frozenset(ruled), flags={**kept, **new.flags},
                       said={**out.said, **new.said},
                       dose_cells=new.dose_cells if new.dose_cells is not None else out.dose_cells,
                       lines_counted=(new.lines_counted if new.prior_lines is not None and not (new.lines_counted and out.prior_lines)
                                      else out.lines_counted),
                       other=tuple(dict.fromkeys(out.other + new.other)), disease=new.disease or out.disease,
                       regimens_listed=new.regimens_listed or out.regimens_listed)
    return out


def _classes_of(ref: Reference, drug: str) -> set[str]:
    return {c for c, names in ref.drug_classes.items() if drug.lower() in names} or {"?"}


_NEVER_IT = re.compile(r"\b(?:never|not|didn'?t|did not|hasn'?t|has not|had no)\s+(?:had|have|received|receive|get|got|gotten)?\s*"
                       r"(?:it|that|those|them|this)\b", re.I)
_ADDED = re.compile(r"\bthen\b|\bnext\b|\bafter (?:that|it)\b|\bsince then\b|\balso (?:got|had)\b|\bin between\b", re.I)


def _lines(out: Scenario, new: Scenario, text: str) -> int | None:
    if new.prior_lines is None:
        return out.prior_lines
    if new.lines_counted and out.prior_lines:
        return out.prior_lines + new.prior_lines if _ADDED.search(text) else out.prior_lines
    return new.prior_lines


def check(rule: Mapping[str, Any], s: Scenario) -> str:
    """One criterion against the scenario: met, not met, or not stated."""
    fact = rule["fact"]
    if fact in ("age", "prior_lines"):
        value = getattr(s, fact)
        return UNKNOWN if value is None else MET if value >= rule["min"] else FAILED
    if fact == "dose_cells":
        return UNKNOWN if s.dose_cells is None else MET if s.dose_cells <= rule["max"] else FAILED
    if fact == "classes":
        if set(rule["all"]) <= s.classes:
            return MET
        return FAILED if set(rule["all"]) & s.ruled_out else UNKNOWN
    if "absent" in rule:
        return FAILED if fact in s.classes else MET if fact in s.ruled_out else UNKNOWN
    if "is" in rule:  # {fact: disease, is: mm}
        value = getattr(s, fact)
        return UNKNOWN if value is None else MET if value == rule["is"] else FAILED
    value = s.flags.get(fact)
    return UNKNOWN if value is None else MET if value == rule["present"] else FAILED


def why(c: Mapping[str, Any], state: str, s: Scenario, ref: Reference) -> str:
    """What the scenario says about a criterion, in a few words (empty when it says nothing)."""
    rule = c["check"]
    fact = rule["fact"]
    if state == UNKNOWN:
        return f" — not shown: {s.said[fact]}" if fact in s.said and fact not in s.flags else " — not stated"
    figures = {"age": lambda: f" — age {s.age}",
               "prior_lines": lambda: f" — {s.prior_lines} prior line{'s' if s.prior_lines != 1 else ''}",
               "dose_cells": lambda: (f" — {s.dose_cells / 1e6:g} × 10^6 cells {'is within' if state == MET else 'is over'} "
                                      f"{rule['max'] / 1e6:g} × 10^6")}
    figures["disease"] = lambda: f" — {DISEASES.get(s.disease, s.disease)}"
    if fact in figures:
        return figures[fact]()
    if fact == "classes":
        missing = [ref.class_names.get(k, k) for k in rule["all"] if k not in s.classes]
        if not missing:
            return " — all three had" if len(rule["all"]) == 3 else " — both had" if len(rule["all"]) == 2 else " — had"
        if state == FAILED:  # the classes the question rules out, not the ones it is silent about
            missing = [ref.class_names.get(k, k) for k in rule["all"] if k in s.ruled_out] or missing
        return " — missing: " + ", ".join(missing)
    if "absent" in rule:
        names = [d for d in s.prior_drugs if d.lower() in ref.drug_classes.get(fact, ())]
        had = ", ".join(names) or ref.class_names.get(fact, fact)
        return f" — the member had {had}" if state == FAILED else " — none, per the question"
    words = s.said.get(fact)
    if words:
        return f" — the question says “{words}”"
    return " — yes, per the question" if s.flags.get(fact) else " — no, per the question"


# --- the component ------------------------------------------------------------------------
_TOPIC_WORDS = {
    "duration": re.compile(r"how long|approval duration|duration|(?:good|valid|last|approved) for|expire|how many months|"
                          r"\b(?:auth(?:orization)?|approval|PA)\s+(?:length|period|span)\b", re.I),
    "fax": re.compile(r"\bfax\b|where (?:do (?:i|we) |to )(?:send|submit|fax)|submit (?:it )?to\b", re.I),
    "phone": re.compile(r"\b(?:tele)?phone\b|\bph\s*#|\bnumber to call\b|\bcall (?:them|for|to)\b", re.I),
    "documentation": re.compile(r"\battach|documentation|paperwork|what (?:do (?:i|we) )?(?:need to )?(?:send|submit)|records|"
                                r"need (?:me|us) to (?:send|submit)|(?:send|submit) (?:with|for) (?:the |an? )?(?:auth|PA|request)|"
                                r"what goes (?:w|with)\b|what (?:else )?(?:do (?:i|we) )?(?:include|need to include)", re.I),
    "pa_required": re.compile(r"(?:need|require)s? (?:a |an )?(?:PA|prior auth|auth)|(?:PA|prior auth\w*|auth) (?:is )?req(?:uired|'?d)?\b|"
                              r"is (?:a )?(?:PA|prior auth\w*) needed|\b(?:PA|prior auth\w*)\s+needed\b|"
                              r"\b(?:PA|prior auth\w*) (?:on|for) (?:the )?\d{4}[A-Z]\b", re.I),
    "outpatient": re.compile(r"\boutpatient\b|\bOP\b|\bout-?pt\b|\bHOPD\b|\binpatient\b|\bIP\b|site of care|\bsetting\b", re.I),
    "redose": re.compile(r"\bre-?dos|\bre-?treat|\breauth|\brenew|(?:second|2nd) (?:\w+ )?(?:dose|infusion)|"
                         r"another (?:\w+ )?(?:dose|infusion)|"
                         # "can she get it again", not "RRMM again" (a relapse)
                         r"\b(?:get|give|dose|infuse|receive|have|treat|do)\w*\s+(?:\w+\s+){0,2}again\b|"
                         r"\b(?:abecma|car-?t|ide-cel|cilta-cel|it|infusion|dose|product) again\b|"
                         r"subsequent dose|limit on (?:\w+ )?(?:infusions|doses)|how many (?:\w+ )?(?:infusions|doses)", re.I),
    "review": re.compile(r"\bPDAC\b|who reviews|committee", re.I),
    # which members the policy is for: "does it apply to their MA members", "lines of business"
    "lines": re.compile(r"\bappl(?:y|ies)\b[^?.]{0,20}\b(?:to|for)\b[^?.]{0,40}\b(?:members?|plans?|patients?|enrollees)|"
                       r"lines? of business|\bLOB\b|which (?:plans|members|products)\b|"
                       r"\b(?:does|do|is|are)\b[^?.]{0,30}\b(?:cover|apply|valid)\w*\b[^?.]{0,10}\b(?:for )?(?:medicaid|commercial|"
                       r"marketplace|medicare advantage|MA|HMO|PPO)\s+(?:members?|plans?|lines?)|"
                       # "for their commercial members too or just MA"
                       r"\b(?:too|also)\b[^?.]{0,12}\bor (?:just|only)\b|\bor (?:just|only) (?:MA|medicare advantage|commercial|medicaid)\b", re.I),
    "tocilizumab": re.compile(r"tocilizumab|actemra|\btoci\b", re.I),
    "dose": re.compile(r"\bmax(?:imum)?\s+(?:cell\s+)?dose\b|\b(?:cell\s+)?dose\s+(?:limit|cap|max\w*)\b|\bhow many cells\b|"
                      r"\bmax(?:imum)?\s+(?:number of\s+)?cells\b", re.I),
    # the policy's own dates: which revision a PA specialist is reading
    "dates": re.compile(r"effective date|\beff(?:ective)? dt\b|when (?:is|was|did|does) .{0,40}(?:effective|reviewed|revised|updated|take effect)|"
                        r"last (?:review(?:ed)?|revis(?:ed|ion)|updated?)\b|review date|revision date|"
                        r"(?:policy|guideline)s? (?:version|date)|how (?:old|current|recent) is", re.I),
}
_CRITERIA = re.compile(r"criteri|qualif|eligib|\bmeet|\bapprov|\bcover|\brequir\w*|\breqs?\b|"
                       r"\bminimum\b|\bPA\b|prior auth|\benough\b|\bauth\b|"
                       r"\bpolicy\b|\bget (?:it|abecma|ide)|"
                       r"\bok(?:ay)? for\b|\bcan (?:she|he|they|we|pt|the pt|member)\b|medically necessary|denied|deny", re.I)
_OTHER_TOPIC = re.compile(r"\bREMS\b|\bFACT\b|certif|boxed warning|contraindicat|\bNCD\b", re.I)
_ASKS = re.compile(r"\?|\bok\b|\bokay\b|\bproblem\b|\bissue\b|\bgood to go\b", re.I)
_TOPIC_FIRST = re.compile(r"\b(?:re-?dos|2nd|second|again|another|how long|fax|attach|send)\w*", re.I)
_NOT_POLICY = re.compile(r"how much(?![^?.]{0,40}\b(?:auth\w*|approval|PA)\b)|\$|allowable|allowed (?:amount|\$|\d)|payment limit|"
                         r"\bwhat (?:will|would|does|do|did) (?:the )?(?:plan|they|payer|it) (?:allow|pay)\b|"
                         r"\bpays?\b|\bpaid\b|coins|\bunits?\b|\bASP\b|hcpcs|\bcpt\b|"
                         r"icd|\bdx\b|\bpcs\b|rev(?:enue)? code|\bNDC\b|modifier|\bPOS\b|\bdescriptor\b", re.I)


_ADMIN_CPTS = re.compile(r"\badmin(?:istration)?\s+(?:cpts?|codes?)\b|\bcar-?t\s+(?:admin\w*\s+)?cpts\b", re.I)


def _codes_asked(p: Planning) -> str:
    """The codes a policy fact may be about: typed, or "the car-t admin cpts" (the administration codes)."""
    if p.q.codes:
        return ",".join(c.upper() for c in p.q.codes)
    return "0537T,0538T,0539T,0540T" if _ADMIN_CPTS.search(p.text) else ""


def _plan(p: Planning) -> Plan | None:
    """A coverage question for a payer (or a follow-up in a coverage thread)."""
    payers = [x for x in p.q.payers if x != "medicare"]
    if not payers or _NOT_POLICY.search(p.text):
        return None
    topics = _topics(p)
    if topics is None:
        return None
    # a follow-up in a coverage thread ("what if she had tecvayli", "and if she's carepartners instead?")
    in_thread = any((_CRITERIA.search(h) or _ASKS.search(h) and read_scenario(h, p.ref, (), p.today).given)
                    and not _NOT_POLICY.search(h) for h in p.q.history[-3:])
    if (product := _product_asked(p, payers[0])) is None:
        return None
    facts = read_scenario(p.q.text, p.ref, (product,), p.today)
    # a patient described to a payer ("cpct pt, 3rd line, len/bort/dara, never had car-t - abecma ok?") is a criteria check
    other_intents = set(p.q.intents) - {"policy"}
    pol = p.ref.policy(payers[0], product)
    if _label_instead(p, pol, product, in_thread) or pol is not None and _replaced(pol, p):
        return None  # (a replaced revision's record: the passages of the new one answer)
    focused = pol is not None and _focus(pol, p.text) is not None  # "is there an age max for abecma with centene"
    if not topics and not _CRITERIA.search(p.text) and not in_thread and not focused and not (
            facts.facts >= 2 or facts.given and (_ASKS.search(p.text) or not other_intents)):
        return None
    if not topics and not facts.given and (other_intents or _OTHER_TOPIC.search(p.q.text)) and not in_thread:
        return None  # "carepartners tocilizumab requirement before abecma": a policy sentence, not the criteria list
    args: dict[str, Any] = {"payer": payers[0], "product": product, "topic": ",".join(topics) or "criteria",
                            "today": p.today.isoformat()}
    if codes := _codes_asked(p):
        args["codes"] = codes
    checked = facts.facts >= 2 or _CRITERIA.search(p.text) and facts.given
    if not topics or checked and (not _TOPIC_FIRST.search(p.q.text) or _CRITERIA.search(p.q.text)):
        # "meets their abecma criteria? and fax #": the verdict, and the fact asked beside it
        args["topic"] = ",".join(["criteria", *topics]) if topics and _CRITERIA.search(p.q.text) else "criteria"
        args["scenario"] = p.q.text  # this turn's facts; the earlier turns' come as history
        args["asked_about"] = p.text
        if p.q.history:
            args["history"] = "\n".join(p.q.history)
    return call("payer_policy", args)


def _label_instead(p: Planning, pol: Mapping[str, Any] | None, product: str, in_thread: bool) -> bool:
    """'and carvykti for her' in a Centene thread (no Centene Carvykti policy): label_check answers,
    saying so; 'centene PA criteria for carvykti - pt ...': the missing policy is said first (here)."""
    return pol is None and p.ref.label(product) is not None and in_thread and not _CRITERIA.search(p.q.text)


def _product_asked(p: Planning, payer: str) -> str | None:
    """The CAR-T product the request is for, or the payer's only policy product."""
    prod = p.ref.product_by_id(p.q.product or "")
    # "never had tecvayli", "5L: ... Elrexfio 2025": a bispecific named in a CAR-T request is a prior therapy
    asked = p.q.product if prod is not None and prod.car_t and p.q.product not in p.q.prior_products else None
    return asked or _only_policy_product(p.ref, payer)


def _replaced(pol: Mapping[str, Any], p: Planning) -> bool:
    """Whether the record no longer holds on the date of service: a newer revision of the policy it
    was written from (added since with `python -m index add`) is in force and no longer has every
    passage the record quotes. (When it still has them, the record answers, citing that revision.)"""
    from index.corpus import configured_corpus

    corpus = configured_corpus()
    in_force = corpus.in_force(pol.get("doc", ""), p.q.service_day(p.today).isoformat())
    if in_force == pol.get("doc"):
        return False
    text = corpus.documents[in_force].text
    quotes = [c["quote"] for c in pol.get("criteria", ())] + [f["quote"] for f in pol.get("facts", ()) if f.get("quote")]
    return not all(q in text for q in quotes)


def _topics(p: Planning) -> list[str] | None:
    """The policy facts a question asks for (none: the criteria); None when it is another
    calculator's question ("centene pt 70 kg, toci dose?": the dose calculator's)."""
    # in the order asked: "PA needed? fax #?" answers the PA first
    topics = sorted((t for t, rx in _TOPIC_WORDS.items() if rx.search(p.text)), key=lambda t: _TOPIC_WORDS[t].search(p.text).start())
    if "outpatient" in topics and not re.search(r"cover|allow|criteria|attest|PA\b|prior auth|approv|qualif|eligib|\bmeets?\b|"
                                                r"\bcan (?:\w+ )?be (?:given|done|infused|administered)|"
                                                r"(?:need|have|has|must) (?:to )?be (?:given |done |administered )?(?:in|out)patient",
                                                p.text, re.I):
        topics.remove("outpatient")
    f = p.q.figures
    if "tocilizumab" in topics and (f.weight_kg or f.dose_mg or f.mg_per_kg or re.search(r"\bunits?\b|mg/kg", p.text, re.I)):
        topics.remove("tocilizumab")
        if not topics:
            return None
    return topics


def _only_policy_product(ref: Reference, payer: str) -> str | None:
    """'centene PA criteria?': the payer's only policy in the corpus decides the product."""
    held = {p["product"] for p in ref.policies if p.get("payer") == payer}
    return next(iter(held)) if len(held) == 1 else None


CALCULATOR = Calculator(
    name="payer_policy", title="Payer policy check", priority=5, compute=payer_policy, plan=_plan,
    description="A payer's coverage criteria for a product checked against a patient scenario (each criterion met, "
                "not met or not stated, with the policy's words), the criteria as a list, or a policy fact "
                "(approval duration, fax, what to attach). Says so when the corpus holds no such policy.",
    inline_citations=True,
)
