"""Node names for imported graphs: what another tool calls a node ("/enc1/Conv", "lif1.lif", "3"),
made a refsim name (letters, digits and "_"; unique in the graph)."""
from __future__ import annotations

import re


def unique_name(name, used: set, fallback: str, digit_prefix: str = "") -> str:
    """``name`` with every run of other characters replaced by "_", ``digit_prefix`` put before a
    leading digit, ``fallback`` when nothing is left, and "_2", "_3", ... appended until it is not
    in ``used`` (which it is then added to)."""
    base = re.sub(r"[^0-9A-Za-z_]+", "_", str(name or "")).strip("_") or fallback
    if digit_prefix and base[0].isdigit():
        base = digit_prefix + base
    out, k = base, 1
    while out in used:
        k += 1
        out = f"{base}_{k}"
    used.add(out)
    return out
