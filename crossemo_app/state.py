"""The app's session state in one typed place: :class:`AppState`, kept under ``st.session_state["app"]``.

Everything the pages share lives in its fields (the data in view, the model in use, background jobs, cached views,
the Clip and Session pages' results); pages read and change it through :func:`app` and the accessors below, never
through string keys. Only widget values stay as ``st.session_state`` keys, because Streamlit widgets need them:
``p_*`` holds a value kept across pages (:func:`widget`), ``w_*`` the widget's own key (and the browser recorder
keeps its live take under its widget's key, ``crossemo_app/recorder.py``). The Train page reads its ``p_*`` values
as one typed :class:`~crossemo_app.train_form.TrainForm`.

A finished run never replaces the model in use by itself: the Train page shows its comparison card
(:func:`crossemo_core.runs.compare_models`) and the person chooses (:func:`use_run_model`, :func:`keep_model_in_use`).
Every finished run is kept in the workspace folder (:func:`run_store`) and listed there after a reload or a restart.

A reload starts a new Streamlit session; the state (data, model, training job, widget values, cached views; not a
load in progress or its message, not the Clip and Session pages' results, whose upload is gone after a reload) is
remembered per :attr:`AppState.token` in this server process (:func:`remember`, at most :data:`MAX_REMEMBERED`
tabs, each for :data:`REMEMBER_SECONDS` after its last run) and given back to a session that opens with the same
``?s=`` in its URL.

Widget values read across pages: ``p_normalise`` (Data: "none", "neutral" or "all"), the per-person normalisation
applied to the loaded data; ``p_split_seed`` / ``p_split_rate`` (Data) define the split and protocol;
``p_threshold`` (Similarity) is the decision threshold on the posterior of inconsistency used by the Similarity and
Verdicts pages.
"""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import streamlit as st

from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector, ScoredPairs, schema_mismatch
from crossemo_core.paths import CHECKPOINTS, REPO
from crossemo_core.runs import RunStore, StoredRun
from crossemo_core.settings import workspace_root
from crossemo_core.workspace import EvaluationParts, evaluation_parts, initial_detector

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from crossemo_app.clip_view import JudgedClip
    from crossemo_core.clip.verdict import ClipVerdict
    from crossemo_core.session import BackgroundJob, TrainingJob

BUNDLED_CHECKPOINT = CHECKPOINTS / "demo.pt"
STATE_KEY = "app"
"""The ``st.session_state`` key that holds the session's :class:`AppState`."""

NORMALISE = "p_normalise"
NORMALISE_LABELS = {"none": "none (features as loaded)",
                    "neutral": "each person's neutral clips (a calm baseline recording)",
                    "all": "all of each person's clips"}
SPLIT_SEED, SPLIT_RATE, THRESHOLD = "p_split_seed", "p_split_rate", "p_threshold"
PERSIST_PREFIX, WIDGET_PREFIX = "p_", "w_"
WIDGET_DEFAULTS: dict[str, Any] = {NORMALISE: "none", SPLIT_SEED: 0, SPLIT_RATE: 0.5, THRESHOLD: 0.5}
"""Widget values that pages read before the widget that sets them is drawn."""


@dataclass
class LoadedData:
    """The data in view and where it came from. ``dataset`` is ``loaded`` itself or its per-person normalised copy
    (:func:`apply_normalisation`); ``loaded_source`` / ``loaded_report`` describe ``loaded``."""

    dataset: PairDataset
    kind: str
    """a key of ``crossemo_core.workspace.DATA_KINDS``"""
    source: str
    """one line saying where it came from"""
    report: list[str]
    """the loader's notes"""
    loaded: PairDataset
    loaded_source: str
    loaded_report: list[str]


@dataclass
class ModelInUse:
    """The detector the pages use (trained here or loaded) and one line saying where it came from."""

    detector: Detector
    source: str


@dataclass
class ClipPage:
    """The Clip verdict page's results (not remembered for a reload)."""

    result: JudgedClip | None = None
    """the verdict shown, with the identity of the inputs it was made from"""
    batch: tuple[tuple, list[dict[str, Any]]] | None = None
    """(identity of the files, their verdict rows) of the "Many clips at once" table"""
    take: str | None = None
    """the name of the recorded take the verdict shown belongs to"""


@dataclass
class SessionPage:
    """The Session page's analysis (not remembered for a reload)."""

    job: BackgroundJob | None = None
    result: ClipVerdict | None = None
    media: bytes | str | None = None
    """what the page's player plays: the recording's bytes or its path"""
    figure: tuple[ClipVerdict, go.Figure] | None = None
    """the timeline drawn for ``result`` (drawn once per result)"""
    baseline_span: tuple[float, float] | None = None
    """the calm stretch (s) the analysis was calibrated on"""
    input: tuple | None = None
    """identity of the recording analysed (``crossemo_app.clip_view.input_identity``)"""


@dataclass
class AppState:
    """One browser tab's state (see the module docstring)."""

    token: str = ""
    """this session's key in the URL (``?s=``): a reload of the page gets this state back"""
    data: LoadedData | None = None
    data_id: int = 0
    """increases with every load or normalisation (part of every cache key)"""
    model: ModelInUse | None = None
    set_aside: ModelInUse | None = None
    """the last model in use that a load of data it does not fit set aside; in use again when data it fits is loaded
    and the model in use (if any) does not fit them"""
    run_id: int = 0
    """increases with every new model in use (part of every cache key)"""
    load_job: BackgroundJob | None = None
    """the background loading job, while one runs"""
    load_message: tuple[str, str] | None = None
    """(kind, text) of the last load's outcome, shown once on the Data page"""
    demo_tried: bool = False
    train_job: TrainingJob | None = None
    """this session's training run (kept after it ends)"""
    seen_job: int | None = None
    """id() of the training job whose end this session has already announced"""
    run_decision: tuple[int, str] | None = None
    """(id() of a training job, "used" or "kept"): what the person chose on its comparison card"""
    cache: dict[tuple, Any] = field(default_factory=dict)
    """computed views keyed by (what, ..., data_id, run_id) (:func:`cached`)"""
    jobs: dict[tuple, BackgroundJob] = field(default_factory=dict)
    """background computations (projections) keyed like ``cache``"""
    widget_versions: dict[str, int] = field(default_factory=dict)
    """how often code has set each ``p_*`` value (part of its widget's key, :func:`set_value`)"""
    train_defaults_for: str | None = None
    """the data kind whose settings fill the Train page's widgets (a load of another kind fills them again)"""
    threshold_rule_error: str | None = None
    """why the Similarity page could not start the threshold from the rule chosen (shown once)"""
    clip: ClipPage = field(default_factory=ClipPage)
    session: SessionPage = field(default_factory=SessionPage)
    just_restored: bool = False
    """True on the first run of a session that took back a reloaded page's state"""

    def for_reload(self) -> AppState:
        """A copy to give back after a reload: without a load in progress, its message, a pending notice and the
        pages' results; its caches and widget versions are copies (two tabs opened on one ``?s=`` URL count their
        own ``data_id`` / ``run_id`` and must not share cache entries keyed by them)."""
        return replace(self, load_job=None, load_message=None, threshold_rule_error=None, clip=ClipPage(),
                       session=SessionPage(), just_restored=False, cache=dict(self.cache), jobs=dict(self.jobs),
                       widget_versions=dict(self.widget_versions))


MAX_REMEMBERED = 16
REMEMBER_SECONDS = 3600.0
"""A tab's state is kept for a reload for this long after its last run (and for at most MAX_REMEMBERED tabs): it
holds the tab's data and models, so a closed tab's memory is given back within the hour."""
_REMEMBERED: "OrderedDict[str, tuple[float, AppState, dict[str, Any]]]" = OrderedDict()
"""token -> (last run, the tab's state, its ``p_*`` widget values)"""
_REMEMBERED_LOCK = threading.Lock()


def app() -> AppState:
    """This session's state (made by :func:`init`, which app.py calls first on every run)."""
    return st.session_state[STATE_KEY]


def init() -> None:
    """Create the session's state on its first run, taking back the state remembered for the ``?s=`` token in the
    URL, if any (a reload); then fill in missing widget values."""
    if STATE_KEY not in st.session_state:
        _restore_or_start()
    for key, value in WIDGET_DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value


def _restore_or_start() -> None:
    token = st.query_params.get("s")
    with _REMEMBERED_LOCK:
        _forget_old()
        entry = _REMEMBERED.get(token) if token else None
    if entry is not None:
        _, saved, values = entry
        for key, value in values.items():
            st.session_state[key] = value
        st.session_state[STATE_KEY] = replace(saved.for_reload(), just_restored=True)
    else:
        st.session_state[STATE_KEY] = AppState(token=secrets.token_urlsafe(12))


def remember() -> None:
    """Keep this session's state and widget values for a reload (called last on every run) and put its token in the
    URL."""
    s = app()
    values = {key: st.session_state[key] for key in list(st.session_state.keys())
              if isinstance(key, str) and key.startswith(PERSIST_PREFIX)}
    with _REMEMBERED_LOCK:
        _REMEMBERED[s.token] = (time.monotonic(), s.for_reload(), values)
        _REMEMBERED.move_to_end(s.token)
        _forget_old()
    if st.query_params.get("s") != s.token:
        st.query_params["s"] = s.token


def _forget_old() -> None:
    """Drop remembered tabs beyond :data:`MAX_REMEMBERED` and those idle for :data:`REMEMBER_SECONDS` (lock held)."""
    now = time.monotonic()
    while _REMEMBERED and (len(_REMEMBERED) > MAX_REMEMBERED
                           or now - next(iter(_REMEMBERED.values()))[0] > REMEMBER_SECONDS):
        _REMEMBERED.popitem(last=False)


def restored() -> bool:
    """True once, on the first run of a session that took back a reloaded page's state."""
    s = app()
    was, s.just_restored = s.just_restored, False
    return was


def widget_key(key: str) -> str:
    """The Streamlit key of the widget that shows ``key`` now (it changes when code sets the value)."""
    version = app().widget_versions.get(key, 0)
    return f"{WIDGET_PREFIX}{key}" if version == 0 else f"{WIDGET_PREFIX}{key}~{version}"


def widget(draw: Callable[..., Any], label: str, key: str, *args: Any,
           on_change: Callable[[], None] | None = None, **kwargs: Any) -> Any:
    """Draw a widget whose value lives under ``key`` in the session state, so it survives page switches.

    Streamlit drops a widget's own state when its page is not shown, and values written into a widget's state from
    code race with the browser's own copy. So the value lives under ``key`` (never a widget key), the widget is
    created with that value as its default, and :func:`set_value` gives the widget a new key, i.e. a fresh widget
    with the new default. ``key`` must hold a value before the first call, except for text fields (default "").
    """
    wkey = widget_key(key)
    name = getattr(draw, "__name__", "")
    stored = st.session_state.get(key)
    if name in ("radio", "selectbox"):
        options = list(kwargs["options"] if "options" in kwargs else args[0])
        kwargs["index"] = options.index(stored) if stored in options else 0
    elif name == "multiselect":
        options = list(kwargs["options"] if "options" in kwargs else args[0])
        kwargs["default"] = [v for v in (stored or []) if v in options]
    elif stored is not None:
        kwargs["value"] = stored

    def sync() -> None:
        st.session_state[key] = st.session_state[wkey]
        if on_change is not None:
            on_change()

    value = draw(label, *args, key=wkey, on_change=sync, **kwargs)
    st.session_state[key] = value
    return value


def set_value(key: str, value: Any) -> None:
    """Change a :func:`widget`'s value from code (anywhere: the widget is re-created with the new value)."""
    if st.session_state.get(key) == value and type(st.session_state.get(key)) is type(value):
        return
    st.session_state[key] = value
    versions = app().widget_versions
    versions[key] = versions.get(key, 0) + 1


# ------------------------------------------------------------------------------------------------ dataset
def dataset() -> PairDataset | None:
    """The dataset in view (None until one is loaded)."""
    data = app().data
    return None if data is None else data.dataset


def data_kind() -> str | None:
    """The kind of the data in view (a key of ``crossemo_core.workspace.DATA_KINDS``), None before a load."""
    data = app().data
    return None if data is None else data.kind


def set_dataset(data: PairDataset, kind: str, source: str, report: list[str], *,
                normalised: bool = False) -> str | None:
    """Make ``data`` current; a detector that does not fit it is set aside, and the one set aside before comes back
    when it fits ``data`` and the one in use does not. Returns a note or None. A new load
    (``normalised`` False) is kept as loaded and resets the per-person normalisation; ``normalised``: ``data`` is a
    view of the loaded data (:func:`apply_normalisation`)."""
    s = app()
    if normalised and s.data is not None:
        loaded, loaded_source, loaded_report = s.data.loaded, s.data.loaded_source, s.data.loaded_report
    else:
        set_value(NORMALISE, "none")
        loaded, loaded_source, loaded_report = data, source, list(report)
    s.data = LoadedData(data, kind, source, list(report), loaded, loaded_source, loaded_report)
    s.data_id += 1
    s.cache, s.jobs = {}, {}
    current, earlier = s.model, s.set_aside
    problems = [] if current is None else schema_mismatch(current.detector.schema, data)
    if current is not None and not problems:
        return None
    if earlier is not None and not schema_mismatch(earlier.detector.schema, data):
        s.set_aside = current
        set_detector(earlier.detector, earlier.source)
        return (f"The model set aside earlier ({earlier.source}) fits these features and is in use again"
                + ("; the one in use before does not fit them and was set aside." if current else "."))
    if current is not None:
        s.set_aside, s.model = current, None
        return (f"The model in use does not fit these features ({'; '.join(problems)}) and was set aside (it is used "
                f"again when data it fits is loaded); train one on the Train page or use a kept run that fits.")
    return None


def apply_normalisation() -> str | None:
    """Make the current dataset the loaded one normalised per person as ``p_normalise`` says (statistics of each
    speaker's neutral clips or of all its clips, :func:`crossemo_core.data.calibration.calibrate_speakers`), or the
    loaded one itself for "none". A model trained on other features is set aside (its schema records them)."""
    from crossemo_core.data.calibration import calibrate_speakers

    current = app().data
    if current is None:
        return None
    raw, source, report = current.loaded, current.loaded_source, current.loaded_report
    reference = st.session_state.get(NORMALISE, "none")
    if reference == "none":
        return set_dataset(raw, current.kind, source, report, normalised=True)
    data, done = calibrate_speakers(raw, reference)
    return set_dataset(data, current.kind, f"{source} · per-person normalised on {reference} clips",
                       [*report, str(done)], normalised=True)


def loaded_dataset() -> PairDataset | None:
    """The dataset as loaded, before any per-person normalisation."""
    data = app().data
    return None if data is None else data.loaded


def start_load(kind: str, source: str, load: Callable[..., PairDataset]) -> None:
    """Load a dataset in the background: ``load(report, progress)`` runs in a thread (see
    :func:`adopt_finished_load`)."""
    from crossemo_core.session import BackgroundJob

    def work(job: BackgroundJob) -> tuple[PairDataset, list[str]]:
        from crossemo_core.workspace import check_usable

        report: list[str] = []
        data = check_usable(load(report, job.report_progress))  # refused data leaves the data in use as it is
        return data, report

    job = BackgroundJob(work, name=f"load-{kind}")
    job.kind, job.source = kind, source  # type: ignore[attr-defined]
    s = app()
    s.load_job = job.start()
    s.load_message = None


def load_demo_once() -> None:
    """On a session's first run, load the bundled demo so every page has data at once (a failure is left for the
    Data page to report)."""
    s = app()
    if s.demo_tried or s.data is not None or s.load_job is not None:
        return
    s.demo_tried = True
    from crossemo_core.errors import CrossemoError
    from crossemo_core.workspace import load_dataset

    try:
        set_dataset(load_dataset("demo"), "demo", "bundled with crossemo (synthetic)", [])
    except CrossemoError:
        return
    if BUNDLED_CHECKPOINT.is_file() and s.model is None:
        try:
            load_bundled_checkpoint()
        except CrossemoError:
            pass


def load_bundled_checkpoint() -> None:
    """Make the bundled demo checkpoint the current model (it must fit the current dataset)."""
    det = Detector.load(BUNDLED_CHECKPOINT)
    data = dataset()
    if data is not None:
        det.check_compatible(data)
    preset = det.metadata.get("preset")
    set_detector(det, f"bundled demo checkpoint {BUNDLED_CHECKPOINT.relative_to(REPO)}"
                      + (f" ({preset} preset{' [ours]' if preset == 'fast' else ''})" if preset else ""))


def adopt_finished_load() -> bool:
    """When the loading job has ended, make its dataset current (or keep its error for the Data page)."""
    s = app()
    job = s.load_job
    if job is None or not job.finished:
        return False
    s.load_job = None
    if job.state == "failed" or job.result is None:
        s.load_message = ("error", job.error or "loading stopped")
        return False
    data, report = job.result
    note = set_dataset(data, job.kind, job.source, report)  # type: ignore[attr-defined]
    s.load_message = (note_level(note),
                      f"Loaded {data.display_name}: {len(data)} pairs." + (f" {note}" if note else ""))
    return True


def note_level(note: str | None) -> str:
    """How to show a :func:`set_dataset` note: ``"warning"`` when it set the model in use aside and none is in use
    now, else ``"success"``."""
    s = app()
    return "warning" if note and s.model is None and s.set_aside is not None else "success"


# ------------------------------------------------------------------------------------------------ detector
def detector() -> Detector | None:
    """The model in use (None until one is trained or loaded)."""
    model = app().model
    return None if model is None else model.detector


def detector_source() -> str:
    """One line saying where the model in use came from ("none yet" without one)."""
    model = app().model
    return "none yet" if model is None else model.source


def set_detector(det: Detector, source: str) -> None:
    s = app()
    s.model = ModelInUse(det, source)
    s.run_id += 1
    set_value(THRESHOLD, float(det.threshold))
    s.jobs = {}


def training_job() -> TrainingJob | None:
    """This session's training run (running, or ended and kept), None before the first."""
    return app().train_job


def training_running() -> bool:
    job = app().train_job
    return job is not None and not job.finished


def training_just_finished() -> bool:
    """True once, on the first run after this session's training job ended (to announce it). Nothing is replaced:
    the person chooses on the Train page's comparison card."""
    s = app()
    job = s.train_job
    if job is None or not job.finished or s.seen_job == id(job):
        return False
    s.seen_job = id(job)
    return True


def start_training(job: TrainingJob) -> None:
    """Make ``job`` this session's training run and start it (a new run clears the previous run's decision)."""
    s = app()
    s.train_job = job.start()
    s.run_decision = None


def run_decision() -> str | None:
    """"used" or "kept" when the person has decided about this session's finished run, else None."""
    s = app()
    decision = s.run_decision
    return decision[1] if s.train_job is not None and decision is not None and decision[0] == id(s.train_job) \
        else None


def use_run_model() -> None:
    """Make this session's finished (or stopped) run's model the model in use: the person asked for it."""
    s = app()
    job = s.train_job
    outcome = None if job is None else job.outcome
    if outcome is None or outcome.training is None:
        return
    result = outcome.training
    data = dataset()
    if data is not None and schema_mismatch(result.detector.schema, data):
        raise ValueError("this run was trained on data of another shape than the data loaded now; load that data "
                         "again to use it.")
    how = ("stopped by you" if result.interrupted else "stopped by early stopping" if result.stopped_early
           else "finished")
    where = f", kept as run {outcome.stored.run_id}" if outcome.stored is not None else ""
    set_detector(result.detector, f"trained in this session ({len(result.history)} epoch(s), {how}; best epoch "
                                  f"{result.best_epoch}, {result.device}{where})")
    s.run_decision = (id(job), "used")


def keep_model_in_use() -> None:
    """Record that the person keeps the model in use instead of this session's finished run."""
    s = app()
    if s.train_job is not None:
        s.run_decision = (id(s.train_job), "kept")


# ------------------------------------------------------------------------------------------------ workspace
def run_store() -> RunStore:
    """The workspace folder where finished runs are kept (``$CROSSEMO_WORKSPACE``, default ``workspace/``)."""
    return RunStore(workspace_root())


def use_stored_run(run: StoredRun) -> None:
    """Make a kept run's model the model in use (it must fit the loaded data)."""
    det = run.detector()
    data = dataset()
    if data is not None:
        det.check_compatible(data)
    set_detector(det, f"run {run.run_id} from the workspace ({run.method}, {run.data_name})")


# ------------------------------------------------------------------------------------------------ caches
def cached(key: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per key for the current dataset and detector (keys include data_id and run_id)."""
    s = app()
    full = (*key, s.data_id, s.run_id)
    if full not in s.cache:
        s.cache[full] = compute()
    return s.cache[full]


def parts() -> EvaluationParts | None:
    """The split to train and evaluate on (the detector's own split when it recorded one that fits)."""
    data = dataset()
    if data is None:
        return None
    seed, rate = int(st.session_state[SPLIT_SEED]), float(st.session_state[SPLIT_RATE])
    det = detector()
    return cached(("parts", seed, rate), lambda: evaluation_parts(data, det, seed, rate))


def train_parts() -> EvaluationParts | None:
    """A fresh speaker-disjoint split with the Data page's seed and rate (what a new training run uses)."""
    data = dataset()
    if data is None:
        return None
    seed, rate = int(st.session_state[SPLIT_SEED]), float(st.session_state[SPLIT_RATE])
    return cached(("train_parts", seed, rate), lambda: evaluation_parts(data, None, seed, rate))


def scored(part: str, stage: str = "after") -> tuple[Detector, ScoredPairs]:
    """The detector for ``stage`` ("after" training, or "before": its initial weights) and its scores on ``part``."""
    det = stage_detector(stage)
    data = parts().parts[part]
    return det, cached(("scored", part, stage), lambda: det.score(data))


def stage_detector(stage: str) -> Detector:
    """The current detector ("after") or its initial weights with a Beta mixture fitted on them ("before")."""
    det = detector()
    if stage == "after":
        return det
    p = parts().parts
    return cached(("initial", "fitted"), lambda: initial_detector(det, p["train"], p["valid"]))


def initial_model() -> Detector:
    """The current detector's network with its run's initial weights (no mixture: for embeddings only)."""
    det = detector()
    return cached(("initial", "bare"), lambda: initial_detector(det))


def threshold() -> float:
    return float(st.session_state[THRESHOLD])
