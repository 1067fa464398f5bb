"""The one exception calculators raise for bad input, with a message a billing clerk can act on.

Callers (the registry, the UI, the LLM tool wrapper) catch only `CalcError`; anything else is a
bug. `.field` names the input that was wrong so a form can highlight it.
"""

from __future__ import annotations


class CalcError(ValueError):
    """Bad or out-of-range input to a calculator."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


class UnknownCodeError(CalcError):
    """A HCPCS code the reference data does not know (or that has no payment limit)."""


class MissingDataError(CalcError):
    """What the sources or the reference data do not hold (a payer's policy, Medicare Advantage
    rates, a product's ICD-10-PCS code): "not in my sources", not bad input."""


class UnknownQuarterError(CalcError):
    """A payment-limit quarter that is not in the reference data."""
