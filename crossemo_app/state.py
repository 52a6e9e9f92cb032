"""The app's shared session state: every key the pages share, in one place, with thin accessors.

Keys (``st.session_state[...]``):

=====================  =================================================================================
``dataset``            the loaded :class:`~crossemo_core.data.container.PairDataset` (None until loaded)
``dataset_loaded``     (dataset, source, report) as loaded, before per-person normalisation (``dataset`` is it or
                       its normalised copy)
``dataset_kind``       its kind (a key of ``crossemo_core.workspace.DATA_KINDS``)
``dataset_source``     one line saying where it came from
``dataset_report``     the loader's notes (list of str)
``data_id``            increases with every load (cache key)
``load_job``           the background loading job, while one runs
``load_message``       (kind, text) of the last load's outcome, shown once on the Data page
``detector``           the current :class:`~crossemo_core.detector.Detector` (trained here or loaded)
``detector_source``    one line saying where it came from (on a session's first run: the bundled demo checkpoint,
                       when it exists, with the bundled demo data)
``run_id``             increases with every new detector (cache key)
``train_job``          the :class:`~crossemo_core.session.TrainingJob` of this session (kept after it ends)
``seen_job``           id() of the training job whose end this session has already announced
``run_decision``       (id() of a training job, "used" or "kept"): what the person chose on its comparison card
``session_token``      this session's key in the URL (``?s=``): a reload of the page gets this state back
``cache``              dict of computed views keyed by (what, data_id, run_id, ...)
``jobs``               dict of background computations (projections) keyed like ``cache``
``p_*``                widget values kept across pages (see :func:`widget`); ``w_*`` the widgets' own keys
``widget_versions``    how often code has set each ``p_*`` value (part of the widget key)
=====================  =================================================================================

A finished run never replaces the model in use by itself: the Train page shows its comparison card
(:func:`crossemo_core.runs.compare_models`) and the person chooses (:func:`use_run_model`, :func:`keep_model_in_use`).
Every finished run is kept in the workspace folder (:func:`run_store`) and listed there after a reload or a restart.

A reload starts a new Streamlit session; the shared keys above (data, model, training job, widget values, cached
views) are remembered per ``session_token`` in this server process (:func:`remember`, at most
:data:`MAX_REMEMBERED` tabs, each for :data:`REMEMBER_SECONDS` after its last run) and given back to a session
that opens with the same ``?s=`` in its URL. Results of an uploaded clip are not remembered: its upload is gone
after a reload.

``p_normalise`` (Data: "none", "neutral" or "all") is the per-person normalisation applied to ``dataset_loaded``.

``p_split_seed`` / ``p_split_rate`` (Home) define the split and protocol; ``p_threshold`` (Similarity) is the decision
threshold on the posterior of inconsistency used by the Similarity and Verdicts pages.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import secrets
import threading
import time
from collections import OrderedDict

import streamlit as st

from crossemo_core.data.container import PairDataset
from crossemo_core.detector import Detector, ScoredPairs, schema_mismatch
from crossemo_core.paths import CHECKPOINTS, REPO
from crossemo_core.runs import RunStore, StoredRun
from crossemo_core.settings import workspace_root
from crossemo_core.workspace import EvaluationParts, evaluation_parts, initial_detector

if TYPE_CHECKING:
    from crossemo_core.session import TrainingJob

BUNDLED_CHECKPOINT = CHECKPOINTS / "demo.pt"

DATASET, DATASET_LOADED, DATASET_KIND, DATASET_SOURCE, DATASET_REPORT, DATA_ID = (
    "dataset", "dataset_loaded", "dataset_kind", "dataset_source", "dataset_report", "data_id")
NORMALISE = "p_normalise"
NORMALISE_LABELS = {"none": "none (features as loaded)",
                    "neutral": "each person's neutral clips (a calm baseline recording)",
                    "all": "all of each person's clips"}
LOAD_JOB, LOAD_MESSAGE = "load_job", "load_message"
DETECTOR, DETECTOR_SOURCE, RUN_ID = "detector", "detector_source", "run_id"
TRAIN_JOB, SEEN_JOB, RUN_DECISION, SESSION_TOKEN = "train_job", "seen_job", "run_decision", "session_token"
CACHE, JOBS = "cache", "jobs"
SPLIT_SEED, SPLIT_RATE, THRESHOLD = "p_split_seed", "p_split_rate", "p_threshold"
PERSIST_PREFIX, WIDGET_PREFIX, VERSIONS = "p_", "w_", "widget_versions"

DEFAULTS: dict[str, Any] = {
    DATASET: None, DATASET_LOADED: None, DATASET_KIND: None, DATASET_SOURCE: "", DATASET_REPORT: [], DATA_ID: 0,
    LOAD_JOB: None, NORMALISE: "none",
    LOAD_MESSAGE: None,
    DETECTOR: None, DETECTOR_SOURCE: "", RUN_ID: 0, TRAIN_JOB: None, SEEN_JOB: None, RUN_DECISION: None,
    SPLIT_SEED: 0, SPLIT_RATE: 0.5, THRESHOLD: 0.5,
}


MAX_REMEMBERED = 16
REMEMBER_SECONDS = 3600.0
"""A tab's state is kept for a reload for this long after its last run (and for at most MAX_REMEMBERED tabs): it
holds the tab's data and models, so a closed tab's memory is given back within the hour."""
_REMEMBERED: "OrderedDict[str, tuple[float, dict[str, Any]]]" = OrderedDict()  # token -> (last run, shared keys)
_REMEMBERED_LOCK = threading.Lock()
_NOT_REMEMBERED = (LOAD_JOB, LOAD_MESSAGE, SESSION_TOKEN)


def init() -> None:
    """Create missing keys with their defaults (called first on every run); on a session's first run, take back
    the state remembered for the ``?s=`` token in the URL, if any (a reload)."""
    if SESSION_TOKEN not in st.session_state:
        _restore_or_start()
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = list(value) if isinstance(value, list) else value
    for key in (CACHE, JOBS):
        if key not in st.session_state:
            st.session_state[key] = {}


def _restore_or_start() -> None:
    token = st.query_params.get("s")
    with _REMEMBERED_LOCK:
        _forget_old()
        entry = _REMEMBERED.get(token) if token else None
    saved = None if entry is None else entry[1]
    if saved is not None:
        for key, value in saved.items():
            st.session_state[key] = value
        st.session_state["restored"] = True
    else:
        token = secrets.token_urlsafe(12)
    st.session_state[SESSION_TOKEN] = token


def _shared_key(key: str) -> bool:
    return (key in DEFAULTS or key in (CACHE, JOBS, VERSIONS, "demo_tried") or key.startswith(PERSIST_PREFIX)) \
        and key not in _NOT_REMEMBERED


def remember() -> None:
    """Keep this session's shared keys for a reload (called last on every run) and put its token in the URL."""
    token = st.session_state.get(SESSION_TOKEN)
    if not token:
        return
    snapshot = {key: st.session_state[key] for key in list(st.session_state.keys()) if _shared_key(key)}
    with _REMEMBERED_LOCK:
        _REMEMBERED[token] = (time.monotonic(), snapshot)
        _REMEMBERED.move_to_end(token)
        _forget_old()
    if st.query_params.get("s") != token:
        st.query_params["s"] = token


def _forget_old() -> None:
    """Drop remembered tabs beyond :data:`MAX_REMEMBERED` and those idle for :data:`REMEMBER_SECONDS` (lock held)."""
    now = time.monotonic()
    while _REMEMBERED and (len(_REMEMBERED) > MAX_REMEMBERED
                           or now - next(iter(_REMEMBERED.values()))[0] > REMEMBER_SECONDS):
        _REMEMBERED.popitem(last=False)


def restored() -> bool:
    """True once, on the first run of a session that took back a reloaded page's state."""
    return bool(st.session_state.pop("restored", False))


def widget_key(key: str) -> str:
    """The Streamlit key of the widget that shows ``key`` now (it changes when code sets the value)."""
    version = st.session_state.get(VERSIONS, {}).get(key, 0)
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
    versions = st.session_state.setdefault(VERSIONS, {})
    versions[key] = versions.get(key, 0) + 1


# ------------------------------------------------------------------------------------------------ dataset
def dataset() -> PairDataset | None:
    return st.session_state.get(DATASET)


def set_dataset(data: PairDataset, kind: str, source: str, report: list[str], *,
                normalised: bool = False) -> str | None:
    """Make ``data`` current; a detector that does not fit it is set aside. Returns a note or None. A new load
    (``normalised`` False) is kept as loaded and resets the per-person normalisation; ``normalised``: ``data`` is a
    view of the loaded data (:func:`apply_normalisation`)."""
    if not normalised:
        set_value(NORMALISE, "none")
        st.session_state[DATASET_LOADED] = (data, source, list(report))
    st.session_state[DATASET] = data
    st.session_state[DATASET_KIND] = kind
    st.session_state[DATASET_SOURCE] = source
    st.session_state[DATASET_REPORT] = list(report)
    st.session_state[DATA_ID] += 1
    st.session_state[CACHE] = {}
    st.session_state[JOBS] = {}
    det = detector()
    problems = [] if det is None else schema_mismatch(det.schema, data)
    if problems:
        st.session_state[DETECTOR] = None
        st.session_state[DETECTOR_SOURCE] = ""
        return (f"The model in use does not fit these features ({'; '.join(problems)}) and was set aside; train "
                f"one on the Train page or use a kept run that fits.")
    return None


def apply_normalisation() -> str | None:
    """Make the current dataset the loaded one normalised per person as ``p_normalise`` says (statistics of each
    speaker's neutral clips or of all its clips, :func:`crossemo_core.data.calibration.calibrate_speakers`), or the
    loaded one itself for "none". A model trained on other features is set aside (its schema records them)."""
    from crossemo_core.data.calibration import calibrate_speakers

    if st.session_state.get(DATASET_LOADED) is None:
        return None
    raw, source, report = st.session_state[DATASET_LOADED]
    reference = st.session_state.get(NORMALISE, "none")
    kind = st.session_state[DATASET_KIND]
    if reference == "none":
        return set_dataset(raw, kind, source, report, normalised=True)
    data, done = calibrate_speakers(raw, reference)
    return set_dataset(data, kind, f"{source} · per-person normalised on {reference} clips", [*report, str(done)],
                       normalised=True)


def loaded_dataset() -> PairDataset | None:
    """The dataset as loaded, before any per-person normalisation."""
    loaded = st.session_state.get(DATASET_LOADED)
    return None if loaded is None else loaded[0]


def start_load(kind: str, source: str, load: Callable[..., PairDataset]) -> None:
    """Load a dataset in the background: ``load(report, progress)`` runs in a thread (see
    :func:`adopt_finished_load`)."""
    from crossemo_core.session import BackgroundJob

    def work(job: BackgroundJob) -> tuple[PairDataset, list[str]]:
        report: list[str] = []
        data = load(report, job.report_progress)
        return data, report

    job = BackgroundJob(work, name=f"load-{kind}")
    job.kind, job.source = kind, source  # type: ignore[attr-defined]
    st.session_state[LOAD_JOB] = job.start()
    st.session_state[LOAD_MESSAGE] = None


def load_demo_once() -> None:
    """On a session's first run, load the bundled demo so every page has data at once (a failure is left for the
    Data page to report)."""
    if st.session_state.get("demo_tried") or dataset() is not None or st.session_state.get(LOAD_JOB) is not None:
        return
    st.session_state["demo_tried"] = True
    from crossemo_core.errors import CrossemoError
    from crossemo_core.workspace import load_dataset

    try:
        set_dataset(load_dataset("demo"), "demo", "bundled with crossemo (synthetic)", [])
    except CrossemoError:
        return
    if BUNDLED_CHECKPOINT.is_file() and detector() is None:
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
    job = st.session_state.get(LOAD_JOB)
    if job is None or not job.finished:
        return False
    st.session_state[LOAD_JOB] = None
    if job.state == "failed" or job.result is None:
        st.session_state[LOAD_MESSAGE] = ("error", job.error or "loading stopped")
        return False
    data, report = job.result
    note = set_dataset(data, job.kind, job.source, report)
    st.session_state[LOAD_MESSAGE] = ("success", f"Loaded {data.display_name}: {len(data)} pairs."
                                      + (f" {note}" if note else ""))
    return True


# ------------------------------------------------------------------------------------------------ detector
def detector() -> Detector | None:
    return st.session_state.get(DETECTOR)


def set_detector(det: Detector, source: str) -> None:
    st.session_state[DETECTOR] = det
    st.session_state[DETECTOR_SOURCE] = source
    st.session_state[RUN_ID] += 1
    set_value(THRESHOLD, float(det.threshold))
    st.session_state[JOBS] = {}


def training_just_finished() -> bool:
    """True once, on the first run after this session's training job ended (to announce it). Nothing is replaced:
    the person chooses on the Train page's comparison card."""
    job = st.session_state.get(TRAIN_JOB)
    if job is None or not job.finished or st.session_state.get(SEEN_JOB) == id(job):
        return False
    st.session_state[SEEN_JOB] = id(job)
    return True


def start_training(job: "TrainingJob") -> None:
    """Make ``job`` this session's training run and start it (a new run clears the previous run's decision)."""
    st.session_state[TRAIN_JOB] = job.start()
    st.session_state[RUN_DECISION] = None


def run_decision() -> str | None:
    """"used" or "kept" when the person has decided about this session's finished run, else None."""
    job = st.session_state.get(TRAIN_JOB)
    decision = st.session_state.get(RUN_DECISION)
    return decision[1] if job is not None and decision is not None and decision[0] == id(job) else None


def use_run_model() -> None:
    """Make this session's finished (or stopped) run's model the model in use: the person asked for it."""
    job = st.session_state.get(TRAIN_JOB)
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
    st.session_state[RUN_DECISION] = (id(job), "used")


def keep_model_in_use() -> None:
    """Record that the person keeps the model in use instead of this session's finished run."""
    job = st.session_state.get(TRAIN_JOB)
    if job is not None:
        st.session_state[RUN_DECISION] = (id(job), "kept")


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
    store = st.session_state[CACHE]
    full = (*key, st.session_state[DATA_ID], st.session_state[RUN_ID])
    if full not in store:
        store[full] = compute()
    return store[full]


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
