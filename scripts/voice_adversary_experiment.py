"""Does a speaker-adversarial voice reader hold better on corpora it never heard?

    python scripts/voice_adversary_experiment.py --data ../shared/data --strength 0.3 --jobs 2
    python scripts/voice_adversary_experiment.py --data ../shared/data --strength 0.3 --jobs 2 --seeds 0 1 2 \
        --json docs/readers_adversary_seeds.json

Trains the benchmark's four main voice runs (leave RAVDESS / TESS / EmoDB out, and RAVDESS actors 18-20; seed 0 or
``--seeds``, the shipped recipe) with :attr:`~crossemo_core.readers.voice_training.VoiceTrainConfig.speaker_adversary` set to
``--strength``, exactly as ``benchmark --suite readers --speaker-adversary STRENGTH`` would (same jobs, same run
cache format), and prints them beside the benchmark's shipped runs read from
``docs/readers_benchmark_single_frame_trim.json`` (seed 0) or, for other seeds, beside the same seeds of the shipped
recipe from ``docs/readers_seeds.json`` (all with the front end those runs used: single-frame trimming).
Every run is cached under ``--work`` (one JSON per run), so an interrupted experiment resumes; writes
``docs/readers_adversary.json`` (aggregates only).

The decision rule was fixed before any run: adopt when the leave-one-corpus-out mean valence UAR rises by more
than the +-0.03 run-to-run spread and no test row falls by more than 0.03.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import RunCache, json_safe  # noqa: E402
from crossemo_core.benchmark.readers import readers_jobs, run_voice_jobs  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig  # noqa: E402
from crossemo_core.readers.voice import SINGLE_FRAME_FRONTEND  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import VoiceTrainConfig, prosody_cache, spectrogram_cache  # noqa: E402
from crossemo_core.settings import cache_root  # noqa: E402

COLUMNS = (("clean", "valence_uar"), ("clean", "valence_uar_network"), ("degraded", "valence_uar"),
           ("with_baseline", "valence_uar"), ("clean", "arousal_uar"))


def row(run: dict) -> dict[str, float]:
    return {f"{part} {key}": run[part][key] for part, key in COLUMNS}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--strength", type=float, required=True)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--work", type=Path, default=cache_root() / "voice_adversary")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "readers_adversary.json")
    args = p.parse_args()
    frontend = SINGLE_FRAME_FRONTEND
    utts = list_corpora(args.data)
    spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    prosody_cache(utts, AugmentConfig(), seed=0)
    config = VoiceTrainConfig(speaker_adversary=args.strength)
    jobs = readers_jobs(tuple(args.seeds), False, config, config)
    runs = RunCache(args.work)
    run_voice_jobs(jobs, runs, args.data, frontend, jobs=args.jobs, say=lambda msg: print(msg, flush=True))
    benchmark = REPO / "docs" / "readers_benchmark_single_frame_trim.json"
    shipped = {r["split"]: r for r in json.loads(benchmark.read_text())["voice"]
               if r.get("kind") in ("loco", "ravdess-actors") and r.get("seed") == 0}
    seeds_file = REPO / "docs" / "readers_seeds.json"
    recipe_seeds = json.loads(seeds_file.read_text()) if seeds_file.is_file() else None
    out = {"command": "python " + " ".join(sys.argv), "strength": args.strength, "runs": []}
    for job in jobs:
        run = runs.get(job.key(frontend))
        entry = {"split": run["split"], "seed": job.config.seed, "n_test": run["n_test"],
                 "best_epoch": run["best_epoch"], "valid_valence_uar": run["valid_valence_uar"],
                 "adversary": row(run)}
        if job.config.seed == 0 and run["split"] in shipped:
            base = shipped[run["split"]]
            entry.update(shipped=row(base), shipped_valid_valence_uar=base["valid_valence_uar"])
            print(f"{run['split']:>24}, seed 0: valid {base['valid_valence_uar']:.3f} -> {run['valid_valence_uar']:.3f}"
                  + "".join(f"; {k} {entry['shipped'][k]:.3f} -> {v:.3f}" for k, v in entry["adversary"].items()))
        elif recipe_seeds is not None and job.config.seed in recipe_seeds["seeds"]:
            name = job.held_out or "ravdess18-20"
            same = recipe_seeds["runs"][name]["clean"]["per_seed"][recipe_seeds["seeds"].index(job.config.seed)]
            entry["shipped_recipe_same_seed_clean_valence_uar"] = same
            print(f"{run['split']:>24}, seed {job.config.seed}: clean valence UAR {same:.3f} -> "
                  f"{run['clean']['valence_uar']:.3f}")
        out["runs"].append(entry)
    atomic_write(args.json, json.dumps(json_safe(out), indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
