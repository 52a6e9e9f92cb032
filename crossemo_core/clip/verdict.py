"""Verdict on a clip or a whole session: do the emotion of the face and the emotion of the voice agree, and where do
they not?

The clip path, each step a module with dataclasses in and out:

=========  ==========================  ===================================================================
step       module                      in -> out
=========  ==========================  ===================================================================
decode     :mod:`.decode`              file or upload -> :class:`~.decode.VideoSample`, :class:`~.decode.AudioBlock`
read       :mod:`.face`, :mod:`.reading`  frames -> :class:`~.face.FaceFrame` -> :class:`~.reading.FaceReadings`;
                                       audio -> :class:`~.reading.Loudness`, voice features
window     :mod:`.windows`             readings -> :class:`~.windows.WindowInput` (2 s every 0.5 s)
score      :mod:`.score`               :class:`~.windows.WindowInput` -> :class:`~.score.Window` (embedding,
                                       gate, both readings, calibrated probability)
verdict    this module, :mod:`.segments`  windows -> :class:`ClipVerdict` with :class:`~.segments.Segment` s and
                                       a :class:`~.segments.SessionSummary`
report     :mod:`.report`              verdicts -> table, CSV, HTML
=========  ==========================  ===================================================================

:class:`ClipScorer` holds the models and runs the steps: :meth:`ClipScorer.score` streams any recording
(:mod:`.session`: bounded memory, progress, stop), :meth:`ClipScorer.analyse` + :meth:`ClipScorer.judge` read a
short clip whole (baselines, training scripts). Both give a short clip the same verdict.

The clip's probability of inconsistency is the evidence combiner's (:mod:`.combine`): a logistic regression,
fitted and calibrated on validation clips, over the mean window similarity and the two readings' valences pooled
over the judged windows, each pair of valences weighted on its own (:data:`~crossemo_core.clip.combine.RULE` says
it in a sentence). The verdict is
"inconsistent" at 0.5 or above, with weak / moderate / strong evidence, else "consistent", or "undetermined" with
its reason: a face covers less than half of the clip's time, less than 0.5 s of speech, no window with both, most
windows unlike anything seen in training (per-modality kNN gate), or both readers uncertain. A verdict whose sources
pull in opposite directions, or that goes against the valences it prints, carries a sentence saying so and why
(:attr:`ClipVerdict.conflict`; e.g. how often validation clips with the same two printed valences were consistent).

Per-person baseline (optional): a calm, neutral clip of the same person (or a calm stretch of the same recording).
The mean of its face rows and voice rows (model inputs) is subtracted from the clip's and replaced by the training
population's neutral mean, and the voice reader reads relative to that recording; the result goes through the same
combiner.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.combine import (DEFAULT_COMBINER, RULE, EvidenceCombiner, Outcome, Strength, combine_evidence,
                                        sources_disagree, strength)
from crossemo_core.clip.decode import AUDIO_RATE, ClipLimits, Source, decode_media, source_sha256
from crossemo_core.clip.face import FaceTrack
from crossemo_core.clip.reading import (SILENCE_PEAK, ClipAnalysis, ClipFacts, FaceLog, ThumbPicker, envelope,  # noqa: F401
                                        geometry_summary)
from crossemo_core.clip.score import (DEFAULT_CLIP_CHECKPOINT, DEFAULT_FER_CHECKPOINT, RECORDING_READ_S,  # noqa: F401
                                      VOICE_NAMES, Calibration, ClipModel, Window, WindowScorer, WindowScores, file_sha256)
from crossemo_core.clip.segments import Segment, SegmentRule, SessionSummary, fmt_clock, segments_of, summarise
from crossemo_core.clip.windows import WindowBuilder
from crossemo_core.errors import DataError
from crossemo_core.features.voice import VoiceFeatureExtractor
from crossemo_core.readers.reading import Reading
from crossemo_core.readers.voice import DEFAULT_VOICE_READER, VoiceReader

MIN_CALM_S = 2.0
"""A calm stretch marked in a recording must cover at least this much of it (seconds)."""
ATYPICAL_SHARE = 0.5
"""The clip is "unlike anything seen in training" when more than this share of its scored windows is."""
UNCOMBINED_RULE = ("The probability of inconsistency is the embedding's posterior alone (this clip model has no "
                   "fitted evidence combiner, so the readings are shown but not weighed).")


# ------------------------------------------------------------------------------------------------ verdict
@dataclass(frozen=True)
class SideSummary:
    """One side's reading pooled over the clip's judged windows, as the verdict prints it. ``read`` False: the side
    was not read (no face found, no voice judged) and every other field is empty. Frozen fields, but the dicts are
    not copies: read them, do not change them."""

    read: bool = False
    emotion: str | None = None
    """the most probable emotion"""
    probs: dict[str, float] = field(default_factory=dict)
    """emotion probabilities (the reader's 7 emotions)"""
    valence: str | None = None
    """the most probable valence: negative, neutral or positive"""
    valence_probs: dict[str, float] = field(default_factory=dict)
    confidence: float | None = None
    """the top valence probability"""
    uncertain: bool | None = None
    """the top valence probability is below the reader's threshold"""
    arousal_probs: dict[str, float] | None = None
    """probabilities of low and high arousal; None where the reader gives no arousal"""

    @classmethod
    def of(cls, reading: Reading | None) -> SideSummary:
        """The summary of a pooled reading (rounded as the JSON shows it); ``None``: a side that was not read."""
        if reading is None:
            return cls()
        d = reading.to_dict()
        return cls(read=True, emotion=d["emotion"], probs=d["emotions"], valence=d["valence"],
                   valence_probs=d["valence_probs"], confidence=d["confidence"], uncertain=d["uncertain"],
                   arousal_probs=d["arousal_probs"])

    def to_dict(self) -> dict[str, Any]:
        """The verdict JSON's ``face`` / ``voice`` object (a side not read has only the first four keys)."""
        d: dict[str, Any] = {"emotion": self.emotion, "probs": self.probs, "valence": self.valence,
                             "valence_probs": self.valence_probs}
        if self.read:
            d.update(confidence=self.confidence, uncertain=self.uncertain, arousal_probs=self.arousal_probs)
        return d


@dataclass
class ClipVerdict:
    """A verdict a person can read; :meth:`to_dict` is the JSON the command line prints."""

    file: str
    voice_file: str | None
    verdict: Outcome
    reason: str
    p_inconsistent: float | None
    similarity: float | None
    threshold: float
    face: SideSummary
    voice: SideSummary
    timeline: list[Window]
    duration_s: float
    face_fraction: float
    speech_s: float
    geometry: dict[str, dict[str, float]]
    notes: list[str]
    calibrated: bool
    checkpoint: str
    strength: Strength | None = None  # decided verdicts only
    p_embedding: float | None = None  # the embedding's posterior alone
    p_readings: float | None = None  # the readings alone (calibrated)
    conflict: str | None = None  # the sentence saying that the sources disagree, when they do
    rule: str = RULE
    segments: list[Segment] = field(default_factory=list)  # stretches with one outcome (segments.py)
    session: SessionSummary | None = None
    partial: str | None = None  # set when the analysis stopped early: what the verdict covers
    sha256: str | None = None  # of the recording's bytes (the file the verdict belongs to)
    voice_sha256: str | None = None  # of the separate voice recording, when one was given
    # for views (not in the JSON)
    thumbnails: list[tuple[float, np.ndarray]] = field(default_factory=list, repr=False)
    envelope: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    geometry_series: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "voice_file": self.voice_file, "verdict": self.verdict,
                "p_inconsistent": _r(self.p_inconsistent), "similarity": _r(self.similarity),
                "threshold": _r(self.threshold), "reason": self.reason, "face": self.face.to_dict(),
                "voice": self.voice.to_dict(),
                "timeline": [w.to_dict() for w in self.timeline], "duration_s": round(self.duration_s, 2),
                "face_found_fraction": round(self.face_fraction, 3), "speech_s": round(self.speech_s, 2),
                "geometry": self.geometry, "calibrated_with_baseline": self.calibrated, "notes": self.notes,
                "checkpoint": self.checkpoint, "strength": self.strength, "p_embedding": _r(self.p_embedding),
                "p_readings": _r(self.p_readings), "conflict": self.conflict, "rule": self.rule,
                "segments": [s.to_dict() for s in self.segments],
                "session": self.session.to_dict() if self.session is not None else None, "partial": self.partial,
                "sha256": self.sha256, "voice_sha256": self.voice_sha256}

    @property
    def label(self) -> str:
        """The verdict in graded words: ``"inconsistent (strong evidence)"``, ``"undetermined"``."""
        return self.verdict if self.strength is None else f"{self.verdict} ({self.strength} evidence)"

    def summary(self) -> str:
        """One plain sentence for people (the conflict sentence follows when the sources disagree)."""
        if self.verdict == "undetermined":
            return f"Undetermined: {self.reason}"
        text = (f"{self.label.capitalize()}: probability of inconsistency {self.p_inconsistent:.2f}. "
                f"{self.reason[0].upper()}{self.reason[1:]}")
        return text + (f" {self.conflict}" if self.conflict else "")


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), nd)


def build_verdict(facts: ClipFacts, windows: list[Window], scorer: WindowScorer, model: ClipModel,
                  calibration: Calibration, combiner: EvidenceCombiner | None,
                  rule: SegmentRule = SegmentRule(), audio: np.ndarray | None = None) -> ClipVerdict:
    """The verdict of a clip from its windows (in time order, results complete) and the facts about it. ``audio``:
    the recording's aligned audio when it lasts at most :data:`~.score.RECORDING_READ_S` (the clip's voice reading
    is then the voice reader on the stretch its judged windows span, else the mean of their readings).
    ``combiner``: the evidence combiner (None: the embedding's posterior is used alone)."""
    cal = calibration
    scored = [w for w in windows if w.status == "scored"]
    sim = p = p_emb = p_read = None
    face_reading = voice_reading = None
    atypical_reason = None
    if scored:
        n = len(scored)
        sims = np.concatenate(scorer.similarities)[:n]
        sim = float(np.mean(sims))
        p_emb = float(model.posterior_abnormal(np.array([sim]))[0])
        face_reading, voice_reading = _pool([w.face for w in scored]), _pool([w.voice for w in scored])
        whole = (scorer.recording_reading(audio) if audio is not None
                 and facts.duration_s <= RECORDING_READ_S + 1e-6 else None)
        if whole is not None:
            if not whole.note or "segments" in whole.note:  # a note otherwise: too little speech to read
                voice_reading = whole
        ps, pr = combine_evidence(combiner, np.array([sim]), np.array([p_emb]), face_reading.valence_array()[None],
                                  voice_reading.valence_array()[None])
        p, p_read = float(ps[0]), (None if pr is None else float(pr[0]))
        odd = [m for m, flags in (("face", scorer.face_atypical), ("voice", scorer.voice_atypical))
               if np.concatenate(flags)[:n].mean() > ATYPICAL_SHARE]
        if odd:
            pct = 100 * (1 - model.gate.contamination)
            atypical_reason = (f"the {' and the '.join(odd)} {'is' if len(odd) == 1 else 'are'} unlike anything "
                               f"the model saw in training (in most windows the embedding is farther from the "
                               f"training data than {pct:g} % of validation clips); the model's answer would not "
                               f"be trustworthy.")
    reason = _undetermined_reason(facts, scored) or atypical_reason
    if reason is None and face_reading.uncertain and voice_reading.uncertain:
        reason = (f"both readers are uncertain: the face reads {_says(face_reading)} and the voice reads "
                  f"{_says(voice_reading)}; neither is sure enough of a valence to compare them.")
    conflict = grade = None
    if reason:
        verdict = "undetermined"
    else:
        verdict = "inconsistent" if p >= 0.5 else "consistent"
        grade = strength(p)
        reason = _explain(verdict, face_reading, voice_reading, scored, sim, p_emb)
        pair = None if combiner is None else combiner.pair_record(face_reading.top_valence, voice_reading.top_valence)
        conflict = _conflict(verdict, face_reading, voice_reading, p_emb, p_read, pair)
    segments = segments_of(windows, facts.duration_s, rule)
    return ClipVerdict(
        file=facts.name, voice_file=facts.voice_name, verdict=verdict, reason=reason, p_inconsistent=p,
        similarity=sim, threshold=0.5, face=SideSummary.of(face_reading), voice=SideSummary.of(voice_reading),
        timeline=windows, duration_s=facts.duration_s, face_fraction=facts.face_fraction, speech_s=facts.speech_s,
        geometry=facts.geometry, notes=facts.notes + cal.notes, calibrated=cal.active,
        checkpoint=model.path.name if model.path else "clip model", strength=grade, p_embedding=p_emb,
        p_readings=p_read, conflict=conflict, rule=RULE if combiner is not None else UNCOMBINED_RULE, segments=segments,
        session=summarise(segments, windows, facts.duration_s), partial=facts.partial,
        thumbnails=facts.thumbnails, envelope=facts.envelope, geometry_series=facts.geometry_series)


_COVERED = "A hand or hair over the face, a face turned away or in deep shadow stop them being read."


def _undetermined_reason(facts: ClipFacts, scored: list[Window]) -> str | None:
    seen = facts.face_fraction if facts.face_seen_fraction is None else facts.face_seen_fraction
    unreadable = facts.face_fraction < seq.MIN_FACE_FRACTION <= seen  # seen, but read neither by mesh nor points
    if facts.still and unreadable:
        return (f"the face in the photo could not be read: a face was found but not its features. {_COVERED} "
                "Use a photo of the face from the front, uncovered and well lit.")
    if facts.still and facts.face_fraction < seq.MIN_FACE_FRACTION:
        return ("no face was found in the photo. Use a photo of the face from the front, well lit, filling a "
                "good part of the picture.")
    if unreadable:
        return (f"the face could not be read in most frames: a face was seen in {seen:.0%} of the sampled frames "
                f"but its features were read in only {facts.face_fraction:.0%} (at least "
                f"{seq.MIN_FACE_FRACTION:.0%} are needed). {_COVERED} Film the face from the front, uncovered and "
                f"well lit.")
    if facts.face_fraction < seq.MIN_FACE_FRACTION:
        return (f"no face in most frames: a face was found in {facts.face_fraction:.0%} of the sampled frames "
                f"(at least {seq.MIN_FACE_FRACTION:.0%} are needed). Film the face from the front, well lit, "
                f"filling a good part of the picture.")
    if facts.speech_s < seq.MIN_CLIP_SPEECH_S:
        return (f"no speech: {facts.speech_s:.1f} s of voiced speech was found (at least {seq.MIN_CLIP_SPEECH_S} s "
                f"is needed); silence and noise are not judged.")
    if not scored:
        return "no stretch of the clip has both a visible face and speech at the same time."
    return None


def _says(r: Reading) -> str:
    return f"{r.top_emotion} ({r.top_valence} {r.confidence:.2f})"


def _pool(readings: list[Reading]) -> Reading:
    """The mean of several readings of one side (each window weighs the same)."""
    first = readings[0]

    def mean(get: Any) -> np.ndarray:
        return np.mean([list(get(r).values()) for r in readings], axis=0)

    arousal = mean(lambda r: r.arousal) if first.arousal is not None else None
    return Reading.from_arrays(first.modality, tuple(first.emotions), mean(lambda r: r.emotions),
                               mean(lambda r: r.valence), arousal, sum(r.seconds for r in readings))


def _explain(verdict: str, face: Reading, voice: Reading, scored: list[Window], similarity: float,
             p_embedding: float) -> str:
    """The one-line reason in plain words, e.g. "the face reads happy (positive 0.82) while the voice reads sad
    (negative 0.71); their valences differ in 4 of 5 windows; face-voice similarity 0.12"."""
    differ = sum(w.face_valence != w.voice_valence for w in scored)
    joint = "while" if face.top_valence != voice.top_valence else "and"
    count = (f"their valences differ in {differ} of {len(scored)} windows" if verdict == "inconsistent" else
             f"their valences match in {len(scored) - differ} of {len(scored)} windows")
    return (f"the face reads {_says(face)} {joint} the voice reads {_says(voice)}; {count}; the face and voice "
            f"embeddings have similarity {similarity:.2f} (alone they give P(inconsistent) {p_embedding:.2f}).")


PAIR_RECORD_MIN = 20
"""A pair's record of validation clips is quoted only when it holds at least this many clips."""


def _conflict(verdict: str, face: Reading, voice: Reading, p_embedding: float, p_readings: float | None,
              pair: tuple[int, int] | None = None) -> str | None:
    """The sentence a verdict carries when its sources disagree, or when it goes against the valences it prints.
    ``pair``: (clips, inconsistent clips) among the combiner's validation clips that printed the same two valences."""
    same = face.top_valence == voice.top_valence
    if p_readings is not None and sources_disagree(p_embedding, p_readings):
        return (f"The embedding and the readings disagree: the embedding alone says "
                f"{'inconsistent' if p_embedding >= 0.5 else 'consistent'} ({p_embedding:.2f}), the readings alone "
                f"{'inconsistent' if p_readings >= 0.5 else 'consistent'} ({p_readings:.2f}); the verdict weighs "
                f"both, so treat it with care.")
    if (verdict == "consistent" and not same) or (verdict == "inconsistent" and same):
        readings_agree = p_readings is not None and (p_readings >= 0.5) == (verdict == "inconsistent")
        n, k = pair or (0, 0)
        share = k if verdict == "inconsistent" else n - k
        if readings_agree and n >= PAIR_RECORD_MIN and 2 * share > n:
            why = (f"the readers often misread this pair: of {n} validation clips whose face read {face.top_valence} "
                   f"and voice read {voice.top_valence}, {share} ({share / n:.0%}) were in fact {verdict}")
        elif readings_agree:
            why = "the weights fitted on validation clips for this pair of readings lean that way"
        elif min(face.confidence, voice.confidence) < 0.6:
            why = "the readings are unsure"
        else:
            why = "the embedding outweighs them"
        alone = f", the readings alone {p_readings:.2f}" if p_readings is not None else ""
        return (f"The verdict goes against the printed readings ({face.top_valence} face, {voice.top_valence} "
                f"voice) because {why}: the embedding alone gives {p_embedding:.2f}{alone}.")
    return None


# ------------------------------------------------------------------------------------------------ the scorer
class ClipScorer:
    """Loads the clip model, both readers, the combiner and mediapipe once; :meth:`score` judges one recording
    (thread-safe: one at a time)."""

    def __init__(self, checkpoint: str | Path | None = None, expression: str | Path | None = None,
                 limits: ClipLimits | None = None, voice_reader: str | Path | None = None,
                 combiner: str | Path | None = None) -> None:
        from crossemo_core.readers.face import (DEFAULT_EXPRESSION, DEFAULT_SMALL_EXPRESSION, DEFAULT_SMALL_STACKER,
                                                DEFAULT_STACKER, FaceReader)

        self.model = ClipModel.load(checkpoint, expression)
        self.limits = replace(limits or ClipLimits(), fps=self.model.face_fps)  # the rate the model was trained on
        self.extractor = VoiceFeatureExtractor()
        voice_path = Path(voice_reader or DEFAULT_VOICE_READER)
        self.voice_reader = VoiceReader.load(voice_path)
        self.face_reader = FaceReader.load(with_landmarker=False)  # reads the crops the face tracker already cut
        self.models = {"clip": file_sha256(self.model.path) if self.model.path else "",
                       "voice_reader": file_sha256(voice_path), "face_reader": file_sha256(DEFAULT_STACKER),
                       "face_expression": file_sha256(DEFAULT_EXPRESSION),
                       "face_small_reader": file_sha256(DEFAULT_SMALL_STACKER),
                       "face_small_expression": file_sha256(DEFAULT_SMALL_EXPRESSION)}
        """sha256 of every model whose outputs the verdict combines (the combiner is pinned to them)."""
        combiner_path = Path(combiner or DEFAULT_COMBINER)
        self.combiner = (EvidenceCombiner.load(combiner_path, self.models)
                         if combiner is not None or (checkpoint is None and combiner_path.is_file()) else None)
        self.segment_rule = SegmentRule()
        self._faces = None
        self._lock = threading.Lock()

    @property
    def faces(self):  # noqa: ANN201 - FaceAnalyzer, created on first use (mediapipe takes ~3 s to import)
        if self._faces is None:
            from crossemo_core.clip.face import FaceAnalyzer
            self._faces = FaceAnalyzer()
        return self._faces

    def close(self) -> None:
        if self._faces is not None:
            self._faces.close()
            self._faces = None

    # -------------------------------------------------------------------------------------------- judging
    def score(self, source: Source, voice: Source | None = None,
              baseline: Source | ClipAnalysis | Calibration | None = None, *, progress: Any = None,
              should_stop: Callable[[], bool] | None = None, chunk_s: float | None = None,
              whole_s: float | None = None, resume: Any = (), on_windows: Any = None) -> ClipVerdict:
        """Judge one recording of any length, streamed in bounded memory (:mod:`.session`; ``progress(done_s,
        total_s, eta_s)``, ``should_stop()``; Ctrl-C raises :class:`~.session.AnalysisInterrupted` with the verdict
        of what was analysed; ``on_windows`` / ``resume``: finished windows handed out as they come, and given back
        to continue an interrupted analysis)."""
        from crossemo_core.clip.session import DEFAULT_CHUNK_S, DEFAULT_WHOLE_S, StreamAnalysis

        cal = baseline if isinstance(baseline, Calibration) or baseline is None else self.calibration(baseline)
        with self._lock:
            verdict = StreamAnalysis(self, source, voice, cal, chunk_s=chunk_s or DEFAULT_CHUNK_S,
                                     whole_s=DEFAULT_WHOLE_S if whole_s is None else whole_s, progress=progress,
                                     should_stop=should_stop, resume=resume, on_windows=on_windows).run()
        verdict.sha256 = source_sha256(source)
        verdict.voice_sha256 = None if voice is None else source_sha256(voice)
        return verdict

    def judge(self, a: ClipAnalysis, cal: Calibration | None = None) -> ClipVerdict:
        """Judge a clip read whole (:meth:`analyse`)."""
        cal = cal or Calibration()
        builder = WindowBuilder(a.fps)
        builder.add_faces(a.face_readings(), float("inf"))
        if a.voice is not None:
            builder.add_voice(a.voice, 0)
        else:
            builder.no_voice()
        if a.audio is not None:
            builder.add_audio(a.audio, 0)
        scorer = self.window_scorer(cal, builder)
        scorer.add(builder.finish(a.duration_s))
        windows = scorer.take(final=True)
        log = FaceLog()
        log.add(a.track.frames)
        thumbs = ThumbPicker()
        for f in a.track.frames:
            thumbs.add(f.t, f.thumb)
        end = max(float(a.track.times.max()) if a.track.frames else 0.0, windows[-1].end if windows else 0.0)
        facts = ClipFacts(name=a.name, voice_name=a.voice_name, duration_s=a.duration_s,
                          face_fraction=a.face_fraction, speech_s=a.speech_s, still=a.still, notes=list(a.notes),
                          geometry=log.geometry_summary(), geometry_series=log.geometry_series(),
                          thumbnails=thumbs.thumbnails(end), envelope=a.envelope,
                          face_seen_fraction=log.seen_fraction(a.duration_s, a.fps))
        verdict = self.verdict(facts, windows, scorer, cal, a.audio)
        verdict.sha256, verdict.voice_sha256 = a.sha256, a.voice_sha256
        return verdict

    def window_scorer(self, cal: Calibration | None = None, builder: WindowBuilder | None = None,
                      threaded_reads: bool = False) -> WindowScorer:
        """A :class:`WindowScorer` of this model and readers; ``builder``: the recording's window builder, whose
        voice track lends the recording's voice reading its frames (:meth:`WindowBuilder.raw_frames`)."""
        return WindowScorer(self.model, self.voice_reader, self.combine_evidence, cal, threaded_reads,
                            None if builder is None else builder.raw_frames)

    def verdict(self, facts: ClipFacts, windows: list[Window], scorer: WindowScorer,
                cal: Calibration, audio: np.ndarray | None = None) -> ClipVerdict:
        return build_verdict(facts, windows, scorer, self.model, cal, self.combiner, self.segment_rule, audio)

    def combine_evidence(self, similarity: np.ndarray, p_embedding: np.ndarray, face_valence: np.ndarray,
                         voice_valence: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated P(inconsistent) from both sources, and from the readings alone (None without a combiner:
        the embedding's posterior is then used as it is); the callable a :class:`WindowScorer` is given."""
        return combine_evidence(self.combiner, similarity, p_embedding, face_valence, voice_valence)

    # -------------------------------------------------------------------------------------------- reading whole
    def analyse(self, source: Source, voice: Source | None = None,
                span: tuple[float, float] | None = None) -> ClipAnalysis:
        """Decode a clip (and a separate voice recording) whole and extract face and voice features (``span``:
        only that stretch of the file, e.g. a calm stretch of a session marked as the baseline)."""
        with self._lock:
            analysis = self._analyse(source, voice, span)
        analysis.sha256 = source_sha256(source)
        analysis.voice_sha256 = None if voice is None else source_sha256(voice)
        return analysis

    def _analyse(self, source: Source, voice: Source | None, span: tuple[float, float] | None) -> ClipAnalysis:
        from crossemo_core.clip.reading import read_faces

        faces = self.faces
        faces.reset()
        track = FaceTrack()

        def on_frame(t: float, rgb: np.ndarray) -> None:
            track.frames.append(faces.analyse(t, rgb))

        media = decode_media(source, limits=self.limits, want_audio=voice is None, on_frame=on_frame,
                             need_video=True, need_audio=voice is None, span=span)
        notes = list(media.notes)
        if voice is not None:
            vmedia = decode_media(voice, limits=self.limits, want_video=False, need_audio=True, span=span)
            notes += vmedia.notes
            audio, voice_name = vmedia.audio, vmedia.name
        else:
            audio, voice_name = media.audio, None
        audio_s = 0.0 if audio is None else len(audio) / AUDIO_RATE
        if media.is_image:
            still = faces.analyse(0.0, media.image, still=True)
            fps = self.limits.fps
            n = max(1, int(np.ceil(audio_s * fps)))
            track.frames = [replace(still, t=i / fps) for i in range(n)]
            duration = audio_s
        else:
            duration = audio_s if audio is not None else media.duration_s
            if voice is not None and abs(media.duration_s - audio_s) > 1.0:
                notes.append(f"the video ({media.duration_s:.1f} s) and the voice ({audio_s:.1f} s) differ in length; "
                             f"they were aligned at their start and only {duration:.1f} s of voice was judged.")
        log = FaceLog()
        log.add(track.frames)
        notes += log.notes(still=media.is_image)
        voice_track = None
        if audio is not None and len(audio) >= 0.1 * AUDIO_RATE and float(np.max(np.abs(audio))) >= SILENCE_PEAK:
            voice_track = seq.voice_track(audio, AUDIO_RATE, self.extractor)
        env = envelope(audio) if audio is not None and len(audio) else np.zeros(0, np.float32)
        if media.is_image and track.frames and track.frames[0].crop is not None:  # one photo: one crop, repeated
            from crossemo_core.clip.reading import read_still

            readings = read_still(track.frames[0], len(track.frames), self.limits.fps, self.model.expression,
                                  self.face_reader)
        else:
            readings = read_faces(track.frames, self.model.expression, self.face_reader)
        return ClipAnalysis(name=media.name, voice_name=voice_name, duration_s=duration, track=track,
                            face_logits=readings.logits, voice=voice_track, envelope=env, still=media.is_image,
                            notes=notes, face_emotions=readings.emotions, audio=audio, fps=self.limits.fps)

    def calibration(self, baseline: Source | ClipAnalysis, span: tuple[float, float] | None = None) -> Calibration:
        """A person's baseline from a calm, neutral clip of them (a file, or an analysis already made; ``span``: a
        calm stretch of a longer recording, e.g. of the session being judged)."""
        a = baseline if isinstance(baseline, ClipAnalysis) else self.analyse(baseline, span=span)
        if span is not None and a.duration_s < MIN_CALM_S:
            raise DataError(f"the calm stretch {fmt_clock(span[0])}-{fmt_clock(span[1])} holds only "
                            f"{a.duration_s:.1f} s of {a.name} (at least {MIN_CALM_S:g} s is needed): it lies beyond "
                            f"the recording's end, or the recording could not be read there.")
        cal = Calibration.from_rows(self.model.population, a.face_rows(), a.voice_rows(), name=a.name)
        if a.audio is not None and a.speech_s >= seq.MIN_CLIP_SPEECH_S:
            cal.voice_reader = self.voice_reader.baseline_stats(a.audio)
        return cal


def score_clip(source: Source, voice: Source | None = None, checkpoint: str | Path | None = None) -> ClipVerdict:
    """One-off convenience: load the model, judge one clip, release mediapipe."""
    scorer = ClipScorer(checkpoint)
    try:
        return scorer.score(source, voice)
    finally:
        scorer.close()
