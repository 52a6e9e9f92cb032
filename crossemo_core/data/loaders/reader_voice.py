"""Voice frames from a trained voice reader, for the corpus loaders (``voice_features="reader:<checkpoint>"``).

Instead of the librosa frames of :mod:`crossemo_core.features.voice`, each clip's voice becomes the reader's own
frame-level representation: the log-mel front end of :class:`~crossemo_core.readers.voice.VoiceReader` (silence
trimmed, per-utterance normalisation), then the convolution body of its network (the ``2 x channels`` = 256
features per 10 ms frame that its attentive pooling reads), averaged over ``pool`` frames (default 10: 10 frames
per second). The reader's reading of the whole clip is appended to every frame as :data:`POSTERIOR_CHANNELS`
(its 7 emotion, 3 valence and 2 arousal probabilities; valence and arousal mix the network and prosody views as
the reader reports them), so methods that compare readings (the ``disagreement`` baseline) find them with the
pair's voice, wherever the abnormal-pair protocol moves it. :func:`drop_posterior_channels` removes them again.

Results are cached on disk like the librosa features (:class:`~crossemo_core.features.voice.FeatureCache`), keyed
by the audio file's content, the checkpoint file's content and the settings, so a second load runs no network.

**Which reader.** For RAVDESS cross-validation use a reader that never heard a RAVDESS actor:
``checkpoints/voice_reader_external.pt`` (TESS + EmoDB only; ``scripts/train_voice_reader_external.py``). The
shipped ``checkpoints/voice_reader.pt`` was trained on RAVDESS actors 1-14 and would leak test speakers into the
folds; the loader warns when a reader's ``meta["split"]["train"]`` names RAVDESS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossemo_core.errors import DataError
from crossemo_core.features.voice import file_sha256
from crossemo_core.paths import CHECKPOINTS

READER_SPEC_PREFIX = "reader"
DEFAULT_EXTERNAL_READER = CHECKPOINTS / "voice_reader_external.pt"
"""``voice_features="reader"`` alone means this checkpoint (trained on TESS + EmoDB, never RAVDESS)."""
READER_EXTRACTOR_ID = "voice-reader-frames"
READER_EXTRACTOR_VERSION = 1
POSTERIOR_PREFIX = "reader_p:"
EMOTIONS = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
VALENCES = ("negative", "neutral", "positive")
AROUSALS = ("low", "high")
POSTERIOR_CHANNELS = tuple([f"{POSTERIOR_PREFIX}emotion:{e}" for e in EMOTIONS]
                           + [f"{POSTERIOR_PREFIX}valence:{v}" for v in VALENCES]
                           + [f"{POSTERIOR_PREFIX}arousal:{a}" for a in AROUSALS])
"""Names of the 12 appended channels (constant over a clip's frames)."""


def parse_voice_features(spec: str) -> Path | None:
    """``"librosa"`` -> None (the project's librosa frames); ``"reader"`` -> :data:`DEFAULT_EXTERNAL_READER`;
    ``"reader:<path>"`` -> that checkpoint. Anything else is refused."""
    text = str(spec).strip()
    if text in ("", "librosa"):
        return None
    if text == READER_SPEC_PREFIX:
        return DEFAULT_EXTERNAL_READER
    if text.startswith("reader-folds:"):
        raise DataError("voice_features='reader-folds:DIR' (one reader per fold) is resolved by the benchmark, "
                        "which loads each fold's reader; load one reader with 'reader:<checkpoint>'.")
    if text.startswith(READER_SPEC_PREFIX + ":") and len(text) > len(READER_SPEC_PREFIX) + 1:
        return Path(text[len(READER_SPEC_PREFIX) + 1:]).expanduser()
    raise DataError(f"voice_features must be 'librosa', 'reader' or 'reader:<checkpoint>', not {spec!r}.")


@dataclass
class ReaderFrameExtractor:
    """Clip audio -> ``(frames, 2 * channels + 12)`` float32: pooled body features, then the clip's reading."""

    checkpoint: Path
    pool: int = 10
    reader: Any = field(default=None, repr=False)
    checkpoint_sha256: str = ""

    EXTRACTOR_ID = READER_EXTRACTOR_ID
    EXTRACTOR_VERSION = READER_EXTRACTOR_VERSION

    def __post_init__(self) -> None:
        from crossemo_core.readers.voice import VoiceReader

        self.checkpoint = Path(self.checkpoint)
        if not self.checkpoint.is_file():
            raise DataError(f"voice reader checkpoint not found: {self.checkpoint} (train one with "
                            f"scripts/train_voice_reader_external.py, or give voice_features='librosa').")
        if self.pool < 1:
            raise DataError(f"reader frame pooling must be >= 1, not {self.pool}.")
        self.reader = VoiceReader.load(self.checkpoint)
        self.checkpoint_sha256 = file_sha256(self.checkpoint)
        self.channels = 2 * self.reader.net_config.channels
        self.feature_names = tuple(f"reader_frame:{k}" for k in range(self.channels)) + POSTERIOR_CHANNELS

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    @property
    def params(self) -> dict[str, Any]:
        """What the cache key holds besides the audio content."""
        return {"checkpoint": self.checkpoint_sha256, "pool": self.pool}

    @property
    def id(self) -> str:
        """Extractor id for ``PairDataset.extractor["voice"]``: names the checkpoint by content."""
        return f"{READER_EXTRACTOR_ID}/{READER_EXTRACTOR_VERSION}:{self.checkpoint_sha256[:12]}+pool{self.pool}"

    def trained_on_ravdess(self) -> bool:
        """Whether the reader heard RAVDESS actors (a per-fold reader, ``meta["split"]["fold_readers"]``, did, but
        only its fold's training and validation actors: the benchmark pairs it with that fold only)."""
        split = self.reader.meta.get("split", {})
        if split.get("fold_readers"):
            return False
        return "ravdess" in str(split.get("train", "")).lower() or "ravdess" in str(split.get("valid", "")).lower()

    def extract(self, signal: np.ndarray, sr: int) -> np.ndarray:
        import torch

        from crossemo_core.readers.prosody import prosody_functionals
        from crossemo_core.readers.voice import RATE, NormStats, normalise

        if sr != RATE:
            from scipy.signal import resample_poly

            g = np.gcd(int(sr), RATE)
            signal = resample_poly(signal, RATE // g, int(sr) // g).astype(np.float32)
        mel = self.reader.spectrogram(signal)
        if mel.shape[1] < 3:
            raise DataError("too little speech for the voice reader (under 30 ms after trimming silence).")
        normed = normalise(mel, NormStats.of([mel], self.reader.frontend.normalisation))
        net = self.reader.net.eval()
        with torch.no_grad():
            x = torch.from_numpy(normed)[None]
            mask = torch.ones(1, normed.shape[1], dtype=torch.bool)
            body = net.body(x)  # (1, C, T)
            z = net.embedding(net.pool(body, mask))
            probs = {name: torch.softmax(head(z), dim=1)[0].numpy() for name, head in net.heads.items()}
        if self.reader.prosody is not None and self.reader.prosody_weight > 0:
            probs = self.reader.combine({k: v[None] for k, v in probs.items()},
                                        self.reader.prosody.proba(prosody_functionals(signal)[None]))
            probs = {k: np.asarray(v)[0] for k, v in probs.items()}
        frames = body[0].numpy().T  # (T, C)
        n = frames.shape[0] // self.pool
        pooled = (frames[:n * self.pool].reshape(n, self.pool, -1).mean(1) if n >= 1
                  else frames.mean(0, keepdims=True))
        reading = np.concatenate([probs["emotion"], probs["valence"], probs["arousal"]]).astype(np.float32)
        return np.concatenate([pooled, np.repeat(reading[None], len(pooled), 0)], axis=1).astype(np.float32)


def posterior_columns(feature_names: tuple[str, ...], part: str) -> list[int] | None:
    """Column indices of the appended reading ``part`` ("emotion", "valence" or "arousal"), or None without them."""
    cols = [i for i, n in enumerate(feature_names) if n.startswith(f"{POSTERIOR_PREFIX}{part}:")]
    return cols or None


def drop_posterior_channels(sequences: list[np.ndarray], feature_names: tuple[str, ...]
                            ) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """The sequences without the appended reading (the frame features alone)."""
    keep = [i for i, n in enumerate(feature_names) if not n.startswith(POSTERIOR_PREFIX)]
    return [s[:, keep] for s in sequences], tuple(feature_names[i] for i in keep)


__all__ = ["DEFAULT_EXTERNAL_READER", "POSTERIOR_CHANNELS", "ReaderFrameExtractor", "drop_posterior_channels",
           "parse_voice_features", "posterior_columns"]
