"""The Streamlit app driven by ``streamlit.testing.v1.AppTest``: every page on the bundled demo (train 2 epochs,
curves, embeddings, Beta histograms with a moving threshold, verdicts), errors shown as messages, and the RAVDESS
folder flow when ``../shared/data/ravdess`` is there."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crossemo_core.experiment import load_corpus

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "app.py")
RAVDESS = Path(os.environ.get("CROSSEMO_SHARED_DATA") or REPO.parent / "shared" / "data") / "ravdess"
RUN_TIMEOUT = 90


@pytest.fixture(autouse=True, scope="module")
def _restore_torch_threads():
    """The app trains with one CPU thread (process-wide); give the rest of the test session its setting back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    at.run()
    assert_clean(at)
    return at


def wk(at: AppTest, key: str) -> str:
    """The widget key that shows the value stored under ``key`` (see crossemo_app.state.widget_key)."""
    versions = at.session_state["app"].widget_versions if "app" in at.session_state else {}
    v = versions.get(key, 0)
    return f"w_{key}" if v == 0 else f"w_{key}~{v}"


def assert_clean(at: AppTest) -> None:
    """No exception box and no error message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py")
    at.run()
    return at


def run_until(at: AppTest, done, timeout: float = 120.0, what: str = "the app") -> None:
    deadline = time.time() + timeout
    while not done(at):
        if time.time() > deadline:
            raise AssertionError(f"{what} did not finish within {timeout:.0f} s; errors: {[e.value for e in at.error]}")
        time.sleep(0.5)
        at.run()


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [s.value for s in at.success] + [t.value for t in at.title]
    return "\n".join(str(p) for p in parts)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def no_progress(at: AppTest) -> bool:
    return not at.get("progress")


def training_done(at: AppTest) -> bool:
    job = at.session_state["app"].train_job if "app" in at.session_state else None
    return job is not None and job.finished and any("Training" in s.value
                                                    for s in [*at.success, *at.warning, *at.error])


def use_new_model(at: AppTest) -> None:
    """Click "Use the new model" on the comparison card (ticking the confirmation first when the run is flagged)."""
    confirm = [c for c in at.checkbox if c.key == "confirm_flagged_run"]
    if confirm:
        confirm[0].check().run()
    at.button(key="use_new_run").click().run()
    assert_clean(at)


def state_detector(at: AppTest):
    model = at.session_state["app"].model
    return None if model is None else model.detector


def sidebar(at: AppTest) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown)


def train(at: AppTest, epochs: int, **checks: bool) -> None:
    """Train with the fast preset for ``epochs`` (and the given checkboxes, e.g. ``refit=True``)."""
    goto(at, "train")
    at.radio(key=wk(at, "p_preset")).set_value("fast").run()
    for name, value in checks.items():
        at.checkbox(key=wk(at, f"p_{name}")).set_value(value).run()
    at.number_input(key=wk(at, "p_epochs")).set_value(epochs).run()
    at.button(key="start_training").click().run()
    assert_clean(at)
    run_until(at, training_done, what="training")
    assert_clean(at)


# ---------------------------------------------------------------------------------------------- home
def test_start_page_offers_the_two_paths():
    at = new_app()
    assert at.title[0].value == "Does the face's emotion match the voice's?"
    assert "Research tool, not a diagnostic device" in texts(at)
    assert [s.value for s in at.subheader][:2] == [":material/videocam: Judge a clip",
                                                   ":material/model_training: Train and evaluate"]
    links = {link.proto.label: link.proto.page for link in at.get("page_link")}
    assert links["Judge a clip"] == "clip" and links["Choose data"] == "data"
    body = texts(at)
    assert "model in use: bundled demo checkpoint" in body and "run(s) kept in the workspace" in body


def test_home_shows_the_demo_and_the_protocol():
    at = goto(new_app(), "data")
    demo = load_corpus("demo")
    assert at.title[0].value == "Data"
    body = texts(at)
    assert "Research tool, not a diagnostic device" in body
    assert any("Synthetic data" in w.value for w in at.warning)
    assert metric(at, "Pairs (clips)") == f"{len(demo):,}"
    assert metric(at, "Speakers") == str(len(set(demo.speaker)))
    assert charts(at) >= 3  # class balance, lengths, speakers
    assert f"made **{len(demo) // 2} of {len(demo)}** pairs inconsistent" in body
    assert len(at.dataframe[0].value) == 3  # train / valid / test
    at.slider(key=wk(at, "p_split_rate")).set_value(0.25).run()
    assert_clean(at)
    assert "rate **0.25**" in texts(at)
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    assert "demo (synthetic)" in sidebar
    if (REPO / "checkpoints" / "demo.pt").is_file():
        assert "bundled demo checkpoint" in sidebar


def test_bad_ravdess_path_is_an_error_message_not_a_traceback():
    at = goto(new_app(), "data")
    at.radio(key=wk(at, "p_data_kind")).set_value("ravdess").run()
    at.text_input(key=wk(at, "p_ravdess_path")).input("/nonexistent/ravdess").run()
    at.button[0].click().run()  # "Load RAVDESS"
    run_until(at, lambda a: bool(a.error), timeout=30, what="loading")
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)
    assert "demo (synthetic)" in "\n".join(m.value for m in at.sidebar.markdown)  # the demo stays loaded


def test_train_page_defaults_are_the_data_profile_and_the_paper_preset_is_one_click_away():
    at = goto(new_app(), "train")
    assert_clean(at)
    assert at.radio(key=wk(at, "p_preset")).value == "profile"  # the demo's profile: the fast preset
    assert at.selectbox(key=wk(at, "p_method")).value == "sir-hcl"
    assert "profile 'demo' (fast preset)" in texts(at)
    assert at.selectbox(key=wk(at, "p_optimizer")).value == "adam"
    assert at.number_input(key=wk(at, "p_epochs")).value == 3  # the demo's short default (ours)
    at.radio(key=wk(at, "p_preset")).set_value("paper").run()
    assert at.selectbox(key=wk(at, "p_optimizer")).value == "sgd"
    assert at.number_input(key=wk(at, "p_lr")).value == pytest.approx(1e-4)
    assert at.number_input(key=wk(at, "p_batch_size")).value == 16
    assert [at.number_input(key=wk(at, f"p_lambda_{t}")).value for t in ("intra", "cross", "hard")] == [1.0, 1.0, 0.5]
    assert at.number_input(key=wk(at, "p_k")).value == 6 and at.number_input(key=wk(at, "p_tau")).value == 1.0
    assert all(at.checkbox(key=wk(at, f"p_use_{t}")).value for t in ("share", "intra", "cross", "hard"))
    assert "Device in use:" in texts(at)
    assert not [b for b in at.selectbox if b.label == "The losses learn"]  # the demo names no finer emotions
    at.selectbox(key=wk(at, "p_method")).set_value("agreement").run()
    at.radio(key=wk(at, "p_preset")).set_value("fast").run()
    assert at.selectbox(key=wk(at, "p_method")).value == "agreement"  # a preset sets settings, not the method
    assert at.selectbox(key=wk(at, "p_optimizer")).value == "adam"
    assert at.number_input(key=wk(at, "p_lr")).value == pytest.approx(1e-3)
    assert at.number_input(key=wk(at, "p_batch_size")).value == 32
    goto(at, "data")
    goto(at, "train")  # values survive a page switch
    assert at.radio(key=wk(at, "p_preset")).value == "fast" and at.number_input(key=wk(at, "p_batch_size")).value == 32


def test_train_page_settings_follow_a_load_of_another_data_kind():
    import dataclasses

    at = goto(new_app(), "train")
    assert at.number_input(key=wk(at, "p_epochs")).value == 3 and not at.checkbox(key=wk(at, "p_refit")).value
    app_state = at.session_state["app"]
    app_state.data = dataclasses.replace(app_state.data, kind="ravdess")  # what a RAVDESS load leaves behind
    at.run()
    assert_clean(at)
    assert at.checkbox(key=wk(at, "p_refit")).value  # RAVDESS's profile: refit on train + valid, 15 epochs
    assert at.number_input(key=wk(at, "p_epochs")).value == 15 and app_state.train_defaults_for == "ravdess"


def test_a_baseline_trains_with_live_curves_and_leaves_the_model_in_use():
    at = goto(new_app(), "train")
    at.selectbox(key=wk(at, "p_method")).set_value("agreement").run()
    at.number_input(key=wk(at, "p_epochs")).set_value(2).run()
    at.button(key="start_training").click().run()
    run_until(at, training_done, what="the baseline run")
    assert_clean(at)
    job = at.session_state["app"].train_job
    assert job.state == "done" and len(job.snapshot().epochs) == 2
    assert any(m.label == "AUC" for m in at.metric)
    assert "bundled demo checkpoint" in "\n".join(m.value for m in at.sidebar.markdown)


def test_bad_checkpoint_path_is_an_error_message():
    at = goto(new_app(), "train")
    at.radio(key=wk(at, "p_ckpt_source")).set_value("path").run()
    at.text_input(key=wk(at, "p_ckpt_path")).input("/nonexistent/model.pt").run()
    at.button(key="load_checkpoint").click().run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)


def test_stop_keeps_the_model_in_use_until_asked_and_checkpoints_round_trip(tmp_path):
    at = goto(new_app(), "train")
    at.radio(key=wk(at, "p_preset")).set_value("fast").run()
    at.number_input(key=wk(at, "p_epochs")).set_value(200).run()
    at.button(key="start_training").click().run()
    job = at.session_state["app"].train_job
    run_until(at, lambda a: len(job.snapshot().epochs) >= 1, what="the first epoch")
    assert at.get("progress")  # live progress while it runs, with the time left
    assert re.search(r"\((\d+) s, (about .+ left|estimating the time left)\)", at.get("progress")[0].proto.text)
    at.button(key="stop_training").click().run()
    run_until(at, training_done, what="stopping")
    assert_clean(at)
    assert any("Training stopped by you" in w.value and "model in use is unchanged" in w.value for w in at.warning)
    assert "bundled demo checkpoint" in "\n".join(m.value for m in at.sidebar.markdown)  # no silent swap
    assert job.state == "stopped" and len(job.snapshot().epochs) < 200
    assert any(m.value.startswith("**New model: AUC") for m in at.markdown)  # the stopped run's comparison card
    use_new_model(at)
    assert "stopped by you" in sidebar(at)
    path = tmp_path / "run.pt"
    at.text_input(key=wk(at, "p_save_path")).input(str(path)).run()
    at.button(key="save_checkpoint").click().run()
    assert_clean(at)
    assert path.is_file()
    assert any(str(path) in s.value for s in at.success)
    path.write_bytes(b"another model")  # saving again over a file asks first
    at.run()
    assert at.button(key="save_checkpoint").disabled
    next(c for c in at.checkbox if c.key.startswith("save_replace:")).check().run()
    at.button(key="save_checkpoint").click().run()
    assert_clean(at)
    assert path.read_bytes() != b"another model"
    at.run()
    assert at.button(key="save_checkpoint").disabled  # and asks again for the next save over it
    os.mkfifo(pipe := tmp_path / "pipe.pt")
    at.text_input(key=wk(at, "p_save_path")).input(str(pipe)).run()
    assert any("exists and is not a regular file" in e.value for e in at.error)
    assert at.button(key="save_checkpoint").disabled and pipe.is_fifo()
    at.text_input(key=wk(at, "p_save_path")).input(str(path)).run()
    at.radio(key=wk(at, "p_ckpt_source")).set_value("path").run()
    at.text_input(key=wk(at, "p_ckpt_path")).input(str(path)).run()
    at.button(key="load_checkpoint").click().run()
    assert_clean(at)
    assert f"checkpoint {path}" in "\n".join(m.value for m in at.sidebar.markdown)


# ---------------------------------------------------------------------------------------------- the demo flow
@pytest.fixture(scope="module")
def trained_app() -> AppTest:
    at = new_app()
    train(at, epochs=2)
    assert "bundled demo checkpoint" in sidebar(at)  # a finished run replaces nothing by itself
    card = next(df.value for df in at.dataframe if "New model" in df.value.columns)
    assert list(card.columns) == ["New model", "Model in use"]  # the same test pairs, side by side
    assert card.index[0].startswith("AUC")
    use_new_model(at)
    return at


def test_training_shows_live_curves_and_keeps_the_model(trained_app):
    at = trained_app
    assert any("Training finished after 2 epoch(s)" in s.value for s in at.success)
    assert any("You chose the new model" in s.value for s in at.success)
    assert charts(at) >= 2  # losses and validation AUC
    epochs = next(df.value for df in at.dataframe if "validation AUC" in df.value.columns)
    assert list(epochs["epoch"]) == [1, 2]
    assert {"L_share", "L_intra", "L_cross", "L_hard", "L_all (weighted total)"} <= set(epochs.columns)
    assert 0.0 <= float(metric(at, "AUC")) <= 1.0
    assert "trained in this session" in "\n".join(m.value for m in at.sidebar.markdown)
    assert at.get("download_button")  # the checkpoint can be downloaded


def test_refit_option_trains_again_on_train_and_valid():
    at = goto(new_app(), "train")
    at.selectbox(key=wk(at, "p_threshold_rule")).set_value("youden").run()
    assert at.checkbox(key=wk(at, "p_refit")).disabled  # the Youden threshold is chosen on the validation pairs
    at.selectbox(key=wk(at, "p_threshold_rule")).set_value("posterior").run()
    train(at, epochs=2, refit=True)
    outcome = at.session_state["app"].train_job.outcome
    refit = outcome.training.detector.metadata["refit"]
    assert outcome.training.detector.config.train.refit and refit["completed"]
    assert any(f"then {refit['epochs']} epoch(s) on train + valid (that network is kept)" in s.value
               for s in at.success)
    epochs = next(df.value for df in at.dataframe if "validation AUC" in df.value.columns)
    assert list(epochs["phase"]).count("refit") == refit["epochs"]


def test_embeddings_before_and_after(trained_app):
    at = goto(trained_app, "embeddings")
    assert at.radio(key=wk(at, "p_emb_method")).value == "tsne"
    run_until(at, no_progress, timeout=120, what="t-SNE")
    assert_clean(at)
    assert charts(at) == 2
    at.selectbox(key=wk(at, "p_emb_colour")).set_value("emotion").run()
    run_until(at, no_progress, timeout=60, what="t-SNE")
    assert_clean(at)
    assert charts(at) == 2


def test_similarity_threshold_moves_the_metrics(trained_app):
    at = goto(trained_app, "similarity")
    assert_clean(at)
    assert charts(at) == 3  # histogram + Beta mixture, posterior, ROC
    n_test = int(metric(at, "Flagged").split("/")[-1])
    flagged = {}
    for t in (0.0, 0.5, 1.0):
        at.slider(key=wk(at, "p_threshold")).set_value(t).run()
        assert_clean(at)
        flagged[t] = int(metric(at, "Flagged").split("/")[0])
    assert flagged[0.0] == n_test and flagged[1.0] <= flagged[0.5] <= flagged[0.0]
    at.slider(key=wk(at, "p_threshold")).set_value(0.0).run()
    assert metric(at, "TPR") == "1.000" and metric(at, "FPR") == "1.000"
    at.selectbox(key=wk(at, "p_sim_rule")).set_value("youden").run()
    assert_clean(at)
    assert 0.0 < at.slider(key=wk(at, "p_threshold")).value <= 1.0
    at.radio(key=wk(at, "p_sim_stage")).set_value("before").run()  # Fig. 9: the same network before training
    assert_clean(at)
    assert charts(at) == 3
    at.radio(key=wk(at, "p_sim_stage")).set_value("after").run()
    at.slider(key=wk(at, "p_threshold")).set_value(0.5).run()


def test_a_threshold_rule_that_cannot_be_computed_is_said_once_and_the_threshold_kept(monkeypatch):
    from crossemo_core import reports

    def no_youden(*args, **kwargs):
        raise ValueError("one class only")

    monkeypatch.setattr(reports, "youden_on", no_youden)
    at = goto(new_app(), "similarity")
    at.slider(key=wk(at, "p_threshold")).set_value(0.3).run()
    at.selectbox(key=wk(at, "p_sim_rule")).set_value("youden").run()
    assert [e.value for e in at.error] == ["The Youden threshold needs consistent and inconsistent validation pairs; "
                                           "the threshold was kept."]
    assert at.slider(key=wk(at, "p_threshold")).value == pytest.approx(0.3)
    at.run()
    assert_clean(at)  # said once


def test_verdicts_table_filters_details_and_per_type(trained_app):
    at = goto(trained_app, "verdicts")
    assert_clean(at)
    assert "Threshold:** 0.50" in texts(at)
    table = at.dataframe[0].value
    assert {"clip_id", "speaker", "face_class", "voice_class", "similarity", "p_inconsistent", "verdict",
            "correct"} <= set(table.columns)
    n = len(table)
    assert ((table["face_class"] != table["voice_class"]) == (table["truth"] == "inconsistent")).all()
    at.multiselect(key=wk(at, "p_ver_verdicts")).set_value(["consistent"]).run()
    filtered = at.dataframe[0].value
    assert len(filtered) <= n and (filtered["verdict"] == "consistent").all()
    at.multiselect(key=wk(at, "p_ver_verdicts")).set_value([]).run()
    at.selectbox(key=wk(at, "p_ver_sort")).set_value("p_inconsistent").run()
    at.checkbox(key=wk(at, "p_ver_desc")).check().run()
    ordered = at.dataframe[0].value["p_inconsistent"].tolist()
    assert ordered == sorted(ordered, reverse=True)
    pair = int(at.dataframe[0].value["pair"].iloc[2])
    at.selectbox(key=wk(at, "p_ver_pair")).set_value(pair).run()
    assert_clean(at)
    assert f"Pair {pair} of speaker" in texts(at)
    frames = [df.value for df in at.dataframe]
    assert any("Undivided Acc" in df.columns for df in frames)  # Table IV layout
    per_type = next(df for df in frames if "anomaly type" in df.columns)
    assert per_type["anomaly type"].iloc[0] == "Undivided" and per_type["pairs"].iloc[0] == n
    assert at.get("download_button")
    assert charts(at) >= 2  # gauge and per-type bars


# ---------------------------------------------------------------------------------------------- RAVDESS
def _ravdess_ready() -> str | None:
    if not (RAVDESS / "face_au.csv").is_file():
        return f"{RAVDESS} is not available"
    try:
        from crossemo_core.data.loaders import load_ravdess  # noqa: F401
    except ImportError:
        return "crossemo_core.data.loaders.load_ravdess is not available"
    return None


@pytest.mark.real_data
@pytest.mark.skipif(_ravdess_ready() is not None, reason=str(_ravdess_ready()))
def test_ravdess_folder_flow():
    at = goto(new_app(), "data")
    at.radio(key=wk(at, "p_data_kind")).set_value("ravdess").run()
    at.text_input(key=wk(at, "p_ravdess_path")).input(os.path.relpath(RAVDESS, Path.cwd())).run()
    at.text_input(key=wk(at, "p_ravdess_actors")).input("1-3").run()
    at.button[0].click().run()
    run_until(at, lambda a: a.session_state["app"].data.kind == "ravdess" or bool(a.error), timeout=240,
              what="RAVDESS loading")
    assert_clean(at)
    assert metric(at, "Speakers") == "3"
    assert int(metric(at, "Pairs (clips)")) >= 170
    assert "not recorded from people" not in texts(at)
    goto(at, "train")  # RAVDESS's profile: the losses learn the 8 emotions, then a refit on train + valid
    assert at.radio(key=wk(at, "p_preset")).value == "profile"
    assert at.selectbox(key=wk(at, "p_training_labels")).value == "emotions" and at.checkbox(key=wk(at, "p_refit")).value
    at.number_input(key=wk(at, "p_epochs")).set_value(1).run()
    at.button(key="start_training").click().run()
    run_until(at, training_done, what="training")
    assert_clean(at)
    detector = at.session_state["app"].train_job.outcome.training.detector
    assert detector.config.train.training_labels == "emotions" and detector.model.classifier.out_features == 8
    assert state_detector(at) is None  # the demo model did not fit RAVDESS; the new run waits for a decision
    use_new_model(at)
    assert state_detector(at) is detector
    goto(at, "verdicts")
    assert_clean(at)
    table = at.dataframe[0].value
    assert len(table) > 0 and table["speaker"].str.startswith("actor_").all()


# ---------------------------------------------------------------------------------------------- runs and reloads
def test_a_finished_run_waits_for_a_decision_is_kept_and_comes_back_after_a_reload():
    at = new_app()
    train(at, epochs=1)
    job = at.session_state["app"].train_job
    assert "bundled demo checkpoint" in sidebar(at)  # nothing replaced by itself
    assert any(b.key == "use_new_run" for b in at.button) and any(b.key == "keep_old_run" for b in at.button)
    at.button(key="keep_old_run").click().run()
    assert_clean(at)
    assert any("You kept the model in use" in i.value for i in at.info)
    assert "bundled demo checkpoint" in sidebar(at)
    stored = job.outcome.stored
    assert stored is not None and (stored.folder / "run.json").is_file() and stored.model_path.is_file()
    runs = next(df.value for df in at.dataframe if "fits the data loaded now" in df.value.columns)
    assert stored.run_id in list(runs["run"])

    # a reload: a new session that opens with this session's ?s= token gets data, model and run back
    token = at.session_state["app"].token
    again = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    again.query_params["s"] = token
    again.switch_page("pages/train.py")
    again.run()
    assert_clean(again)
    assert again.session_state["app"].train_job is job
    assert any("You kept the model in use" in i.value for i in again.info)

    # a new tab (no token): its own session, the bundled model, and the kept run listed in the workspace
    other = goto(new_app(), "train")
    assert other.session_state["app"].train_job is None and other.session_state["app"].token != token
    runs = next(df.value for df in other.dataframe if "fits the data loaded now" in df.value.columns)
    assert stored.run_id in list(runs["run"])
    other.selectbox(key=wk(other, "p_workspace_run")).set_value(stored.run_id).run()
    confirm = [c for c in other.checkbox if c.key == f"confirm_run_{stored.run_id}"]
    if confirm:  # a flagged run needs a tick first
        assert other.button(key="use_workspace_run").disabled
        confirm[0].check().run()
    other.button(key="use_workspace_run").click().run()
    assert_clean(other)
    assert f"run {stored.run_id} from the workspace" in sidebar(other)
    assert "bundled demo checkpoint" in sidebar(at)  # the first tab's model is its own


def test_per_person_normalisation_is_a_data_option_used_in_training_and_undone_by_none():
    at = goto(new_app(), "data")
    raw = at.session_state["app"].data.dataset
    demo = at.session_state["app"].model.detector
    at.radio(key=wk(at, "p_normalise")).set_value("neutral").run()
    assert_clean(at)
    data = at.session_state["app"].data.dataset
    assert data is not raw and data.extractor["voice"].endswith("+speaker-neutral") and len(data) == len(raw)
    assert any("does not fit these features" in s.value for s in at.warning)  # the raw-feature model is set aside
    assert at.session_state["app"].model is None
    assert "per-person normalised on neutral clips" in at.session_state["app"].data.source
    train(at, epochs=1)
    detector = at.session_state["app"].train_job.outcome.training.detector
    assert detector.schema["extractor"]["voice"].endswith("+speaker-neutral")
    goto(at, "data")
    at.radio(key=wk(at, "p_normalise")).set_value("none").run()
    assert_clean(at)
    assert at.session_state["app"].data.dataset is raw
    # the model set aside before fits the raw features again: back in use (the run trained above was not chosen)
    assert at.session_state["app"].model.detector is demo and at.session_state["app"].set_aside is None
    assert any("fits these features and is in use again" in s.value for s in at.success)


def test_remembered_tabs_are_bounded_in_number_and_time(monkeypatch):
    from crossemo_app import state

    monkeypatch.setattr(state, "_REMEMBERED", type(state._REMEMBERED)())
    now = time.monotonic()
    for k in range(state.MAX_REMEMBERED + 3):
        state._REMEMBERED[f"t{k}"] = (now, state.AppState(token=f"t{k}"), {})
    state._REMEMBERED["stale"] = (now - state.REMEMBER_SECONDS - 1, state.AppState(token="stale"), {})
    state._REMEMBERED.move_to_end("stale", last=False)
    state._forget_old()
    assert len(state._REMEMBERED) == state.MAX_REMEMBERED and "stale" not in state._REMEMBERED
    assert list(state._REMEMBERED)[0] == "t3"  # the oldest went first


def test_data_that_cannot_be_split_by_speaker_is_refused_and_the_data_in_use_kept(tmp_path):
    """A one-speaker upload was accepted: it replaced the working data, set the model aside, and every page (the
    Train page's finished-run card and checkpoints too) showed only the split error."""
    import pickle

    import numpy as np

    rng = np.random.default_rng(0)
    recs = [((np.arange(3), rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 6)).astype(np.float32),
              ["w"] * 3), np.array([[s]], dtype=np.float32), f"vid0[{i}]") for i, s in enumerate([-2.0, 1.0, 0.0])]
    path = tmp_path / "one_video.pkl"
    path.write_bytes(pickle.dumps(recs, protocol=3))
    at = goto(new_app(), "data")
    before = at.session_state["app"].data.loaded
    at.radio(key=wk(at, "p_data_kind")).set_value("misa").run()
    at.text_input(key=wk(at, "p_misa_path")).input(str(path)).run()
    at.button[0].click().run()
    run_until(at, lambda a: a.session_state["app"].load_job is None and a.error, what="the load")
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert error.endswith("/one_video cannot be used: a speaker-disjoint 3-way split needs at least 3 speakers; "
                          "found 1. Every page splits the data by speaker into train, validation and test parts.")
    assert at.session_state["app"].data.loaded is before and at.session_state["app"].model is not None


def test_the_bundled_checkpoint_is_offered_only_for_data_it_fits():
    """After per-person normalisation the demo's features are others; the offer stayed and its click failed."""
    at = goto(new_app(), "data")
    at.radio(key=wk(at, "p_normalise")).set_value("all").run()
    goto(at, "verdicts")
    assert at.session_state["app"].model is None
    assert not [b for b in at.button if "bundled" in b.label]
    goto(at, "data")
    at.radio(key=wk(at, "p_normalise")).set_value("none").run()  # the set-aside bundled model is back
    at.session_state["app"].model = None
    goto(at, "verdicts")
    (offer,) = [b for b in at.button if "bundled" in b.label]
    offer.click().run()
    assert_clean(at)
    assert at.session_state["app"].model is not None


def test_a_csd_load_with_an_empty_file_field_names_the_field(tmp_path):
    """It said only "no path was given." (the page resolved every field before the loader could name the empty one)."""
    from crossemo_core.workspace import UPLOAD_ROLES

    at = goto(new_app(), "data")
    at.radio(key=wk(at, "p_data_kind")).set_value("csd").run()
    at.text_input(key=wk(at, "p_csd_face")).input(str(tmp_path / "face.csd")).run()
    at.button[0].click().run()
    run_until(at, lambda a: a.session_state["app"].load_job is None and a.error, what="the load")
    roles = UPLOAD_ROLES["csd"]
    assert [e.value for e in at.error] == [f"missing path: {roles['voice']}, {roles['labels']}."]
    assert at.session_state["app"].data.kind == "demo"


def test_training_waits_while_new_data_is_loading():
    """A run started during a load trained on the old data, which the load then replaced."""
    import threading

    from crossemo_core.session import BackgroundJob

    release = threading.Event()
    at = goto(new_app(), "train")
    data = at.session_state["app"].data.dataset
    job = BackgroundJob(lambda job: (release.wait(60), (data, []))[1], name="load-demo").start()
    job.kind, job.source = "demo", "test"  # what state.start_load gives its job
    at.session_state["app"].load_job = job
    try:
        at.run()
        assert at.button(key="start_training").disabled
        assert any("New data is being loaded" in c.value for c in at.caption)
    finally:
        release.set()
    run_until(at, lambda a: job.finished and not a.button(key="start_training").disabled, what="the load")
