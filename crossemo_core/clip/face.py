"""Faces in video frames: mediapipe's face mesh (478 points, models bundled with mediapipe 0.10.21), the largest
face per frame, a FER2013-framed aligned crop for the expression network, and interpretable geometry measures.

Landmark indices are those of mediapipe's canonical face mesh (468 points + 10 iris points with
``refine_landmarks=True``).

Geometry measures (per frame; distances are divided by the inter-ocular distance D, the distance between the two
eye centres, so they do not depend on how far the person is from the camera):

=======================  ==============================================================================
``brow_raise``           mean over both sides of (eye centre - middle of the brow), vertical, / D. Larger =
                         brows raised (surprise, fear); smaller = brows lowered (anger, concentration)
``eye_opening``          mean over both eyes of (upper lid - lower lid) / eye width
``lip_corner_pull``      (mid-lip height - lip-corner height) / D: > 0 corners pulled up (smile), < 0
                         corners depressed
``mouth_opening``        inner-lip gap / D
``mouth_width``          lip-corner distance / D (a smile widens the mouth)
``head_yaw_deg``         head turned left/right (from the mesh's depth across the face sides), degrees
``head_pitch_deg``       head tilted up/down (depth difference forehead - chin), degrees
``head_roll_deg``        head tilted sideways (angle of the eye line), degrees
=======================  ==============================================================================

Vertical measures are taken in the face's own frame (the eye line rotated to horizontal), so head roll does not
change them. They describe shape, not emotion: a raised lip corner is what a smile looks like, not proof of joy.
"""
from __future__ import annotations

import atexit
import contextlib
import io
import logging
import os
import sys
import threading
import types
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crossemo_core.clip.expression import FER_SIZE, FER_TEMPLATE
from crossemo_core.errors import CrossemoError
from crossemo_core.settings import raw_stderr

log = logging.getLogger(__name__)

RIGHT_EYE = (33, 133)  # subject's right eye: outer and inner corner
LEFT_EYE = (362, 263)
RIGHT_LIDS, LEFT_LIDS = (159, 145), (386, 374)  # upper, lower lid
RIGHT_BROW, LEFT_BROW = (70, 63, 105, 66, 107), (300, 293, 334, 296, 336)
LIP_CORNERS = (61, 291)
INNER_LIPS = (13, 14)  # upper, lower inner lip (mid)
FACE_SIDES = (234, 454)
FOREHEAD, CHIN = 10, 152
_DETECTOR_EYES_MOUTH = (0, 1, 3)
"""mediapipe's face detectors' key points: 0 the subject's right eye, 1 the left eye, 2 the nose tip, 3 the mouth
centre, 4 and 5 the ear tragions."""

GEOMETRY_NAMES = ("brow_raise", "eye_opening", "lip_corner_pull", "mouth_opening", "mouth_width", "head_yaw_deg",
                  "head_pitch_deg", "head_roll_deg")
GEOMETRY_HELP = {
    "brow_raise": "how high the brows sit above the eyes (higher = raised brows; lower = frown)",
    "eye_opening": "how open the eyes are",
    "lip_corner_pull": "lip corners pulled up (> 0, as in a smile) or down (< 0)",
    "mouth_opening": "how far the lips are apart",
    "mouth_width": "how wide the mouth is (a smile widens it)",
    "head_yaw_deg": "head turned left or right (degrees)",
    "head_pitch_deg": "head tilted up or down (degrees)",
    "head_roll_deg": "head tilted sideways (degrees)",
}
THUMB_SIZE = 64
_BLANK = np.zeros((64, 64, 3), np.uint8)


class FaceModelError(CrossemoError):
    """mediapipe is missing or cannot run."""


@dataclass(frozen=True, eq=False)
class Detection:
    """One face a detector found: its box ``(x0, y0, x1, y1)`` and its eye and mouth centres ``(3, 2)`` (the
    subject's right eye, left eye, mouth: :func:`eye_mouth_points`' order), in pixels; ``points`` is None when the
    detector gave no key points."""

    box: tuple[float, float, float, float]
    points: np.ndarray | None = None

    def moved(self, dx: float, dy: float) -> "Detection":
        """The same face in a frame where this detection's image starts at ``(dx, dy)``."""
        x0, y0, x1, y1 = self.box
        return Detection((x0 + dx, y0 + dy, x1 + dx, y1 + dy),
                         None if self.points is None else self.points + np.float32([dx, dy]))


@dataclass
class FaceFrame:
    """One sampled frame: when, how many faces, and for the largest face its crop, landmarks and geometry."""

    t: float
    n_faces: int
    crop: np.ndarray | None = None  # (48, 48) uint8 grey, FER-framed
    thumb: np.ndarray | None = None  # (64, 64, 3) uint8 colour, same framing
    geometry: np.ndarray | None = None  # (len(GEOMETRY_NAMES),) float32
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 as fractions of the frame
    face_scale: float | None = None  # frame pixels per crop pixel (< 1: the crop enlarges a small face), crop_scale()
    from_mesh: bool = True
    """False: the crop is aligned on the detectors' eye and mouth points, where the mesh found no face (no geometry)."""


@dataclass
class FaceTrack:
    """The faces of a whole clip (one :class:`FaceFrame` per sampled frame)."""

    frames: list[FaceFrame] = field(default_factory=list)

    @property
    def times(self) -> np.ndarray:
        return np.array([f.t for f in self.frames], dtype=np.float64)

    @property
    def found(self) -> np.ndarray:
        return np.array([f.crop is not None for f in self.frames], dtype=bool)

    def crops(self) -> np.ndarray:
        crops = [f.crop for f in self.frames if f.crop is not None]
        return np.stack(crops) if crops else np.zeros((0, FER_SIZE, FER_SIZE), np.uint8)

    def scales(self) -> np.ndarray:
        """``(n_found,)`` :attr:`FaceFrame.face_scale` of the frames with a face (NaN where unknown)."""
        return np.array([np.nan if f.face_scale is None else f.face_scale for f in self.frames if f.crop is not None],
                        dtype=np.float64)


def _import_face_mesh():  # noqa: ANN202
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ logging: warnings and errors only
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stub = "mediapipe.python.solutions.drawing_utils"
    installed = stub not in sys.modules
    if installed:
        # mediapipe's solutions package imports its drawing helpers, which import matplotlib.pyplot (slow, and it
        # writes a font cache under ~/.cache on first use). Only ``DrawingSpec`` is needed at import time: stand in
        # for the module while mediapipe is imported, then step aside so a later import gets the real one.
        sys.modules[stub] = _drawing_stub(stub)
    try:
        # mediapipe 0.10.21's bindings print a harmless protobuf AttributeError at import; keep it off the console.
        with contextlib.redirect_stderr(io.StringIO()):
            from mediapipe.python.solutions import face_mesh
    except ImportError as exc:
        raise FaceModelError(
            f"mediapipe is not installed ({exc}); install it with: pip install --no-deps -r requirements-clip.txt"
        ) from None
    finally:
        if installed and getattr(sys.modules.get(stub), "_crossemo_stub", False):
            del sys.modules[stub]
            import mediapipe.python.solutions as solutions
            if getattr(getattr(solutions, "drawing_utils", None), "_crossemo_stub", False):
                delattr(solutions, "drawing_utils")
    return face_mesh


def _drawing_stub(name: str) -> types.ModuleType:
    module = types.ModuleType(name)

    @dataclass
    class DrawingSpec:  # the fields of mediapipe's own DrawingSpec
        color: tuple[int, int, int] = (224, 224, 224)
        thickness: int = 2
        circle_radius: int = 2

    module.DrawingSpec = DrawingSpec
    module._crossemo_stub = True
    return module


class FaceAnalyzer:
    """Faces in a stream of frames with mediapipe: its two face detectors (short range, for close-ups; full range,
    for faces up to ~5 m from the camera) find and count the faces every :attr:`detect_every` frames (and whenever
    the face is lost); the face mesh (478 points) then runs on a square region around the largest face, in tracking
    mode while that region stays put.

    Both detectors, because each misses what the other finds: on 150 FER2013 close-ups the short-range detector
    found 99 % and the full-range one 45 %; a face 1/8 of the frame wide is found only by the full-range one.
    Running the mesh on a crop makes small faces (a person filmed from across a room) as easy for it as selfies.
    Where the mesh finds no face in the region of a face the detectors found (sunglasses, heavy compression), the
    crop is aligned on the detectors' own eye and mouth points instead (:attr:`FaceFrame.from_mesh` False; no
    geometry). On FER2013 validation faces the mesh reads, crops framed on the detectors' points instead are read
    about as well (valence UAR 0.738 against the mesh's 0.728 at 150 px; through JPEG quality 10 0.714 / 0.728; at
    80 px on 640x480 0.715 / 0.731, and through JPEG 0.695 / 0.714; top valence the same in 89-96 %); of the 39 faces
    in 2,400 that only the detectors read, 32 got their valence right (``scripts/face_keypoint_crops.py``,
    ``docs/face_keypoint_crops.json``).
    Keep one analyser and call :meth:`reset` between clips.
    """

    ROI_SCALE = 2.0  # side of the mesh region / the larger side of the detected face box
    ROI_RETRY_SCALE = 1.6
    """Where the mesh finds no face in the region around a detected face, it looks once more in this tighter region
    (its side / the face box's larger side): on re-encoded video the mesh's own face check can miss a face that both
    detectors found. A face in sunglasses, in 4 lossy WebM copies of one held-apart clip: meshed in 19, 19, 0 and 0 of
    37 sampled frames at 2.0 alone (the last two clips undetermined); 21, 35, 29 and 35 with this retry, all four
    then judged as the original MP4 (P 0.929). 1.4, 1.7 and 2.6 found fewer in a first version of the retry."""
    ROI_SIZE = 256  # the region is resized to this many pixels before the mesh sees it
    TILE_GRID = 3
    TILE_OVERLAP = 0.25
    """Where the detectors find no face in the whole frame on a frame they search (the first, then every
    :attr:`detect_every` sampled frames, and every frame while no face is tracked), they look again in each tile of a
    3x3 grid (each tile 1.25 times a third of the frame, so that a face up to an eighth of the frame wide on a seam lies
    whole in one), but only on the first sampled frame and then every :attr:`detect_every` frames while they find
    faces, less often while they find none (:attr:`TILE_MAX_GAP`). The detectors shrink the frame to
    their small inputs (128 and 192 px), where a face from across a room is a few pixels. When two tiles find one face
    (boxes overlapping, or one's centre inside the other), the larger box is kept: the face whole, not cut by a tile's
    edge. FER2013 faces drawn 60 px wide at random places on 480x360 frames (20 of them): found in 3 whole frames, in
    20 with the grid; 80 px on 640x480: 2 -> 20; 80 px on 1280x720: 5 -> 16; 40 px on 320x240: 4 -> 20
    (``scripts/face_tiles_experiment.py``, ``docs/face_tiles.json``).
    A search costs nine detections of a third of the frame (58-61 ms on the otherwise idle 2-core machine)."""
    TILE_MAX_GAP = 40
    """After a tiled search that finds nothing, the next one waits twice as many sampled frames as the last wait (from
    :attr:`detect_every` up to this many: 4-8 s at the clip's and sessions' face rates), and the wait starts again at
    :attr:`detect_every` once a face is found: a recording without a face pays for a few searches, not one a second
    (a 30 s clip without a face, ``benchmarks/bench_clip.py --faceless 30``: 1.85 s to score; 1.60 s before the tiled
    search, 3.41 s with a tiled search every 5 frames)."""
    NEAR_SCALE = 1.5
    """On a frame the detectors search where the whole frame shows no face but a face was being read, they look again
    in a square around the region it was tracked in, this many times that region's side (3 times the face box of the
    detection that placed it), before any tiled search: a face too small for the whole frame, found once in a tile,
    is found again with one detection instead of nine."""
    detect_every = 5

    MIN_SEARCH_PX = 16
    """An image or tile narrower or lower than this many pixels is not searched: it holds no face the readers could
    read (the tiled search finds faces from about 28 px), and an empty one (the tiles of a 2 px image) would break
    mediapipe's graphs for every later frame."""

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5) -> None:
        self.max_faces = max_faces
        self._min_confidence = min_confidence
        self._open_graphs()
        self._forget()

    def _open_graphs(self) -> None:
        """mediapipe's two face detectors and its face mesh, for videos and for single images."""
        face_mesh = _import_face_mesh()
        _StderrFilter.install()
        from mediapipe.python.solutions import face_detection

        confidence = self._min_confidence
        with _quiet_fd2():
            self._detectors = [face_detection.FaceDetection(model_selection=m, min_detection_confidence=confidence)
                               for m in (0, 1)]  # short range (close-ups), full range (faces up to ~5 m)
            self._video = face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                                             min_detection_confidence=confidence, min_tracking_confidence=confidence)
            self._still = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                             min_detection_confidence=confidence)
            # The graphs open their calculators on worker threads after construction, which log C++ warnings
            # straight to stderr; one blocking call on a blank frame waits for that while stderr is silenced.
            for graph in (*self._detectors, self._video, self._still):
                graph.process(_BLANK)

    def _forget(self) -> None:
        """No face tracked, none seen: the state of a new clip."""
        self._roi: tuple[float, float, float] | None = None  # the region tracked: centre x, centre y, side (pixels)
        self._box_roi: tuple[float, float, float] | None = None  # the ROI_SCALE region of the box that set it
        self._near: tuple[float, float, float] | None = None  # the ROI_SCALE region of the face being read
        self._count = 0  # faces the detectors found on their last search
        self._n = 0  # frames analysed
        self._tiles_at, self._tile_gap = 0, self.detect_every  # next tiled search (sampled frame), frames between

    def reset(self) -> None:
        with _quiet_fd2():
            self._video.reset()
            self._video.process(_BLANK)
        self._forget()

    def close(self) -> None:
        for graph in (*self._detectors, self._video, self._still):
            graph.close()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """The faces the two detectors find, largest first (at most ``max_faces``), in pixels; none in an image smaller
        than :attr:`MIN_SEARCH_PX`."""
        h, w = rgb.shape[:2]
        if min(h, w) < self.MIN_SEARCH_PX:
            return []
        rgb = np.ascontiguousarray(rgb)
        found: list[Detection] = []
        for detector in self._detectors:
            for d in _process(detector, rgb).detections or []:
                b = d.location_data.relative_bounding_box
                box = (b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h)
                kp = d.location_data.relative_keypoints
                points = (np.array([(kp[i].x * w, kp[i].y * h) for i in _DETECTOR_EYES_MOUTH], np.float32)
                          if len(kp) > max(_DETECTOR_EYES_MOUTH) else None)
                if all(_iou(box, other.box) < 0.3 for other in found):  # the two detectors often find the same face
                    found.append(Detection(box, points))
        found.sort(key=lambda d: -_area(d.box))
        return found[: self.max_faces]

    def detect_in_tiles(self, rgb: np.ndarray) -> list[Detection]:
        """:meth:`detect` in each tile of a :attr:`TILE_GRID` grid (tiles overlapping by :attr:`TILE_OVERLAP`),
        in frame pixels, largest first; a face found in two tiles counts once."""
        h, w = rgb.shape[:2]
        n = self.TILE_GRID
        tw, th = min(w, int(w / n * (1 + self.TILE_OVERLAP))), min(h, int(h / n * (1 + self.TILE_OVERLAP)))
        found: list[Detection] = []
        for x0 in np.linspace(0, w - tw, n).round().astype(int):
            for y0 in np.linspace(0, h - th, n).round().astype(int):
                for d in self.detect(rgb[y0:y0 + th, x0:x0 + tw]):
                    face = d.moved(float(x0), float(y0))
                    same = [k for k, other in enumerate(found)
                            if _iou(face.box, other.box) >= 0.3 or _inside(face.box, other.box)]
                    if not same:
                        found.append(face)
                    elif _area(face.box) > _area(found[same[0]].box):  # the face whole, where another tile cut it
                        found[same[0]] = face
        found.sort(key=lambda d: -_area(d.box))
        return found[: self.max_faces]

    def detect_near(self, rgb: np.ndarray, region: tuple[float, float, float]) -> list[Detection]:
        """:meth:`detect` in the square :attr:`NEAR_SCALE` times the ``region`` (centre x, centre y, side; pixels),
        moved inside the frame where it overhangs, in frame pixels."""
        h, w = rgb.shape[:2]
        cx, cy, side = region
        side = min(self.NEAR_SCALE * side, w, h)
        x0 = int(round(min(max(cx - side / 2, 0.0), w - side)))
        y0 = int(round(min(max(cy - side / 2, 0.0), h - side)))
        n = int(round(side))
        return [d.moved(float(x0), float(y0)) for d in self.detect(rgb[y0:y0 + n, x0:x0 + n])]

    def analyse(self, t: float, rgb: np.ndarray, still: bool = False) -> FaceFrame:
        """Find the faces in one RGB frame and describe the largest (``still``: an unrelated single image). Should a
        mediapipe graph fail on the frame (a failed graph fails every later call too), the graphs are opened anew and
        the frame counts as one without a face, so one odd frame costs neither the recording nor the next one."""
        try:
            return self._analyse(t, rgb, still)
        except GraphFailed as exc:
            log.warning("the face tracker failed on the frame at %.2f s (%s); it was started again", t, exc)
            for graph in (*self._detectors, self._video, self._still):
                with contextlib.suppress(RuntimeError):  # a failed graph may fail to close too
                    graph.close()
            self._open_graphs()
            self._forget()
            return FaceFrame(t=t, n_faces=0)

    def _analyse(self, t: float, rgb: np.ndarray, still: bool) -> FaceFrame:
        rgb = np.ascontiguousarray(rgb)
        found: list[Detection] | None = None  # this frame's detections, when the detectors ran on it
        if still or self._roi is None or self._n % self.detect_every == 0:
            found = self.detect(rgb)
            if not found and not still and self._near is not None:
                found = self.detect_near(rgb, self._near)
            if not found and (still or self._n >= self._tiles_at):
                found = self.detect_in_tiles(rgb)
                if not still:  # found: again in detect_every frames; nothing: wait twice as long (<= TILE_MAX_GAP)
                    self._tile_gap = self.detect_every if found else min(2 * self._tile_gap, self.TILE_MAX_GAP)
                    self._tiles_at = self._n + self._tile_gap
            elif found:  # a face again: the tiles back to every detect_every frames (the next such frame at the latest)
                self._tile_gap = self.detect_every
                self._tiles_at = min(self._tiles_at, (self._n // self.detect_every + 1) * self.detect_every)
            self._count = len(found)
            if not found:
                self._roi = self._box_roi = self._near = None
            else:
                x0, y0, x1, y1 = found[0].box
                roi = ((x0 + x1) / 2, (y0 + y1) / 2, self.ROI_SCALE * max(x1 - x0, y1 - y0))
                if still or self._box_roi is None or _moved(self._box_roi, roi):
                    self._roi = self._box_roi = roi
                    if not still:
                        self._restart_tracking()
        self._n += 1
        if self._roi is None or self._box_roi is None:
            return FaceFrame(t=t, n_faces=0)
        mesh = self._mesh(rgb, self._roi, still)
        if mesh is None and self._roi == self._box_roi:  # a miss leaves the mesh nothing to track: no restart
            cx, cy, side = self._box_roi
            tighter = (cx, cy, side * self.ROI_RETRY_SCALE / self.ROI_SCALE)
            mesh = self._mesh(rgb, tighter, still)
            if mesh is not None:
                self._roi = tighter  # track in the region that found it
        h, w = rgb.shape[:2]
        if mesh is None:
            region = self._box_roi
            self._roi = self._box_roi = None  # lost: detect again on the next frame
            face = _detection_in(self.detect_near(rgb, region) if found is None else found, region)
            if face is None:
                return FaceFrame(t=t, n_faces=self._count)
            crop, thumb = align_face(rgb, face.points)
            x0, y0, x1, y1 = face.box
            self._near = ((x0 + x1) / 2, (y0 + y1) / 2, self.ROI_SCALE * max(x1 - x0, y1 - y0))
            return FaceFrame(t=t, n_faces=max(self._count, 1), crop=crop, thumb=thumb,
                             box=(float(x0 / w), float(y0 / h), float(x1 / w), float(y1 / h)),
                             face_scale=crop_scale(face.points), from_mesh=False)
        self._near = self._box_roi
        crop, thumb = align_face(rgb, eye_mouth_points(mesh))
        x0, y0 = mesh[:, :2].min(0)
        x1, y1 = mesh[:, :2].max(0)
        return FaceFrame(t=t, n_faces=max(self._count, 1), crop=crop, thumb=thumb, geometry=face_geometry(mesh),
                         box=(float(x0 / w), float(y0 / h), float(x1 / w), float(y1 / h)),
                         face_scale=crop_scale(eye_mouth_points(mesh)))

    def _restart_tracking(self) -> None:
        with _quiet_fd2():
            self._video.reset()

    def _mesh(self, rgb: np.ndarray, roi: tuple[float, float, float], still: bool) -> np.ndarray | None:
        """The 478-point mesh ``(478, 3)`` in frame pixels, searched in the square region ``roi``."""
        import cv2

        cx, cy, side = roi
        if not (np.isfinite(side) and side > 0):
            return None
        scale = self.ROI_SIZE / side
        m = np.array([[scale, 0, self.ROI_SIZE / 2 - scale * cx], [0, scale, self.ROI_SIZE / 2 - scale * cy]])
        patch = cv2.warpAffine(rgb, m, (self.ROI_SIZE, self.ROI_SIZE), flags=cv2.INTER_AREA if scale < 1 else
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        result = _process(self._still if still else self._video, patch)
        if not result.multi_face_landmarks:
            return None
        pts = np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark], dtype=np.float32)
        pts *= self.ROI_SIZE
        mesh = np.empty_like(pts)
        mesh[:, 0] = (pts[:, 0] - m[0, 2]) / scale
        mesh[:, 1] = (pts[:, 1] - m[1, 2]) / scale
        mesh[:, 2] = pts[:, 2] / scale
        return mesh


class GraphFailed(RuntimeError):
    """A mediapipe graph failed on an image (its first line of error); the graph fails every later call too."""


def _process(graph: Any, image: np.ndarray) -> Any:
    """``graph.process(image)``, a failure raised as :class:`GraphFailed`."""
    try:
        return graph.process(image)
    except RuntimeError as exc:
        text = str(exc).strip()
        raise GraphFailed(text.splitlines()[0] if text else type(exc).__name__) from exc


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


_TEMPLATE_POINTS = np.array([FER_TEMPLATE["right_eye"], FER_TEMPLATE["left_eye"], FER_TEMPLATE["mouth"]], np.float32)
"""``(3, 2)``: where :func:`eye_mouth_points` of a face go in its 48x48 crop."""


def _area(box: tuple[float, ...]) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def _inside(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """True when the centre of either box lies in the other (one face, cut by a tile's edge in one tile)."""
    def holds(outer: tuple[float, ...], inner: tuple[float, ...]) -> bool:
        cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
        return outer[0] <= cx <= outer[2] and outer[1] <= cy <= outer[3]

    return holds(a, b) or holds(b, a)


def _detection_in(found: list[Detection], region: tuple[float, float, float]) -> Detection | None:
    """The largest detection with key points whose box centre lies in the square ``region`` (centre x, centre y,
    side): the face the mesh was looking for."""
    cx, cy, side = region
    for d in found:
        x0, y0, x1, y1 = d.box
        if d.points is not None and abs((x0 + x1) / 2 - cx) <= side / 2 and abs((y0 + y1) / 2 - cy) <= side / 2:
            return d
    return None


def _moved(old: tuple[float, float, float], new: tuple[float, float, float]) -> bool:
    """True when the detected face left the central part of the current region or changed size by > 30 %."""
    (ox, oy, os_), (nx, ny, ns) = old, new
    return abs(nx - ox) > 0.15 * os_ or abs(ny - oy) > 0.15 * os_ or not 0.77 < ns / os_ < 1.3


def eye_mouth_points(mesh: np.ndarray) -> np.ndarray:
    """``(3, 2)``: the subject's right eye centre, left eye centre, mouth centre (pixels)."""
    return np.stack([mesh[list(RIGHT_EYE), :2].mean(0), mesh[list(LEFT_EYE), :2].mean(0),
                     mesh[list(LIP_CORNERS), :2].mean(0)]).astype(np.float32)


def crop_scale(points: np.ndarray) -> float:
    """How many frame pixels one pixel of the :func:`align_face` crop of the face with these :func:`eye_mouth_points`
    spans: 1 for a face as large as FER2013's (eyes 17 px apart), 0.5 for a face half that size, whose crop is an
    enlarged, blurred face."""
    return float(1.0 / max(np.hypot(*_similarity(points, _TEMPLATE_POINTS)[:, 0]), 1e-9))


def align_face(rgb: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 48x48 grey crop framed like FER2013 (eyes and mouth on :data:`FER_TEMPLATE`) and a 64x64 colour thumb,
    from the face's eye and mouth centres ``points`` ``(3, 2)`` (:func:`eye_mouth_points`, or a detector's).

    A similarity transform (rotation, scale, shift) maps the eye and mouth centres onto the template; the crop is
    rendered at 4x and area-averaged down, which avoids aliasing when the face is large in the frame.
    """
    import cv2

    matrix = _similarity(np.asarray(points, np.float32), _TEMPLATE_POINTS * 4)
    big = cv2.warpAffine(rgb, matrix, (FER_SIZE * 4, FER_SIZE * 4), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    grey = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
    crop = cv2.resize(grey, (FER_SIZE, FER_SIZE), interpolation=cv2.INTER_AREA)
    thumb = cv2.resize(big, (THUMB_SIZE, THUMB_SIZE), interpolation=cv2.INTER_AREA)
    return crop, thumb


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform ``(2, 3)`` mapping ``src`` points onto ``dst`` (Umeyama, no reflection)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, sign]) @ vt
    scale = (sig * np.array([1.0, sign])).sum() / max(float((s ** 2).sum() / len(src)), 1e-9)
    m = np.zeros((2, 3), np.float64)
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def face_geometry(mesh: np.ndarray) -> np.ndarray:
    """The :data:`GEOMETRY_NAMES` measures of one face mesh ``(478, 3)`` in pixels (see the module docstring)."""
    pts = mesh[:, :2].astype(np.float64)
    r_eye, l_eye = pts[list(RIGHT_EYE)].mean(0), pts[list(LEFT_EYE)].mean(0)
    axis = l_eye - r_eye
    d = max(float(np.hypot(*axis)), 1e-6)
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    c, s = axis / d
    rot = np.array([[c, s], [-s, c]])  # eye line -> horizontal
    p = (pts - (r_eye + l_eye) / 2) @ rot.T  # face frame: x along the eye line, y downwards

    brow = 0.5 * ((p[list(RIGHT_EYE), 1].mean() - p[list(RIGHT_BROW), 1].mean())
                  + (p[list(LEFT_EYE), 1].mean() - p[list(LEFT_BROW), 1].mean())) / d
    eye_w = (np.hypot(*(p[RIGHT_EYE[0]] - p[RIGHT_EYE[1]])), np.hypot(*(p[LEFT_EYE[0]] - p[LEFT_EYE[1]])))
    eye_open = 0.5 * ((p[RIGHT_LIDS[1], 1] - p[RIGHT_LIDS[0], 1]) / max(eye_w[0], 1e-6)
                      + (p[LEFT_LIDS[1], 1] - p[LEFT_LIDS[0], 1]) / max(eye_w[1], 1e-6))
    mid_lip = p[list(INNER_LIPS), 1].mean()
    corner = p[list(LIP_CORNERS), 1].mean()
    pull = (mid_lip - corner) / d
    mouth_open = (p[INNER_LIPS[1], 1] - p[INNER_LIPS[0], 1]) / d
    mouth_w = float(np.hypot(*(p[LIP_CORNERS[0]] - p[LIP_CORNERS[1]]))) / d

    z = mesh[:, 2].astype(np.float64)
    side = mesh[FACE_SIDES[1], :2] - mesh[FACE_SIDES[0], :2]
    yaw = float(np.degrees(np.arctan2(z[FACE_SIDES[1]] - z[FACE_SIDES[0]], np.hypot(*side))))
    vert = mesh[CHIN, :2] - mesh[FOREHEAD, :2]
    pitch = float(np.degrees(np.arctan2(z[CHIN] - z[FOREHEAD], np.hypot(*vert))))
    return np.array([brow, eye_open, pull, mouth_open, mouth_w, yaw, pitch, roll], dtype=np.float32)


class _StderrFilter:
    """Drops mediapipe's C++ log lines from the process's stderr (file descriptor 2), passes everything else.

    mediapipe's graphs create their inference engines lazily on worker threads and log warnings such as
    ``W0000 ... Feedback manager requires a model with a single signature inference`` straight to fd 2, at moments
    no ``with`` block can catch. Once installed, fd 2 is a pipe read by a daemon thread that forwards every line to
    the original stderr except absl's pre-initialisation lines (``W0000``/``I0000`` ...) and TensorFlow Lite's
    ``INFO: Created TensorFlow Lite ... delegate``. Installed once per process, on first use of the face analyser.
    """

    NOISE = (b"W0000 ", b"I0000 ", b"WARNING: All log messages before absl::InitializeLog()",
             b"INFO: Created TensorFlow Lite")
    _installed = False
    _lock = threading.Lock()

    @classmethod
    def install(cls) -> None:
        with cls._lock:
            if cls._installed or raw_stderr():
                return
            try:
                sys.stderr.flush()
                original = os.dup(2)
                read, write = os.pipe()
                os.dup2(write, 2)
                os.close(write)
            except OSError:
                return
            thread = threading.Thread(target=cls._pump, args=(read, original), name="crossemo-stderr-filter",
                                      daemon=True)
            thread.start()
            cls._installed = True
            atexit.register(cls._uninstall, original, thread)

    @staticmethod
    def _uninstall(original: int, thread: threading.Thread) -> None:
        """At exit: put the original stderr back (closing the pipe's only write end) and let the thread drain it,
        so a last message (an error line) is never lost."""
        try:
            sys.stderr.flush()
            os.dup2(original, 2)
        except (OSError, ValueError):
            return
        thread.join(timeout=2.0)

    @classmethod
    def _pump(cls, read: int, original: int) -> None:
        with os.fdopen(read, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                try:
                    chunk = pipe.read(65536)
                except OSError:
                    return
                if not chunk:
                    return
                pending += chunk
                *lines, pending = pending.split(b"\n")
                out = b"".join(line + b"\n" for line in lines if not line.startswith(cls.NOISE))
                if pending and not any(n.startswith(pending[:len(n)]) for n in cls.NOISE):
                    out, pending = out + pending, b""  # a partial line that is not noise: pass it on now
                if out:
                    try:
                        os.write(original, out)
                    except OSError:
                        pass


@contextlib.contextmanager
def _quiet_fd2():  # noqa: ANN202
    """Silence C++ writes to stderr (mediapipe's start-up lines) while building the graphs."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
