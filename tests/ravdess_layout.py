"""A made-up RAVDESS folder for tests, in the documented layout: the ``face_au.csv`` columns, a few takes of actor 1
and tone audio for them. Import it as ``ravdess_layout`` (pytest puts ``tests/`` on ``sys.path``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

AU_R = [f"AU{n:02d}_r" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)]
AU_C = [f"AU{n:02d}_c" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)]
META = ["clip_id", "actor", "emotion", "intensity", "statement", "repetition"]
# (emotion, intensity, statement, repetition) per made-up clip; 3-class: neutral, positive, negative, negative, pos
TAKES = [(1, 1, 1, 1), (3, 2, 1, 1), (4, 1, 2, 1), (5, 2, 2, 2), (8, 1, 1, 2)]
SR = 16000


def face_au_lines(takes: list[tuple[int, int, int, int]], seed: int = 7) -> list[str]:
    """The lines of a ``face_au.csv`` for ``takes`` of actor 1 (header first), uniform made-up AU values."""
    rng = np.random.default_rng(seed)
    lines = [",".join(META + AU_R + AU_C)]
    for emo, inten, stat, rep in takes:
        clip = f"01-01-{emo:02d}-{inten:02d}-{stat:02d}-{rep:02d}-01"
        lines.append(",".join([clip, "1", str(emo), str(inten), str(stat), str(rep)]
                              + [f"{v:.4f}" for v in rng.uniform(0, 1, len(AU_R + AU_C))]))
    return lines


def write_tone_audio(root: Path, takes: list[tuple[int, int, int, int]], base_hz: float) -> Path:
    """``root/audio/Actor_01/03-....wav`` for each of ``takes``: 0.4 s tones of ``base_hz + 40 k`` Hz (take k);
    returns ``root``."""
    import soundfile as sf

    folder = root / "audio" / "Actor_01"
    folder.mkdir(parents=True)
    t = np.arange(int(0.4 * SR)) / SR
    for k, (emo, inten, stat, rep) in enumerate(takes):
        sf.write(folder / f"03-01-{emo:02d}-{inten:02d}-{stat:02d}-{rep:02d}-01.wav",
                 (0.3 * np.sin(2 * np.pi * (base_hz + 40 * k) * t)).astype(np.float32), SR)
    return root
