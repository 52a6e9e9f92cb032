"""The voice reader: readings, front end, network, augmentation, training (tiny, on synthetic tones), file format,
the corpora listing (real data, skipped without ../shared) and the ``read`` command."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from crossemo_core.errors import CheckpointError, DataError
from crossemo_core.readers.augment import AUGMENTATIONS, AugmentConfig, Augmenter, codec_round_trip
from crossemo_core.readers.reading import Reading, unweighted_average_recall, valence_from_emotions
from crossemo_core.readers.voice import (SEGMENT_HOP_S, SEGMENT_S, SINGLE_FRAME_FRONTEND, FrontendConfig, NormStats,
                                         VoiceEmotionNet, VoiceReader, log_mel, normalise, pad_batch, speech_span)
from crossemo_core.readers.voice_corpora import VOICE_EMOTIONS, Utterance, list_corpora
from crossemo_core.readers.voice_training import (SpeakerAdversary, VoiceTrainConfig, average_weights,
                                                  evaluate_mels, fit_prosody_view, reestimate_batch_norm,
                                                  reversal_strength, spectrogram_cache, train_voice_reader,
                                                  warp_mel_frequencies)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
RATE = 16000


def tone(seconds: float, f0: float, loud: float, rng: np.random.Generator) -> np.ndarray:
    """A voiced-like harmonic tone with vibrato, between short silences."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * f0 * (t + 0.002 * np.sin(2 * np.pi * 5 * t))
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * loud
    x = x * np.clip(np.sin(np.pi * t / seconds) * 3, 0, 1) + 0.001 * rng.standard_normal(len(t))
    return np.concatenate([np.zeros(RATE // 5), x, np.zeros(RATE // 5)]).astype(np.float32)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSEMO_CACHE", str(tmp_path / "cache"))


# ------------------------------------------------------------------------------------------------ readings
def test_reading_reports_its_top_classes_and_uncertainty() -> None:
    r = Reading.from_arrays("voice", VOICE_EMOTIONS, np.eye(7)[0] * 0.6 + 0.4 / 7, np.array([0.7, 0.2, 0.1]),
                            np.array([0.1, 0.9]))
    assert r.top_emotion == "angry" and r.top_valence == "negative" and not r.uncertain
    assert "high arousal 0.90" in r.summary()
    d = r.to_dict()
    assert d["valence"] == "negative" and d["arousal_probs"]["high"] == 0.9
    flat = Reading.from_arrays("face", VOICE_EMOTIONS, np.full(7, 1 / 7), np.array([0.4, 0.3, 0.3]))
    assert flat.uncertain and flat.arousal is None and "uncertain" in flat.summary()


def test_valence_from_emotions_and_uar() -> None:
    p = valence_from_emotions(VOICE_EMOTIONS, np.eye(7))
    assert p.tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0]]
    # class 0 all right, class 1 half right, class 2 absent -> mean of 1.0 and 0.5
    assert unweighted_average_recall(np.array([0, 0, 1, 1]), np.array([0, 0, 1, 0]), 3) == pytest.approx(0.75)


# ------------------------------------------------------------------------------------------------ front end
def test_log_mel_trims_silence_and_refuses_bad_signals() -> None:
    rng = np.random.default_rng(0)
    x = tone(1.0, 150, 0.3, rng)
    mel = log_mel(x)
    assert mel.shape[0] == 64 and 90 <= mel.shape[1] <= 102  # ~1 s of sound at 10 ms, the 0.2 s silences cut
    assert log_mel(np.zeros(RATE, np.float32)).shape[1] <= 1 or np.ptp(log_mel(np.zeros(RATE, np.float32))) == 0
    with pytest.raises(DataError, match="NaN"):
        log_mel(np.array([0.1, np.nan] * 1000, np.float32))
    with pytest.raises(DataError, match="1-D"):
        log_mel(np.zeros((2, 1000), np.float32))


def test_a_click_in_the_silence_is_not_read_as_speech() -> None:
    """A 2 ms click 0.1 s into the leading silence (loud enough to pass the level trim) is cut with the silence, so
    the spectrogram is the one without it; readers saved before the run rule keep trimming at single frames."""
    rng = np.random.default_rng(3)
    x = tone(1.0, 150, 0.3, rng)
    single_frame = SINGLE_FRAME_FRONTEND
    assert np.array_equal(log_mel(x), log_mel(x, single_frame))  # speech without clicks: both rules cut alike
    clicked = x.copy()
    clicked[RATE // 10:RATE // 10 + 32] += 0.05
    clicked[-RATE // 10:-RATE // 10 + 32] += 0.05  # and one in the trailing silence
    assert np.array_equal(log_mel(clicked), log_mel(x))
    assert speech_span(clicked) == speech_span(x)
    assert log_mel(clicked, single_frame).shape[1] >= log_mel(x, single_frame).shape[1] + 20
    assert speech_span(clicked, single_frame)[0] <= RATE // 10 < speech_span(x)[0]


def test_a_short_sound_far_from_the_speech_is_not_read_as_speech() -> None:
    """A 0.15 s breath-like burst 0.6 s after (or before) the sentence is a stretch of its own and too short to be
    speech, so the sentence is read without the silence between; a 0.4 s one (a short word), one 0.2 s away (joined
    to the sentence) and a recording of nothing but short sounds are kept whole."""
    rng = np.random.default_rng(4)
    x = tone(1.0, 150, 0.3, rng)  # 0.2 s silence, 1 s of sound, 0.2 s silence
    pause, tail = np.zeros(int(0.4 * RATE), np.float32), np.zeros(RATE // 5, np.float32)

    def burst(seconds: float) -> np.ndarray:
        return (0.05 * rng.standard_normal(int(seconds * RATE))).astype(np.float32)

    speech = log_mel(x).shape[1]
    after = np.concatenate([x, pause, burst(0.15), tail])
    before = np.concatenate([tail, burst(0.15), pause, x])
    for breath in (after, before):
        assert log_mel(breath).shape == log_mel(x).shape  # the same frames; values to float rounding (FFT paths)
        assert np.allclose(log_mel(breath), log_mel(x), atol=1e-5)
        assert speech_span(breath)[1] - speech_span(breath)[0] == speech_span(x)[1] - speech_span(x)[0]
    assert log_mel(np.concatenate([x, pause, burst(0.4), tail])).shape[1] >= speech + 90
    assert log_mel(np.concatenate([x, burst(0.15), tail])).shape[1] >= speech + 30  # 0.2 s gap: one stretch
    no_join = FrontendConfig(edge_gap_ms=0.0)
    assert log_mel(np.concatenate([x, burst(0.15), tail]), no_join).shape[1] == speech  # so the join is what kept it
    words = np.concatenate([burst(0.2), np.zeros(RATE, np.float32), burst(0.2)])  # two short sounds, none longer
    assert log_mel(words).shape[1] >= 115  # both kept, with the second between them
    assert log_mel(burst(0.15)).shape[1] >= 10
    session_16 = FrontendConfig(min_edge_sound_ms=0.0)  # the rule before it, kept by readers saved then
    assert log_mel(after, session_16).shape[1] >= log_mel(x, session_16).shape[1] + 50
    with pytest.raises(ValueError, match="edge_gap_ms"):
        FrontendConfig(edge_gap_ms=-1.0)


def test_utterance_normalisation_removes_channel_and_gain() -> None:
    rng = np.random.default_rng(1)
    mel = log_mel(tone(1.0, 200, 0.3, rng))
    tilted = mel + np.linspace(-2, 2, 64)[:, None] + 1.5  # a fixed channel colour and gain, in log units
    a = normalise(mel, NormStats.of([mel], "utterance"))
    b = normalise(tilted, NormStats.of([tilted], "utterance"))
    assert np.allclose(a, b, atol=1e-4)
    g = normalise(tilted, NormStats.of([tilted], "gain"))
    assert not np.allclose(a, g, atol=1e-2)  # the gain mode keeps the spectral tilt
    with pytest.raises(ValueError, match="normalisation"):
        FrontendConfig(normalisation="speaker")


def test_padding_does_not_change_what_the_network_says() -> None:
    torch.manual_seed(0)
    net = VoiceEmotionNet(64).eval()
    rng = np.random.default_rng(2)
    short, long = rng.standard_normal((64, 80)), rng.standard_normal((64, 150))
    x, mask = pad_batch([short, long])
    assert x.shape == (2, 64, 150) and mask.sum(1).tolist() == [80, 150]
    with torch.no_grad():
        together = net(x, mask)["valence"][0]
        alone = net(*pad_batch([short]))["valence"][0]
    # convolutions see the zero padding near the end, the pooling does not: close, not identical
    assert torch.allclose(together, alone, atol=0.15)
    assert set(net(x, mask)) == {"emotion", "valence", "arousal"}


# ------------------------------------------------------------------------------------------------ augmentation
def test_every_augmentation_gives_a_finite_signal_of_about_the_same_length() -> None:
    rng = np.random.default_rng(3)
    x = tone(1.5, 180, 0.3, rng)
    aug = Augmenter(AugmentConfig(n_rooms=2), seed=0)
    for name in AUGMENTATIONS:
        y = aug.one(name, x)
        assert y.dtype == np.float32 and np.all(np.isfinite(y)), name
        assert 0.8 * len(x) <= len(y) <= 1.2 * len(x), name
        assert not np.allclose(y[:len(x)], x[:len(y)]), f"{name} changed nothing"
    with pytest.raises(ValueError, match="unknown augmentation"):
        aug.one("echo", x)


def test_codec_round_trip_is_aligned_with_the_original() -> None:
    x = tone(1.0, 220, 0.3, np.random.default_rng(4))
    for fmt, bit_rate in (("m4a", 32000), ("mp3", 32000), ("ogg", 24000)):
        y = codec_round_trip(x, fmt, bit_rate)
        assert len(y) == len(x)
        assert np.corrcoef(x, y)[0, 1] > 0.8, fmt  # priming delay removed; a lag would decorrelate


def test_versions_are_tagged_and_reproducible() -> None:
    x = tone(1.0, 200, 0.3, np.random.default_rng(5))
    a = Augmenter(AugmentConfig(n_rooms=2, n_chains=2), seed=7).versions(x)
    b = Augmenter(AugmentConfig(n_rooms=2, n_chains=2), seed=7).versions(x)
    assert [n for n, _ in a][:1 + len(AUGMENTATIONS)] == [()] + [(n,) for n in AUGMENTATIONS]
    assert all(2 <= len(n) <= 4 for n, _ in a[1 + len(AUGMENTATIONS):])
    assert all(np.array_equal(u, v) for (_, u), (_, v) in zip(a, b))



def test_first_chain_is_the_first_random_chain_of_versions() -> None:
    x = tone(1.0, 200, 0.3, np.random.default_rng(5))
    full = Augmenter(AugmentConfig(n_rooms=2, n_chains=2), seed=7).versions(x)
    names, copy = Augmenter(AugmentConfig(n_rooms=2, n_chains=2), seed=7).first_chain(x)
    assert names == full[1 + len(AUGMENTATIONS)][0]
    assert np.array_equal(copy, full[1 + len(AUGMENTATIONS)][1])


def test_egemaps_features_are_gain_free_and_refuse_bad_signals() -> None:
    pytest.importorskip("opensmile")
    from crossemo_core.readers.prosody import egemaps_functionals, prosody_features

    rng = np.random.default_rng(3)
    x = np.concatenate([np.zeros(8000, np.float32), tone(1.2, 180, 0.3, rng), np.zeros(16000, np.float32)])
    a, b = egemaps_functionals(x), egemaps_functionals(0.05 * x)
    assert a.shape == (88,) and np.all(np.isfinite(a))
    assert np.allclose(a, b, rtol=1e-2, atol=1e-2)  # silence trimmed, speech brought to one level
    assert prosody_features(x, "statistics+egemaps").shape == (62 + 88,)
    for bad, says in ((np.zeros(16000, np.float32), "silent"), (np.zeros(100, np.float32), "too short"),
                      (np.full(16000, np.nan, np.float32), "NaN")):
        with pytest.raises(DataError, match=says):
            egemaps_functionals(bad)


# ------------------------------------------------------------------------------------------------ training
def _toy_corpus(folder: Path) -> list[Utterance]:
    """Loud high tones = angry (negative, high arousal), soft low tones = sad, mid tones = happy, quiet mid-low
    tones = neutral; 3 speakers."""
    rng = np.random.default_rng(6)
    utts = []
    for spk in range(3):
        for k in range(6):
            for emotion, f0, loud in (("angry", 320, 0.6), ("sad", 110, 0.05), ("happy", 220, 0.3),
                                      ("neutral", 160, 0.15)):
                path = folder / f"s{spk}_{emotion}_{k}.flac"
                sf.write(path, tone(0.8 + 0.1 * k, f0 * (1 + 0.05 * spk), loud, rng), RATE)
                utts.append(Utterance(path, "toy", f"toy:{spk}", emotion))
    return utts


def test_a_tiny_reader_learns_separable_classes_and_round_trips(tmp_path: Path, one_thread: None) -> None:
    utts = _toy_corpus(tmp_path)
    frontend = FrontendConfig(n_mels=32)
    cache = spectrogram_cache(utts, frontend, None)
    assert all(len(v) == 1 for v in cache.values())  # no augmentation: the clean copy only
    train = [u for u in utts if u.speaker != "toy:2"]
    valid = [u for u in utts if u.speaker == "toy:2"]
    config = VoiceTrainConfig(epochs=6, batch=8, lr=5e-3, crop_frames=60, views=1, augmentations=())
    reader, record = train_voice_reader(train, valid, cache, frontend, config)
    assert record.best_valid_uar >= 0.9 and len(record.history) >= 1
    from crossemo_core.readers.prosody import prosody_functionals

    signals = {u.key: sf.read(u.path, dtype="float32")[0] for u in utts}
    prosody = {k: np.stack([prosody_functionals(x)] * 2) for k, x in signals.items()}  # "degraded" row = clean
    scores = fit_prosody_view(reader, train, valid, cache, prosody)
    assert set(scores) == {0.0, 0.25, 0.5, 0.75, 1.0} and reader.prosody_weight == 0.5
    assert scores[1.0] >= 0.9  # pitch and loudness alone separate these tones
    metrics = evaluate_mels(reader, [cache[u.key][0][1] for u in valid], valid,
                            prosody_rows=np.stack([prosody[u.key][0] for u in valid]))
    assert metrics["valence_uar"] >= 0.9 and metrics["valence_uar_prosody"] >= 0.9
    path = reader.save(tmp_path / "reader.pt")
    again = VoiceReader.load(path)
    x = signals[valid[0].key]
    assert again.prosody_weight == reader.prosody_weight and again.prosody is not None
    assert again.read(x).valence == pytest.approx(reader.read(x).valence, abs=2e-3)  # float16 weights
    baseline = again.baseline_stats(signals[valid[1].key])
    assert sum(again.read(x, baseline).valence.values()) == pytest.approx(1.0)
    assert again.meta["training"]["best_epoch"] == record.best_epoch



def test_an_egemaps_prosody_view_round_trips_and_names_wrong_features(tmp_path: Path, one_thread: None) -> None:
    pytest.importorskip("opensmile")
    from crossemo_core.readers.prosody import prosody_features

    utts = _toy_corpus(tmp_path)
    frontend = FrontendConfig(n_mels=32)
    cache = spectrogram_cache(utts, frontend, None)
    config = VoiceTrainConfig(epochs=1, batch=8, crop_frames=60, views=1, augmentations=())
    reader, _ = train_voice_reader(utts, [], cache, frontend, config)
    signals = {u.key: sf.read(u.path, dtype="float32")[0] for u in utts}
    prosody = {k: np.stack([prosody_features(x, "egemaps")] * 2) for k, x in signals.items()}
    fit_prosody_view(reader, utts, [], cache, prosody, features="egemaps")
    again = VoiceReader.load(reader.save(tmp_path / "reader.pt"))
    assert again.prosody is not None and again.prosody.features == "egemaps"
    assert again.meta["prosody_features"] == "egemaps"
    x = signals[utts[0].key]
    assert again.read(x).valence == pytest.approx(reader.read(x).valence, abs=2e-3)
    assert sum(again.read(x, again.baseline_stats(signals[utts[3].key])).valence.values()) == pytest.approx(1.0)
    with pytest.raises(DataError, match="'egemaps' features"):
        again.prosody.proba(np.zeros((1, 62)))


@pytest.mark.parametrize("option", [{}, {"speaker_adversary": 0.5}, {"average_best": 3}])
def test_training_resumes_from_its_last_epoch(tmp_path: Path, one_thread: None, option: dict[str, float]) -> None:
    utts = _toy_corpus(tmp_path)
    frontend = FrontendConfig(n_mels=32)
    cache = spectrogram_cache(utts, frontend, None)
    config = VoiceTrainConfig(epochs=4, batch=8, crop_frames=60, views=1, augmentations=(), patience=99, **option)
    straight, _ = train_voice_reader(utts, utts[:9], cache, frontend, config)
    state = tmp_path / "state.pt"

    def stop_after_two(row: dict[str, float]) -> None:
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_voice_reader(utts, utts[:9], cache, frontend, config, resume=state, on_epoch=stop_after_two)
    assert torch.load(state, weights_only=True)["epoch"] == 2
    resumed, record = train_voice_reader(utts, utts[:9], cache, frontend, config, resume=state)
    assert [row["epoch"] for row in record.history] == [1, 2, 3, 4]
    assert resumed.meta["training"].get("averaged_epochs") == straight.meta["training"].get("averaged_epochs")
    for a, b in zip(straight.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_the_speaker_adversary_reverses_its_gradient_and_ramps_up() -> None:
    torch.manual_seed(0)
    adversary = SpeakerAdversary(embedding=8, n_speakers=3)
    z = torch.randn(5, 8, requires_grad=True)
    target = torch.tensor([0, 1, 2, 0, 1])
    torch.nn.functional.cross_entropy(adversary.classify(z), target).backward()
    plain = z.grad.clone()
    z.grad = None
    adversary.strength = 0.5
    torch.nn.functional.cross_entropy(adversary(z), target).backward()
    assert torch.allclose(z.grad, -0.5 * plain)  # the embedding is pushed to hide the speaker
    assert reversal_strength(0.0, 0.3) == 0.0
    assert reversal_strength(0.5, 0.3) == pytest.approx(0.3 * 0.9866, abs=1e-4)
    assert 0.2999 < reversal_strength(1.0, 0.3) <= 0.3


@pytest.mark.parametrize("option, value, bad", [("speaker_adversary", 1.0, (-0.1, 11.0)), ("vtlp", 0.1, (-0.1, 0.5))])
def test_a_training_option_changes_training_but_not_the_reader_file(tmp_path: Path, one_thread: None, option: str,
                                                                    value: float, bad: tuple[float, ...]) -> None:
    utts = _toy_corpus(tmp_path)
    frontend = FrontendConfig(n_mels=32)
    cache = spectrogram_cache(utts, frontend, None)
    plain = VoiceTrainConfig(epochs=2, batch=8, crop_frames=60, views=1, augmentations=(), patience=99)
    changed = VoiceTrainConfig(**{**plain.identity(), option: value})
    a, a_record = train_voice_reader(utts, utts[:9], cache, frontend, plain)
    b, b_record = train_voice_reader(utts, utts[:9], cache, frontend, changed)
    assert a.net.state_dict().keys() == b.net.state_dict().keys()  # nothing but the reader is saved
    assert any(not torch.allclose(x.float(), y.float()) for x, y in zip(a.net.state_dict().values(),
                                                                       b.net.state_dict().values()))
    if option == "speaker_adversary":
        assert all(row["speaker_loss"] > 0 for row in b_record.history) and "speaker_loss" not in a_record.history[0]
    again = VoiceReader.load(b.save(tmp_path / "changed.pt"))
    assert again.meta["training"][option] == value
    assert option not in plain.identity()  # run keys made before the option stay as they were
    assert changed.identity()[option] == value
    for wrong in bad:
        with pytest.raises(ValueError, match=option):
            VoiceTrainConfig(**{option: wrong})


def test_sample_weights_balance_corpora_or_speakers(tmp_path: Path) -> None:
    from crossemo_core.readers.voice_training import sample_weights

    utts = [Utterance(tmp_path / f"{c}{s}{k}.wav", c, f"{c}:{s}", "neutral")
            for c, speakers in (("big", {"a": 40, "b": 40, "c": 20}), ("small", {"x": 30, "y": 10}))
            for s, n in speakers.items() for k in range(n)]
    plain = sample_weights(utts)
    assert plain[0] == pytest.approx(140 / (2 * 100)) and plain[-1] == pytest.approx(140 / (2 * 40))
    for balance, key in ((False, lambda u: u.corpus), (True, lambda u: u.speaker)):
        w = sample_weights(utts, balance)
        assert w.shape == (len(utts),) and w.mean() == pytest.approx(1.0)
        totals = {}
        for u, wi in zip(utts, w):
            totals[key(u)] = totals.get(key(u), 0.0) + wi
        assert max(totals.values()) == pytest.approx(min(totals.values()))  # each group weighs the same
    assert VoiceTrainConfig(speaker_balance=True).identity()["speaker_balance"] is True
    assert "speaker_balance" not in VoiceTrainConfig().identity()  # run keys made before the option stay


def test_speaker_balance_changes_training_where_speakers_are_uneven(tmp_path: Path, one_thread: None) -> None:
    utts = _toy_corpus(tmp_path)
    uneven = [u for u in utts if u.speaker != "toy:1" or "_0." in u.path.name]  # toy:1 keeps 4 of its 24
    frontend = FrontendConfig(n_mels=32)
    cache = spectrogram_cache(uneven, frontend, None)
    plain = VoiceTrainConfig(epochs=1, batch=8, crop_frames=60, views=1, augmentations=(), patience=99)
    a, _ = train_voice_reader(uneven, uneven[:9], cache, frontend, plain)
    b, _ = train_voice_reader(uneven, uneven[:9], cache, frontend,
                              VoiceTrainConfig(**{**plain.identity(), "speaker_balance": True}))
    assert any(not torch.allclose(x.float(), y.float()) for x, y in zip(a.net.state_dict().values(),
                                                                       b.net.state_dict().values()))
    assert b.meta["training"]["speaker_balance"] is True
    from crossemo_core.readers.prosody import prosody_functionals

    prosody = {u.key: np.stack([prosody_functionals(sf.read(u.path, dtype="float32")[0])] * 2) for u in uneven}
    fit_prosody_view(a, uneven, uneven[:9], cache, prosody)
    by_corpus = a.prosody.proba(np.stack([prosody[u.key][0] for u in uneven]))["valence"]
    fit_prosody_view(a, uneven, uneven[:9], cache, prosody, speaker_balance=True)
    by_speaker = a.prosody.proba(np.stack([prosody[u.key][0] for u in uneven]))["valence"]
    assert not np.allclose(by_corpus, by_speaker)  # the prosody view is fitted with the same weighting


def test_the_readers_benchmark_fits_the_prosody_view_as_the_network_was_trained(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import crossemo_core.benchmark.readers as readers_suite

    seen: dict[str, object] = {}

    def fit(*args: object, speaker_balance: bool = False, **kwargs: object) -> dict:
        seen["speaker_balance"] = speaker_balance
        raise SystemExit(0)

    monkeypatch.setattr(readers_suite, "fit_prosody_view", fit)
    for balance in (False, True):
        with pytest.raises(SystemExit):
            readers_suite.voice_run(readers_suite.VoiceSplit("s", [], [], []), {}, {}, FrontendConfig(),
                                    VoiceTrainConfig(speaker_balance=balance), trained=(object(), object()))
        assert seen["speaker_balance"] is balance


def test_vocal_tract_warp_moves_a_formant_by_its_factor_and_keeps_the_rest() -> None:
    import librosa

    frontend = FrontendConfig()
    centres = librosa.mel_frequencies(frontend.n_mels + 2, fmin=frontend.fmin_hz, fmax=frontend.fmax_hz)[1:-1]
    rng = np.random.default_rng(0)
    mel = rng.normal(size=(frontend.n_mels, 7)).astype(np.float32)
    assert np.allclose(warp_mel_frequencies(mel, 1.0, frontend), mel)
    peak = np.zeros((frontend.n_mels, 3), np.float32)
    peak[30] = 1.0
    for factor in (0.9, 1.1):
        warped = warp_mel_frequencies(peak, factor, frontend)
        assert warped.shape == peak.shape and warped.dtype == peak.dtype and np.allclose(warped[:, 0], warped[:, 2])
        heard_at = float((warped[:, 0] * centres).sum() / warped[:, 0].sum())
        assert heard_at == pytest.approx(factor * centres[30], rel=0.03)  # the formant moves with the vocal tract
    flat = np.full((frontend.n_mels, 4), -3.0, np.float32)
    assert np.allclose(warp_mel_frequencies(flat, 0.8, frontend), flat)  # no band is left empty at the edges


def test_averaged_weights_are_the_mean_and_batch_norm_is_estimated_again() -> None:
    torch.manual_seed(0)
    nets = [VoiceEmotionNet(16), VoiceEmotionNet(16)]
    states = [net.state_dict() for net in nets]
    mean = average_weights(states)
    for name, value in mean.items():
        if value.is_floating_point():
            assert torch.allclose(value, (states[0][name] + states[1][name]) / 2)
        else:
            assert value.dtype == states[0][name].dtype
    with pytest.raises(ValueError):
        average_weights([])
    net = nets[0]
    rng = np.random.default_rng(0)
    mels = [rng.normal(3.0, 2.0, size=(16, 50)).astype(np.float32) for _ in range(7)]
    first, conv = net.body[0][1], net.body[0][0]
    first.running_mean.fill_(5.0), first.num_batches_tracked.fill_(10)  # stale statistics must not leak in
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    reestimate_batch_norm(net, iter(mels), batch=3)  # batches of 3 and 3; the 7th, alone, is left out
    with torch.no_grad():
        batch_means = [conv(torch.from_numpy(np.stack(mels[a:a + 3]))).mean(dim=(0, 2)) for a in (0, 3)]
    assert torch.allclose(first.running_mean, (batch_means[0] + batch_means[1]) / 2, atol=1e-4)  # mean of batches
    assert not net.training and first.momentum == 0.1  # left as it was found, in eval mode
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())  # weights untouched


def test_a_reader_averaged_over_its_best_epochs_records_them(tmp_path: Path, one_thread: None) -> None:
    utts = _toy_corpus(tmp_path)
    frontend = FrontendConfig(n_mels=32)
    cache = spectrogram_cache(utts, frontend, None)
    config = VoiceTrainConfig(epochs=4, batch=8, crop_frames=60, views=1, augmentations=(), patience=99,
                              average_best=3)
    straight, record = train_voice_reader(utts, utts[:9], cache, frontend, config)
    training = straight.meta["training"]
    scores = {row["epoch"]: row["valid_valence_uar"] for row in record.history}
    chosen = training["averaged_epochs"]
    assert len(chosen) == 3 and min(scores[e] for e in chosen) >= max(scores[e] for e in scores if e not in chosen)
    assert 0.0 <= training["averaged_valid_valence_uar"] <= 1.0
    plain, plain_record = train_voice_reader(utts, utts[:9], cache, frontend,
                                             VoiceTrainConfig(**{**config.identity(), "average_best": 0}))

    def without_times(rows: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]

    assert without_times(plain_record.history) == without_times(record.history)  # the same training, to the digit
    assert any(not torch.allclose(a.float(), b.float()) for a, b in zip(plain.net.state_dict().values(),
                                                                       straight.net.state_dict().values()))
    unvalidated, _ = train_voice_reader(utts, [], cache, frontend, config)
    assert unvalidated.meta["training"]["averaged_epochs"] == [2, 3, 4]  # without validation: the latest epochs
    latest, latest_record = train_voice_reader(utts, [], cache, frontend, VoiceTrainConfig(
        **{**config.identity(), "average_best": 0}))
    assert latest_record.best_epoch == 4 and np.isnan(latest_record.best_valid_uar)
    assert "average_best" not in VoiceTrainConfig().identity() and config.identity()["average_best"] == 3
    for bad in (1, -1, 5):
        with pytest.raises(ValueError, match="average_best"):
            VoiceTrainConfig(epochs=4, average_best=bad)


def test_a_resume_state_made_with_other_settings_is_refused(tmp_path: Path, one_thread: None) -> None:
    utts = _toy_corpus(tmp_path)
    frontend = FrontendConfig(n_mels=32)
    cache = spectrogram_cache(utts, frontend, None)
    config = VoiceTrainConfig(epochs=1, batch=8, crop_frames=60, views=1, augmentations=(), patience=99)
    state = tmp_path / "state.pt"
    train_voice_reader(utts, utts[:9], cache, frontend, config, resume=state)
    other = VoiceTrainConfig(epochs=1, batch=8, crop_frames=60, views=1, augmentations=(), patience=99, lr=1e-3)
    with pytest.raises(DataError, match="other settings"):
        train_voice_reader(utts, utts[:9], cache, frontend, other, resume=state)
    single_frame = FrontendConfig(n_mels=32, min_speech_run_ms=0.0)  # another front end: other spectrograms
    with pytest.raises(DataError, match="other settings"):
        train_voice_reader(utts, utts[:9], cache, single_frame, config, resume=state)
    old = torch.load(state, weights_only=True)
    del old["config"]  # a state written before the settings were recorded
    torch.save(old, state)
    with pytest.raises(DataError, match="other settings"):
        train_voice_reader(utts, utts[:9], cache, frontend, config, resume=state)


def test_a_file_that_is_not_a_voice_reader_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.pt"
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(CheckpointError, match="not a crossemo voice reader"):
        VoiceReader.load(bad)
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable voice reader"):
        VoiceReader.load(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        VoiceReader.load(tmp_path / "missing.pt")


def test_a_reader_saved_before_the_speech_run_rule_trims_at_single_frames(tmp_path: Path) -> None:
    torch.manual_seed(0)
    path = VoiceReader(VoiceEmotionNet(64).eval(), FrontendConfig()).save(tmp_path / "v.pt")
    assert VoiceReader.load(path).frontend == FrontendConfig()
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload["meta"])
    del meta["frontend"]["min_edge_sound_ms"], meta["frontend"]["edge_gap_ms"]  # as session 16 saved it
    torch.save({**payload, "meta": json.dumps(meta)}, path)
    assert VoiceReader.load(path).frontend == FrontendConfig(min_edge_sound_ms=0.0)
    del meta["frontend"]["min_speech_run_ms"]  # as sessions before it saved it
    torch.save({**payload, "meta": json.dumps(meta)}, path)
    assert VoiceReader.load(path).frontend == SINGLE_FRAME_FRONTEND
    assert VoiceReader.load().frontend == FrontendConfig()  # the shipped reader was trained with today's rules
    external = REPO / "checkpoints" / "voice_reader_external.pt"  # shipped before the rule, kept as trained
    assert VoiceReader.load(external).frontend == SINGLE_FRAME_FRONTEND


def test_too_little_speech_gives_a_note_and_long_recordings_are_read_in_segments() -> None:
    torch.manual_seed(0)
    reader = VoiceReader(VoiceEmotionNet(64).eval(), FrontendConfig())
    rng = np.random.default_rng(8)
    short = reader.read(tone(0.1, 200, 0.3, rng)[RATE // 5:])
    assert "nothing to read" in short.note and short.uncertain
    long = reader.read_recording(np.concatenate([tone(2.5, 200, 0.3, rng) for _ in range(4)]))
    assert "segments" in long.note and long.seconds > 10
    assert sum(long.valence.values()) == pytest.approx(1.0)


def test_segments_start_where_the_speech_does() -> None:
    """A shift of the audio (more silence before the speech) moves the segments with the speech, so the reading
    does not change; silence does not count towards the length that decides whether to read in segments."""
    torch.manual_seed(0)
    reader = VoiceReader(VoiceEmotionNet(64).eval(), FrontendConfig())
    speech = np.concatenate([tone(2.5, 200 + 40 * k, 0.3, np.random.default_rng(k)) for k in range(3)])
    early, late = (np.concatenate([np.zeros(n, np.float32), speech]) for n in (1600, 11200))  # 0.1 s, 0.7 s
    a, b = reader.read_recording(early), reader.read_recording(late)
    assert "segments" in a.note and a.valence_array() == pytest.approx(b.valence_array(), abs=1e-6)
    assert list(a.emotions.values()) == pytest.approx(list(b.emotions.values()), abs=1e-6)
    quiet = np.zeros(3 * RATE, np.float32)
    padded = reader.read_recording(np.concatenate([quiet, tone(3.0, 200, 0.3, np.random.default_rng(9)), quiet]))
    assert not padded.note and padded.seconds < 4
    clicked = speech * 0.01  # one click 40 dB louder than the speech does not make the speech count as silence
    clicked[RATE:RATE + 200] = 1.0
    assert "segments" in reader.read_recording(clicked).note


def test_a_recording_read_with_its_frames_at_hand_reads_as_when_they_are_extracted() -> None:
    """``frames_of`` is asked for each segment's frames at the segment's place in the recording (laid from the
    speech's start); frames equal to an extraction read the same, the prosody view reads the very frames given, and
    ``None`` falls back to extracting."""
    from crossemo_core.features.voice import VoiceFeatureExtractor

    reader = VoiceReader.load()
    assert reader.prosody is not None and reader.prosody_weight > 0
    signal = np.concatenate([np.zeros(RATE // 2, np.float32)]
                            + [tone(2.5, 180 + 30 * k, 0.3, np.random.default_rng(k)) for k in range(3)])
    extractor, asked = VoiceFeatureExtractor(), []

    def extracted(first: int, samples: np.ndarray) -> np.ndarray:
        asked.append(first)
        assert np.array_equal(samples, signal[first:first + len(samples)])
        return extractor.extract(samples, RATE)

    plain = reader.read_recording(signal)
    assert "segments" in plain.note
    assert reader.read_recording(signal, frames_of=extracted).valence_array() == \
        pytest.approx(plain.valence_array(), abs=1e-6)
    start, end = speech_span(signal, reader.frontend)
    assert asked[0] == start and asked[-1] + int(SEGMENT_S * RATE) <= end
    assert all(b - a == int(SEGMENT_HOP_S * RATE) for a, b in zip(asked[:-2], asked[1:-1]))
    none = reader.read_recording(signal, frames_of=lambda first, samples: None)
    assert none.valence_array() == pytest.approx(plain.valence_array(), abs=1e-6)
    given, read = [], []
    rows = reader.prosody.rows
    reader.prosody.rows = lambda samples, frames=None: read.append(frames) or rows(samples, frames)  # type: ignore
    reader.read_recording(signal, frames_of=lambda first, samples: given.append(extracted(first, samples))
                          or given[-1])
    assert len(read) == len(given) >= 3 and all(r is g for r, g in zip(read, given))  # the prosody view reads them


# ------------------------------------------------------------------------------------------------ real data
needs_data = pytest.mark.skipif(not (DATA / "tess" / "labels.csv").is_file(), reason="../shared/data is absent")


@needs_data
def test_the_three_corpora_are_listed_with_one_label_scheme() -> None:
    utts = list_corpora(DATA)
    by = {c: [u for u in utts if u.corpus == c] for c in ("ravdess", "tess", "emodb")}
    assert len(by["ravdess"]) == 1199 and len(by["tess"]) == 1400 and len(by["emodb"]) == 535
    assert len({u.speaker for u in utts}) == 20 + 2 + 10
    bored = [u for u in by["emodb"] if u.emotion == "bored"]
    assert bored and all(u.emotion_index == -1 and u.valence == 0 and u.arousal == 0 for u in bored)
    calm = [u for u in by["ravdess"] if u.emotion == "calm"]
    assert calm and all(u.emotion_index == VOICE_EMOTIONS.index("neutral") for u in calm)
    with pytest.raises(DataError, match="unknown voice corpus"):
        list_corpora(DATA, ("iemocap",))


# ------------------------------------------------------------------------------------------------ read command
SHIPPED = REPO / "checkpoints" / "voice_reader.pt"


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped voice reader")
def test_read_command_reads_audio_and_names_a_broken_file(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from crossemo_core.cli import main
    from crossemo_core.readers.face import FaceReader

    def no_face_models(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("an audio file loaded the face models")

    monkeypatch.setattr(FaceReader, "load", no_face_models)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF0000WAVEfmt garbage")
    rc = main(["read", str(REPO / "assets" / "clips" / "voice_upbeat.wav"), str(broken), "--json",
               "--csv", str(tmp_path / "r.csv")])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert rc == 2 and len(lines) == 2
    voice = lines[0]["voice"]
    assert lines[0]["face"] is None and sum(voice["valence_probs"].values()) == pytest.approx(1, abs=1e-3)
    assert set(voice["arousal_probs"]) == {"low", "high"}
    assert lines[1]["error"] and lines[1]["voice"] is None
    table = (tmp_path / "r.csv").read_text().splitlines()
    assert table[0].startswith("file,error,face_emotion") and len(table) == 3


def test_read_goes_past_an_unforeseen_failure_and_keeps_an_earlier_table(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from crossemo_core.cli import main
    from crossemo_core.readers.cli import Readers

    read_file = Readers.read_file

    def odd_or_read(self, path, baseline=None):  # noqa: ANN001, ANN202
        if Path(path).name == "a_odd.wav":
            raise RuntimeError("inside a library")
        return read_file(self, path, baseline)

    monkeypatch.setattr(Readers, "read_file", odd_or_read)
    made: list[int] = []
    init = Readers.__init__
    monkeypatch.setattr(Readers, "__init__", lambda self: (made.append(1), init(self))[1])
    voice = (REPO / "assets" / "clips" / "voice_upbeat.wav").read_bytes()
    for name in ("a_odd.wav", "b_fine.wav"):
        (tmp_path / name).write_bytes(voice)
    table = tmp_path / "r.csv"
    assert main(["read", str(tmp_path / "a_odd.wav"), str(tmp_path / "b_fine.wav"), "--json", "--csv", str(table)]) == 2
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["error"] == "unexpected error (RuntimeError: inside a library)" and lines[1]["voice"] is not None
    assert len(made) == 2  # the file after the failure was read by new readers
    before = table.read_text()
    assert main(["read", str(tmp_path / "a_odd.wav"), "--csv", str(table)]) == 2  # every file failed
    assert "nothing was read, so" in capsys.readouterr().err and table.read_text() == before


def test_the_readers_benchmark_trains_with_the_augmentations_it_is_given(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import crossemo_core.benchmark.readers as readers_suite
    from crossemo_core.cli import build_parser, main

    seen: dict[str, VoiceTrainConfig] = {}

    def record(*args: object, config: VoiceTrainConfig, **kwargs: object) -> dict:
        seen["config"] = config
        raise SystemExit(0)

    monkeypatch.setattr(readers_suite, "run_readers", record)
    with pytest.raises(SystemExit):
        main(["benchmark", "--suite", "readers", "--root", str(tmp_path), "--out", str(tmp_path / "out"),
              "--augmentations", "noise", "codec"])
    assert seen["config"].augmentations == ("noise", "codec")
    default = build_parser().parse_args(["benchmark", "--suite", "readers", "--out", str(tmp_path)])
    assert tuple(default.augmentations) == AUGMENTATIONS == VoiceTrainConfig().augmentations
    with pytest.raises(SystemExit):
        build_parser().parse_args(["benchmark", "--suite", "readers", "--out", str(tmp_path), "--augmentations",
                                   "echo"])
    with pytest.raises(SystemExit):
        main(["benchmark", "--suite", "readers", "--root", str(tmp_path), "--out", str(tmp_path / "out"),
              "--speaker-adversary", "0.3"])
    assert seen["config"].speaker_adversary == 0.3 and default.speaker_adversary == 0.0
    with pytest.raises(SystemExit):
        main(["benchmark", "--suite", "readers", "--root", str(tmp_path), "--out", str(tmp_path / "out"),
              "--vtlp", "0.1"])
    assert seen["config"].vtlp == 0.1 and default.vtlp == 0.0
    with pytest.raises(SystemExit):
        main(["benchmark", "--suite", "readers", "--root", str(tmp_path), "--out", str(tmp_path / "out"),
              "--average-best", "5"])
    assert seen["config"].average_best == 5 and default.average_best == 0
    with pytest.raises(SystemExit):
        main(["benchmark", "--suite", "readers", "--root", str(tmp_path), "--out", str(tmp_path / "out"),
              "--speaker-balance"])
    assert seen["config"].speaker_balance is True and default.speaker_balance is False
    for option in ("--speaker-adversary", "--vtlp", "--average-best"):
        with pytest.raises(SystemExit):  # argparse's one-line error, not a traceback from the config
            build_parser().parse_args(["benchmark", "--suite", "readers", "--out", str(tmp_path), option, "-1"])


def test_the_readers_benchmark_runs_only_the_voice_runs_asked_for(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import crossemo_core.benchmark.readers as readers_suite
    from crossemo_core.cli import main

    config = VoiceTrainConfig()
    both = readers_suite.readers_jobs((0, 1), False, config, config)
    loco = readers_suite.readers_jobs((0, 1), False, config, config, voice_runs=("loco",))
    actors = readers_suite.readers_jobs((1,), True, config, config, voice_runs=("ravdess-actors",))
    assert [(j.kind, j.held_out, j.config.seed) for j in loco] == [
        ("loco", c, s) for s in (0, 1) for c in readers_suite.CORPORA]
    assert set(loco) < set(both) and len(both) == 8
    assert [(j.kind, j.config.seed) for j in actors if not j.kind.startswith("ablation")] == [("ravdess-actors", 1)]
    for bad in (("ravdess18-20",), (), "loco"):
        with pytest.raises(ValueError, match="voice_runs must be"):
            readers_suite.readers_jobs((0,), False, config, config, voice_runs=bad)
    planned: dict[str, list] = {}

    def plan(voice_jobs: list, runs: object, *args: object, **kwargs: object) -> None:
        planned["jobs"], planned["runs"] = voice_jobs, runs
        raise SystemExit(0)

    with monkeypatch.context() as patch:  # run_readers passes the choice on to the jobs it plans
        patch.setattr(readers_suite, "list_corpora", lambda root: [])
        patch.setattr(readers_suite, "spectrogram_cache", lambda *a, **k: {})
        patch.setattr(readers_suite, "prosody_cache", lambda *a, **k: {})
        patch.setattr(readers_suite, "run_voice_jobs", plan)
        with pytest.raises(SystemExit):
            readers_suite.run_readers(tmp_path, tmp_path / "out", seeds=(1,), ablation=False,
                                      voice_runs=("ravdess-actors",))
    assert [(j.kind, j.config.seed) for j in planned["jobs"]] == [("ravdess-actors", 1)]
    assert planned["runs"].valid is readers_suite.is_voice_record  # a damaged cached run is computed again
    seen: dict[str, object] = {}

    def record(*args: object, voice_runs: tuple[str, ...], **kwargs: object) -> dict:
        seen["voice_runs"] = voice_runs
        raise SystemExit(0)

    monkeypatch.setattr(readers_suite, "run_readers", record)
    for given, expected in (([], readers_suite.VOICE_RUNS), (["--voice-runs", "loco"], ("loco",))):
        with pytest.raises(SystemExit):
            main(["benchmark", "--suite", "readers", "--root", str(tmp_path), "--out", str(tmp_path / "out"), *given])
        assert seen["voice_runs"] == expected


def test_the_benchmark_names_the_epochs_each_reader_keeps() -> None:
    from crossemo_core.benchmark.readers import _epochs_kept

    single = {"best_epoch": 9, "valid_valence_uar": 0.8123}
    averaged = {**single, "averaged_epochs": [7, 9, 12], "averaged_valid_valence_uar": 0.8301}
    assert _epochs_kept(single) == "best epoch 9, validation 0.812" and _epochs_kept(single, validation=False) == "9"
    assert _epochs_kept(averaged) == "mean of epochs 7, 9, 12, validation 0.830"
    assert _epochs_kept(averaged, validation=False) == "mean of epochs 7, 9, 12"


def test_voice_runs_already_cached_are_not_trained_again(tmp_path: Path) -> None:
    from crossemo_core.benchmark.cache import RunCache
    from crossemo_core.benchmark.readers import VoiceJob, run_voice_jobs

    frontend, runs = FrontendConfig(), RunCache(tmp_path / "cache")
    done = VoiceJob("loco", "tess", VoiceTrainConfig())
    runs.put(done.key(frontend), {"clean": {"valence_uar": 0.6}})
    said: list[str] = []
    run_voice_jobs([done], runs, tmp_path / "no-data-here", frontend, say=said.append)  # no worker, no data read
    assert said == ["1 voice run(s) cached, 0 to compute"]
    adversarial = VoiceJob("loco", "tess", VoiceTrainConfig(speaker_adversary=0.3))
    assert adversarial.key(frontend) != done.key(frontend)  # another setting, another run
    mixed = [VoiceJob("loco", "emodb", VoiceTrainConfig()), VoiceJob("loco", "ravdess", VoiceTrainConfig(), "egemaps")]
    with pytest.raises(ValueError, match="different prosody features"):
        run_voice_jobs(mixed, runs, tmp_path, frontend)


def test_a_muted_microphones_hiss_is_not_read_as_a_voice() -> None:
    """Below -80 dBFS (SILENCE_PEAK) a recording holds no speech: the front end's relative trim found "speech" in
    -100 dBFS hiss and the network read it as fearful 0.96; a quiet voice above the floor is still read."""
    reader = VoiceReader.load()
    hiss = (1e-5 * np.random.default_rng(0).standard_normal(3 * RATE)).astype(np.float32)
    for signal in (hiss, np.zeros(3 * RATE, np.float32)):
        reading = reader.read_recording(signal)
        assert "nothing to read" in reading.note and reading.valence_array() == pytest.approx(np.full(3, 1 / 3))
    quiet = tone(2.0, 180, 0.3, np.random.default_rng(1)) * 1e-3  # peaks near -50 dBFS
    assert not reader.read(quiet).note


@pytest.mark.parametrize("damage", ["{ half a record", "[1, 2]", "{}", "kind a number", "clean a list",
                                    "valence UAR a string", "epoch a bool", "averaged epochs strings"])
def test_a_damaged_readers_benchmark_run_is_computed_again(tmp_path: Path, damage: str) -> None:
    """Valid JSON of the wrong shape in the readers suite's run cache crashed the table with a KeyError or
    TypeError on every rerun; such a run is now missing, so the suite computes it again."""
    from crossemo_core.benchmark.cache import RunCache
    from crossemo_core.benchmark.readers import VOICE_PARTS, is_voice_record, readers_markdown

    part = {"n": 10, "valence_uar": 0.6, "valence_uar_network": 0.55, "valence_uar_prosody": None,
            "emotion_uar": 0.3, "arousal_uar": 0.8, "valence_confusion": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}
    record = {"kind": "loco", "split": "leave tess out", "n_test": 10, "best_epoch": 3, "valid_valence_uar": 0.7,
              "prosody_weight": 0.5, "averaged_epochs": [2, 3], "averaged_valid_valence_uar": 0.71,
              **{p: dict(part) for p in VOICE_PARTS}}
    assert is_voice_record(record) and "| loco | leave tess out | 10 | 0.600 |" in readers_markdown(
        {"voice": [record], "face": None, "latency": {}})
    changed = {"kind a number": {"kind": 3}, "clean a list": {"clean": [0.6]},
               "valence UAR a string": {"degraded": {**part, "valence_uar": "0.6"}}, "epoch a bool": {"best_epoch": True},
               "averaged epochs strings": {"averaged_epochs": ["2"]}}.get(damage)
    runs = RunCache(tmp_path, valid=is_voice_record)
    runs.put("voice-run", record)
    assert runs.get("voice-run") == record
    runs.path("voice-run").write_text(damage if changed is None else json.dumps({**record, **changed}))
    assert runs.get("voice-run") is None
