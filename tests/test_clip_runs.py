"""A clip model of several training runs (``scripts/train_clip_model.py --runs N``): written by
:func:`~crossemo_core.clip.score.save_runs`, read by :class:`~crossemo_core.clip.score.ClipModel`, which averages the
runs' similarities window by window. Uses the shipped clip model's first run and perturbed copies of it (no
mediapipe, no data)."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from crossemo_core.clip.score import ClipModel, save_runs
from crossemo_core.detector import Detector
from crossemo_core.errors import CheckpointError
from crossemo_core.mixture import similarity_to_score

REPO = Path(__file__).resolve().parent.parent
CHECKPOINTS = REPO / "checkpoints"


def _first_run() -> Detector:
    """The shipped clip model's first run, as a single-run clip model."""
    det = Detector.load(CHECKPOINTS / "clip.pt")
    det.metadata["clip"] = {k: v for k, v in det.metadata["clip"].items() if k != "ensemble"}
    return det


def _another_run(seed: int) -> Detector:
    det = _first_run()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in det.model.parameters():
            p.add_(0.05 * p.abs().mean() * torch.randn(p.shape, generator=g))
    return det


def _windows(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    face = [rng.normal(0, 2, (10, 7)).astype(np.float32) for _ in range(n)]
    voice = [rng.normal(0, 1, (int(rng.integers(20, 40)), 47)).astype(np.float32) for _ in range(n)]
    return face, voice


def _training_pairs(model: ClipModel, n: int = 60):  # noqa: ANN202 - PairDataset with labels
    from dataclasses import replace

    pairs = model.pairs(*_windows(n, seed=1))
    return replace(pairs, voice_label=np.arange(n) % 3, face_label=(np.arange(n) // 2) % 3)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    shutil.copy(CHECKPOINTS / "fer_expression.pt", tmp_path)
    return tmp_path


def _save(folder: Path, n_others: int = 2) -> list[Path]:
    single = _first_run().save(folder / "single.pt")
    train = _training_pairs(ClipModel.load(single))
    return save_runs(_first_run(), [(seed, _another_run(seed)) for seed in range(2, 2 + n_others)],
                     folder / "clip.pt", train)


def test_several_runs_are_averaged_window_by_window(folder: Path) -> None:
    files = _save(folder)
    assert [f.name for f in files] == ["clip.pt", "clip_seed2.pt", "clip_seed3.pt"]
    model, single = ClipModel.load(files[0]), ClipModel.load(folder / "single.pt")
    assert len(model.runs) == 3 and len(single.runs) == 1
    face, voice = _windows(12)
    pairs = model.pairs(face, voice)
    each = [Detector.load(f).similarity(pairs) for f in files]
    scores, alone = model.score_windows(face, voice), single.score_windows(face, voice)
    np.testing.assert_allclose(scores.similarity, np.mean(each, axis=0), atol=1e-6)
    np.testing.assert_allclose(alone.similarity, each[0], atol=1e-6)
    assert np.abs(scores.similarity - alone.similarity).max() > 1e-3  # the other runs count
    # the gate is the first run's: the same flags and distances as the first run alone
    np.testing.assert_allclose(scores.face_distance, alone.face_distance, atol=1e-5)
    np.testing.assert_array_equal(scores.voice_atypical, alone.voice_atypical)
    # the posterior is the mixture fitted on the mean similarity, not the first run's own
    assert model.mixture is not None and single.mixture is None
    expected = model.mixture.posterior_abnormal(similarity_to_score(scores.similarity))
    np.testing.assert_allclose(scores.p_inconsistent, expected)
    assert not np.allclose(expected, model.detector.posterior_abnormal(scores.similarity))
    # each other run is a clip model of its own, without the gate
    other = ClipModel.load(files[1])
    assert len(other.runs) == 1 and other.gate is None
    np.testing.assert_allclose(other.score_windows(face, voice).similarity, each[1], atol=1e-6)


def test_the_mixture_is_fitted_on_the_mean_similarity_of_the_training_pairs(folder: Path) -> None:
    files = _save(folder, n_others=1)
    model = ClipModel.load(files[0])
    train = _training_pairs(model)
    meta = model.detector.metadata["clip"]["ensemble"]
    assert meta["runs"][0]["seed"] == 2 and f"{len(train)} training window pairs" in meta["mixture_fitted_on"]
    from crossemo_core.mixture import BetaMixture

    refit = BetaMixture(var_floor=model.detector.config.train.mixture_var_floor).fit(
        similarity_to_score(model.similarity(train)), init_labels=train.is_abnormal.astype(int))
    s = np.linspace(-0.9, 0.9, 19)
    np.testing.assert_allclose(model.posterior_abnormal(s), refit.posterior_abnormal(similarity_to_score(s)),
                               atol=1e-9)


def _edit_ensemble(folder: Path, change: Callable[[dict], None]) -> Path:
    det = Detector.load(folder / "clip.pt")
    change(det.metadata["clip"]["ensemble"])
    return det.save(folder / "clip.pt")


def _replace_run(folder: Path, detector: Detector) -> Path:
    detector.save(folder / "clip_seed2.pt")
    from crossemo_core.features.voice import file_sha256

    sha = file_sha256(folder / "clip_seed2.pt")
    return _edit_ensemble(folder, lambda e: e["runs"][0].update(sha256=sha))


def _foreign_run(folder: Path) -> Path:
    det = _another_run(2)
    det.metadata["clip"] = {**det.metadata["clip"], "fer_sha256": "0" * 64}
    return _replace_run(folder, det)


FAULTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "a run's file is missing": (lambda f: (f / "clip_seed2.pt").unlink(),
                                r"averages 3 runs; clip_seed2\.pt \(sha256 [0-9a-f]{12}\) is missing beside it"),
    "a run's file was replaced": (lambda f: _another_run(9).save(f / "clip_seed2.pt"),
                                  r"averages clip_seed2\.pt with sha256 [0-9a-f]{12}; the file beside it is a "
                                  r"different one"),
    "a run from another recipe": (_foreign_run, r"clip_seed2\.pt is not a run of the same recipe"),
    "a run that is not a clip model": (lambda f: _replace_run(f, Detector.load(CHECKPOINTS / "demo.pt")),
                                       r"clip_seed2\.pt is not a run of the same recipe"),
    "a run named outside the folder": (lambda f: _edit_ensemble(f, lambda e: e["runs"][0].update(
        file="../clip_seed2.pt")), "its list of the other runs it averages is malformed"),
    "a run named as a hidden or non-.pt file": (lambda f: _edit_ensemble(f, lambda e: e["runs"][0].update(
        file=".clip_seed2.pt")), "is malformed"),
    "a run listed twice": (lambda f: _edit_ensemble(f, lambda e: e["runs"].append(dict(e["runs"][0]))),
                           "a run listed twice"),
    "no runs listed": (lambda f: _edit_ensemble(f, lambda e: e.update(runs=[])), "is malformed"),
    "runs not a list": (lambda f: _edit_ensemble(f, lambda e: e.update(runs={"file": "clip_seed2.pt"})),
                        "is malformed"),
    "mixture missing": (lambda f: _edit_ensemble(f, lambda e: e.pop("mixture")),
                        r"the Beta mixture of its runs' mean similarity is unreadable \(KeyError\)"),
    "mixture damaged": (lambda f: _edit_ensemble(f, lambda e: e.update(mixture={"alpha": "x"})),
                        "the Beta mixture of its runs' mean similarity is unreadable"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_damaged_set_of_runs_is_one_clear_line(folder: Path, fault: str) -> None:
    files = _save(folder)
    change, message = FAULTS[fault]
    change(folder)
    with pytest.raises(CheckpointError, match=message) as err:
        ClipModel.load(files[0])
    assert "\n" not in str(err.value) and "Traceback" not in str(err.value)


def test_the_shipped_clip_model_loads_every_run_it_names() -> None:
    model = ClipModel.load()
    meta = model.detector.metadata["clip"]
    named = [r["file"] for r in meta.get("ensemble", {}).get("runs", [])]
    assert len(model.runs) == 1 + len(named)
    for name in named:  # each run is committed beside it, with its sha256
        assert (CHECKPOINTS / name).is_file()
    card = (CHECKPOINTS / "clip.md").read_text()
    assert all(name in card for name in named)
    json.dumps(meta.get("ensemble", {}))  # plain JSON in the checkpoint's metadata


def test_windows_and_the_clip_verdict_use_the_runs_mean_and_its_mixture(folder: Path) -> None:
    import soundfile as sf

    from crossemo_core.clip import sequences as seq
    from crossemo_core.clip.face import FaceFrame, FaceTrack
    from crossemo_core.clip.reading import ClipAnalysis
    from crossemo_core.clip.verdict import ClipScorer

    files = _save(folder)
    scorer = ClipScorer(files[0])
    model = scorer.model
    assert len(model.runs) == 3
    audio, rate = sf.read(REPO / "assets" / "clips" / "voice_upbeat.wav", dtype="float32")
    assert rate == 16000
    audio = audio[: 4 * rate]
    n = int(4 * seq.FACE_FPS)
    rng = np.random.default_rng(0)
    a = ClipAnalysis(name="x", voice_name=None, duration_s=4.0,
                     track=FaceTrack([FaceFrame(t=i / seq.FACE_FPS, n_faces=1, crop=np.zeros((1, 1), np.uint8))
                                      for i in range(n)]),
                     face_logits=rng.normal(0, 2, (n, 7)).astype(np.float32), voice=seq.voice_track(audio, rate),
                     envelope=np.zeros(0), still=False, face_emotions=rng.dirichlet(np.ones(7), n), audio=audio)
    d = scorer.judge(a).to_dict()
    scored = [w for w in d["timeline"] if w["status"] == "scored"]
    assert scored
    sim = np.array([w["similarity"] for w in scored])  # rounded to 4 decimals in the JSON
    own = model.detector.posterior_abnormal(sim)  # the first run's own mixture: not what is shown
    mixed = model.posterior_abnormal(sim)
    np.testing.assert_allclose([w["p_embedding"] for w in scored], mixed, atol=2e-3)
    assert np.abs(mixed - own).max() > 0.02
    assert d["p_embedding"] == pytest.approx(float(model.posterior_abnormal(np.array([d["similarity"]]))[0]),
                                             abs=2e-3)


def test_a_model_of_several_runs_needs_their_mixture() -> None:
    model = ClipModel.load()
    if not model.others:
        pytest.skip("the shipped clip model is a single run")
    with pytest.raises(ValueError, match="needs the Beta mixture"):
        dataclasses.replace(model, mixture=None)
