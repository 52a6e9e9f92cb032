"""Stochastic weight averaging of the shipped face network: would a few more epochs, averaged, lift it? Writes
``docs/readers_face_swa.json`` (aggregates only).

    OMP_NUM_THREADS=1 python scripts/face_swa_experiment.py --data ../shared/data --threads 1 --epochs 3

Starts from ``checkpoints/fer_expression_v2.pt`` (30 epochs, one-cycle) and trains it ``--epochs`` more on the same
25,709 FER2013 Training rows with the same loss and augmentation (``train_face_reader.train_cnn``), each epoch one
cosine cycle of the learning rate from ``--lr`` down to 1 % of it; after every epoch the weights join a running
average (``torch.optim.swa_utils``), whose batch-norm statistics are then recomputed on the training rows (no
augmentation). Every snapshot and every average is read on the validation split (the 3,000 Training rows the
network never saw; the network's own argmax with flip averaging, as the stacker's choice compares it). PublicTest
is read once, for the shipped network and the average with the best validation score, for nothing but the numbers.
The state after every epoch is kept under ``--cache``, so an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from crossemo_core.clip.expression import (ExpressionModel, ExpressionNet, softmax, standardise,  # noqa: E402
                                           train_epoch)
from crossemo_core.paths import atomic_write_text, atomic_writer  # noqa: E402
from train_face_reader import (load_fer2013, load_training_state, save_training_state, scores,  # noqa: E402
                               selection_score, training_loss, validation_split)


def flip_proba(net: ExpressionNet, images: np.ndarray) -> np.ndarray:
    """``(N, 7)`` probabilities of the mean logits of each face and its mirror image (the stacker's flip TTA)."""
    return softmax(ExpressionModel(copy.deepcopy(net).eval()).mirrored_logits(images))


@torch.no_grad()
def refresh_batch_norm(net: ExpressionNet, images: np.ndarray, batch: int = 512) -> None:
    """Batch-norm running statistics of ``net`` recomputed over ``images`` ``(N, 48, 48)`` (cumulative average)."""
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    for i in range(0, len(images), batch):
        net(standardise(images[i:i + batch]).contiguous(memory_format=torch.channels_last))
    net.eval()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--network", type=Path, default=REPO / "checkpoints" / "fer_expression_v2.pt")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "crossemo")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "readers_face_swa.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    images, labels, usage = load_fer2013(args.data)
    train_idx, valid_idx = validation_split(usage, 0)  # the shipped network's split
    test_idx = np.flatnonzero(usage == "PublicTest")
    shipped = ExpressionModel.load(args.network, int8=False).net
    net = copy.deepcopy(shipped).to(memory_format=torch.channels_last)
    average = torch.optim.swa_utils.AveragedModel(net)

    x_tr = torch.from_numpy(images[train_idx].astype(np.float32))
    y_tr = torch.from_numpy(labels[train_idx])
    loss_fn = training_loss(labels[train_idx])
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    steps = len(train_idx) // args.batch
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=steps, eta_min=args.lr / 100)
    gen = torch.Generator().manual_seed(args.seed)

    valid = lambda n: scores(labels[valid_idx], flip_proba(n, images[valid_idx]))  # noqa: E731
    settings = {"network": args.network.name, **{k: getattr(args, k) for k in ("lr", "batch", "seed")}}
    # not the epochs: a run stopped early is read with a smaller --epochs
    state_path = args.cache / "face_swa.state.pt"
    rows: list[dict] = []
    parts = {"net": net, "average": average, "opt": opt, "sched": sched}
    state = load_training_state(state_path, settings, parts, gen)
    if state is not None:
        rows = json.loads(state["rows"])[:args.epochs]
        print(f"resuming after epoch {len(rows)}", flush=True)
    shipped_valid = valid(shipped)
    print(f"shipped network, validation: {shipped_valid}", flush=True)
    for epoch in range(len(rows) + 1, args.epochs + 1):
        t0 = time.perf_counter()
        loss = train_epoch(net, opt, sched, loss_fn, x_tr, y_tr, gen, args.batch)
        average.update_parameters(net)
        averaged = copy.deepcopy(average.module)
        refresh_batch_norm(averaged, images[train_idx])
        rows.append({"epoch": epoch, "train_loss": round(loss, 4), "snapshot": valid(net), "average": valid(averaged),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)
        with atomic_writer(args.cache / f"face_swa.average{epoch}.pt") as f:  # before the state that counts it
            torch.save(averaged.state_dict(), f)
        save_training_state(state_path, settings, parts, gen, {"rows": json.dumps(rows)})

    best = max(rows, key=lambda r: selection_score(r["average"]))
    chosen = ExpressionNet(shipped.widths)
    chosen.load_state_dict(torch.load(args.cache / f"face_swa.average{best['epoch']}.pt", weights_only=True))
    report = {"what": "stochastic weight averaging of fer_expression_v2 (scripts/face_swa_experiment.py); network "
                      "argmax with flip averaging; aggregates only",
              "command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
              "settings": {**settings, "epochs": args.epochs}, "validation_shipped": shipped_valid, "epochs": rows,
              "chosen_average_epochs": best["epoch"],
              "publictest": {"shipped": scores(labels[test_idx], flip_proba(shipped, images[test_idx])),
                             "average": scores(labels[test_idx], flip_proba(chosen, images[test_idx]))}}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["publictest"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
