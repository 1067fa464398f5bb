"""Whether a patient fits a CAR-T product's FDA-approved indications: each indication's criteria
met, not met or not stated, and the verdict a prior-authorization specialist needs first ("on
label: CARTITUDE-4", "not on label: no PI among the prior lines").

"carvykti 58M 1 prior line VRd, len refractory - on label?" is answered from the label's own
conditions, not from the nearest indication sentence (which may be the 4L+ one). The indications
and their criteria are reference data (`labels:` in `sources/reference/policies.yaml`, each with
its billing guide's words and the FDA approval); the criteria are checked the way a payer's are
(`payer_policy.check`), so "not stated" is never read as met.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any

from assistant.core.reference import Reference, get_reference, iso_date
from assistant.core.scenario import REGIMEN_CLASSES, dose_cells_in, read_scenario
from assistant.tools.component import Calculator, IsoDate, Plan, Text, call, param
from assistant.tools.errors import CalcError, MissingDataError
from assistant.tools.payer_policy import FAILED, MARK, MET, UNKNOWN, check, merged, why
from assistant.tools.planning import PATIENT, Planning
from assistant.tools.result import ToolResult, cite


def label_check(
        product: Annotated[Text, param("The CAR-T product", label="Product", example="carvykti", choices="products")],
        scenario: Annotated[Text, param("The patient's facts as written: age, disease, prior lines, prior drugs, "
                                        "refractoriness (e.g. '58M RRMM, 1 prior line VRd, len refractory')",
                                        label="Patient scenario", example="58M RRMM, 1 prior line VRd, len refractory")],
        dos: Annotated[IsoDate, param("Date of service (YYYY-MM-DD): an indication approved later is not checked",
                                      label="Date of service (optional, YYYY-MM-DD)")] = None,
        history: Annotated[Text, param("Earlier turns of the conversation, oldest first, one per line (their facts "
                                       "apply unless the scenario changes them)", form=False)] = None,
        today: Annotated[IsoDate, param("Today's date (YYYY-MM-DD): turns a date of birth into an age",
                                        form=False)] = None,
        payer: Annotated[Text, param("A payer the thread names that has no policy for the product in the sources",
                                     form=False)] = None,
        reference: Reference | None = None) -> ToolResult:
    """The verdict against each FDA-approved indication of `product` in force on `dos`."""
    ref = get_reference(reference)
    prod = ref.product(product or "")
    if prod is None:
        raise CalcError(f"I don't know the product '{product}'.", field="product")
    label = ref.label(prod.id)
    if label is None:
        raise MissingDataError(f"My reference data has no FDA indications to check for {prod.brand}.", field="product")
    day = dt.date.fromisoformat(today) if today else dt.date.today()
    service = dt.date.fromisoformat(dos) if dos else day
    texts = [t for t in (history or "").splitlines() if t.strip()] + [scenario or ""]
    cart = tuple(p.id for p in ref.products if p.car_t)  # a CAR-T product named is the request unless said to be had
    facts = merged(ref, texts, cart, day)
    if not facts.given:
        raise MissingDataError("Give the patient's facts to check against the label (age, disease, prior lines and "
                               "drugs, e.g. '58M RRMM, 1 prior line VRd, len refractory').", field="scenario")
    if facts.lines_all_named():  # "1 prior line DRd": the line is DRd, so no PI was had
        facts = replace(facts, ruled_out=facts.ruled_out | (REGIMEN_CLASSES - facts.classes))
    indications = [i for i in label["indications"] if (iso_date(i.get("approved")) or dt.date.min) <= service]
    if not indications:
        raise MissingDataError(f"{prod.brand} had no FDA-approved indication on {service.isoformat()}.", field="dos")
    checked = [(ind, [(c, check(c["check"], facts)) for c in ind["criteria"]]) for ind in indications]
    citations = [cite(f"doc:{label['doc']}", label.get("section", ""), ind["quote"]) for ind in indications]
    citations += [cite(f"labels#{ind['id']}", ind["name"], ind["cite"]) for ind in indications]
    blocks = [f"- **{ind['name']}** [{i}]\n" + "\n".join(f"  - {MARK[s]} {c['text']}{why(c, s, facts, ref)}" for c, s in rows)
              for i, (ind, rows) in enumerate(checked, 1)]
    verdict, state = _verdict(prod.brand, checked, facts, ref)
    verdict += f" Read from the question: {'; '.join(facts.described(dict(ref.class_names)))}."
    warnings = []
    if payer and (named := ref.payer(payer)) is not None:
        warnings.append(f"My sources hold no {named.name} policy for {prod.brand}: this checks the FDA label only; "
                        "the plan's own criteria may differ.")
        verdict += f" (No {named.name} policy for {prod.brand} is in my sources: this is the FDA label only.)"
    return ToolResult(
        name="label_check", inputs={"product": prod.id, "scenario": scenario, "dos": service.isoformat()},
        values={"product": prod.id, "verdict": state,
                "indications": [{"id": ind["id"], "met": all(s == MET for _, s in rows),
                                 "failed": [c["n"] for c, s in rows if s == FAILED],
                                 "not_stated": [c["n"] for c, s in rows if s == UNKNOWN]} for ind, rows in checked]},
        summary=verdict + "\n\n" + "\n".join(blocks),
        formula=f"{len(checked)} FDA-approved indication(s) of {prod.brand} on {service.isoformat()}, each criterion "
                "met / not met / not stated; on label when every criterion of one indication is met",
        assumptions=["A criterion the question gives no fact for is 'not stated', never assumed met.",
                     "Whether the payer covers it is a separate question: its policy may ask for more than the label."],
        warnings=warnings, citations=citations)


def _verdict(brand: str, checked: list[tuple[Mapping[str, Any], list]], facts, ref: Reference) -> tuple[str, str]:
    """The first line: on label (the indication met), not on label (what fails each), or not yet known."""
    met = next((ind for ind, rows in checked if all(s == MET for _, s in rows)), None)
    if met is not None:
        return f"**Yes, on label: this patient fits {brand}'s FDA-approved indication {met['name']}.**", "on label"
    failing = [(ind, [c for c, s in rows if s == FAILED]) for ind, rows in checked]
    if all(f for _, f in failing):
        reasons = "; ".join(f"{_short_name(ind)}: {', '.join(c['short'] + why(c, FAILED, facts, ref) for c in f)}"
                            for ind, f in failing)
        return f"**No, not on label for {brand}: no FDA-approved indication fits.** {reasons}.", "not on label"
    open_ = [(ind, [c for c, s in rows if s == UNKNOWN]) for ind, rows in checked if not any(s == FAILED for _, s in rows)]
    ind, unknown = min(open_, key=lambda x: len(x[1]))
    return (f"**Cannot tell yet whether this is on label for {brand}**: nothing fails the indication {ind['name']}, "
            f"but the question does not state: {', '.join(c['short'] for c in unknown)}.", "not stated")


def _short_name(ind: Mapping[str, Any]) -> str:
    """'CARTITUDE-4' from the indication's name (its trial), else the name."""
    m = re.search(r"\(([^()]+)\)\s*$", ind["name"])
    return m.group(1) if m else ind["name"]


# --- the component ------------------------------------------------------------------------
# "on label?", "is she eligible for carvykti", "FDA approved for this pt", "does he qualify for tecartus"
_LABEL_ASKED = re.compile(r"\b(?:on|off)[- ]?label\b|\bper (?:the )?label\b|\blabel (?:indication|criteria|reqs?)\b|"
                          r"\bwithin (?:the )?label\b|\bFDA[- ]?(?:approved|indicat\w*|label)\b|\bindicated\b|"
                          r"\belig\w*|\bqualif\w*|\bmeets? (?:the )?(?:label|indication)|\bapproved for (?:her|him|this|the pt|pt)\b|"
                          r"\bcan (?:she|he|they|pt|the pt|we) (?:get|have|receive)\b", re.I)
# "and carvykti for her", "what about tecartus?": the thread's patient, another product
_OTHER_PRODUCT = re.compile(r"^\s*(?:and|what about|how about|ok (?:and|what about))\b", re.I)
# "what if the 1 prior line was VRd": the same label question with one fact changed
_WHAT_IF = re.compile(r"^\s*(?:what if|and if|if|same (?:but|pt but)|now)\b", re.I)


def _plan(p: Planning) -> Plan | None:
    """A patient scenario asked against a CAR-T product's label (no payer whose policy answers it)."""
    prod = p.ref.product_by_id(p.q.product or "")
    if prod is None or p.ref.label(prod.id) is None or p.q.product in p.q.prior_products:
        return None
    payers = [x for x in p.q.payers if x != "medicare"]
    if payers and p.ref.policy(payers[0], prod.id) is not None:
        return None  # the payer's own criteria answer (payer_policy)
    asked = _LABEL_ASKED.search(p.q.text)
    label_thread = any(_LABEL_ASKED.search(h) for h in p.q.history[-3:])
    switched = bool(p.q.history) and (_OTHER_PRODUCT.search(p.q.text) and (PATIENT.search(p.q.text) or payers or label_thread)
                                      or _WHAT_IF.search(p.q.text) and label_thread)
    if not (asked or switched) or set(p.q.intents) & {"payment", "code", "units", "ndc"} or dose_cells_in(p.q.text):
        # (a cell count asked "within label?" is the cell-dose range's question)
        return None
    history = [h for h in p.q.history if h.strip()]
    if not any(read_scenario(t, p.ref, (prod.id,), p.today).given for t in [*history, p.q.text]):
        return None  # "what is carvykti indicated for": the indications, quoted (no patient to check)
    args: dict[str, Any] = {"product": prod.id, "scenario": p.q.text, "today": p.today.isoformat()}
    if p.q.service_date is not None and p.q.service_date.source != "today":
        args["dos"] = p.q.service_date.day.isoformat()
    if history:
        args["history"] = "\n".join(history)
    if payers:
        args["payer"] = payers[0]
    return call("label_check", args)


CALCULATOR = Calculator(
    name="label_check", title="FDA label check", priority=6, compute=label_check, plan=_plan,
    description="A patient scenario checked against a CAR-T product's FDA-approved indications (age, disease, prior "
                "lines and drug classes, lenalidomide-refractory, prior BTK inhibitor): on label, not on label (and "
                "what fails), or what the question does not state.",
    inline_citations=True,
)
