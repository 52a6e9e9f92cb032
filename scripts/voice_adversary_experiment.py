"""Does a speaker-adversarial voice reader hold better on corpora it never heard?

    python scripts/voice_adversary_experiment.py --data ../shared/data --strength 0.3 --jobs 2

Trains the benchmark's four main voice runs (leave RAVDESS / TESS / EmoDB out, and RAVDESS actors 18-20; seed 0,
the shipped recipe) with :attr:`~crossemo_core.readers.voice_training.VoiceTrainConfig.speaker_adversary` set to
``--strength``, exactly as ``benchmark --suite readers --speaker-adversary STRENGTH`` would (same jobs, same run
cache format), and prints them beside the benchmark's shipped runs read from ``docs/readers_benchmark.json``.
Every run is cached under ``--work`` (one JSON per run), so an interrupted experiment resumes; writes
``docs/readers_adversary.json`` (aggregates only).

The decision rule was fixed before any run: adopt when the leave-one-corpus-out mean valence UAR rises by more
than the +-0.03 run-to-run spread and no test row falls by more than 0.03.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import RunCache, json_safe  # noqa: E402
from crossemo_core.benchmark.readers import _load_worker, _run_job, readers_jobs  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig  # noqa: E402
from crossemo_core.readers.prosody import PROSODY_DEFAULT  # noqa: E402
from crossemo_core.readers.voice import FrontendConfig  # noqa: E402
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
    p.add_argument("--work", type=Path, default=cache_root() / "voice_adversary")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "readers_adversary.json")
    args = p.parse_args()
    frontend = FrontendConfig()
    utts = list_corpora(args.data)
    spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    prosody_cache(utts, AugmentConfig(), seed=0)
    config = VoiceTrainConfig(speaker_adversary=args.strength)
    jobs = readers_jobs((0,), False, config, config)
    runs = RunCache(args.work)
    pending = [j for j in jobs if runs.get(j.key(frontend)) is None]
    if pending:
        with ProcessPoolExecutor(max_workers=args.jobs, initializer=_load_worker,
                                 initargs=(str(args.data), frontend, 1, PROSODY_DEFAULT)) as pool:
            futures = {pool.submit(_run_job, j): j for j in pending}
            for future in as_completed(futures):
                job = futures[future]
                record = future.result()
                runs.put(job.key(frontend), record)
                print(f"done: {record['split']}: valence UAR {record['clean']['valence_uar']:.3f} "
                      f"(best epoch {record['best_epoch']}, valid {record['valid_valence_uar']:.3f})", flush=True)
    shipped = {r["split"]: r for r in json.loads((REPO / "docs" / "readers_benchmark.json").read_text())["voice"]
               if r.get("kind") in ("loco", "ravdess-actors") and r.get("seed") == 0}
    out = {"command": "python " + " ".join(sys.argv), "strength": args.strength, "runs": []}
    for job in jobs:
        run = runs.get(job.key(frontend))
        base = shipped.get(run["split"])
        entry = {"split": run["split"], "n_test": run["n_test"], "best_epoch": run["best_epoch"],
                 "valid_valence_uar": run["valid_valence_uar"], "adversary": row(run),
                 "shipped": row(base) if base else None,
                 "shipped_valid_valence_uar": base["valid_valence_uar"] if base else None}
        out["runs"].append(entry)
        print(f"{run['split']:>24}: valid {entry['shipped_valid_valence_uar']:.3f} -> {run['valid_valence_uar']:.3f}"
              + "".join(f"; {k} {entry['shipped'][k]:.3f} -> {v:.3f}" for k, v in entry["adversary"].items()))
    atomic_write(args.json, json.dumps(json_safe(out), indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
