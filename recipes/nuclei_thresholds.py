"""Choose how a boundary model's probabilities become nuclei: seed and object thresholds.

    python recipes/nuclei_thresholds.py CHECKPOINT [--data ../shared/data] [--tta] [--json OUT]

For each pair (seed: interior probability above; object: background probability below 1 - it;
see ``pixelwise.instances.boundary_codes``) and for the plain argmax of the three classes, the
DSB2018 mean AP of the 66 validation ids (recipes/dsb2018_val_ids.txt), overall and per image
type (recipes/nuclei_eval.py's colour statistics). The pair is chosen on all these ids; because
it is chosen on them, the recipe also reports a two-fold cross-selected figure: the ids are split
into two halves (alternate sorted ids), the best pair of each half is scored on the other half,
and the scores are averaged, an estimate of what the choice gives on images it was not chosen
on. The same is done per image type (a pair for each type with at least ``MIN_IMAGES`` ids, the
overall pair for the others), to show whether per-type thresholds would be worth having. The H&E
sets of nuclei_he are not looked at here (recipes/nuclei_eval.py scores them). Training a boundary
model now makes the overall choice itself on its validation images (``evaluate.choose_thresholds``,
with min size 0 where this recipe drops objects under ``--min-size`` pixels); this recipe adds the
per-type view and the cross-selected estimate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from nuclei_eval import parse_args, sets

from pixelwise.checkpoint import load_model
from pixelwise.data.datasets import match_channels, to_tensor
from pixelwise.data.io import read_image, read_mask
from pixelwise.evaluate import THRESHOLD_GRID
from pixelwise.inference import predict_probs
from pixelwise.instances import argmax_codes, boundary_codes, instances_for
from pixelwise.metrics import dsb_average_precision

SEEDS = OBJECTS = THRESHOLD_GRID  # the grid training chooses from (evaluate.choose_thresholds)
MIN_IMAGES = 5


def rules() -> dict:
    out = {"argmax": argmax_codes}
    for s in SEEDS:
        for o in OBJECTS:
            out[f"seed {s} object {o}"] = lambda p, s=s, o=o: boundary_codes(p, s, o)
    return out


def mean_score(scores: dict, rule: str, stems: list[str]) -> float:
    """``scores[rule][id]`` averaged over ``stems``."""
    return float(np.mean([scores[rule][s] for s in stems]))


def best_rule(scores: dict, stems: list[str]) -> str:
    return max(scores, key=lambda rule: mean_score(scores, rule, stems))


def cross_selected(scores: dict, ids: list[str]) -> tuple[list[str], float]:
    """Two-fold cross-selection: ``scores[rule][id]``; the ids split into alternate halves, each
    half's best rule scored on the other half. The two picks and the mean over all ids."""
    halves = (ids[0::2], ids[1::2])
    picks = [best_rule(scores, half) for half in halves]
    total = sum(
        mean_score(scores, pick, other) * len(other) for pick, other in zip(picks, halves[::-1])
    )
    return picks, total / len(ids)


def main() -> None:
    args = parse_args(__doc__)
    seg = load_model(args.checkpoint)
    items = sorted(
        (
            (item, name.split(": ")[1])  # "dsb2018 val: fluorescence" -> the image type
            for name, group in sets(Path(args.data)).items()
            if name.startswith("dsb2018")
            for item in group
        ),
        key=lambda pair: pair[0].name,
    )
    ids = [item.name for item, _ in items]
    candidates = rules()
    scores = {name: {} for name in candidates}
    types = {}
    for item, kind in items:
        stem = item.name
        image, truth = read_image(item.image), read_mask(item.mask)
        types[stem] = kind
        x = to_tensor(match_channels(image, seg.in_channels), seg.norm)[None]
        probs = predict_probs(seg.network, x, "auto", args.tta, seg.input_scale)
        for name, decide in candidates.items():
            labels = instances_for(seg, decide(probs)[0].numpy(), min_size=args.min_size)
            scores[name][stem] = dsb_average_precision(truth, labels)["mean_ap"]

    result = report(scores, types, ids)
    if args.json:
        Path(args.json).write_text(
            json.dumps(result | {"scores": scores, "types": types}, indent=2)
        )


def report(scores: dict, types: dict, ids: list[str]) -> dict:
    """Print the table and the choices of ``scores[rule][id]`` (``types[id]``: the image type);
    return the pair chosen overall and per type."""
    candidates = list(scores)

    def mean(rule: str, stems: list[str]) -> float:
        return mean_score(scores, rule, stems)

    by_type = {k: [s for s in ids if types[s] == k] for k in sorted(set(types.values()))}
    best_of = {k: best_rule(scores, stems) for k, stems in by_type.items()}
    ranked = sorted(candidates, key=lambda n: -mean(n, ids))
    print(f"{'rule':<24} {'all':>6} " + " ".join(f"{k:>14}" for k in by_type))
    shown = ["argmax", *[n for n in ranked if n != "argmax"][:8]]
    shown += [rule for rule in dict.fromkeys(best_of.values()) if rule not in shown]
    for name in shown:
        per = [mean(name, stems) for stems in by_type.values()]
        print(f"{name:<24} {mean(name, ids):6.4f} " + " ".join(f"{v:14.4f}" for v in per))
    overall, overall_cross = cross_selected(scores, ids)
    print(
        f"chosen on all {len(ids)} ids: {ranked[0]}, {mean(ranked[0], ids):.4f}; "
        f"cross-selected {overall_cross:.4f} ({', '.join(overall)})"
    )
    chosen, cross_total, argmax_total = {}, 0.0, 0.0
    for kind, stems in by_type.items():
        if len(stems) >= MIN_IMAGES:
            chosen[kind] = best_of[kind]
            picks, cross = cross_selected(scores, stems)
        else:
            chosen[kind], picks, cross = (
                ranked[0],
                ["(the pair chosen on all)"],
                mean(ranked[0], stems),
            )
        cross_total += cross * len(stems)
        argmax_total += mean("argmax", stems) * len(stems)
        print(
            f"{kind} ({len(stems)} ids): {chosen[kind]}, {mean(chosen[kind], stems):.4f} "
            f"(argmax {mean('argmax', stems):.4f}); cross-selected {cross:.4f} ({', '.join(picks)})"
        )
    per_type = sum(mean(chosen[types[s]], [s]) for s in ids) / len(ids)
    print(
        f"per-type pairs, all {len(ids)} ids: {per_type:.4f}; cross-selected "
        f"{cross_total / len(ids):.4f}; argmax {argmax_total / len(ids):.4f}"
    )
    return {"overall": ranked[0], "per_type": chosen}


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
