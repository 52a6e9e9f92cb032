"""The face reader: what emotion a face shows, from the project's FER2013 network and MediaPipe's 52 blendshapes.

Pipeline for a photo (:meth:`FaceReader.read_image`): the clip verdict's face tracker
(:class:`crossemo_core.clip.face.FaceAnalyzer`, on a still image), the same that finds faces in videos and in the
clip verdict's photos, finds the largest face (in tiles of the image too, when it is small) and cuts a 48x48 grey crop
framed like FER2013 on its mesh's eye and mouth centres (on the detectors' own points where the mesh finds none);
MediaPipe's Face Landmarker (``checkpoints/face_landmarker.task``, sha256-checked) gives the crop's 52 blendshape
coefficients when the stacker reads them; the expression network (``checkpoints/fer_expression_v2.pt``, run as its
int8 copy where torch can) gives 7 logits for the crop (averaged with its mirror image when the stacker says so);
a multinomial logistic regression (:class:`FaceStacker`, ``checkpoints/face_reader.pt``) turns [logits,
blendshapes] into 7 emotion probabilities. A face smaller than FER2013's (:data:`SMALL_FACE_SCALE`) is read
instead by the small-face network (``checkpoints/fer_expression_small.pt``) and its network-only stacker
(``checkpoints/face_reader_small.pt``), without blendshapes: :class:`SmallFaces`. Valence is the sum of its
emotions' probabilities (:func:`~crossemo_core.readers.reading.valence_from_emotions`); arousal is P(angry,
fearful, happy, surprised) against P(neutral, sad), disgust left out (it has no clear arousal).

The shipped stacker uses the logits only: on the FER2013 validation split the blendshapes lowered accuracy (numbers
in ``checkpoints/face_reader.md``), so ``FaceStacker.with_blendshapes`` is ``None`` and the landmarker is not run. The
blendshape head stays in the code; ``scripts/train_face_reader.py`` re-measures it on every build.

**No face.** When the tracker finds no face, the result is still a :class:`Reading`, with uniform probabilities
(each emotion 1/7, each valence 1/3, no arousal) and ``note`` :data:`NO_FACE` ("no face found"); test
``reading.note == NO_FACE`` (or :func:`has_face`) before using its numbers. Uniform probabilities keep every reading
printable and make a no-face reading ``uncertain`` by construction.

Video faces are found and cropped by the clip verdict's face tracker (:mod:`crossemo_core.clip.face`, which also
finds small faces in wide frames) and read with :meth:`FaceReader.read_crops`; :func:`read_tracked_crops` pools a
video's frames. FER2013-style 48x48 crops (:meth:`FaceReader.read_crops`) go to the network as they are; for the
blendshapes they are upscaled to 256x256 and padded with their median grey (:func:`fer_canvas`), without which the
landmarker misses many such small, tight crops. A crop without blendshapes is read by the network-only stacker.

Checkpoint ``face_reader.pt``: ``{"format": "crossemo-face-reader/1", "meta": json, "<head>.<tensor>": tensor}``
read with ``torch.load(weights_only=True)``; ``meta`` pins the sha256 of the expression network it was fitted on,
the blendshape names in order, whether to use flip test-time augmentation, and the training record. Built by
``scripts/train_face_reader.py``; model card ``checkpoints/face_reader.md``.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from crossemo_core.clip.expression import FER_SIZE, ExpressionModel, softmax
from crossemo_core.errors import CheckpointError, CrossemoError
from crossemo_core.model_files import load_model_file, save_model_file
from crossemo_core.paths import CHECKPOINTS
from crossemo_core.readers.reading import EMOTION_AROUSAL, Reading, valence_from_emotions

DEFAULT_LANDMARKER = CHECKPOINTS / "face_landmarker.task"
DEFAULT_EXPRESSION = CHECKPOINTS / "fer_expression_v2.pt"
DEFAULT_STACKER = CHECKPOINTS / "face_reader.pt"
DEFAULT_SMALL_EXPRESSION = CHECKPOINTS / "fer_expression_small.pt"
DEFAULT_SMALL_STACKER = CHECKPOINTS / "face_reader_small.pt"
SMALL_FACE_SCALE = 0.95
"""A face whose crop spans fewer frame pixels than this per crop pixel (:func:`crossemo_core.clip.face.crop_scale`;
0.95: eyes under ~16 px apart) is read by the small-face network: its crop is an enlarged, blurred face. On the
validation split (``docs/readers_face_small_threshold.json``), faces shrunk to 44 px and enlarged back are read better
by the small-face network (7-class accuracy and valence UAR), sharp 48 px ones by the main network; on PublicTest the
two read 44 px faces alike and the small-face network is ahead from 40 px down (``checkpoints/face_reader.md``)."""
LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
"""MediaPipe Face Landmarker v1 float16 (card ``checkpoints/face_landmarker.md``)."""
STACKER_FORMAT = "crossemo-face-reader/1"
FACE_EMOTIONS = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
"""The network's 7 FER2013 classes (codes 0..6) under the readers' RAVDESS-style names."""
BLENDSHAPE_NAMES = ("_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
                    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
                    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
                    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
                    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight",
                    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
                    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
                    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper",
                    "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
                    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight")
"""The landmarker's 52 blendshape coefficients (ARKit names), in output order."""
NO_FACE = "no face found"
POINTS_ONLY = "face framed on the detectors' eye and mouth points (the face mesh found no landmarks)"
CANVAS_SIZE, CANVAS_PAD = 256, 90
"""48x48 crops are upscaled (bicubic) to ``CANVAS_SIZE`` and padded by ``CANVAS_PAD`` px of their median grey before
the landmarker sees them (found a face in 96 % of FER2013 images, ``/work/shared/models/README.md``)."""


class FaceReaderError(CrossemoError):
    """mediapipe's Tasks API is missing or cannot run."""


def verify_sha256(path: str | Path, expected: str) -> bytes:
    """The bytes of ``path`` if their sha256 is ``expected``; otherwise a one-line :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist.")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise CheckpointError(f"{path} has sha256 {digest[:12]}..., expected {expected[:12]}...: not the shipped "
                              "model, refusing to load it.")
    return data


def fer_canvas(crop: np.ndarray) -> np.ndarray:
    """``(48, 48)`` uint8 grey crop -> ``(436, 436, 3)`` uint8 RGB: bicubic upscale to 256 px, median-grey border."""
    import cv2

    big = cv2.resize(np.asarray(crop, np.uint8), (CANVAS_SIZE, CANVAS_SIZE), interpolation=cv2.INTER_CUBIC)
    grey = int(np.median(crop))
    big = cv2.copyMakeBorder(big, CANVAS_PAD, CANVAS_PAD, CANVAS_PAD, CANVAS_PAD, cv2.BORDER_CONSTANT, value=grey)
    return np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))


@dataclass(frozen=True)
class LandmarkedFace:
    """The largest face in an image: ``mesh`` ``(478, 3)`` in pixels (x, y, and depth z on x's scale) and
    ``blendshapes`` ``(52,)`` in [0, 1], in :data:`BLENDSHAPE_NAMES` order."""

    mesh: np.ndarray
    blendshapes: np.ndarray


class Landmarker:
    """MediaPipe's Face Landmarker (Tasks API, image mode, one face) from a sha256-checked ``.task`` bundle."""

    def __init__(self, path: str | Path = DEFAULT_LANDMARKER, expected_sha256: str = LANDMARKER_SHA256) -> None:
        model = verify_sha256(path, expected_sha256)
        os.environ.setdefault("GLOG_minloglevel", "2")
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # mediapipe 0.10.21 prints a protobuf warning on import
                import mediapipe as mp
                from mediapipe.tasks.python import BaseOptions, vision
        except ImportError as exc:
            raise FaceReaderError(f"mediapipe is not installed ({exc}); install it with: "
                                  "pip install --no-deps -r requirements-clip.txt") from None
        from crossemo_core.clip.face import _quiet_fd2, _StderrFilter

        _StderrFilter.install()
        options = vision.FaceLandmarkerOptions(base_options=BaseOptions(model_asset_buffer=model),
                                               output_face_blendshapes=True, num_faces=1,
                                               running_mode=vision.RunningMode.IMAGE)
        try:
            with _quiet_fd2():
                self._landmarker = vision.FaceLandmarker.create_from_options(options)
                # the first inference starts worker threads that log to stderr: run it while stderr is silenced
                blank = fer_canvas(np.zeros((FER_SIZE, FER_SIZE), np.uint8))
                self._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=blank))
        except (RuntimeError, TypeError) as exc:
            raise FaceReaderError(f"mediapipe's face landmarker cannot run ({type(exc).__name__}: {exc}); it needs "
                                  "protobuf 4.25.x (requirements.txt).") from None
        self._mp = mp

    def detect(self, rgb: np.ndarray) -> LandmarkedFace | None:
        """The face in an ``(H, W, 3)`` uint8 RGB image, or ``None`` when there is none."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
        result = self._landmarker.detect(self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=rgb))
        if not result.face_landmarks:
            return None
        h, w = rgb.shape[:2]
        mesh = np.array([(p.x * w, p.y * h, p.z * w) for p in result.face_landmarks[0]], dtype=np.float32)
        blendshapes = np.array([c.score for c in result.face_blendshapes[0]], dtype=np.float32)
        return LandmarkedFace(mesh=mesh, blendshapes=blendshapes)

    def blendshapes_of_crops(self, crops: np.ndarray) -> np.ndarray:
        """``(N, 48, 48)`` uint8 grey crops -> ``(N, 52)`` float32 blendshapes, a row of NaN where no face is found."""
        out = np.full((len(crops), len(BLENDSHAPE_NAMES)), np.nan, np.float32)
        for i, crop in enumerate(crops):
            face = self.detect(fer_canvas(crop))
            if face is not None:
                out[i] = face.blendshapes
        return out

    def close(self) -> None:
        self._landmarker.close()


# ---------------------------------------------------------------------------------------------------------- stacker
@dataclass
class LogisticHead:
    """Multinomial logistic regression on standardised features: ``softmax(((x - mean) / scale) @ weight + bias)``.

    ``weight`` ``(F, C)``, ``bias`` ``(C,)``, ``mean``/``scale`` ``(F,)``.
    """

    mean: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, n_classes: int, l2: float,
            class_power: float = 0.0) -> "LogisticHead":
        """Fit on ``(N, F)`` features and ``(N,)`` labels (scikit-learn's L-BFGS; deterministic): minimises the
        weighted mean cross-entropy plus ``l2`` times the mean squared weight (the bias is not penalised); samples
        are weighted by (class frequency)^-``class_power`` (0: plain, 1: every class counts equally). A class
        without samples gets probability ~0."""
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(features, np.float64)
        labels = np.asarray(labels, np.int64)
        mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        class_w = np.where(counts > 0, (counts.sum() / (n_classes * np.maximum(counts, 1))) ** class_power, 0.0)
        sample_w = class_w[labels] / class_w[labels].sum()
        # sum(w * nll) + l2 * mean(W^2)  ==  (scikit-learn's C * sum(w * nll) + ||W||^2 / 2) / C  with:
        c = x.shape[1] * n_classes / (2.0 * l2)
        model = LogisticRegression(C=c, max_iter=2000, tol=1e-10).fit((x - mean) / scale, labels,
                                                                        sample_weight=sample_w)
        weight = np.zeros((x.shape[1], n_classes))
        bias = np.full(n_classes, -1e3)
        present = model.classes_
        if len(present) == 2:
            weight[:, present[1]], bias[present] = model.coef_[0], (0.0, model.intercept_[0])
        else:
            weight[:, present], bias[present] = model.coef_.T, model.intercept_
        return cls(mean=mean, scale=scale, weight=weight, bias=bias)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """``(N, F)`` -> ``(N, C)`` probabilities."""
        z = ((np.asarray(features, np.float64) - self.mean) / self.scale) @ self.weight + self.bias
        return softmax(z)

    def tensors(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.{k}": torch.from_numpy(np.asarray(getattr(self, k), np.float64))
                for k in ("mean", "scale", "weight", "bias")}

    @classmethod
    def from_tensors(cls, payload: dict[str, Any], prefix: str) -> "LogisticHead":
        return cls(**{k: payload[f"{prefix}.{k}"].numpy() for k in ("mean", "scale", "weight", "bias")})


@dataclass
class FaceStacker:
    """Two heads over the expression network's 7 logits: ``with_blendshapes`` ([logits, 52 blendshapes], used when
    the landmarker gave blendshapes) and ``network_only`` (logits; a crop without blendshapes). ``with_blendshapes``
    is ``None`` when validation said blendshapes do not help: the network-only head then reads every face."""

    network_only: LogisticHead
    with_blendshapes: LogisticHead | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def flip_tta(self) -> bool:
        return bool(self.meta.get("flip_tta", False))

    def logits_of(self, expression: ExpressionModel, crops: np.ndarray) -> np.ndarray:
        """``(N, 48, 48)`` grey crops -> ``(N, 7)`` logits of ``expression`` as this stacker was fitted on them: the
        mean with the mirrored crop when it was fitted with flip test-time augmentation."""
        if not self.flip_tta:
            return expression.logits(np.asarray(crops))
        return expression.mirrored_logits(crops)

    def predict_proba(self, logits: np.ndarray, blendshapes: np.ndarray | None) -> np.ndarray:
        """``(N, 7)`` logits and ``(N, 52)`` blendshapes (NaN rows: none; or ``None``) -> ``(N, 7)`` probabilities."""
        out = self.network_only.predict_proba(logits)
        if self.with_blendshapes is not None and blendshapes is not None:
            has = ~np.isnan(blendshapes).any(axis=1)
            if has.any():
                out[has] = self.with_blendshapes.predict_proba(np.hstack([logits[has], blendshapes[has]]))
        return out

    def save(self, path: str | Path) -> Path:
        heads = {"network_only": self.network_only, "with_blendshapes": self.with_blendshapes}
        tensors: dict[str, Any] = {}
        for name, head in heads.items():
            if head is not None:
                tensors.update(head.tensors(name))
        return save_model_file(path, STACKER_FORMAT, {**self.meta, "heads": [n for n, h in heads.items() if h]},
                               tensors)

    @classmethod
    def load(cls, path: str | Path) -> "FaceStacker":
        def build(payload: dict[str, Any], meta: dict[str, Any]) -> "FaceStacker":
            heads = {name: LogisticHead.from_tensors(payload, name) for name in meta["heads"]}
            return cls(network_only=heads["network_only"], with_blendshapes=heads.get("with_blendshapes"), meta=meta)

        return load_model_file(path, STACKER_FORMAT, "face reader", build)


# ------------------------------------------------------------------------------------------------------------ reader
def arousal_from_emotions(emotion_p: np.ndarray) -> np.ndarray:
    """``(..., 7)`` :data:`FACE_EMOTIONS` probabilities -> ``(..., 2)`` (low, high) arousal over the emotions with a
    clear arousal (disgust has none and is left out)."""
    high = sum(emotion_p[..., k] for k, n in enumerate(FACE_EMOTIONS) if EMOTION_AROUSAL.get(n) == 1)
    low = sum(emotion_p[..., k] for k, n in enumerate(FACE_EMOTIONS) if EMOTION_AROUSAL.get(n) == 0)
    total = np.maximum(high + low, 1e-12)
    return np.stack([low / total, high / total], axis=-1)


def has_face(reading: Reading) -> bool:
    return reading.note != NO_FACE


def no_face_reading(seconds: float = 0.0) -> Reading:
    """The documented no-face result: uniform probabilities, no arousal, note :data:`NO_FACE`."""
    return Reading.from_arrays("face", FACE_EMOTIONS, np.full(7, 1 / 7), np.full(3, 1 / 3), None, seconds, NO_FACE)


@dataclass(frozen=True)
class CropReadings:
    """Batch output of :meth:`FaceReader.read_crops`: ``emotions`` ``(N, 7)`` over :data:`FACE_EMOTIONS`,
    ``valence`` ``(N, 3)``, ``used_blendshapes`` ``(N,)`` bool (read by the blendshape head: the stacker has one and
    the landmarker found the face)."""

    emotions: np.ndarray
    valence: np.ndarray
    used_blendshapes: np.ndarray


@dataclass(frozen=True)
class SmallFaces:
    """The network and its network-only stacker that read faces smaller than FER2013's: crops whose
    :func:`~crossemo_core.clip.face.crop_scale` is below ``below``."""

    expression: ExpressionModel
    stacker: FaceStacker
    below: float = SMALL_FACE_SCALE


def load_network_and_stacker(expression_path: str | Path, stacker_path: str | Path,
                             int8: bool = True) -> tuple[ExpressionModel, FaceStacker]:
    """An expression network and the stacker fitted on it (its sha256 pinned in the stacker)."""
    stacker = FaceStacker.load(stacker_path)
    expected = stacker.meta.get("expression_sha256")
    if not Path(expression_path).is_file():
        raise CheckpointError(f"expression network {expression_path} does not exist.")
    digest = hashlib.sha256(Path(expression_path).read_bytes()).hexdigest()
    if digest != expected:
        raise CheckpointError(f"{stacker_path} was fitted on another expression network than {expression_path} "
                              f"(sha256 {digest[:12]}..., expected {str(expected)[:12]}...).")
    if stacker.with_blendshapes is not None and tuple(stacker.meta.get("blendshape_names", ())) != BLENDSHAPE_NAMES:
        raise CheckpointError(f"{stacker_path} was fitted on other blendshapes than the landmarker gives.")
    return ExpressionModel.load(expression_path, int8=int8), stacker


class FaceReader:
    """Expression network + blendshapes + stacker -> :class:`Reading` (see the module docstring); small faces, when
    their crop's scale is known, go to :class:`SmallFaces`."""

    def __init__(self, expression: ExpressionModel, stacker: FaceStacker, landmarker_path: str | Path | None,
                 small_faces: SmallFaces | None = None) -> None:
        self.expression = expression
        self.stacker = stacker
        self.small_faces = small_faces
        self._landmarker_path = landmarker_path
        self._landmarker: Landmarker | None = None  # made on first use: only a blendshape stacker needs it
        self._tracker = None  # the face tracker for photos, made on first use (mediapipe)
        self._lock = threading.Lock()  # one photo at a time through the tracker

    @classmethod
    def load(cls, expression_path: str | Path = DEFAULT_EXPRESSION, stacker_path: str | Path = DEFAULT_STACKER,
             landmarker_path: str | Path = DEFAULT_LANDMARKER, with_landmarker: bool = True,
             int8: bool = True,
             small_faces: tuple[str | Path, str | Path] | None = (DEFAULT_SMALL_EXPRESSION, DEFAULT_SMALL_STACKER),
             ) -> "FaceReader":
        """Load the shipped files; each stacker must have been fitted on its expression network (sha256 pinned).
        ``with_landmarker=False``: no landmarker (a stacker that reads blendshapes then cannot read); it is loaded
        (sha256 checked) only when first needed either way;
        ``int8=False`` runs the float networks even where their int8 copies could run; ``small_faces``: the
        small-face network and its stacker (None: every face is read by the main network)."""
        expression, stacker = load_network_and_stacker(expression_path, stacker_path, int8)
        small = SmallFaces(*load_network_and_stacker(*small_faces, int8)) if small_faces is not None else None
        return cls(expression, stacker, landmarker_path if with_landmarker else None, small)

    @property
    def landmarker(self) -> Landmarker:
        if self._landmarker_path is None:
            raise FaceReaderError("this face reader was loaded without the landmarker (with_landmarker=False).")
        if self._landmarker is None:
            self._landmarker = Landmarker(self._landmarker_path)
        return self._landmarker

    @property
    def tracker(self):  # noqa: ANN201 - crossemo_core.clip.face.FaceAnalyzer, imported lazily (mediapipe)
        """The clip verdict's face tracker, which finds and frames the faces of photos and videos alike."""
        if self._tracker is None:
            from crossemo_core.clip.face import FaceAnalyzer

            self._tracker = FaceAnalyzer()
        return self._tracker

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """``(N, 48, 48)`` grey crops -> ``(N, 7)`` the main network's logits, as its stacker reads them."""
        return self.stacker.logits_of(self.expression, crops)

    def read_crops(self, crops: np.ndarray, blendshapes: np.ndarray | None = None,
                   use_blendshapes: bool = True, scales: np.ndarray | None = None) -> CropReadings:
        """Read FER2013-framed ``(N, 48, 48)`` uint8 grey crops. ``blendshapes`` ``(N, 52)`` (NaN rows: no face) are
        computed with :func:`fer_canvas` + the landmarker when not given and ``use_blendshapes``. ``scales``
        ``(N,)``: each crop's :func:`~crossemo_core.clip.face.crop_scale` (NaN: unknown); crops below
        :attr:`SmallFaces.below` are read by the small-face network, without blendshapes. Without ``scales`` (FER2013
        images, 48 px faces) every crop goes to the main network."""
        crops = np.asarray(crops, np.uint8)
        if crops.ndim != 3 or crops.shape[1:] != (FER_SIZE, FER_SIZE):
            raise ValueError(f"expected (N, {FER_SIZE}, {FER_SIZE}) grey crops, got shape {crops.shape}")
        small = np.zeros(len(crops), bool)
        if scales is not None:
            scales = np.asarray(scales, np.float64)
            if scales.shape != (len(crops),):
                raise ValueError(f"expected one scale per crop ({len(crops)}), got shape {scales.shape}")
            if self.small_faces is not None:
                small = np.nan_to_num(scales, nan=np.inf) < self.small_faces.below
        if blendshapes is None and use_blendshapes and self.stacker.with_blendshapes is not None:
            blendshapes = self.landmarker.blendshapes_of_crops(crops)
        use_blendshapes = use_blendshapes and blendshapes is not None and self.stacker.with_blendshapes is not None
        emotions = np.zeros((len(crops), len(FACE_EMOTIONS)))
        main = ~small
        if main.any():
            emotions[main] = self.stacker.predict_proba(self.logits(crops[main]),
                                                        blendshapes[main] if use_blendshapes else None)
        if small.any():
            stacker = self.small_faces.stacker
            emotions[small] = stacker.predict_proba(stacker.logits_of(self.small_faces.expression, crops[small]), None)
        used = (~np.isnan(blendshapes).any(axis=1) & main) if use_blendshapes else np.zeros(len(crops), bool)
        return CropReadings(emotions=emotions, valence=valence_from_emotions(FACE_EMOTIONS, emotions),
                            used_blendshapes=used)

    def read_image(self, rgb: np.ndarray) -> Reading:
        """The largest face in an ``(H, W, 3)`` uint8 RGB photo -> a :class:`Reading` (``seconds`` 0); no face ->
        :func:`no_face_reading`; a face the mesh could not read, framed on the detectors' points, says so in its
        note. One photo at a time (a lock); a photo does not depend on what was read before."""
        with self._lock:
            frame = self.tracker.analyse(0.0, np.ascontiguousarray(rgb, dtype=np.uint8), still=True)
        if frame.crop is None:
            return no_face_reading()
        scale = np.array([np.nan if frame.face_scale is None else frame.face_scale])
        emotions = self.read_crops(frame.crop[None], scales=scale).emotions[0]
        return reading_of(emotions, note="" if frame.from_mesh else POINTS_ONLY)

    def close(self) -> None:
        """Release mediapipe; the reader stays usable (what it needs is made again on first use)."""
        for model in (self._landmarker, self._tracker):
            if model is not None:
                model.close()
        self._landmarker = self._tracker = None


def reading_of(emotions: np.ndarray, seconds: float = 0.0, note: str = "") -> Reading:
    """A face :class:`Reading` from ``(7,)`` :data:`FACE_EMOTIONS` probabilities (valence and arousal derived)."""
    return Reading.from_arrays("face", FACE_EMOTIONS, emotions, valence_from_emotions(FACE_EMOTIONS, emotions),
                               arousal_from_emotions(emotions), seconds, note)


def read_tracked_crops(reader: FaceReader, crops: np.ndarray | None, n_frames: int, fps: float,
                       scales: np.ndarray | None = None, on_points: int = 0) -> Reading:
    """The pooled reading of a video from the face tracker's FER-framed crops (``(k, 48, 48)``, or None when no
    frame of the ``n_frames`` sampled at ``fps`` had a face; ``scales`` ``(k,)`` their crop scales; ``on_points``:
    how many of them were framed on the detectors' points), read by the network-only stackers."""
    seconds = n_frames / fps
    if crops is None or len(crops) == 0:
        return no_face_reading(seconds)
    emotions = reader.read_crops(crops, use_blendshapes=False, scales=scales).emotions.mean(axis=0)
    notes = [] if len(crops) == n_frames else [f"face in {len(crops)} of {n_frames} frames"]
    if on_points:
        notes.append(f"framed on the detectors' eye and mouth points in {on_points} of {len(crops)} "
                     f"(the face mesh found no landmarks)")
    return reading_of(emotions, seconds, "; ".join(notes))
