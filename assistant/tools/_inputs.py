"""Input coercion shared by the calculators: numbers and numeric strings only, exact Decimals.

Why strict: a calculator that guesses ("72 kg" -> 72) hides mistakes; a clear CalcError lets the
clerk or the LLM fix the input. Floats are converted through `str()` so 1.85 stays 1.85.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import Any

from assistant.core.quantities import parse_number
from assistant.tools.errors import CalcError

CENT = Decimal("0.01")
LB_TO_KG = Decimal("0.45359237")   # exact, by definition
IN_TO_CM = Decimal("2.54")         # exact, by definition


def to_decimal(value: Any, field: str, label: str | None = None) -> Decimal:
    """A finite Decimal from an int, float, Decimal or numeric string; CalcError otherwise."""
    label = label or field.replace("_", " ")
    if isinstance(value, bool) or value is None:
        raise CalcError(f"Please give the {label} as a number.", field=field)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise CalcError(f"The {label} must be a finite number, not {value}.", field=field)
        result = Decimal(str(value))
    elif isinstance(value, str):
        try:
            result = parse_number(value)  # the question reader's rule: "1,000" is a thousand, "1,5" is 1.5
        except ValueError:
            raise CalcError(f"The {label} must be a number (got '{value}'); give units in the unit field.",
                            field=field) from None
    else:
        raise CalcError(f"Please give the {label} as a number.", field=field)
    if not result.is_finite():
        raise CalcError(f"The {label} must be a finite number.", field=field)
    if abs(result) > Decimal("1e12"):
        raise CalcError(f"The {label} ({value}) is far too large.", field=field)
    return result


def positive(value: Any, field: str, label: str | None = None) -> Decimal:
    d = to_decimal(value, field, label)
    if d <= 0:
        raise CalcError(f"The {label or field.replace('_', ' ')} must be greater than zero (got {value}).", field=field)
    return d


def to_int(value: Any, field: str, label: str | None = None, minimum: int = 1, maximum: int = 10_000) -> int:
    d = to_decimal(value, field, label)
    if d != d.to_integral_value():
        raise CalcError(f"The {label or field} must be a whole number (got {value}).", field=field)
    n = int(d)
    if n < minimum or n > maximum:
        raise CalcError(f"The {label or field} must be between {minimum} and {maximum} (got {value}).", field=field)
    return n


def to_text(value: Any, field: str, label: str | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CalcError(f"Please give the {label or field.replace('_', ' ')} as text.", field=field)
    return value.strip()


def to_decimal_list(values: Any, field: str, label: str | None = None) -> list[Decimal]:
    if values is None:
        return []
    if isinstance(values, (str, bytes)) or not isinstance(values, (list, tuple)):
        raise CalcError(f"The {label or field.replace('_', ' ')} must be a list of numbers, e.g. [80, 200, 400].", field=field)
    if len(values) > 6:
        raise CalcError(f"Give at most 6 {label or field.replace('_', ' ')}.", field=field)
    out = sorted({positive(v, field, label) for v in values}, reverse=True)
    return out


def to_date(value: Any, field: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise CalcError(f"The {field.replace('_', ' ')} must be a date like 2026-05-20 (got '{value}').", field=field)


def weight_kg(weight: Any, unit: Any = "kg", field: str = "weight") -> Decimal:
    """Weight in kg from kg or lb; plausible range (0, 350] kg."""
    w = positive(weight, field)
    u = to_text(unit, f"{field}_unit").lower()
    if u in ("kg", "kgs", "kilogram", "kilograms"):
        kg = w
    elif u in ("lb", "lbs", "pound", "pounds"):
        kg = w * LB_TO_KG
    else:
        raise CalcError(f"Weight unit must be kg or lb (got '{unit}').", field=f"{field}_unit")
    if kg > 350:
        shown = f"{fmt(w)} {u}" + ("" if u.startswith("k") else f" ({fmt(kg, 1)} kg)")
        raise CalcError(f"A weight of {shown} is outside the plausible range (up to 350 kg); please check it.", field=field)
    return kg


def height_cm(height: Any, unit: Any = "cm", field: str = "height") -> Decimal:
    """Height in cm from cm or inches; plausible range 30-250 cm."""
    h = positive(height, field)
    u = to_text(unit, f"{field}_unit").lower()
    if u in ("cm", "centimeter", "centimeters", "centimetre", "centimetres"):
        cm = h
    elif u in ("in", "inch", "inches", '"'):
        cm = h * IN_TO_CM
    else:
        raise CalcError(f"Height unit must be cm or in (got '{unit}').", field=f"{field}_unit")
    if cm < 30 or cm > 250:
        raise CalcError(f"A height of {h} {u} ({fmt(cm, 1)} cm) is outside the plausible range (30-250 cm); please check it.", field=field)
    return cm


def ceil_units(amount: Decimal, unit_size: Decimal) -> int:
    """Billing units, rounded up to a whole unit (Medicare Claims Processing Manual ch. 17 §10)."""
    return int((amount / unit_size).to_integral_value(rounding=ROUND_CEILING))


def fmt(value: Decimal | int, places: int | None = None) -> str:
    """Plain number text; `places` rounds half-up; trailing zeros of exact values trimmed."""
    d = Decimal(value)
    if places is not None:
        d = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        return f"{d:,f}"
    text = f"{d.normalize():f}" if d == d.to_integral_value() else f"{d:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, _, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-') or 0):,}"
    return sign + whole + ("." + frac if frac else "")


def money(value: Decimal) -> str:
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,.2f}"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def plain(value: Decimal | int) -> str:
    """Digits only, no grouping: for keys and inputs that code reads back."""
    d = Decimal(value)
    text = f"{d:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
