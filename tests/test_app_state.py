"""The app's typed state (crossemo_app.state.AppState) and the Train page's form (crossemo_app.train_form), without a
browser: each property on its own."""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from crossemo_app.state import AppState, ClipPage, LoadedData, ModelInUse, SessionPage
from crossemo_app.train_form import DEMO_EPOCHS, PAGE_FIELDS, TrainForm
from crossemo_core import workspace


@pytest.fixture(scope="module")
def demo():
    return workspace.load_dataset("demo")


def test_a_reload_gets_data_model_and_runs_back_but_not_a_load_or_the_pages_results(demo):
    s = AppState(token="t", data=LoadedData(demo, "demo", "here", [], demo, "here", []), data_id=3,
                 model=ModelInUse(object(), "bundled"), run_id=2, load_job=object(), load_message=("success", "x"),
                 train_job=object(), cache={("k",): 1}, widget_versions={"p_lr": 1}, threshold_rule_error="x",
                 train_defaults_for="demo",
                 clip=ClipPage(take="take.mp4"), session=SessionPage(media=b"x"), just_restored=True)
    again = s.for_reload()
    assert again is not s and again.token == "t" and again.data is s.data and again.model is s.model
    assert again.train_job is s.train_job and (again.data_id, again.run_id) == (3, 2)
    assert again.load_job is None and again.load_message is None and not again.just_restored
    assert again.threshold_rule_error is None and again.train_defaults_for == "demo"
    assert again.clip == ClipPage() and again.session == SessionPage()
    # two tabs on one URL count their own data_id / run_id: their caches keyed by them must not be one dict
    assert again.cache == s.cache and again.cache is not s.cache and again.jobs is not s.jobs
    again.widget_versions["p_lr"] += 1
    assert s.widget_versions == {"p_lr": 1}


def test_remember_and_restore_through_the_url_token(monkeypatch, demo):
    from crossemo_app import state

    monkeypatch.setattr(state, "_REMEMBERED", type(state._REMEMBERED)())
    tab = SimpleNamespace(session_state={}, query_params={})
    monkeypatch.setattr(state, "st", tab)
    state.init()
    first = state.app()
    assert first.token and tab.session_state[state.THRESHOLD] == 0.5 and not state.restored()
    first.data = LoadedData(demo, "demo", "here", [], demo, "here", [])
    first.clip.take, first.session.media = "take.mp4", b"video bytes"
    tab.session_state.update({"p_lr": 0.01, "w_p_lr": 0.01, "notes": "x"})
    state.remember()
    assert tab.query_params["s"] == first.token
    assert state._REMEMBERED[first.token][1].session.media is None  # a closed tab's upload is not kept an hour

    reloaded = SimpleNamespace(session_state={}, query_params={"s": first.token})
    monkeypatch.setattr(state, "st", reloaded)
    state.init()
    back = state.app()
    assert back is not first and back.data is first.data and back.clip == ClipPage()
    assert reloaded.session_state["p_lr"] == 0.01 and "w_p_lr" not in reloaded.session_state
    assert "notes" not in reloaded.session_state
    assert state.restored() and not state.restored()  # the welcome back is said once

    other = SimpleNamespace(session_state={}, query_params={"s": "unknown"})
    monkeypatch.setattr(state, "st", other)
    state.init()
    assert state.app().data is None and state.app().token not in ("", "unknown", first.token)


def test_a_model_that_does_not_fit_is_set_aside_and_comes_back_for_data_it_fits(monkeypatch, demo):
    from crossemo_app import state

    monkeypatch.setattr(state, "st", SimpleNamespace(session_state={state.STATE_KEY: AppState(token="t")},
                                                     query_params={}))
    fits = SimpleNamespace(schema={"fits": "demo"}, threshold=0.4)
    other = SimpleNamespace(schema={"fits": "other"}, threshold=0.6)
    monkeypatch.setattr(state, "schema_mismatch", lambda schema, data: [] if schema["fits"] == data else ["dims"])
    s = state.app()
    assert state.set_dataset("demo", "demo", "here", []) is None and s.model is None and s.set_aside is None
    state.set_detector(fits, "bundled")
    assert state.set_dataset("other", "mmsa", "there", []).startswith("The model in use does not fit")
    assert s.model is None and s.set_aside.detector is fits
    assert state.note_level("set aside") == "warning"  # shown as a warning on the Data page, not as a success
    assert state.note_level(None) == "success"  # a later load with nothing to say is a plain success
    state.set_detector(other, "trained on other")
    assert state.set_dataset("other", "mmsa", "there", []) is None and s.model.detector is other
    note = state.set_dataset("demo", "demo", "here", [])  # the earlier model fits: the two change places
    assert note.startswith("The model set aside earlier (bundled) fits these features and is in use again")
    assert s.model.detector is fits and s.set_aside.detector is other
    assert state.note_level("in use again") == "success"
    assert s.run_id == 3 and state.st.session_state[state.THRESHOLD] == 0.4


def test_demo_form_is_its_profile_with_the_short_demo_run():
    form = TrainForm.for_preset("demo")
    assert form.preset == "profile" and form.method == "sir-hcl" and form.epochs == DEMO_EPOCHS
    assert TrainForm.for_preset(None) == form  # nothing loaded yet counts as the demo


def test_a_named_preset_gives_its_own_optimiser_settings():
    paper, fast = TrainForm.for_preset("mosi", "paper"), TrainForm.for_preset("mosi", "fast")
    assert (paper.optimizer, paper.lr, paper.batch_size, paper.epochs) == ("sgd", 1e-4, 16, 30)
    assert (fast.optimizer, fast.lr, fast.batch_size) == ("adam", 1e-3, 32)


def test_ravdess_profile_learns_the_emotions_and_refits():
    form = TrainForm.for_preset("ravdess")
    assert form.training_labels == "emotions" and form.refit


def test_widget_values_read_back_to_the_same_form_with_types_restored():
    form = TrainForm.for_preset("demo", "fast")
    values = form.widget_values()
    assert set(values) == {f"p_{f.name}" for f in dataclasses.fields(TrainForm)}
    assert TrainForm.read(values) == form
    values.update(p_epochs=4.0, p_batch_size=8.0, p_lr=1, p_k=3.0)  # what number boxes give back
    read = TrainForm.read(values)
    assert (read.epochs, read.batch_size, read.k) == (4, 8, 3) and all(
        type(v) is int for v in (read.epochs, read.batch_size, read.k))
    assert read.lr == 1.0 and type(read.lr) is float
    with pytest.raises(ValueError, match="whole number"):
        TrainForm.read({**values, "p_epochs": 2.5})
    read = TrainForm.read({**values, "p_refit": np.True_, "p_use_hard": 0})
    assert read.refit is True and read.use_hard is False
    with pytest.raises(ValueError, match="true or false"):
        TrainForm.read({**values, "p_refit": "False"})
    with pytest.raises(KeyError):
        TrainForm.read({k: v for k, v in values.items() if k != "p_tau"})


def test_a_preset_change_leaves_the_page_choices_alone():
    values = TrainForm.for_preset("demo").widget_values(run_settings_only=True)
    assert not {f"p_{name}" for name in PAGE_FIELDS} & set(values) and "p_lr" in values


def test_every_setting_of_the_form_reaches_the_run_configuration(demo):
    base = TrainForm.for_preset("demo", "paper")
    changed = {"device": "cpu", "training_labels": "classes", "refit": False, "optimizer": "adam", "lr": 3e-3,
               "momentum": 0.5, "weight_decay": 1e-4, "lr_step_epochs": 4, "lr_gamma": 0.5, "batch_size": 8,
               "epochs": 5, "patience": 2, "grad_clip": 1.5, "lambda_intra": 0.3, "lambda_cross": 0.4,
               "lambda_hard": 0.6, "k": 3, "tau": 0.7, "use_share": False, "use_intra": False, "use_cross": False,
               "use_hard": True, "hard_loss": "literal", "hidden_size": 24, "embedding_size": 40, "dropout": 0.2,
               "eta_init": 0.3}
    # all differ from the base form but the two the demo data forces (no finer emotions; a refit is off by default)
    # and use_hard, kept on because one loss term must be (it is switched off in the next test)
    assert {k for k, v in changed.items() if getattr(base, k) == v} == {"training_labels", "refit", "use_hard"}
    config = dataclasses.replace(base, **changed).experiment_config(demo, "demo", seed=1, rate=0.5)
    parts = (config.train, config.loss, config.model)
    for name, value in changed.items():
        owner = next(part for part in parts if hasattr(part, name))
        assert getattr(owner, name) == value, name
    assert config.train.preset == "paper"


def test_the_form_wins_over_the_profile_and_the_profile_fills_the_rest(demo):
    data = dataclasses.replace(demo, face_emotion=demo.face_label * 2, voice_emotion=demo.voice_label * 2,
                               emotion_names=tuple(f"e{i}" for i in range(2 * demo.n_classes)))
    profile = TrainForm.for_preset("ravdess").experiment_config(data, "ravdess", 0, 0.5)
    assert profile.train.training_labels == "emotions" and profile.train.refit  # names: emotions are kept
    form = dataclasses.replace(TrainForm.for_preset("ravdess"), training_labels="classes", refit=False)
    config = form.experiment_config(data, "ravdess", 0, 0.5)
    assert config.train.training_labels == "classes" and not config.train.refit
    assert config.train.mixture_var_floor == 3e-3 and config.train.preset == "fast"


def test_the_run_configuration_takes_every_setting_of_the_form(demo):
    form = dataclasses.replace(TrainForm.for_preset("demo", "fast"), epochs=2, lr=5e-4, tau=0.5, use_hard=False,
                               hidden_size=32, threshold_rule="youden", refit=True, training_labels="emotions")
    config = form.experiment_config(demo, "demo", seed=7, rate=0.3)
    assert (config.train.epochs, config.train.lr, config.train.seed, config.train.abnormal_rate) == (2, 5e-4, 7, 0.3)
    assert (config.loss.tau, config.loss.use_hard, config.model.hidden_size) == (0.5, False, 32)
    assert config.train.threshold == "youden" and not config.train.refit  # a refit would train on its pairs
    assert demo.emotion_names is None and config.train.training_labels == "classes"  # no finer emotions here
    assert dataclasses.replace(form, threshold_rule="posterior").experiment_config(demo, "demo", 0, 0.5).train.refit


def test_a_setting_out_of_range_is_refused_when_the_run_is_configured(demo):
    form = dataclasses.replace(TrainForm.for_preset("demo"), batch_size=1)
    with pytest.raises(ValueError, match="batch_size"):
        form.experiment_config(demo, "demo", 0, 0.5)
