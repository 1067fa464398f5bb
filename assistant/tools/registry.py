"""The calculator registry: every component in `assistant/tools/` (a module with a `CALCULATOR`),
found once, in the router's order. The engine (`run_tool`), the router, the LLM's FunctionTools
and the Calculators tab all read it, so a new calculator is one module plus its tests.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from assistant.tools.component import Calculator
from assistant.tools.errors import CalcError
from assistant.tools.result import ToolResult

_LOCK = threading.Lock()
_REGISTRY: dict[str, Calculator] = {}
_DISCOVERED = False


def _discover() -> None:
    """Import every module of this package once and collect its `CALCULATOR`."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import assistant.tools as package

    with _LOCK:
        if _DISCOVERED:
            return
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            calc = getattr(module, "CALCULATOR", None)
            if isinstance(calc, Calculator):
                _REGISTRY.setdefault(calc.name, calc)
        _DISCOVERED = True


def register(calc: Calculator) -> Calculator:
    """Add a component (the tools package's own are found automatically)."""
    _discover()
    with _LOCK:
        if calc.name in _REGISTRY and _REGISTRY[calc.name] is not calc:
            raise ValueError(f"a calculator named {calc.name!r} is already registered")
        _REGISTRY[calc.name] = calc
    return calc


def unregister(name: str) -> None:
    with _LOCK:
        _REGISTRY.pop(name, None)


@contextmanager
def registered(calc: Calculator) -> Iterator[Calculator]:
    """A component registered for the duration of a block (tests)."""
    register(calc)
    try:
        yield calc
    finally:
        unregister(calc.name)


def calculators() -> list[Calculator]:
    """All components in the router's order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda c: (c.priority, c.name))


def get(name: str) -> Calculator | None:
    _discover()
    return _REGISTRY.get(name) if isinstance(name, str) else None


class _Tools(Mapping[str, Calculator]):
    """`TOOLS[name]`: the registry as a read-only mapping."""

    def __getitem__(self, name: str) -> Calculator:
        calc = get(name)
        if calc is None:
            raise KeyError(name)
        return calc

    def __iter__(self):
        return iter([c.name for c in calculators()])

    def __len__(self) -> int:
        return len(calculators())


TOOLS: Mapping[str, Calculator] = _Tools()


def run_tool(name: str, **kwargs: Any) -> ToolResult:
    """Run a calculator by name; bad input of any kind raises CalcError."""
    calc = get(name)
    if calc is None:
        raise CalcError(f"There is no calculator '{name}'. Available: {', '.join(TOOLS)}.", field="name")
    return calc.run(**kwargs)


def function_tools() -> list:
    """llama-index FunctionTools over the same components: the schema is the component's
    parameter model (every parameter described); a CalcError reaches the LLM as an error."""
    from llama_index.core.tools import FunctionTool, ToolOutput

    def make(calc: Calculator) -> FunctionTool:
        def call(**kwargs: Any) -> ToolOutput:
            try:
                result = calc.run(**kwargs)
            except CalcError as exc:
                return ToolOutput(content=f"Error: {exc.message}", tool_name=calc.name, raw_input={"kwargs": kwargs},
                                  raw_output=exc, is_error=True)
            return ToolOutput(content=json.dumps(result.to_dict(), ensure_ascii=False), tool_name=calc.name,
                              raw_input={"kwargs": kwargs}, raw_output=result)

        call.__name__ = calc.name
        call.__doc__ = calc.description
        # the callback hands our ToolOutput back as the call's output (not wrapped in another)
        return FunctionTool.from_defaults(fn=call, name=calc.name, description=calc.description, fn_schema=calc.model,
                                          callback=lambda output: output)

    return [make(c) for c in calculators()]
