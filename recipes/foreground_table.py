"""The leave-one-source-out table: one row per held-out source, from the ``eval.json`` each
``HOLDOUT=SOURCE bash recipes/foreground_unet.sh`` run writes (every method on the same photos).

    python recipes/foreground_table.py runs/loso-ccp runs/loso-coco_mval ...   # markdown table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

METHODS = ("model", "graphcut", "grabcut")


def rows(runs: list[Path]) -> list[dict]:
    out = []
    for run in runs:
        summary = json.loads((run / "eval.json").read_text())
        source = next(iter(summary[METHODS[0]]))
        out.append(
            {"source": source, "images": summary[METHODS[0]][source]["images"]}
            | {m: summary[m][source]["mean_iou"] for m in METHODS if m in summary}
        )
    return out


def table(found: list[dict]) -> str:
    lines = [
        "| held-out source | photos | network alone | graph cut seeded by the network | GrabCut (central box) |",
        "|---|---|---|---|---|",
    ]
    for r in found:
        lines.append(
            f"| {r['source']} | {r['images']} | "
            + " | ".join(f"{r.get(m, float('nan')):.3f}" for m in METHODS)
            + " |"
        )
    means = {
        m: sum(r[m] for r in found) / len(found) for m in METHODS if all(m in r for r in found)
    }
    lines.append(
        f"| **mean of the {len(found)} sources** | | "
        + " | ".join(f"**{means.get(m, float('nan')):.3f}**" for m in METHODS)
        + " |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(rows([Path(p) for p in sys.argv[1:]])))
