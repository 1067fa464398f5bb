"""`ToolResult`: what every calculator returns, so UI, API and LLM read one shape.

Numbers in `values` are strings (exact Decimal digits) or ints, never floats, so JSON keeps every
digit and an answer's numbers can be traced back to a tool result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    """Decimals and dates to strings, recursively; floats to their repr (should not occur)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date,)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    return value


@dataclass
class ToolResult:
    name: str
    inputs: dict
    values: dict
    summary: str                      # one markdown line with the direct result
    formula: str                      # the arithmetic with the numbers filled in
    assumptions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    citations: list[dict] = field(default_factory=list)  # {"ref", "label", "quote"}

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "inputs": jsonable(self.inputs),
            "values": jsonable(self.values),
            "summary": self.summary,
            "formula": self.formula,
            "assumptions": list(self.assumptions),
            "warnings": list(self.warnings),
            "citations": jsonable(self.citations),
        }


def cite(ref: str, label: str, quote: str = "") -> dict:
    """A citation entry: `ref` is "hcpcs.yaml#J9185", "dosing.yaml#..." or "doc:<id>"."""
    return {"ref": ref, "label": label, "quote": quote}
