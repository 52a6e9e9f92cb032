"""The clip model's training material (crossemo_core/clip/corpus.py) on tiny synthetic inputs: the 7-emotion space
FER2013 and RAVDESS share, pairs matched by valence or by emotion, and a clip model whose head was trained on
emotions (it still loads and judges; each side's reading comes from its reader). No ../shared/data needed."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crossemo_core.clip import corpus
from crossemo_core.clip import sequences as seq
from crossemo_core.clip.expression import FER_CLASSES, FER_TO_VALENCE, ExpressionModel, ExpressionNet
from crossemo_core.clip.face import FaceFrame, FaceTrack
from crossemo_core.clip.verdict import ClipAnalysis, ClipScorer, file_sha256
from crossemo_core.data.labels import ravdess_emotion_to_3class
from crossemo_core.errors import CheckpointError, DataError
from crossemo_core.experiment import config_for
from crossemo_core.training import Trainer


def _pool(per_emotion: int = 3, seed: int = 0) -> corpus.FacePool:
    emotion = np.repeat(np.arange(7), per_emotion)
    images = np.random.default_rng(seed).integers(0, 255, (len(emotion), 48, 48)).astype(np.uint8)
    return corpus.FacePool(images, FER_TO_VALENCE[emotion], np.arange(len(emotion)), emotion)


def _clips(actors: tuple[int, ...] = (1, 2), seconds: float = 3.0) -> list[corpus.VoiceClip]:
    rng = np.random.default_rng(1)
    frames = int(seconds / seq.VOICE_HOP_S)
    out = []
    for actor in actors:
        for code in range(1, 9):
            track = seq.VoiceTrack(rng.standard_normal((frames, 47)).astype(np.float32), np.ones(frames, bool),
                                   np.ones(frames, bool))
            valence = int(ravdess_emotion_to_3class(np.array([code]))[0])
            out.append(corpus.VoiceClip(f"03-01-{code:02d}-01-01-01-{actor:02d}", actor, code, valence, track))
    return out


@pytest.fixture(scope="module")
def expression() -> ExpressionModel:
    import torch

    torch.manual_seed(0)
    return ExpressionModel(ExpressionNet((4, 8, 8, 8)), {"note": "test"})


def _old_rows(clips: list[corpus.VoiceClip], pool: corpus.FacePool, repeats: int, seed: int) -> list[int]:
    """The face rows window_pairs drew before emotions existed (valence matching), draw for draw."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in clips:
        for start, end in seq.window_starts(c.track.duration_s):
            if seq.voice_window(c.track, start, end) is None:
                continue
            for _ in range(repeats):
                fv = c.valence if rng.random() < 0.5 else int(rng.choice([k for k in range(3) if k != c.valence]))
                rng.uniform(0.6, 1.0)  # the frame count's draw
                rows.append(pool.sample(fv, rng))
    return rows


def test_ravdess_emotions_map_into_fer_space_keeping_valence() -> None:
    assert corpus.CLIP_EMOTIONS == FER_CLASSES
    names = {1: "neutral", 2: "neutral", 3: "happy", 4: "sad", 5: "angry", 6: "fear", 7: "disgust", 8: "surprise"}
    for code, name in names.items():
        e = corpus.clip_emotion(code)
        assert FER_CLASSES[e] == name
        assert FER_TO_VALENCE[e] == ravdess_emotion_to_3class(np.array([code]))[0]
    with pytest.raises(DataError, match="unknown RAVDESS emotion code 9"):
        corpus.clip_emotion(9)


def test_emotion_matched_pairs(expression: ExpressionModel) -> None:
    clips, pool = _clips(), _pool()
    d = corpus.window_pairs(clips, pool, expression, "face-test", 2, seed=0, name="t", match="emotion")
    assert d.emotion_names == FER_CLASSES and len(d) == len(d.face_emotion) == len(d.voice_emotion)
    np.testing.assert_array_equal(FER_TO_VALENCE[d.face_emotion], d.face_label)  # each side's emotion has its valence
    np.testing.assert_array_equal(FER_TO_VALENCE[d.voice_emotion], d.voice_label)
    normal = ~d.is_abnormal
    assert normal.any() and d.is_abnormal.any()
    np.testing.assert_array_equal(d.face_emotion[normal], d.voice_emotion[normal])  # normal: the voice's emotion
    calm = np.array([c.split("-")[2] == "02" for c in d.clip_id])
    assert (d.voice_emotion[calm] == FER_CLASSES.index("neutral")).all()
    faces, emotions, names = d.training_labels("emotions")
    assert names == FER_CLASSES and faces is d.face_emotion and emotions is d.voice_emotion


def test_valence_matching_draws_the_pairs_it_always_drew(expression: ExpressionModel) -> None:
    clips, pool = _clips(), _pool()
    d = corpus.window_pairs(clips, pool, expression, "face-test", 2, seed=3, name="t")
    rows = _old_rows(clips, pool, 2, seed=3)
    np.testing.assert_array_equal(d.face_emotion, pool.emotion[rows])
    normal = ~d.is_abnormal
    assert (d.face_emotion[normal] != d.voice_emotion[normal]).any()  # same valence, not always the same emotion
    without = corpus.FacePool(pool.images, pool.valence, pool.index)  # a pool without emotions: no emotion fields
    plain = corpus.window_pairs(clips, without, expression, "face-test", 2, seed=3, name="t")
    assert plain.emotion_names is None and plain.face_emotion is None
    np.testing.assert_array_equal(plain.face_label, d.face_label)
    with pytest.raises(DataError, match="no emotion labels"):
        corpus.window_pairs(clips, without, expression, "face-test", 1, seed=3, name="t", match="emotion")
    with pytest.raises(DataError, match="match must be one of"):
        corpus.clip_pairings(clips, pool, 0, match="sentiment")


def test_clip_pairings_by_emotion() -> None:
    clips, pool = _clips(), _pool()
    pairs = corpus.clip_pairings(clips, pool, seed=0, match="emotion")
    assert len(pairs) == 2 * len(clips) and sum(p.abnormal for p in pairs) == len(clips)
    for p in pairs:
        assert pool.valence[p.face_row] == p.face_valence
        if not p.abnormal:
            assert pool.emotion[p.face_row] == p.clip.clip_emotion
    by_valence = corpus.clip_pairings(clips, pool, seed=0)
    assert [p.face_valence for p in by_valence] == [p.face_valence for p in pairs]


def test_a_clip_model_trained_on_emotions_scores_with_the_same_json(tmp_path: Path,
                                                                    expression: ExpressionModel) -> None:
    clips, pool = _clips((1, 2, 3)), _pool()
    fer = expression.save(tmp_path / "fer.pt")
    face_id = seq.face_extractor_id(file_sha256(fer))
    train = corpus.window_pairs(clips[:16], pool, expression, face_id, 1, 0, "train", match="emotion")
    valid = corpus.window_pairs(clips[16:], pool, expression, face_id, 1, 1, "valid")
    config = config_for(train, "fast", hidden_size=8, embedding_size=8, epochs=1, batch_size=16,
                        training_labels="emotions")
    det = Trainer(config).fit(train, valid).detector
    assert det.model.classifier.out_features == 7
    det.metadata["clip"] = {"fer_file": fer.name, "fer_sha256": file_sha256(fer), "training_labels": "emotions",
                            "emotions": {"names": list(FER_CLASSES), "valence": FER_TO_VALENCE.tolist()}}
    path = det.save(tmp_path / "clip.pt")
    scorer = ClipScorer(path)
    assert scorer.model.emotion_names == FER_CLASSES
    c = clips[20]
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((15, 7)).astype(np.float32)
    t = np.arange(int(c.track.duration_s * 16000)) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    a = ClipAnalysis(name="x", voice_name=None, duration_s=c.track.duration_s,
                     track=FaceTrack([FaceFrame(t=i / seq.FACE_FPS, n_faces=1, crop=np.zeros((1, 1), np.uint8))
                                      for i in range(15)]),
                     face_logits=logits, voice=c.track, envelope=np.zeros(0), still=False,
                     face_emotions=rng.dirichlet(np.ones(7), 15), audio=audio)
    d = scorer.judge(a).to_dict()
    assert {"verdict", "p_inconsistent", "similarity", "face", "voice", "timeline", "reason"} <= set(d)
    for side in (d["face"], d["voice"]):  # each side is its reader's reading, whatever the clip model's head
        assert {"emotion", "probs", "valence", "valence_probs", "confidence", "uncertain"} <= set(side)
        assert set(side["valence_probs"]) == set(seq.VALENCE) and side["valence"] in seq.VALENCE
        assert sum(side["valence_probs"].values()) == pytest.approx(1, abs=0.01)
    assert all(w["voice_valence"] in seq.VALENCE and w["p_embedding"] is not None
               for w in d["timeline"] if w["status"] == "scored")

    det.metadata["clip"].pop("emotions")  # a 7-output head needs its emotions named
    det.save(tmp_path / "unnamed.pt")
    with pytest.raises(CheckpointError, match="its head has 7 outputs but the checkpoint names no emotions"):
        ClipScorer(tmp_path / "unnamed.pt")


def test_voice_twins_are_the_same_windows_of_the_coded_takes(expression: ExpressionModel) -> None:
    clips = _clips(actors=(1,), seconds=3.26)  # the last window starts at 1.26 s, off the 0.5 s grid
    pairs = corpus.window_pairs(clips, _pool(), expression, "fer-test", 1, 0, "t")
    coded = [corpus.VoiceClip(c.clip_id, c.actor, c.emotion, c.valence,
                              seq.VoiceTrack(c.track.features + 1.0, c.track.active, c.track.voiced))
             for c in clips[1:]]  # the first take has no twin
    twins = corpus.voice_twins(pairs, coded)
    assert len(twins) == len(pairs)
    first = np.array([i.startswith(clips[0].clip_id + "@") for i in pairs.clip_id])
    assert first.any() and not first.all()
    by_id = {c.clip_id: c for c in coded}
    starts = seq.window_starts(clips[0].track.duration_s)
    assert any(start % seq.HOP_S for start, _ in starts)
    for twin, voice, own, pair_id in zip(twins, pairs.voice, first, pairs.clip_id):
        if own:
            assert twin is voice
        else:
            clip_id, shown = pair_id.rsplit("@", 1)
            start, end = next((a, b) for a, b in starts if f"{a:.1f}" == shown)
            assert np.array_equal(twin, seq.voice_window(by_id[clip_id].track, start, end))
            assert not np.allclose(twin, voice)
