"""Train the facial-expression network (crossemo_core.clip.expression) on FER2013 and write its checkpoint + card.

    nice -n 5 python scripts/train_fer_expression.py --data ../shared/data/fer2013/fer2013.npz \
        --out checkpoints/fer_expression.pt --epochs 14

Training split only for training (random similarity warp, flip, brightness/contrast jitter, noise); a fixed
schedule (AdamW + one-cycle), no early stopping and no choice made on PublicTest, which is used only to report
accuracy per class (written into the checkpoint's metadata and printed as the card's table).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.clip.expression import (FER_CLASSES, FER_TO_VALENCE, ExpressionModel, ExpressionNet,  # noqa: E402
                                           train_epoch)


def evaluate(model: ExpressionModel, images: np.ndarray, labels: np.ndarray) -> dict:
    pred = model.logits(images).argmax(1)
    per_class = {c: float((pred[labels == k] == k).mean()) for k, c in enumerate(FER_CLASSES)}
    confusion = np.zeros((7, 7), dtype=int)
    np.add.at(confusion, (labels, pred), 1)
    val_true, val_pred = FER_TO_VALENCE[labels], FER_TO_VALENCE[pred]
    return {"accuracy": float((pred == labels).mean()), "per_class": per_class,
            "n_per_class": np.bincount(labels, minlength=7).tolist(),
            "valence_accuracy": float((val_true == val_pred).mean()),
            "valence_per_class": {n: float((val_pred[val_true == k] == k).mean())
                                  for k, n in enumerate(("negative", "neutral", "positive"))},
            "confusion": confusion.tolist(), "n": int(len(labels))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013/fer2013.npz"))
    ap.add_argument("--out", type=Path, default=Path("checkpoints/fer_expression.pt"))
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--limit", type=int, default=0, help="use only this many training images (smoke tests)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = np.load(args.data)
    images, labels, usage = data["images"], data["labels"].astype(np.int64), data["usage"].astype(str)
    tr, te = np.flatnonzero(usage == "Training"), np.flatnonzero(usage == "PublicTest")
    if args.limit:
        tr = np.random.default_rng(args.seed).choice(tr, args.limit, replace=False)
    x_tr = torch.from_numpy(images[tr].astype(np.float32))
    y_tr = torch.from_numpy(labels[tr])
    counts = np.bincount(labels[tr], minlength=7)
    weights = torch.tensor((counts.sum() / (7 * counts)) ** 0.5, dtype=torch.float32)  # sqrt-inverse frequency
    print(f"training images {len(tr)}, PublicTest {len(te)}; class weights {np.round(weights.numpy(), 2).tolist()}")

    net = ExpressionNet(tuple(args.widths)).to(memory_format=torch.channels_last)
    print(f"parameters: {sum(p.numel() for p in net.parameters()):,}")
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    steps = args.epochs * (len(tr) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=0.1)
    gen = torch.Generator().manual_seed(args.seed)
    model = ExpressionModel(net)
    history = []
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        loss = train_epoch(net, opt, sched, loss_fn, x_tr, y_tr, gen, args.batch)
        ev = evaluate(model, images[te], labels[te])
        history.append({"epoch": epoch, "train_loss": loss, "publictest_accuracy": ev["accuracy"]})
        print(f"epoch {epoch:2d}/{args.epochs}: loss {loss:.4f}  PublicTest accuracy {ev['accuracy']:.4f} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)

    final = evaluate(model, images[te], labels[te])
    train_eval = evaluate(model, images[tr[:5000]], labels[tr[:5000]])
    model.meta = {"trained_on": "FER2013 Training split (28,709 images)" if not args.limit else f"{args.limit} images",
                  "publictest": final, "train_subset_accuracy": train_eval["accuracy"], "history": history,
                  "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "seconds": time.perf_counter() - started, "torch": torch.__version__}
    model.save(args.out)
    print(json.dumps({k: final[k] for k in ("accuracy", "per_class", "valence_accuracy", "valence_per_class")},
                     indent=1))
    print(f"written {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
