"""The facial-expression network: a small CNN trained by the project on FER2013 (48x48 grayscale faces, 7 classes).

Input: ``(N, 48, 48)`` uint8 or float grayscale faces framed like FER2013 (see :data:`FER_TEMPLATE` and
:func:`crossemo_core.clip.face.align_face`). Each image is standardised on its own (zero mean, unit variance), so
brightness and contrast of a webcam do not matter. Output: logits over :data:`FER_CLASSES`.

Checkpoint (``checkpoints/fer_expression.pt``): ``{"format": "crossemo-fer/1", "weights": state_dict (float16),
"meta": json}``, read with ``torch.load(weights_only=True)``; ``meta`` holds the classes, the input size, the
channel widths and the training record. The training script is ``scripts/train_fer_expression.py``; the model card
is ``checkpoints/fer_expression.md``.
An int8 copy (``<name>.int8.pt`` beside the network's file, format ``crossemo-fer-int8/1``: the quantised state
dict and a meta that pins the float file's sha256) is run instead of the float network where torch's x86 quantised
engine is available (:func:`quantize`, ``scripts/quantize_expression.py``); elsewhere the float network is run.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from crossemo_core.errors import CheckpointError
from crossemo_core.features.voice import file_sha256
from crossemo_core.model_files import full, half, load_model_file, save_model_file
from crossemo_core.optim import optimiser_step

FER_FORMAT = "crossemo-fer/1"
INT8_FORMAT = "crossemo-fer-int8/1"
INT8_ENGINES = ("x86", "fbgemm")
"""torch's quantised engines the int8 copy was calibrated for (per-channel int8 weights, uint8 activations)."""
FER_SIZE = 48
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 label codes 0..6, in order."""
FER_TO_VALENCE = np.array([0, 0, 0, 2, 0, 2, 1], dtype=np.int64)
"""FER class -> valence index (0 negative, 1 neutral, 2 positive), shared/data README section 1.4."""
FER_TEMPLATE = {"right_eye": (15.5, 18.7), "left_eye": (32.5, 18.7), "mouth": (24.0, 36.9)}
"""Where a FER2013 face has its eye centres (mean of the two corners; ``right_eye`` is the subject's right eye,
on the image's left) and its mouth centre (mean of the lip corners), in 48x48 pixel coordinates: the median over 397
of 400 random FER2013 Training images on which mediapipe's face mesh found a face (``scripts/calibrate_fer_template.py``),
made left-right symmetric. Aligning video faces to these points frames them the way the network saw faces."""
DEFAULT_WIDTHS = (16, 32, 64, 128)


def conv_plan(widths: tuple[int, ...]) -> list[tuple[bool, int, int]]:
    """Per 3x3 convolution of the architecture, in order: (a 2x2 max-pool before it, input channels, output
    channels); two convolutions per stage of ``widths``, one in the last, a grey image in."""
    plan, c_in = [], 1
    for k, c in enumerate(widths):
        for j in range(1 if k == len(widths) - 1 else 2):
            plan.append((k > 0 and j == 0, c_in, c))
            c_in = c
    return plan


class ExpressionNet(nn.Module):
    """Four conv stages (two 3x3 convs + BN + ReLU each, max-pool between), global average pool, dropout, linear.

    ``features(x)`` gives the pooled ``(N, widths[-1])`` vector; ``forward(x)`` the ``(N, 7)`` logits.
    """

    def __init__(self, widths: tuple[int, ...] = DEFAULT_WIDTHS, n_classes: int = len(FER_CLASSES),
                 dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for pool, c_in, c_out in conv_plan(widths):
            layers += [nn.MaxPool2d(2)] if pool else []
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], n_classes)
        self.widths = tuple(widths)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


def standardise(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``(N, 48, 48)`` grayscale -> ``(N, 1, 48, 48)`` float32, each image at zero mean and unit variance."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images).float()
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or tuple(x.shape[1:]) != (FER_SIZE, FER_SIZE):
        raise ValueError(f"expression input must be (N, {FER_SIZE}, {FER_SIZE}) grayscale, got {tuple(x.shape)}")
    x = x[:, None]
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True).clamp_min(4.0)  # a flat image (std < 4 grey levels) stays near 0
    return (x - mean) / std


def inference_copy(net: ExpressionNet) -> nn.Module:
    """A copy of ``net`` for inference: each convolution with its batch norm folded in (the same function to
    ~1e-6) and channels-last memory format. On 2 CPU cores, one thread, 256 crops: 1.07 -> 0.82 ms per crop for
    the clip model's network, as measured when this was written (channels-last alone had taken 0.64 -> 0.30 ms)."""
    from copy import deepcopy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    copy = deepcopy(net).eval()  # not a new net: its initialisation would draw from torch's global generator
    layers, fused = list(copy.body), []
    while layers:
        layer = layers.pop(0)
        if isinstance(layer, nn.Conv2d) and layers and isinstance(layers[0], nn.BatchNorm2d):
            layer = fuse_conv_bn_eval(layer, layers.pop(0))
        fused.append(layer)
    copy.body = nn.Sequential(*fused)
    return copy.to(memory_format=torch.channels_last)


def int8_path(path: str | Path) -> Path:
    """Where the int8 copy of the network in ``path`` lives
    (``fer_expression_v2.pt`` -> ``fer_expression_v2.int8.pt``)."""
    path = Path(path)
    return path.with_name(path.stem + ".int8.pt")


def int8_engine_available() -> bool:
    """Whether torch runs this process's quantised ops with an engine the int8 copy was made for."""
    return torch.backends.quantized.engine in INT8_ENGINES


class Int8ExpressionNet(nn.Module):
    """:class:`ExpressionNet`'s int8 twin for inference, eager (no FX tracing at load): the standardised input
    quantised to uint8, each convolution (its batch norm folded in) with its ReLU as one int8 op, the max-pools, the
    global mean and the linear head on quantised tensors, the ``(N, 7)`` logits dequantised to float."""

    def __init__(self, widths: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        from torch.ao.nn.intrinsic.quantized import ConvReLU2d
        from torch.ao.nn.quantized import Linear

        layers: list[nn.Module] = []
        for pool, c_in, c_out in conv_plan(widths):
            layers += [nn.MaxPool2d(2)] if pool else []
            layers.append(ConvReLU2d(c_in, c_out, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.head = Linear(widths[-1], n_classes)
        self.widths = tuple(widths)
        self.register_buffer("input_scale", torch.tensor(1.0))
        self.register_buffer("input_zero_point", torch.tensor(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.quantize_per_tensor(x, float(self.input_scale), int(self.input_zero_point), torch.quint8)
        return self.head(self.body(q).mean(dim=(2, 3))).dequantize()


def quantize(net: ExpressionNet, faces: np.ndarray) -> Int8ExpressionNet:
    """An int8 copy of ``net`` calibrated on ``faces`` ``(N, 48, 48)`` grey (raw, as :meth:`ExpressionModel.logits`
    takes them): torch's FX graph-mode post-training quantisation with its x86 configuration (per-channel int8
    weights, histogram-observed uint8 activations), its modules then moved into :class:`Int8ExpressionNet`. On this
    project's 2-core host, one thread: 0.53 ms a crop against the float network's 2.50 ms
    (``docs/readers_face_int8.json``)."""
    from copy import deepcopy

    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    x = standardise(faces)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FX quantisation's deprecation notice
        prepared = prepare_fx(deepcopy(net).eval(), get_default_qconfig_mapping("x86"), example_inputs=(x[:1],))
        with torch.no_grad():
            for i in range(0, len(x), 256):
                prepared(x[i:i + 256])
        graph = convert_fx(prepared)
    twin = Int8ExpressionNet(net.widths, net.head.out_features)
    from torch.ao.nn.intrinsic.quantized import ConvReLU2d

    convs = [m for _, m in sorted(graph.body.named_children(), key=lambda kv: int(kv[0]))
             if isinstance(m, ConvReLU2d)]
    twin.body = nn.Sequential(*[convs.pop(0) if isinstance(m, ConvReLU2d) else m for m in twin.body])
    twin.head = graph.head
    twin.input_scale.fill_(float(graph.body_0_input_scale_0))
    twin.input_zero_point.fill_(int(graph.body_0_input_zero_point_0))
    return twin.eval()


def save_int8(path: str | Path, quantized: Int8ExpressionNet, source: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``quantized`` (from :func:`quantize` on the network in ``source``) to ``path``; its meta pins the
    sha256 of ``source`` and holds the widths."""
    meta = {**meta, "expression_sha256": file_sha256(source),
            "widths": list(quantized.widths), "n_classes": quantized.head.out_features}
    return save_model_file(path, INT8_FORMAT, meta, {"weights": quantized.state_dict()})


def load_int8(path: str | Path, source: str | Path) -> Int8ExpressionNet:
    """The int8 copy in ``path`` of the network in ``source``, whose sha256 the copy must pin."""
    digest = file_sha256(source)

    def build(payload: dict[str, Any], meta: dict[str, Any]) -> Int8ExpressionNet:
        if meta.get("expression_sha256") != digest:
            raise CheckpointError(f"{path} is the int8 copy of another network than {source} (sha256 "
                                  f"{str(meta.get('expression_sha256'))[:12]}..., expected {digest[:12]}...).")
        module = Int8ExpressionNet(tuple(meta["widths"]), int(meta["n_classes"]))
        module.load_state_dict(payload["weights"])
        return module.eval()

    return load_model_file(path, INT8_FORMAT, "int8 expression network", build)


@dataclass
class ExpressionModel:
    """The trained network with its metadata; ``logits``/``predict_proba`` take raw 48x48 grayscale faces."""

    net: ExpressionNet
    meta: dict[str, Any] = field(default_factory=dict)
    _inference: tuple[tuple[tuple[int, int], ...], nn.Module] | None = field(default=None, repr=False, compare=False)
    """:func:`inference_copy` of :attr:`net` and the identities and versions of the tensors it was made from: a
    training step or ``load_state_dict`` changes them in place (another net has other tensors), and the copy is
    then made again."""
    _int8: tuple[tuple[tuple[int, int], ...], Int8ExpressionNet] | None = field(default=None, repr=False, compare=False)
    """The int8 copy (:func:`load_int8`) and the versions of :attr:`net`'s tensors it was made from: once the net
    changes, the float network is run again."""

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.meta.get("classes", FER_CLASSES))

    @property
    def runs_int8(self) -> bool:
        """Whether :meth:`logits` runs the int8 copy (attached, made from the net as it is, engine available)."""
        return (self._int8 is not None and self._int8[0] == self._versions() and int8_engine_available())

    def _versions(self) -> tuple[tuple[int, int], ...]:
        return tuple((id(t), t._version) for t in self.net.state_dict(keep_vars=True).values())

    def _inference_net(self) -> nn.Module:
        if self.runs_int8:
            return self._int8[1]  # type: ignore[index]
        versions = self._versions()
        if self._inference is None or self._inference[0] != versions:
            self._inference = (versions, inference_copy(self.net))
        return self._inference[1]

    @torch.no_grad()
    def logits(self, images: np.ndarray, batch: int = 256) -> np.ndarray:
        """``(N, 7)`` float32 logits of ``(N, 48, 48)`` faces (an empty input gives ``(0, 7)``)."""
        if len(images) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        net = self._inference_net()
        layout = torch.contiguous_format if isinstance(net, Int8ExpressionNet) else torch.channels_last
        out = [net(standardise(images[i:i + batch]).contiguous(memory_format=layout))
               for i in range(0, len(images), batch)]
        return torch.cat(out).numpy().astype(np.float32)

    def mirrored_logits(self, images: np.ndarray) -> np.ndarray:
        """``(N, 7)`` mean of the logits of each face and of its mirror image (flip test-time augmentation), the
        faces and then their mirrors read in one batch."""
        images = np.asarray(images)
        if len(images) == 0:
            return self.logits(images)
        both = self.logits(np.concatenate([images, images[:, :, ::-1]]))
        return (both[:len(images)] + both[len(images):]) / 2

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return softmax(self.logits(images))

    def save(self, path: str | Path) -> Path:
        """Atomic write; weights stored as float16 (half the size, same predictions to ~1e-3)."""
        meta = {**self.meta, "widths": list(self.net.widths), "classes": list(self.classes), "input_size": FER_SIZE}
        return save_model_file(path, FER_FORMAT, meta, {"weights": half(self.net.state_dict())})

    @classmethod
    def load(cls, path: str | Path, int8: bool = True) -> "ExpressionModel":
        """The network in ``path``; with ``int8`` (and torch's x86 quantised engine) also its int8 copy
        :func:`int8_path`, when that file exists, which :meth:`logits` then runs. A copy that cannot be used (made
        from another network, damaged, unreadable by this torch) is set aside with a one-line warning: the float
        network it stands for is run instead."""
        def build(payload: dict[str, Any], meta: dict[str, Any]) -> "ExpressionModel":
            net = ExpressionNet(tuple(meta["widths"]), len(meta["classes"]))
            net.load_state_dict(full(payload["weights"]))
            return cls(net=net.eval(), meta=meta)

        model = load_model_file(path, FER_FORMAT, "expression network", build)
        if int8 and int8_engine_available() and int8_path(path).is_file():
            try:
                model._int8 = (model._versions(), load_int8(int8_path(path), path))
            except CheckpointError as exc:
                warnings.warn(f"{exc} The float network is run instead.", stacklevel=2)
        return model


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def valence_proba(fer_proba: np.ndarray) -> np.ndarray:
    """``(N, 7)`` FER class probabilities -> ``(N, 3)`` valence probabilities (negative, neutral, positive)."""
    out = np.zeros(fer_proba.shape[:-1] + (3,), dtype=np.float64)
    for c, v in enumerate(FER_TO_VALENCE):
        out[..., v] += fer_proba[..., c]
    return out


def train_epoch(net: ExpressionNet, opt: torch.optim.Optimizer, sched: Any, loss_fn: nn.Module, images: torch.Tensor,
                labels: torch.Tensor, generator: torch.Generator, batch: int) -> float:
    """One epoch over ``images`` ``(N, 48, 48)`` float in [0, 255] with :func:`augment_batch`, in full batches of
    ``batch`` in a random order (the scheduler steps every batch); returns the mean training loss per image."""
    net.train()
    total, n = 0.0, 0
    order = torch.randperm(len(images), generator=generator)
    for s in range(len(images) // batch):
        idx = order[s * batch:(s + 1) * batch]
        x = standardise(augment_batch(images[idx], generator)).contiguous(memory_format=torch.channels_last)
        loss = loss_fn(net(x), labels[idx])
        optimiser_step(opt, loss)
        sched.step()
        total, n = total + float(loss.detach()) * len(idx), n + len(idx)
    return total / max(n, 1)


# ------------------------------------------------------------------------------------------------ augmentation
def augment_batch(images: torch.Tensor, generator: torch.Generator, *, max_rotate_deg: float = 12.0,
                  max_shift: float = 0.08, scale: tuple[float, float] = (0.9, 1.1), flip: bool = True,
                  jitter: float = 0.25, noise: float = 0.03) -> torch.Tensor:
    """Random similarity warp (rotation, scale, shift), horizontal flip, brightness/contrast jitter and pixel noise
    on a ``(N, 48, 48)`` float batch in [0, 255]; vectorised (``affine_grid`` + ``grid_sample``).

    Used to train the network and to turn one FER2013 image into a "video" of slightly different frames.
    """
    n = images.shape[0]
    u = lambda *s: torch.rand(*s, generator=generator)  # noqa: E731
    angle = (u(n) * 2 - 1) * np.deg2rad(max_rotate_deg)
    s = scale[0] + u(n) * (scale[1] - scale[0])
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    sign = torch.where(u(n) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos * sign, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin * sign, cos
    theta[:, :, 2] = (u(n, 2) * 2 - 1) * max_shift * 2
    x = images[:, None].float()
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
    gain = 1 + (u(n, 1, 1) * 2 - 1) * jitter
    bias = (u(n, 1, 1) * 2 - 1) * jitter * 64
    x = x * gain + bias + torch.randn(x.shape, generator=generator) * noise * 255
    return x.clamp(0, 255)
