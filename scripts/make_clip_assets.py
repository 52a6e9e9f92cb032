"""Build the demo clips in assets/clips/ from material the project may redistribute.

    apt-get install espeak-ng && pip install scikit-image   # build-time only
    python scripts/make_clip_assets.py

- Face: scikit-image's ``data.astronaut()``, a NASA photograph of astronaut Eileen Collins (public domain).
- Voice: speech synthesised by espeak-ng from the sentences below (a synthetic voice; its "emotion" is only what
  pitch, rate and loudness settings suggest, not an acted emotion).
Nothing here comes from ../shared/data. The clips are videos of the still photograph drifting slightly (so the
face tracker sees motion, as in a real recording), 640x360 at 25 fps, H.264 + AAC.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.clip import synth  # noqa: E402
from crossemo_core.clip.decode import AUDIO_RATE  # noqa: E402
from crossemo_core.paths import atomic_write, atomic_write_text  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "assets" / "clips"
VOICES = {
    "upbeat": ("Hello! I just heard the wonderful news, and I am so happy for you. What a great day!",
               ["-p", "75", "-s", "170", "-a", "130"]),
    "low": ("I don't know. Everything feels so heavy today, and I am tired of all of it.",
            ["-p", "20", "-s", "115", "-a", "70"]),
}
SAMPLES = {  # file name: (voice, description)
    "smile_upbeat.mp4": ("upbeat", "smiling face, lively high-pitched synthetic voice"),
    "smile_low.mp4": ("low", "smiling face, slow low-pitched quiet synthetic voice"),
}


def speak(text: str, options: list[str]) -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", *options, "-w", str(wav), text], check=True)
        audio, sr = sf.read(wav, dtype="float32")
    audio = resample_poly(audio, AUDIO_RATE, sr).astype(np.float32) if sr != AUDIO_RATE else audio
    return np.concatenate([np.zeros(AUDIO_RATE // 4, np.float32), audio, np.zeros(AUDIO_RATE // 4, np.float32)])


def face_video(face: np.ndarray, audio: np.ndarray, fps: int = 25) -> bytes:
    n = int(np.ceil(len(audio) / AUDIO_RATE * fps))

    def frame(i: int) -> np.ndarray:
        t = i / fps
        return synth.place((360, 640), face, int(300 + 8 * np.sin(t * 0.9)), 320 + 10 * np.sin(t * 0.7),
                           185 + 5 * np.sin(t * 1.1))

    return synth.encode_video(frame, n, fps, audio, container="mp4", crf=30)


def main() -> int:
    from skimage import data

    OUT.mkdir(parents=True, exist_ok=True)
    face = data.astronaut()
    voices = {k: speak(text, opts) for k, (text, opts) in VOICES.items()}
    written = {}
    for name, (voice, _) in SAMPLES.items():
        written[name] = face_video(face, voices[voice])
    written["face_photo.jpg"] = synth.encode_image(face[:400, 60:460], "jpeg")
    written["voice_upbeat.wav"] = synth.encode_audio(voices["upbeat"], fmt="wav")
    lines = ["# Demo clips", "", "Built by `scripts/make_clip_assets.py` (run it to rebuild them); nothing here comes "
             "from `../shared/data`.", "",
             "- Face: scikit-image `data.astronaut()`, a NASA photograph of astronaut Eileen Collins "
             "(public domain).",
             "- Voices: synthesised with espeak-ng (en-us). A synthetic voice has no real emotion: the settings only "
             "make it lively (high pitch, fast, loud) or flat (low pitch, slow, quiet). These clips show how the "
             "tool works; they are not evidence that it works.", "",
             "| file | what | bytes | sha256 |", "|---|---|---|---|"]
    for name, blob in written.items():
        atomic_write(OUT / name, blob)
        what = SAMPLES.get(name, ("", {"face_photo.jpg": "the face as a still photo (use with a voice file)",
                                       "voice_upbeat.wav": "the lively synthetic voice alone"}.get(name, "")))[1]
        lines.append(f"| `{name}` | {what} | {len(blob):,} | `{hashlib.sha256(blob).hexdigest()[:16]}` |")
    lines += ["", "Sentences: " + "; ".join(f"{k}: \"{t}\" (espeak-ng {' '.join(o)})" for k, (t, o) in VOICES.items()),
              ""]
    atomic_write_text(OUT / "README.md", "\n".join(lines))
    for name, blob in written.items():
        print(f"{OUT / name}: {len(blob) / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
