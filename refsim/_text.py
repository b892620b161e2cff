"""Plain-text tables for the command line and the reports (one formatter)."""
from __future__ import annotations


def table(rows, right=(), rule=False) -> str:
    """Rows of cells as aligned columns; column indices in ``right`` are right-aligned; ``rule``
    draws a line under the header row."""
    rows = [[str(c) for c in r] for r in rows]
    if not rows:
        return ""
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for j, r in enumerate(rows):
        out.append("  ".join(c.rjust(w[i]) if i in right else c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
        if rule and j == 0:
            out.append("-" * (sum(w) + 2 * (len(w) - 1)))
    return "\n".join(out)
