"""How well do people read emotion from the voice alone and the face alone, and how well would the verdict's
readings rule work with people as its readers? A human reference from CREMA-D's crowd votes.

    python scripts/cremad_human_reference.py --data ../shared/data --out docs/cremad_human.json

CREMA-D's recordings are not in ``../shared/data``, only its rating tables (about nine people per clip and
condition; :mod:`crossemo_core.data.crowd_votes`), so this measures people, not our readers, on a corpus our readers
never heard. It prints markdown tables and writes every number to ``--out``:

1. per condition (voice alone, face alone, both): emotion UAR (6 classes) and valence UAR (3) of one rater and of
   the crowd's majority, against the actor's intended emotion; all clips and the high-intensity ones;
2. on the recorded (consistent) clips: how often the face and the voice are perceived with different valences;
3. the readings rule ``1 - sum_v p_face(v) p_voice(v)`` with the votes of ``k`` people per side as the posteriors,
   on pairs made by method.md's abnormal-pair protocol (same actor, different intended valence, rate 0.5), seeds
   0-2: AUC overall and per anomaly type, for k = 1, 2, 3, 5 and every rater (about nine).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.data.crowd_votes import (CREMA_EMOTIONS, MODALITIES, CrowdVotes, crowd_pairs, load_cremad_votes,
                                            majority_uar, rater_uar, top_choices)
from crossemo_core.data.labels import anomaly_type
from crossemo_core.evaluation import detection_metrics, per_type_metrics
from crossemo_core.readers.reading import VALENCES

SEEDS = (0, 1, 2)
CROWD_SIZES = (1, 2, 3, 5, None)  # None: every rater of the clip


def reading_rows(votes: CrowdVotes, keep: np.ndarray) -> dict[str, dict[str, float]]:
    """Per condition: one rater's and the majority's emotion and valence UAR on the clips ``keep`` (over the classes
    they hold: high-intensity clips have no neutral one), and one rater's recall of each valence."""
    rows = {}
    for m in MODALITIES:
        emo, val = votes.shares(m)[keep], votes.valence_shares(m)[keep]
        truth_e, truth_v = votes.intended[keep], votes.intended_valence[keep]
        rows[m] = {"emotion_uar_one_rater": rater_uar(emo, truth_e), "emotion_uar_majority": majority_uar(emo, truth_e),
                   "valence_uar_one_rater": rater_uar(val, truth_v), "valence_uar_majority": majority_uar(val, truth_v),
                   **{f"valence_recall_one_rater_{name}": float(val[truth_v == c, c].mean())
                      for c, name in enumerate(VALENCES) if np.any(truth_v == c)}}
    return rows


def vote_shares(votes: CrowdVotes, keep: np.ndarray) -> dict[str, dict[str, dict[str, float]]]:
    """Per condition and intended emotion: the mean share of the votes each emotion got (a confusion matrix of
    people), on the clips ``keep``."""
    out = {}
    for m in MODALITIES:
        shares = votes.shares(m)[keep]
        intended = votes.intended[keep]
        out[m] = {name: dict(zip(CREMA_EMOTIONS, np.round(shares[intended == i].mean(0), 4).tolist()))
                  for i, name in enumerate(CREMA_EMOTIONS) if np.any(intended == i)}
    return out


def rule_runs(votes: CrowdVotes) -> dict[str, Any]:
    """The readings rule with k raters per side, for each seed of the pairing and of the people drawn."""
    out: dict[str, Any] = {}
    valence = votes.intended_valence
    for k in CROWD_SIZES:
        runs = []
        for seed in SEEDS:
            pairs = crowd_pairs(votes, rate=0.5, seed=seed, raters=k)
            said_different = pairs.disagreement > 0.5
            types = anomaly_type(valence, valence[pairs.voice_source], VALENCES)
            metrics = detection_metrics(pairs.abnormal, pairs.disagreement, said_different)
            metrics["per_type_auc"] = {t: m["auc"] for t, m in
                                       per_type_metrics(types, pairs.disagreement, said_different).items()}
            metrics["abnormal_with_another_actors_voice"] = pairs.n_other_actor
            runs.append(metrics)
        aucs = np.array([r["auc"] for r in runs])
        out["all raters" if k is None else f"{k} per side"] = {
            "auc_mean": float(aucs.mean()), "auc_sd": float(aucs.std(ddof=1)),
            "per_type_auc_mean": {t: float(np.mean([r["per_type_auc"][t] for r in runs]))
                                  for t in runs[0]["per_type_auc"]},
            "runs": runs}
    return out


def perceived_inconsistency(votes: CrowdVotes) -> dict[str, float]:
    """On the recorded clips (face and voice of one take): how often face and voice are read with different
    valences, by the two crowds' majorities (a tie split evenly) and by one rater on each side."""
    face, voice = votes.valence_shares("face"), votes.valence_shares("voice")
    top_f, top_v = top_choices(face), top_choices(voice)
    same = (top_f * top_v).sum(1) / (top_f.sum(1) * top_v.sum(1))
    return {"majorities_differ": float(1.0 - same.mean()),
            "one_rater_each_side_differ": float((1.0 - (face * voice).sum(1)).mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data", help="the shared data folder (crema-d/ inside it)")
    parser.add_argument("--out", default="docs/cremad_human.json", help="JSON with every number")
    args = parser.parse_args(argv)

    votes = load_cremad_votes(Path(args.data) / "crema-d")
    raters = {m: float(votes.votes[m].sum(1).mean()) for m in MODALITIES}
    high = votes.level == "HI"
    result = {
        "source": "CREMA-D tabulatedVotes.csv (shared data README, section 4)",
        "command": "python scripts/cremad_human_reference.py --data ../shared/data --out docs/cremad_human.json",
        "n_clips": len(votes), "n_actors": int(len(set(votes.actor.tolist()))), "mean_raters": raters,
        "n_high_intensity": int(high.sum()),
        "reading": {"all": reading_rows(votes, np.ones(len(votes), bool)), "high_intensity": reading_rows(votes, high)},
        "vote_shares_by_intended_emotion": {"all": vote_shares(votes, np.ones(len(votes), bool)),
                                            "high_intensity": vote_shares(votes, high)},
        "perceived_inconsistency_of_recorded_clips": perceived_inconsistency(votes),
        "readings_rule": rule_runs(votes),
    }
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")

    print(f"CREMA-D: {len(votes)} clips, {result['n_actors']} actors; raters per clip: "
          + ", ".join(f"{m} {n:.1f}" for m, n in raters.items()))
    print("\n| condition | clips | emotion UAR: one rater / majority | valence UAR: one rater / majority | "
          "one rater's recall: negative / neutral / positive |\n|---|---|---|---|---|")
    for part, name in (("all", "all"), ("high_intensity", "high intensity")):
        for m, row in result["reading"][part].items():
            recall = " / ".join(f"{row[f'valence_recall_one_rater_{v}']:.3f}" if f"valence_recall_one_rater_{v}" in row
                                else "-" for v in VALENCES)
            print(f"| {m} | {name} | {row['emotion_uar_one_rater']:.3f} / {row['emotion_uar_majority']:.3f} | "
                  f"{row['valence_uar_one_rater']:.3f} / {row['valence_uar_majority']:.3f} | {recall} |")
    pi = result["perceived_inconsistency_of_recorded_clips"]
    print(f"\nRecorded clips read with different valences: majorities {pi['majorities_differ']:.3f}, one rater each "
          f"side {pi['one_rater_each_side_differ']:.3f}")
    print("\n| people per side | AUC (seeds 0-2) | " + " | ".join(result["readings_rule"]["1 per side"]
                                                            ["per_type_auc_mean"]) + " |")
    print("|---|---|" + "---|" * len(result["readings_rule"]["1 per side"]["per_type_auc_mean"]))
    for name, row in result["readings_rule"].items():
        print(f"| {name} | {row['auc_mean']:.3f} +- {row['auc_sd']:.3f} | "
              + " | ".join(f"{v:.3f}" for v in row["per_type_auc_mean"].values()) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
