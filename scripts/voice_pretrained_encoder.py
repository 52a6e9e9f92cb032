"""Experiment: a pretrained speech encoder that ships its weights on PyPI as a third view of the voice reader.

    pip install --no-deps resemblyzer==0.1.4 webrtcvad-wheels     # not a project dependency
    OMP_NUM_THREADS=1 python scripts/voice_pretrained_encoder.py --data ../shared/data   # -> docs/readers_ge2e.json

Resemblyzer (Apache-2.0) bundles a GE2E speaker encoder (3 LSTM layers over 40 mel bands, 1.4 M parameters, trained
on thousands of speakers of LibriSpeech and VoxCeleb) in its wheel: nothing is downloaded. Each clean utterance of
RAVDESS 1-20, TESS and EmoDB gives its 256-d utterance embedding (cached outside the repository). The same four runs
as the readers benchmark (leave one corpus out; RAVDESS actors 18-20), the same validation speakers and the same
networks' readings as ``scripts/egemaps_prosody_experiment.py`` (``scripts/egemaps_network_probs.py`` writes them):

- ``shipped``: the network and the 62-statistic prosody view (refitted as the benchmark fits it), mixed 50/50;
- ``encoder``: a class-balanced logistic regression (each corpus weighing the same) on the standardised embedding,
  C chosen on validation speakers by the three-view mix; alone, mixed with the network, and the three views
  mixed evenly;
- with ``speaker-z``: each embedding dimension z-scored over all of a speaker's recordings (no labels, but several
  recordings of the person).

3-class valence UAR on validation speakers (where choices are made) and on the test utterances. Aggregates only.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from crossemo_core.paths import REPO, atomic_write_text  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig  # noqa: E402
from crossemo_core.readers.voice import LinearHead  # noqa: E402
from crossemo_core.readers.voice_corpora import Utterance, list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import load_signal, prosody_cache, sample_weights  # noqa: E402
from crossemo_core.settings import cache_root  # noqa: E402
from egemaps_prosody_experiment import (RUNS, network_readings, run_split,  # noqa: E402
                                        speaker_normalise, uar)

C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


def embeddings(utts: list[Utterance], cache: Path) -> dict[str, np.ndarray]:
    """GE2E utterance embeddings ``(256,)`` of the clean recordings, keyed by utterance, cached in ``cache``."""
    if cache.is_file():
        stored = np.load(cache)
        return dict(zip(stored["keys"], stored["embeddings"]))
    try:
        from resemblyzer import VoiceEncoder, preprocess_wav
    except ImportError as exc:
        raise SystemExit("this experiment needs resemblyzer: pip install --no-deps resemblyzer==0.1.4 "
                         "webrtcvad-wheels") from exc
    encoder = VoiceEncoder("cpu", verbose=False)
    out, t0 = {}, time.perf_counter()
    for i, u in enumerate(utts):
        out[u.key] = encoder.embed_utterance(preprocess_wav(load_signal(u.path), source_sr=16000))
        if (i + 1) % 500 == 0:
            print(f"embeddings {i + 1}/{len(utts)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, keys=np.array(list(out)), embeddings=np.stack(list(out.values())))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--net", type=Path, default=cache_root() / "egemaps_experiment")
    ap.add_argument("--json", type=Path, default=REPO / "docs" / "readers_ge2e.json")
    args = ap.parse_args()
    utts = list_corpora(args.data)
    emb = embeddings(utts, cache_root() / "ge2e_embeddings.npz")
    ours = prosody_cache(utts, AugmentConfig(), seed=0)
    result: dict = {"command": "python " + " ".join(sys.argv), "encoder": "resemblyzer 0.1.4 GE2E (256-d)",
                    "metric": "3-class valence UAR, validation / test", "runs": {}}
    for run in RUNS:
        split = run_split(utts, run)
        net = network_readings(args.net, run, split)
        yt, yv, ys = (np.array([u.valence for u in part]) for part in (split.train, split.valid, split.test))
        w = sample_weights(split.train)
        nt, nv = net["test_clean_valence"], net["valid_valence"]
        head = LinearHead.fit(np.concatenate([ours[u.key] for u in split.train]), np.repeat(yt, 2), np.repeat(w, 2),
                              3, c=0.03)
        pt, pv = (head.proba(np.stack([ours[u.key][0] for u in part])) for part in (split.test, split.valid))
        row = {"n_test": len(split.test), "network": [uar(yv, nv), uar(ys, nt)],
               "prosody": [uar(yv, pv), uar(ys, pt)], "shipped_mix": [uar(yv, (nv + pv) / 2), uar(ys, (nt + pt) / 2)]}
        for norm in ("none", "speaker-z"):
            def rows(part: list[Utterance]) -> np.ndarray:
                return speaker_normalise(np.stack([emb[u.key] for u in part]).astype(np.float64), part, norm)

            xt, xv, xs = rows(split.train), rows(split.valid), rows(split.test)
            mu, sd = xt.mean(0), xt.std(0) + 1e-6
            xt, xv, xs = (xt - mu) / sd, (xv - mu) / sd, (xs - mu) / sd
            best = None
            for c in C_GRID:
                enc = LinearHead.fit(xt, yt, w, 3, c=c)
                ev, es = enc.proba(xv), enc.proba(xs)
                cand = {"C": c, "encoder": [uar(yv, ev), uar(ys, es)],
                        "network+encoder": [uar(yv, (nv + ev) / 2), uar(ys, (nt + es) / 2)],
                        "three_views": [uar(yv, (nv + pv + ev) / 3), uar(ys, (nt + pt + es) / 3)]}
                if best is None or cand["three_views"][0] > best["three_views"][0]:
                    best = cand
            row[f"encoder_{norm}"] = best
        result["runs"][run] = row
        print(f"{run}: shipped mix {row['shipped_mix'][0]:.3f} / {row['shipped_mix'][1]:.3f}; three views "
              f"{row['encoder_none']['three_views'][0]:.3f} / {row['encoder_none']['three_views'][1]:.3f}; "
              f"encoder alone {row['encoder_none']['encoder'][0]:.3f} / {row['encoder_none']['encoder'][1]:.3f}; "
              f"speaker-z three views {row['encoder_speaker-z']['three_views'][0]:.3f} / "
              f"{row['encoder_speaker-z']['three_views'][1]:.3f}", flush=True)
    atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
