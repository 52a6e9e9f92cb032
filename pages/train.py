"""Train: hyper-parameters (paper values by default), live loss and AUC curves, stop, save and load checkpoints."""
from __future__ import annotations

import math
import os
from datetime import datetime

import streamlit as st
import torch

from crossemo_app import charts, runs_view, state, ui
from crossemo_app.train_form import DEMO_EPOCHS, PRESET_LABELS, TrainForm
from crossemo_core import reports, workspace
from crossemo_core.baselines import METHODS
from crossemo_core.config import PRESETS
from crossemo_core.detector import Detector
from crossemo_core.profiles import describe as describe_profile
from crossemo_core.session import TrainingJob
from crossemo_core.training import describe_device, resolve_device

ui.inside_app()


def apply_preset() -> None:
    """Fill the widgets with the chosen preset's (or profile's) values."""
    chosen = TrainForm.for_preset(state.data_kind(), st.session_state["p_preset"])
    for key, value in chosen.widget_values(run_settings_only=True).items():
        state.set_value(key, value)
    state.app().train_defaults_for = state.data_kind()


def _init_widgets() -> None:
    """First visit: the data's best-known profile; later: keep the user's, but re-default for new data kinds."""
    if "p_preset" not in st.session_state:
        for key, value in TrainForm.for_preset(state.data_kind()).widget_values().items():
            st.session_state[key] = value
        state.app().train_defaults_for = state.data_kind()
    elif state.app().train_defaults_for != state.data_kind():
        apply_preset()


st.title("Train")
ui.explain("Training shows the model many face/voice pairs. Four loss terms (lower is better) push pairs with "
           "the same emotion together and pairs with different emotions apart: **L_share** (each side's emotion is "
           "recognisable), **L_intra** (within the face side and within the voice side), **L_cross** (between a face "
           "and the voices) and **L_hard** (the hardest, most confusable pairs). After each epoch (one pass over the "
           "training pairs) the model is scored on validation speakers: the **AUC** says how well it ranks "
           "inconsistent pairs above consistent ones (0.5 = chance, 1 = perfect). The best epoch is kept.")
ui.dataset_banner()
if not ui.need_dataset():
    st.stop()

data = state.dataset()
_init_widgets()
job: TrainingJob | None = state.training_job()
running = state.training_running()

ep = state.train_parts()
st.caption(f"Split from the Data page: seed {ep.seed}, inconsistent-pair rate {ep.rate}"
           + (" (the corpus's own official folds)" if data.official_split is not None else "") + "; "
           + ", ".join(f"{name} {len(p)} pairs ({int(p.is_abnormal.sum())} inconsistent)"
                       for name, p in ep.parts.items())
           + ".")

# ------------------------------------------------------------------------------------------------ settings
st.header("Settings")
state.widget(st.selectbox, "Method", "p_method", list(METHODS), disabled=running,
             format_func=lambda m: METHODS[m].title,
             help="SIR-HCL, or a baseline of the benchmark for comparison: every method trains with the same "
                  "settings, live curves and stop. Only a SIR-HCL run can become the model the other pages use.")
state.widget(st.radio, "Preset", "p_preset", list(PRESET_LABELS), format_func=PRESET_LABELS.get, on_change=apply_preset,
         horizontal=True, disabled=running,
         help="The data's profile holds the best settings we measured for this kind of data; 'paper' is the "
              "paper's; 'fast' is our own optimiser setting for quick runs and is reported as such.")
st.caption("Settings: " + describe_profile(state.data_kind() or "demo",
                                           None if st.session_state["p_preset"] == "profile"
                                           else st.session_state["p_preset"]))
if state.data_kind() == "demo":
    st.caption(f"On the demo, epochs default to {DEMO_EPOCHS} (ours) so a run takes well under a minute on a laptop "
               f"CPU; the paper trains for {PRESETS['paper']['epochs']}. The paper's SGD at lr 1e-4 learns slowly: in "
               f"{DEMO_EPOCHS} epochs it barely moves. To watch the model learn in seconds, pick the fast preset "
               f"(ours) or raise the epochs.")
state.widget(st.number_input, "Epochs", "p_epochs", min_value=1, max_value=1000, step=1, disabled=running)
with st.expander("All settings: optimisation, loss terms and ablations, verdict threshold, schedule, network, "
                 "device", expanded=False):
    c1, c2, c3 = st.columns(3)
    with c1:
        st.subheader("Optimisation")
        state.widget(st.selectbox, "Optimiser", "p_optimizer", ["sgd", "adam"], disabled=running)
        state.widget(st.number_input, "Learning rate", "p_lr", min_value=1e-7, max_value=1.0, format="%.6f", step=1e-4,
                        disabled=running)
        state.widget(st.number_input, "Batch size (pairs)", "p_batch_size", min_value=2, max_value=4096, step=1,
                     disabled=running)
    with c2:
        st.subheader("Loss (eq. 18)")
        state.widget(st.number_input, "λ1 (L_intra weight)", "p_lambda_intra", min_value=0.0, step=0.1,
                     disabled=running)
        state.widget(st.number_input, "λ2 (L_cross weight)", "p_lambda_cross", min_value=0.0, step=0.1,
                     disabled=running)
        state.widget(st.number_input, "λ3 (L_hard weight)", "p_lambda_hard", min_value=0.0, step=0.1, disabled=running)
        state.widget(st.number_input, "k (hard samples per anchor)", "p_k", min_value=1, max_value=256, step=1,
                     disabled=running)
        state.widget(st.number_input, "τ (temperature) [ours, paper has none = 1]", "p_tau", min_value=0.01, step=0.1,
                        disabled=running)
    with c3:
        st.subheader("Ablations and verdict")
        st.caption("Switch a loss term off to reproduce the paper's ablations (Table VI).")
        for term in ("share", "intra", "cross", "hard"):
            state.widget(st.checkbox, f"use L_{term}", f"p_use_{term}", disabled=running)
        state.widget(st.selectbox, "L_hard form", "p_hard_loss", ["bce", "literal"], disabled=running,
                     format_func={"bce": "BCE on (1+cos)/2 [ours, default]", "literal": "literal eq. 13"}.get)
        state.widget(st.selectbox, "Decision threshold", "p_threshold_rule", ["posterior", "youden"], disabled=running,
                     format_func={"posterior": "posterior 0.5 (paper)",
                                  "youden": "Youden index on validation [ours]"}.get)
        youden = st.session_state["p_threshold_rule"] == "youden"
        state.widget(st.checkbox, "Refit on train + valid [ours]", "p_refit", disabled=running or youden,
                     help="After the epoch count is chosen on the validation speakers, a fresh network is trained on "
                          "training + validation speakers for that many epochs and kept. More speakers to learn from "
                          "(RAVDESS: 16 instead of 12); the run takes about twice as long. Not with the Youden "
                          "threshold, which is chosen on the validation pairs.")
        if data.emotion_names is not None:
            state.widget(st.selectbox, "The losses learn", "p_training_labels", ["classes", "emotions"],
                         disabled=running,
                         format_func={"classes": f"the {data.n_classes} classes (paper)",
                                      "emotions": f"the {len(data.emotion_names)} emotions [ours]"}.get,
                         help="This data set also names finer emotions (" + ", ".join(data.emotion_names) + "). "
                              "Training on them can separate, e.g., happy from surprised voices; a pair is still "
                              "called inconsistent only when its classes differ.")
    st.markdown("**Learning-rate schedule, early stopping, network sizes, device**")
    a1, a2, a3 = st.columns(3)
    state.widget(a1.number_input, "Momentum (SGD)", "p_momentum", min_value=0.0, max_value=0.999, step=0.05,
                 disabled=running)
    state.widget(a1.number_input, "Weight decay", "p_weight_decay", min_value=0.0, step=1e-5, format="%.6f",
                 disabled=running)
    state.widget(a1.number_input, "Gradient clip (0 = off)", "p_grad_clip", min_value=0.0, step=0.5, disabled=running)
    state.widget(a2.number_input, "Decay the lr every … epochs", "p_lr_step_epochs", min_value=1, step=1,
                 disabled=running)
    state.widget(a2.number_input, "… by the factor", "p_lr_gamma", min_value=0.0001, max_value=1.0, step=0.05,
                 disabled=running)
    state.widget(a2.number_input, "Early stopping patience (epochs)", "p_patience", min_value=1, step=1,
                 disabled=running)
    state.widget(a3.number_input, "LSTM hidden size", "p_hidden_size", min_value=1, step=16, disabled=running)
    state.widget(a3.number_input, "Embedding size", "p_embedding_size", min_value=1, step=16, disabled=running)
    state.widget(a3.number_input, "Dropout", "p_dropout", min_value=0.0, max_value=0.95, step=0.05, disabled=running)
    state.widget(a3.number_input, "η start (residual scale) [ours]", "p_eta_init", step=0.05, disabled=running)
    devices = ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    state.widget(a1.selectbox, "Device", "p_device", devices, disabled=running,
                 format_func={"auto": "auto (GPU when present)", "cpu": "CPU", "cuda": "GPU (CUDA)"}.get)

    state.widget(a1.number_input, "CPU threads", "p_num_threads", min_value=1, max_value=os.cpu_count() or 1, step=1,
                 disabled=running, help="For these small networks one thread is usually fastest (several threads "
                                        "wait for each other on every tiny operation).")

form = TrainForm.read(st.session_state)  # every setting as drawn above, typed
with ui.guard("device"):
    device = resolve_device(form.device)
    st.markdown("**Device in use:** " + (describe_device(device) if device.type == "cuda" else
                                          f"CPU ({form.num_threads} of {os.cpu_count()} threads)"))


b1, b2, _ = st.columns([1, 1, 4])
loading = state.app().load_job is not None and not state.app().load_job.finished
if loading:
    st.caption("New data is being loaded (Data page); a run can start once it is in.")
if b1.button("Start training", type="primary", disabled=running or loading, key="start_training"):
    with ui.guard("starting training"):
        state.start_training(TrainingJob(
            form.experiment_config(data, state.data_kind(), ep.seed, ep.rate), data, method=form.method,
            num_threads=form.num_threads, compare_with=state.detector(), store=state.run_store(),
            data_kind=state.data_kind() or ""))
        st.rerun()
if b2.button("Stop", disabled=not running, key="stop_training",
             help="Ends after the current batch. The model in use stays; the stopped run's best epoch is compared "
                  "with it and you may choose to use it."):
    job.stop()
    st.rerun()


# ------------------------------------------------------------------------------------------------ live
def _live() -> None:
    with ui.guard("showing the training curves"):
        _draw_live()


def _draw_live() -> None:
    job = state.training_job()
    if job is None:
        st.caption("No training run yet in this session.")
        return
    snap = job.snapshot()
    if snap.finished and state.app().seen_job != id(job):
        st.rerun()  # the full rerun shows the comparison card and updates the sidebar
    if snap.state == "running":
        label = "Stopping after this batch; the model in use stays…" if job.stop_requested else (
            f"Training on {snap.device}: {snap.message or 'preparing'} ({snap.elapsed:.0f} s, "
            f"{charts.time_left(snap.elapsed, snap.fraction)})")
        st.progress(snap.fraction, text=label)
    elif snap.state == "failed":
        st.error(f"Training failed: {snap.error}", icon=":material/error:")
    elif snap.state == "stopped":
        st.warning(f"Training stopped by you after {len(snap.epochs)} epoch(s) in {snap.elapsed:.0f} s; the model "
                   f"in use is unchanged ({snap.kept_network}).", icon=":material/stop_circle:")
    else:
        st.success(f"Training finished after {len(snap.epochs)} epoch(s) in {snap.elapsed:.0f} s on {snap.device}; "
                   f"{snap.kept_network}. The model in use is unchanged until you choose below.",
                   icon=":material/check_circle:")
    curves = reports.loss_curves(snap.steps)
    epochs = reports.epoch_table(snap.epochs)
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.losses(curves, epochs, snap.n_epochs), key="chart_losses")
    right.plotly_chart(charts.validation_auc(epochs, snap.n_epochs), key="chart_auc")
    if len(epochs):
        st.dataframe(epochs, hide_index=True, key="epoch_table", column_config={
            c: st.column_config.NumberColumn(format="%.4f") for c in epochs.columns
            if c not in ("epoch", "phase", "best so far", "learning rate", "seconds")})
    outcome = snap.outcome
    if outcome is not None and outcome.test_metrics is not None:
        m = outcome.test_metrics
        st.markdown("**On the test speakers** (never seen in training), with the verdict threshold of this run:")
        cols = st.columns(4)
        for col, (name, key) in zip(cols, (("AUC", "auc"), ("TPR (inconsistent caught)", "tpr"),
                                           ("FPR (consistent flagged)", "fpr"), ("Accuracy", "accuracy"))):
            value = m.get(key, float("nan"))
            col.metric(name, "n/a" if value is None or math.isnan(value) else f"{value:.3f}")


st.header("Live curves")
st.fragment(_live, run_every=1.0 if running else None)()
with ui.guard("comparing the new model with the model in use"):
    job = state.training_job()
    outcome = None if job is None or not job.finished else job.outcome
    if outcome is not None:
        if outcome.store_error:
            st.warning(f"Not kept: {outcome.store_error}.", icon=":material/warning:")
        if outcome.comparison is not None:
            st.header("New model or the model in use?")
            decision = state.run_decision()
            choice = runs_view.comparison_card(outcome.comparison, key="run", decided=decision,
                                        current_name=state.detector_source())
            if choice == "use":
                state.use_run_model()
                st.rerun()
            elif choice == "keep":
                state.keep_model_in_use()
                st.rerun()

# ------------------------------------------------------------------------------------------------ workspace
st.header("Runs kept in the workspace")
with ui.guard("listing the workspace"):
    runs_view.workspace_runs(data, running)

# ------------------------------------------------------------------------------------------------ checkpoints
st.header("Checkpoints")
det = state.detector()
save_col, load_col = st.columns(2)
with save_col:
    st.subheader("Save the current model")
    if det is None:
        st.caption("Train a model or load a checkpoint first.")
    else:
        st.markdown(f"Current model: {state.detector_source()}")
        with ui.guard("preparing the checkpoint"):
            blob = state.cached(("checkpoint_bytes",), lambda: workspace.checkpoint_bytes(det))
            st.download_button("Download checkpoint (.pt)", blob, file_name="crossemo-model.pt",
                               mime="application/octet-stream", key="download_checkpoint")
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        st.session_state.setdefault("p_save_path", f"checkpoints/{data.name.split()[0].lower()}-{stamp}.pt")
        path = state.widget(st.text_input, "…or save on this machine as", "p_save_path")
        target = None
        with ui.guard("the file name"):
            target = workspace.save_target(path)
        replace = target is not None and target.exists()
        # keyed by the file and its last change: another file, or the file once saved, asks again
        confirmed = replace and st.checkbox(f"Replace the existing {target.name}",
                                            key=f"save_replace:{target}:{target.stat().st_mtime_ns}")
        allowed = target is not None and (confirmed or not replace)
        if st.button("Save", key="save_checkpoint", disabled=not allowed) and allowed:
            with ui.guard("saving the checkpoint"):
                written = det.save(target)
                st.success(f"Saved to {written}")
with load_col:
    st.subheader("Load a checkpoint")
    sources = (["bundled"] if ui.BUNDLED_CHECKPOINT.is_file() else []) + ["path", "upload"]
    source = state.widget(st.radio, "From", "p_ckpt_source", sources, horizontal=True,
                      format_func={"bundled": "bundled demo model", "path": "a path", "upload": "upload"}.get)
    ckpt_path = state.widget(st.text_input, "Checkpoint file", "p_ckpt_path") if source == "path" else None
    uploaded = st.file_uploader("Checkpoint (.pt)", type=["pt"], key="up_ckpt") if source == "upload" else None
    if st.button("Load checkpoint", disabled=running, key="load_checkpoint"):
        with ui.guard("loading the checkpoint"):
            if source == "bundled":
                ui.load_bundled_checkpoint()
            else:
                if source == "path":
                    loaded, where = Detector.load(workspace.resolve_path(ckpt_path or "")), ckpt_path
                else:
                    if uploaded is None:
                        raise ValueError("choose a checkpoint file to upload first.")
                    loaded = workspace.detector_from_bytes(uploaded.getvalue(), name=uploaded.name)
                    where = f"upload {uploaded.name}"
                loaded.check_compatible(data)
                state.set_detector(loaded, f"checkpoint {where}")
            st.rerun()
