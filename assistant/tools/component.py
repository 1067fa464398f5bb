"""What a calculator is: one component that the router, the LLM's FunctionTools, the Calculators
tab and the tests are all generated from.

A component is declared once, in its own module (`assistant/tools/<name>.py`, as `CALCULATOR`):

- its **parameters** are the pure function's keyword parameters, each annotated with one of the
  types below and a `param(...)` description; from that one signature come the validation (with
  messages a billing clerk can act on), the JSON schema an LLM sees and the fields of its form;
- **what question it answers** (`description`) and **how it is planned** from an understood
  question (`plan`: calls with arguments, a question back for a missing figure, "answer from
  the sources", or not this calculator);
- **which passages back its result** (`supports`) and **which conflict notes it supersedes**
  (its result already shows both sides);
- the **pure function** that computes (`compute`).
"""

from __future__ import annotations

import datetime as dt
import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError, WithJsonSchema, create_model

from assistant.tools._inputs import to_decimal
from assistant.tools.errors import CalcError
from assistant.tools.result import ToolResult

# --- parameter types ------------------------------------------------------------------------
# Each validator returns the value the pure function receives, or raises CalcError with the
# clerk-readable message (kept by `Calculator.validate`).


def _label(info) -> str:
    return (info.field_name or "value").replace("_", " ")


def _number(value: Any, info) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, dict)):
        raise CalcError(f"{info.field_name} must be a number (got {type(value).__name__}).", field=info.field_name)
    return to_decimal(value, info.field_name, _label(info))


def _whole(value: Any, info) -> int | None:
    if value is None:
        return None
    d = _number(value, info)
    if d != d.to_integral_value():
        raise CalcError(f"The {_label(info)} must be a whole number (got {value}).", field=info.field_name)
    return int(d)


def _text(value: Any, info) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise CalcError(f"{info.field_name} must be text (got {type(value).__name__}).", field=info.field_name)
    return value


def _numbers(value: Any, info) -> list[Decimal] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise CalcError(f"{info.field_name} must be a list of numbers, e.g. [80, 200, 400].", field=info.field_name)
    return [to_decimal(v, info.field_name, _label(info)) for v in value]


def _date(value: Any, info) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise CalcError(f"{info.field_name} must be text (got {type(value).__name__}).", field=info.field_name)
    return value


Number = Annotated[Decimal, PlainValidator(_number), WithJsonSchema({"type": "number"})]
Whole = Annotated[int, PlainValidator(_whole), WithJsonSchema({"type": "integer"})]
Text = Annotated[str, PlainValidator(_text), WithJsonSchema({"type": "string"})]
Numbers = Annotated[list[Decimal], PlainValidator(_numbers), WithJsonSchema({"type": "array", "items": {"type": "number"}})]
IsoDate = Annotated[str, PlainValidator(_date), WithJsonSchema({"type": "string", "format": "date"})]

# how each type shows on a form (by its validator: Annotated metadata is not hashable)
_FORM_KINDS = {_number: "number", _whole: "number", _text: "text", _numbers: "list", _date: "text"}


@dataclass(frozen=True)
class Doc:
    """A parameter's documentation (annotation metadata): the LLM schema's description, the
    form's label, example value and choices."""

    description: str
    label: str | None = None
    example: Any = None
    choices: str | tuple[Any, ...] | None = None
    form: bool = True


def param(description: str, *, label: str | None = None, example: Any = None,
          choices: str | Sequence[Any] | None = None, form: bool = True) -> Doc:
    """A parameter's documentation, used as its annotation's metadata:
    `weight: Annotated[Number, param("Weight (kg unless weight_unit='lb')", label="Weight", example=70)]`.

    `choices` is a list, or the name of a reference list ("products", "indications") the form
    fills from the reference data; `form=False` keeps a parameter off the form (e.g. `today`)."""
    return Doc(description, label, example, tuple(choices) if isinstance(choices, (list, tuple)) else choices, form)


@dataclass(frozen=True)
class Parameter:
    """One parameter as the form and the docs see it."""

    name: str
    kind: str             # number | text | list
    description: str
    required: bool
    default: Any
    label: str
    example: Any = None
    choices: str | Sequence[Any] | None = None
    form: bool = True


# --- planning decisions -----------------------------------------------------------------------

@dataclass
class Plan:
    """Tool calls to make, or what is missing (then `ask_back` says it in words). An empty plan
    means: no calculator; answer from the sources."""

    calls: list[tuple[str, dict]] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    ask_back: str = ""
    derived: list[str] = field(default_factory=list)  # arithmetic done to form arguments, shown


def ask(needs: list[str], message: str) -> Plan:
    return Plan(needs=needs, ask_back=message)


def call(name: str, args: dict, derived: list[str] | None = None) -> Plan:
    return Plan(calls=[(name, args)], derived=list(derived or []))


# --- the component ----------------------------------------------------------------------------

PlanFn = Callable[[Any], "Plan | None"]             # (Planning) -> decision, or None: not this calculator
SupportsFn = Callable[[str, Sequence[str], Mapping[str, Any], Any], bool]  # (text, passage products, args, ref)


@dataclass(frozen=True)
class Calculator:
    name: str
    title: str
    description: str                 # what question it answers: the LLM's tool description, the form's help
    compute: Callable[..., ToolResult]
    plan: PlanFn | None = None
    priority: int = 100              # the router asks calculators in this order (lower first)
    supports: SupportsFn | None = None
    supersedes: frozenset[str] = frozenset()   # conflict notes its result already resolves
    inline_citations: bool = False   # its summary marks [n] = its n-th document citation (shown as the answer's citations)
    # ("carvykti NDC and payment limit"): the calculators whose claimed question this one also answers
    # a part of; its calls join theirs when `joins_with(planning, their plan, its plan)` accepts them
    joins: frozenset[str] = frozenset()
    joins_with: Callable[[Any, Plan, Plan], bool] | None = None

    # --- parameters ------------------------------------------------------------------------
    @cached_property
    def _hints(self) -> dict[str, Any]:
        return typing.get_type_hints(self.compute, include_extras=True)

    @cached_property
    def parameters(self) -> tuple[Parameter, ...]:
        out = []
        for name, p in inspect.signature(self.compute).parameters.items():
            hint = self._hints.get(name)
            doc = _doc(hint)
            if doc is None:
                continue  # not a user parameter (e.g. `reference`)
            out.append(Parameter(
                name=name, kind=_form_kind(hint), description=doc.description,
                required=p.default is inspect.Parameter.empty,
                default=None if p.default is inspect.Parameter.empty else p.default,
                label=doc.label or name.replace("_", " ").capitalize(),
                example=doc.example, choices=doc.choices, form=doc.form))
        return tuple(out)

    @cached_property
    def model(self) -> type[BaseModel]:
        """The pydantic model of the parameters: validation and the JSON schema."""
        fields: dict[str, Any] = {}
        for p in self.parameters:
            base = _base(self._hints[p.name])
            examples = [p.example] if p.example is not None and p.kind != "list" else None
            fields[p.name] = (base if p.required else base | None,
                              Field(... if p.required else p.default, description=p.description, examples=examples))
        return create_model(f"{self.name}_parameters", __config__=ConfigDict(extra="forbid"), **fields)

    def json_schema(self) -> dict:
        return self.model.model_json_schema()

    def validate(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments as the function takes them; CalcError (first problem) otherwise."""
        try:
            parsed = self.model.model_validate(dict(kwargs))
        except ValidationError as exc:
            raise self._calc_error(exc) from None
        return {p.name: getattr(parsed, p.name) for p in self.parameters
                if getattr(parsed, p.name) is not None or p.name in kwargs}

    def _calc_error(self, exc: ValidationError) -> CalcError:
        known = [p.name for p in self.parameters]
        errors = exc.errors(include_url=False)
        extra = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
        if extra:
            return CalcError(f"{self.name} has no parameter(s) {', '.join(extra)}; it takes {', '.join(known)}.",
                             field=extra[0])
        for err in errors:
            where = str(err["loc"][0]) if err.get("loc") else None
            original = (err.get("ctx") or {}).get("error")
            if isinstance(original, CalcError):
                return original
            if err["type"] == "missing":
                p = next(x for x in self.parameters if x.name == where)
                return CalcError(f"{self.name} needs {where} ({p.description}).", field=where)
        first = exc.errors()[0]
        return CalcError(f"{self.name}: {first.get('msg', 'invalid input')}.", field=str(first["loc"][0]) if first.get("loc") else None)

    def run(self, **kwargs: Any) -> ToolResult:
        """Validate, then compute; any bad input ends as a CalcError."""
        args = self.validate(kwargs)
        try:
            return self.compute(**args)
        except CalcError:
            raise
        except (ArithmeticError, ValueError, TypeError, OverflowError) as exc:  # last line of defence
            raise CalcError(f"{self.name}: the input could not be used ({exc}).") from exc


def _doc(hint: Any) -> Doc | None:
    return next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, Doc)), None)


def _base(hint: Any) -> Any:
    """`Annotated[Number, param(...)]` -> `Number` (the documentation stripped, validators kept)."""
    base, *meta = typing.get_args(hint)
    kept = tuple(m for m in meta if not isinstance(m, Doc))
    return Annotated[(base, *kept)] if kept else base


def _form_kind(hint: Any) -> str:
    for meta in getattr(hint, "__metadata__", ()):
        if isinstance(meta, PlainValidator):
            return _FORM_KINDS.get(meta.func, "text")
    return "text"




# --- parameters several calculators share -----------------------------------------------------
WeightUnit = Annotated[Text, param("kg or lb", label="Weight unit", choices=["kg", "lb"])]
HeightUnit = Annotated[Text, param("cm or in", label="Height unit", choices=["cm", "in"])]
IndicationParam = Annotated[Text, param("mm, mcl or all (needed for Tecartus)", label="Indication", example="mm",
                                        choices="indications")]
VIAL_LABEL = "Vial sizes in mg (optional, comma-separated)"
VIAL_COUNTS_LABEL = "Vials opened of each size (optional, same order)"
VIAL_COUNTS_DOC = ("How many vials of each size were opened, in the order of vial_sizes (e.g. [2, 1] for 2 x 400 mg + "
                   "1 x 200 mg); leave empty to work out the fewest vials that cover the amount")
