"""Two ideas for the voice reader tried in session 8, neither adopted: label-free speaker adaptation, and two seeds.

    OMP_NUM_THREADS=1 python scripts/egemaps_network_probs.py --data ../shared/data        # the LOCO networks, once
    OMP_NUM_THREADS=1 python scripts/train_voice_reader.py --data ../shared/data --seeds 1 \\
        --out /tmp/voice_seed1.pt --json /tmp/voice_seed1.json                           # a second seed, ~10 min
    OMP_NUM_THREADS=1 python scripts/voice_speaker_adaptation.py --data ../shared/data --second /tmp/voice_seed1.pt

**Speaker adaptation** (the readers benchmark's four main runs: leave-one-corpus-out networks rebuilt at the kept
epoch by ``egemaps_network_probs.py``, and the shipped reader for RAVDESS actors 18-20; the prosody view refitted
as the benchmark fits it, C chosen on validation speakers). Every variant uses all of a test speaker's recordings
and no labels:

- ``input``: the network's log-mels normalised by the statistics of all the speaker's recordings, not each
  utterance's own;
- ``prosody-z``: the prosody statistics z-scored per speaker (as in ``egemaps_prosody_experiment.py``);
- ``centred``: the mixed reading's log-probabilities minus their mean over the speaker's recordings (each speaker's
  readings balanced over the three valences);
- ``recentred``: the same, plus the mean over the validation speakers (balanced to the training population's mix).

**Two seeds**: the shipped reader (seed 0) and ``--second`` (the same command with seed 1), their networks'
probabilities averaged, then mixed 50/50 with the prosody view as the shipped reader is; on the validation speakers
(the choice) and RAVDESS actors 18-20 (the test).

Writes ``--json`` (aggregates only) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from egemaps_prosody_experiment import C_GRID, RUNS, speaker_normalise, uar  # noqa: E402

from crossemo_core.benchmark.cache import json_safe  # noqa: E402
from crossemo_core.benchmark.readers import degraded_mels, loco_split, ravdess_actor_split  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig  # noqa: E402
from crossemo_core.readers.voice import (SINGLE_FRAME_FRONTEND, LinearHead, NetConfig, NormStats,  # noqa: E402
                                         VoiceEmotionNet, VoiceReader)
from crossemo_core.readers.voice_corpora import Utterance, list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import prosody_cache, sample_weights, spectrogram_cache  # noqa: E402
from crossemo_core.settings import cache_root  # noqa: E402

def centred(p: np.ndarray, utts: list[Utterance], reference: np.ndarray | None = None) -> np.ndarray:
    """Per speaker: log-probabilities minus their mean over the speaker's rows (plus the mean log-probability of
    ``reference`` rows when given), renormalised."""
    lp = np.log(np.clip(p, 1e-6, 1))
    add = np.log(np.clip(reference, 1e-6, 1)).mean(0) if reference is not None else 0.0
    speakers = np.array([u.speaker for u in utts])
    out = lp.copy()
    for s in np.unique(speakers):
        m = speakers == s
        out[m] = lp[m] - lp[m].mean(0) + add
    e = np.exp(out - out.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def network_valence(reader: VoiceReader, mels: list[np.ndarray], utts: list[Utterance],
                    per_speaker: bool) -> np.ndarray:
    mels = [m.astype(np.float32) for m in mels]
    if not per_speaker:
        return reader.probabilities(mels)["valence"]
    by: dict[str, list[np.ndarray]] = {}
    for u, m in zip(utts, mels):
        by.setdefault(u.speaker, []).append(m)
    stats = {s: NormStats.of(v, reader.frontend.normalisation) for s, v in by.items()}
    return reader.probabilities(mels, [stats[u.speaker] for u in utts])["valence"]


def adaptation(run: str, utts: list[Utterance], cache, prosody, nets: Path) -> dict[str, float]:
    frontend = SINGLE_FRAME_FRONTEND
    if run == "ravdess18-20":
        split = ravdess_actor_split(utts)
        reader = VoiceReader.load(REPO / "checkpoints" / "voice_reader.pt")
    else:
        split = loco_split(utts, run)
        state = torch.load(nets / f"train-{run}.pt", map_location="cpu", weights_only=True)
        net = VoiceEmotionNet(frontend.n_mels, NetConfig())
        net.load_state_dict(state["net"])
        reader = VoiceReader(net.eval(), frontend, NetConfig())
    ys, yv, yt = (np.array([u.valence for u in us]) for us in (split.test, split.valid, split.train))
    mels = {name: [cache[u.key][0][1] for u in us] for name, us in (("test", split.test), ("valid", split.valid))}
    net = {(part, spk): network_valence(reader, mels[part], us, spk)
           for part, us in (("test", split.test), ("valid", split.valid)) for spk in (False, True)}
    w = sample_weights(split.train)
    row: dict[str, float] = {"n_test": len(split.test)}
    for norm in ("none", "speaker-z"):
        def rows(us: list[Utterance], k: int = 0) -> np.ndarray:
            return speaker_normalise(np.stack([prosody[u.key][k] for u in us]), us, norm)

        x = np.concatenate([rows(split.train), rows(split.train, 1)])
        best = None
        for c in C_GRID:  # C by the mix's validation valence UAR, as the benchmark's experiments choose it
            head = LinearHead.fit(x, np.tile(yt, 2), np.tile(w, 2), 3, c=c)
            pv = head.proba(rows(split.valid))
            score = uar(yv, (net[("valid", False)] + pv) / 2)
            if best is None or score > best[0]:
                best = (score, head.proba(rows(split.test)), pv)
        _, pt, pv = best
        name = "prosody" if norm == "none" else "prosody-z"
        for spk in (False, True):
            label = f"{'input' if spk else 'utterance'}+{name}"
            mix, mix_valid = (net[("test", spk)] + pt) / 2, (net[("valid", spk)] + pv) / 2
            row[label] = uar(ys, mix)
            row[label + "+centred"] = uar(ys, centred(mix, split.test))
            row[label + "+recentred"] = uar(ys, centred(mix, split.test, mix_valid))
    return row


def two_seeds(second: Path, utts: list[Utterance], cache, prosody) -> dict[str, dict[str, float]]:
    split = ravdess_actor_split(utts)
    readers = [VoiceReader.load(REPO / "checkpoints" / "voice_reader.pt"), VoiceReader.load(second)]
    out: dict[str, dict[str, float]] = {}
    for part, us in (("valid", split.valid), ("test", split.test)):
        y = np.array([u.valence for u in us])
        for kind in ("clean", "degraded"):
            mels = [cache[u.key][0][1] for u in us] if kind == "clean" else degraded_mels(us, cache)
            rows = np.stack([prosody[u.key][0 if kind == "clean" else 1] for u in us])
            nets = [r.probabilities([m.astype(np.float32) for m in mels])["valence"] for r in readers]
            pros = readers[0].prosody.proba(rows)["valence"]  # both readers fit the same view on the same rows
            ens = np.mean(nets, axis=0)
            out[f"{part}_{kind}"] = {"seed0_network": uar(y, nets[0]), "seed0_mix": uar(y, (nets[0] + pros) / 2),
                                     "seed1_network": uar(y, nets[1]),
                                     "seed1_mix": uar(y, (nets[1] + readers[1].prosody.proba(rows)["valence"]) / 2),
                                     "two_seeds_network": uar(y, ens), "two_seeds_mix": uar(y, (ens + pros) / 2)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--nets", type=Path, default=cache_root() / "egemaps_experiment")
    ap.add_argument("--second", type=Path, help="a second-seed voice reader (see the module docstring)")
    ap.add_argument("--json", type=Path, default=REPO / "docs" / "readers_speaker_adaptation.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    utts = list_corpora(args.data)
    cache = spectrogram_cache(utts, SINGLE_FRAME_FRONTEND, AugmentConfig(), seed=0)
    prosody = prosody_cache(utts, AugmentConfig(), seed=0)
    result: dict = {"command": "python " + " ".join(sys.argv), "adaptation": {}}
    for run in RUNS:
        result["adaptation"][run] = adaptation(run, utts, cache, prosody, args.nets)
    names = [k for k in result["adaptation"][RUNS[0]] if k != "n_test"]
    print(f"{'valence UAR (mix)':40s} " + " ".join(f"{r:>13s}" for r in RUNS))
    for n in names:
        print(f"{n:40s} " + " ".join(f"{result['adaptation'][r][n]:13.3f}" for r in RUNS))
    if args.second:
        result["two_seeds"] = two_seeds(args.second, utts, cache, prosody)
        for part, cells in result["two_seeds"].items():
            print(part, " ".join(f"{k} {v:.3f}" for k, v in cells.items()))
    atomic_write(args.json, json.dumps(json_safe(result), indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
