"""Deterministic billing calculators (BSA, units, lymphodepletion, cell dose, tocilizumab,
payment, NDC) over the reference data in sources/reference/. Every result is a `ToolResult`
with its inputs, formula, assumptions, warnings and citations; bad input raises `CalcError`.
"""

from __future__ import annotations

from assistant.tools.errors import CalcError
from assistant.tools.reference import list_quarters, load_reference, resolve_product
from assistant.tools.registry import TOOLS, function_tools, run_tool
from assistant.tools.result import ToolResult

__all__ = ["CalcError", "ToolResult", "TOOLS", "run_tool", "function_tools", "load_reference",
           "list_quarters", "resolve_product"]
