"""Compare candidate clip models (and averages of them) on the same evaluation clips, from the per-clip rows that
``scripts/eval_clip_heldapart.py --rows FILE`` writes. Aggregates only.

    python scripts/eval_clip_heldapart.py --part valid --limit 60 --stability-every 1 \\
        [--checkpoint CANDIDATE.pt] --rows ROWS.json --out /tmp/x.json            # once per model
    python scripts/compare_clip_rows.py shipped=ROWS_A.json candidate=ROWS_B.json \\
        --ensemble shipped+candidate --out docs/clip_candidates.json

For each model, or each ``--ensemble`` of models (their clip similarities averaged: the clip similarity is the mean
of its windows', so this equals averaging the models window by window): the AUC of the similarity on the clean clips,
and how much each stability copy (audio 100 ms early / late, WebM re-encode) moves the clip, as a change of the
similarity and as a change of P(inconsistent) from a logistic regression of the label on the similarity, fitted on
the same clean clips (so that models whose similarities spread differently compare on one scale): the largest
change, the 95th percentile and the share of clips moved by more than 0.05. ``combined_*``: the same with the
verdict's evidence combiner (``crossemo_core.clip.combine``: similarity and the two readings) fitted on these clean
clips, so that the readings' own changes under each copy count too (in-sample: for comparing models, not a
calibration). The committed ``docs/clip_candidates.json`` and ``docs/clip_runs_choice.json`` were made (sessions 9-10)
with the combiner of that time (similarity, one disagreement number and two confidences, C = 1); since session 12 the
combiner reads the nine products of the two valence readings at C = 3, so ``combined_*`` numbers made today differ.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.clip.combine import EvidenceCombiner, evidence_features  # noqa: E402
from crossemo_core.readers.reading import VALENCES  # noqa: E402

COPIES = ("shift_-100ms", "shift_+100ms", "webm")


def clip_key(row: dict) -> tuple[str, int]:
    return row["voice"], row["face_fer_row"]


def valences(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """The face's and the voice's ``(3,)`` valence probabilities of a row or a stability copy."""
    return tuple(np.array([entry[f"{side}_valence_probs"][v] for v in VALENCES]) for side in ("face", "voice"))


def measure(rows: dict[str, dict], names: list[str]) -> dict:
    """AUC and stability of the mean similarity of the models ``names`` over the clips they all scored."""
    clean: dict[tuple, list] = {}
    for name in names:
        for r in rows[name]["clean"]:
            if r.get("similarity") is not None:
                clean.setdefault(clip_key(r), []).append((r["similarity"], r["abnormal"]))
    keys = sorted(k for k, v in clean.items() if len(v) == len(names))
    sim = np.array([np.mean([s for s, _ in clean[k]]) for k in keys])
    abnormal = np.array([clean[k][0][1] for k in keys])
    to_p = LogisticRegression(C=1e4).fit(sim[:, None], abnormal)
    read = {clip_key(r): valences(r) for r in rows[names[0]]["clean"] if r.get("similarity") is not None}
    combiner = EvidenceCombiner.fit(evidence_features(sim, np.stack([read[k][0] for k in keys]),
                                                      np.stack([read[k][1] for k in keys])), abnormal)
    out = {"models": names, "n_clean": len(keys), "auc": round(float(roc_auc_score(abnormal, -sim)), 4),
           "p_slope": round(float(to_p.coef_[0, 0]), 3)}
    for copy in COPIES:
        pairs: dict[tuple, list] = {}
        readings: dict[tuple, tuple] = {}
        for name in names:
            for r in rows[name]["stability"]:
                original = r["copies"]["original"].get("similarity")
                moved = r["copies"].get(copy, {}).get("similarity")
                if original is not None and moved is not None:
                    pairs.setdefault(clip_key(r), []).append((original, moved))
                    readings.setdefault(clip_key(r), (valences(r["copies"]["original"]), valences(r["copies"][copy])))
        kept = [k for k, v in pairs.items() if len(v) == len(names)]
        both = np.array([[np.mean([a for a, _ in pairs[k]]), np.mean([b for _, b in pairs[k]])] for k in kept])
        d_sim = np.abs(both[:, 1] - both[:, 0])
        d_p = np.abs(to_p.predict_proba(both[:, 1:2])[:, 1] - to_p.predict_proba(both[:, 0:1])[:, 1])
        p_combined = [combiner.probability(evidence_features(both[:, i], np.stack([readings[k][i][0] for k in kept]),
                                                             np.stack([readings[k][i][1] for k in kept])))
                      for i in (0, 1)]
        d_c = np.abs(p_combined[1] - p_combined[0])
        out[copy] = {"n": len(both), "similarity_max": round(float(d_sim.max()), 3),
                     "similarity_p95": round(float(np.percentile(d_sim, 95)), 3),
                     "p_max": round(float(d_p.max()), 3), "p_p95": round(float(np.percentile(d_p, 95)), 3),
                     "p_share_over_0.05": round(float(np.mean(d_p > 0.05)), 3),
                     "combined_max": round(float(d_c.max()), 3),
                     "combined_p95": round(float(np.percentile(d_c, 95)), 3),
                     "combined_share_over_0.05": round(float(np.mean(d_c > 0.05)), 3)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", metavar="NAME=ROWS.json")
    ap.add_argument("--ensemble", nargs="*", default=[], metavar="NAME+NAME",
                    help="models whose similarities are averaged")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    rows = {}
    for item in args.models:
        name, _, path = item.partition("=")
        if not path:
            raise SystemExit(f"expected NAME=ROWS.json, got {item!r}")
        rows[name] = json.loads(Path(path).read_text())
    groups = [[n] for n in rows] + [e.split("+") for e in args.ensemble]
    unknown = {n for g in groups for n in g} - set(rows)
    if unknown:
        raise SystemExit(f"unknown model(s) in --ensemble: {sorted(unknown)}")
    results = [measure(rows, g) for g in groups]
    for r in results:
        print(f"{'+'.join(r['models']):28s} AUC {r['auc']:.3f} | " + " | ".join(
            f"{c}: P max {r[c]['p_max']:.3f} p95 {r[c]['p_p95']:.3f}, combined max {r[c]['combined_max']:.3f}"
            for c in COPIES))
    if args.out:
        args.out.write_text(json.dumps({"command": "python " + " ".join(sys.argv), "results": results},
                                       indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
