"""The calculator registry: one table of tools used by the engine (`run_tool`) and by the LLM
(`function_tools()`), built from the same functions so both paths compute identically.

`run_tool` validates parameter names and simple types first (numbers or numeric strings for
numeric parameters; no "72 kg"), so every bad input ends as a CalcError with a readable message.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Optional

from assistant.tools.bsa import bsa
from assistant.tools.cell_dose import cell_dose
from assistant.tools.errors import CalcError
from assistant.tools.lymphodepletion import lymphodepletion_plan
from assistant.tools.ndc import ndc
from assistant.tools.payment import payment
from assistant.tools.result import ToolResult
from assistant.tools.tocilizumab import tocilizumab_dose
from assistant.tools.units import dose_units

# parameter kinds: "number", "int", "str", "date", "numbers"
_PY_TYPES = {"number": float, "int": int, "str": str, "date": str, "numbers": list[float]}


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    description: str
    required: bool = False
    default: Any = None


@dataclass(frozen=True)
class Tool:
    name: str
    fn: Callable[..., ToolResult]
    description: str
    params: tuple[Param, ...] = field(default_factory=tuple)

    def signature(self) -> inspect.Signature:
        """Keyword-only signature with real (not string) annotations, for the JSON schema."""
        out = []
        for p in self.params:
            t = _PY_TYPES[p.kind]
            ann = t if p.required else Optional[t]
            default = inspect.Parameter.empty if p.required else p.default
            out.append(inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann))
        return inspect.Signature(out, return_annotation=dict)


TOOLS: dict[str, Tool] = {t.name: t for t in [
    Tool("bsa", bsa, "Body surface area (m²) from height and weight: Mosteller by default, DuBois on request.", (
        Param("height", "number", "Height (cm unless height_unit='in')", True),
        Param("weight", "number", "Weight (kg unless weight_unit='lb')", True),
        Param("height_unit", "str", "cm or in", default="cm"),
        Param("weight_unit", "str", "kg or lb", default="kg"),
        Param("method", "str", "mosteller (default) or dubois", default="mosteller"),
    )),
    Tool("dose_units", dose_units, "HCPCS billing units for an administered drug amount (rounded up per date of "
         "service), with JW/JZ waste when vial sizes are given. Q-codes are always 1 unit.", (
        Param("code", "str", "HCPCS code, e.g. J9185", True),
        Param("amount_mg", "number", "Amount given per date of service, in mg (not needed for Q-codes)"),
        Param("days", "int", "Number of dates of service with that amount", default=1),
        Param("vial_sizes", "numbers", "Single-dose vial sizes in mg, e.g. [50]"),
    )),
    Tool("lymphodepletion_plan", lymphodepletion_plan, "Fludarabine/cyclophosphamide lymphodepletion for a CAR-T "
         "product and indication: mg per day, HCPCS units per date of service and total, calendar dates.", (
        Param("product", "str", "Product name or HCPCS, e.g. Abecma, Carvykti, Tecartus", True),
        Param("indication", "str", "mm, mcl or all (needed for Tecartus)"),
        Param("bsa_m2", "number", "Body surface area in m² (or give height and weight)"),
        Param("height", "number", "Height (cm unless height_unit='in')"),
        Param("weight", "number", "Weight (kg unless weight_unit='lb')"),
        Param("height_unit", "str", "cm or in", default="cm"),
        Param("weight_unit", "str", "kg or lb", default="kg"),
        Param("infusion_date", "date", "CAR-T infusion date (day 0), ISO format YYYY-MM-DD"),
    )),
    Tool("cell_dose", cell_dose, "Target CAR-T cell dose range (cells) for a product, indication and weight, caps "
         "applied; the claim carries 1 unit of the Q-code.", (
        Param("product", "str", "Product name or HCPCS", True),
        Param("indication", "str", "mm, mcl or all (needed for Tecartus)"),
        Param("weight", "number", "Weight (kg unless weight_unit='lb'); not needed for Abecma"),
        Param("weight_unit", "str", "kg or lb", default="kg"),
    )),
    Tool("tocilizumab_dose", tocilizumab_dose, "Tocilizumab (J3262) dose for CRS by weight (max 800 mg), units, "
         "dosing limits, and discarded amount when vial sizes are given.", (
        Param("weight", "number", "Weight (kg unless weight_unit='lb')", True),
        Param("weight_unit", "str", "kg or lb", default="kg"),
        Param("vial_sizes", "numbers", "Vial sizes in mg, e.g. [80, 200, 400]"),
    )),
    Tool("payment", payment, "Medicare Part B payment for a HCPCS line: payment limit × units, coinsurance, "
         "Medicare's share with and without 2% sequestration, for a quarter (default newest).", (
        Param("code", "str", "HCPCS code, e.g. Q2055", True),
        Param("units", "int", "Billing units", default=1),
        Param("quarter", "str", "Quarter like 2026Q1 (default: newest available)"),
        Param("today", "date", "Today's date (YYYY-MM-DD) for the stale-quarter check; default: the system date"),
    )),
    Tool("ndc", ndc, "Normalise an NDC to 11 digits (5-4-2) and find its product and HCPCS; a 5-digit labeler "
         "lists the candidate products.", (
        Param("ndc", "str", "NDC (hyphenated 10-digit, or 11-digit) or 5-digit labeler", True),
    )),
]}


def _check(tool: Tool, kwargs: dict) -> dict:
    known = {p.name: p for p in tool.params}
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise CalcError(f"{tool.name} has no parameter(s) {', '.join(unknown)}; it takes {', '.join(known)}.",
                        field=unknown[0])
    out = {}
    for p in tool.params:
        value = kwargs.get(p.name, None)
        if value is None:
            if p.required:
                raise CalcError(f"{tool.name} needs {p.name} ({p.description}).", field=p.name)
            continue
        if p.kind in ("number", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
                raise CalcError(f"{p.name} must be a number (got {type(value).__name__}).", field=p.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise CalcError(f"{p.name} must be a finite number (got {value}).", field=p.name)
        elif p.kind in ("str", "date"):
            if not isinstance(value, str):
                raise CalcError(f"{p.name} must be text (got {type(value).__name__}).", field=p.name)
        elif p.kind == "numbers":
            if not isinstance(value, (list, tuple)) or any(isinstance(v, bool) or not isinstance(v, (int, float, Decimal, str)) for v in value):
                raise CalcError(f"{p.name} must be a list of numbers, e.g. [80, 200, 400].", field=p.name)
        out[p.name] = value
    return out


def run_tool(name: str, **kwargs: Any) -> ToolResult:
    """Run a calculator by name; bad input of any kind raises CalcError."""
    tool = TOOLS.get(name) if isinstance(name, str) else None
    if tool is None:
        raise CalcError(f"There is no calculator '{name}'. Available: {', '.join(TOOLS)}.", field="name")
    args = _check(tool, kwargs)
    try:
        return tool.fn(**args)
    except CalcError:
        raise
    except (ArithmeticError, ValueError, TypeError, OverflowError) as exc:  # last line of defence
        raise CalcError(f"{name}: the input could not be used ({exc}).") from exc


def function_tools() -> list:
    """llama-index FunctionTools over the same functions; they return the result dict or an
    error message string and never raise."""
    from llama_index.core.tools import FunctionTool

    tools = []
    for tool in TOOLS.values():
        def make(t: Tool):
            def call(**kwargs: Any) -> dict | str:
                try:
                    return run_tool(t.name, **kwargs).to_dict()
                except CalcError as exc:
                    return f"Error: {exc.message}"
                except Exception as exc:  # never raise into the agent loop
                    return f"Error: {t.name} failed ({type(exc).__name__})."
            call.__name__ = t.name
            call.__doc__ = t.description
            call.__signature__ = t.signature()  # type: ignore[attr-defined]
            call.__annotations__ = {p.name: (_PY_TYPES[p.kind] if p.required else Optional[_PY_TYPES[p.kind]]) for p in t.params}
            return call
        tools.append(FunctionTool.from_defaults(fn=make(tool), name=tool.name, description=tool.description))
    return tools
