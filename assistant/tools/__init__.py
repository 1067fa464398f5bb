"""Deterministic billing calculators (BSA, units, lymphodepletion, cell dose, tocilizumab,
payment, NDC) over the typed reference data (`assistant.core.reference`). Each is one component
(`assistant/tools/<name>.py`, `CALCULATOR`); the registry collects them. Every result is a
`ToolResult` with its inputs, formula, assumptions, warnings and citations; bad input raises
`CalcError`.
"""

from __future__ import annotations

from assistant.tools.errors import CalcError
from assistant.tools.registry import TOOLS, calculators, function_tools, run_tool
from assistant.tools.result import ToolResult

__all__ = ["CalcError", "ToolResult", "TOOLS", "calculators", "run_tool", "function_tools"]
