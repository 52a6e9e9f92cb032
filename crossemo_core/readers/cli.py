"""``python -m crossemo_core read FILE... [--json] [--csv OUT] [--baseline CALM]``: the readers alone.

An audio file gets the voice's reading, a photo the face's, a video both: emotion probabilities, valence
probabilities, arousal (voice), and "uncertain" when the top valence probability is below
:data:`~crossemo_core.readers.reading.UNCERTAIN_BELOW`. A folder means every supported file in it. A file that
cannot be read gets an error line and the others go on; the exit status is 2 when any file failed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossemo_core.errors import CrossemoError, DataError, single_line
from crossemo_core.readers.reading import Reading
from crossemo_core.settings import output_path

FACE_FPS = 5.0
"""Video frames read per second by the face reader."""


def add_read_parser(sub: Any) -> None:
    p = sub.add_parser("read", help="what emotion the face and the voice show, each on its own",
                       description="Reads each file with the voice reader (audio), the face reader (photo) or both "
                                   "(video). Research tool, not a diagnostic device.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio, photo or video; a folder means every "
                                                                       "supported file in it")
    p.add_argument("--baseline", type=Path, help="a calm recording of the same speaker: the voice is then normalised "
                                                 "by this speaker's own statistics")
    p.add_argument("--json", action="store_true", help="print one JSON object per file (one per line)")
    p.add_argument("--csv", type=output_path("--csv"), help="also write a table of all readings to this CSV file")


@dataclass
class FileReading:
    """The readings of one file (either side may be missing) and what limited them."""

    file: str
    face: Reading | None = None
    voice: Reading | None = None
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "face": self.face.to_dict() if self.face else None,
                "voice": self.voice.to_dict() if self.voice else None, "notes": self.notes, "error": self.error}

    def row(self) -> dict[str, Any]:
        """A flat table row (CSV)."""
        out: dict[str, Any] = {"file": self.file, "error": self.error or ""}
        for side, r in (("face", self.face), ("voice", self.voice)):
            out[f"{side}_emotion"] = r.top_emotion if r else ""
            out[f"{side}_valence"] = r.top_valence if r else ""
            out[f"{side}_confidence"] = round(r.confidence, 4) if r else None
            out[f"{side}_uncertain"] = r.uncertain if r else None
            out[f"{side}_note"] = r.note if r else ""
            for v, p in (r.valence.items() if r else ()):
                out[f"{side}_p_{v}"] = round(p, 4)
        if self.voice and self.voice.arousal:
            out["voice_p_high_arousal"] = round(self.voice.arousal["high"], 4)
        return out

    def describe(self) -> str:
        if self.error:
            return single_line(f"{self.file}: ERROR: {self.error}")
        lines = [single_line(f"{self.file}:")]
        lines += [f"  {r.summary()}" + (f" ({r.note})" if r.note else "") for r in (self.face, self.voice) if r]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class Readers:
    """The shipped readers, loaded on first use (a voice-only folder never loads the face models)."""

    def __init__(self) -> None:
        self._voice = None
        self._face = None

    @property
    def voice(self):  # noqa: ANN201 - VoiceReader, imported lazily
        if self._voice is None:
            from crossemo_core.readers.voice import VoiceReader

            self._voice = VoiceReader.load()
        return self._voice

    @property
    def face(self):  # noqa: ANN201 - FaceReader, imported lazily
        if self._face is None:
            from crossemo_core.readers.face import FaceReader

            self._face = FaceReader.load()
        return self._face

    def close(self) -> None:
        """Release mediapipe (the face reader's tracker and landmarker)."""
        if self._face is not None:
            self._face.close()
        self._face = None

    def read_file(self, path: Path | Any, baseline: Any = None) -> FileReading:
        """Decode ``path`` (a path or :class:`~crossemo_core.clip.decode.NamedBytes`) and read each side it has."""
        from dataclasses import replace

        from crossemo_core.clip.decode import ClipLimits, decode_media

        crops: list[Any] = []
        scales: list[float] = []
        n_frames = [0]
        on_points = [0]  # frames framed on the detectors' points (the mesh found no landmarks)

        def on_frame(t: float, rgb: Any) -> None:
            tracker = self.face.tracker  # video faces are found and framed exactly as the clip verdict does
            if n_frames[0] == 0:
                tracker.reset()
            n_frames[0] += 1
            frame = tracker.analyse(t, rgb)
            if frame.crop is not None:
                crops.append(frame.crop)
                scales.append(np.nan if frame.face_scale is None else frame.face_scale)
                on_points[0] += not frame.from_mesh

        media = decode_media(path, limits=replace(ClipLimits(), fps=FACE_FPS), on_frame=on_frame)
        result = FileReading(file=media.name, notes=list(media.notes))
        if media.is_image:
            result.face = self.face.read_image(media.image)
        elif n_frames[0]:
            from crossemo_core.readers.face import read_tracked_crops

            result.face = read_tracked_crops(self.face, np.stack(crops) if crops else None, n_frames[0], FACE_FPS,
                                             np.array(scales), on_points[0])
        if media.audio is not None and media.has_audio:
            result.voice = self.voice.read_recording(media.audio, baseline)
        return result


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from crossemo_core.clip.cli import expand, failure_message
    from crossemo_core.clip.decode import decode_media
    from crossemo_core.paths import atomic_write, check_writable

    entries = expand(list(args.files))
    if args.csv is not None:
        check_writable(args.csv, "--csv", inputs=[f for f, _ in entries] + [args.baseline])
    readers = Readers()
    baseline = None
    if args.baseline is not None:
        media = decode_media(args.baseline, want_video=False, need_audio=True)
        baseline = readers.voice.baseline_stats(media.audio)
    results = []
    try:
        for f, skipped in entries:
            try:
                if skipped:
                    raise DataError(skipped)
                r = readers.read_file(f, baseline)
            except Exception as exc:  # noqa: BLE001 - one file's failure, even an unforeseen one, costs only that file
                r = FileReading(file=f.name, error=failure_message(exc))
                if not isinstance(exc, CrossemoError):  # the readers may be what failed: the next file gets new ones
                    with contextlib.suppress(Exception):
                        readers.close()
                    readers = Readers()
            results.append(r)
            print(json.dumps(r.to_dict()) if args.json else r.describe(), flush=True)
    finally:
        readers.close()
    if args.csv and all(r.error for r in results) and args.csv.exists():
        print(f"nothing was read, so {args.csv} was left as it was", file=sys.stderr)
    elif args.csv:
        atomic_write(args.csv, pd.DataFrame([r.row() for r in results]).to_csv(index=False).encode())
    return 2 if any(r.error for r in results) else 0
