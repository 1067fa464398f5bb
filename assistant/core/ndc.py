"""One NDC normalizer: the 10-digit package layouts (4-4-2, 5-3-2, 5-4-1) to the 11-digit 5-4-2
form claims carry (with the N4 qualifier), for the NDC calculator and the CMS crosswalk importer.
"""

from __future__ import annotations

import re

# which part gets the leading zero for each 10-digit layout (None: already 11 digits)
_PAD = {(4, 4, 2): 0, (5, 3, 2): 1, (5, 4, 1): 2, (5, 4, 2): None}
LAYOUTS = ("4-4-2", "5-3-2", "5-4-1", "5-4-2")


class NdcError(ValueError):
    """Text that cannot be read as one NDC; the message says what to type instead."""


def normalize_ndc(text: str) -> tuple[str, str]:
    """(11-digit 5-4-2 with hyphens, the input's layout). An unhyphenated 10-digit NDC is
    refused: 4-4-2, 5-3-2 and 5-4-1 would give three different 11-digit NDCs."""
    raw = str(text)
    s = re.sub(r"^\s*N4\s*", "", raw, flags=re.I).strip().replace(" ", "-")
    if re.fullmatch(r"\d+(-\d+){2}", s):
        parts = s.split("-")
        layout = tuple(len(p) for p in parts)
        if layout not in _PAD:
            raise NdcError(f"'{raw}' is not a valid NDC layout ({'-'.join(map(str, layout))}); NDCs are 4-4-2, 5-3-2, "
                           f"5-4-1 (10 digits) or 5-4-2 (11 digits).")
        i = _PAD[layout]
        if i is not None:
            parts[i] = "0" + parts[i]
        return "-".join(parts), "-".join(map(str, layout))
    if re.fullmatch(r"\d+", s):
        if len(s) == 11:
            return f"{s[:5]}-{s[5:9]}-{s[9:]}", "11 digits"
        if len(s) == 10:
            raise NdcError(f"'{raw}' has 10 digits without hyphens, which is ambiguous (4-4-2, 5-3-2 or 5-4-1 give "
                           f"different 11-digit NDCs). Please type it with hyphens as printed on the package, or give "
                           f"the 11-digit NDC.")
    raise NdcError(f"'{raw}' is not an NDC. Give 10 digits with hyphens (e.g. 71287-119-01) or 11 digits.")


def ndc11_or_none(text: str) -> str | None:
    """The 5-4-2 form, or None when `text` is not one readable NDC (a crosswalk cell)."""
    try:
        return normalize_ndc(re.sub(r"\s", "", str(text)))[0]
    except NdcError:
        return None


def digits(text: str) -> str:
    return re.sub(r"\D", "", str(text))
