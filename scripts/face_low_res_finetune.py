"""Fine-tune the face network on faces seen at lower resolution: would it read small or blurred faces better
without losing sharp ones? Writes ``docs/readers_face_low_res.json`` (aggregates only).

    OMP_NUM_THREADS=1 python scripts/face_low_res_finetune.py --data ../shared/data --threads 1

Why: the network reads FER2013's 48x48 faces, but a face in a video is often smaller than 48 pixels (someone filmed
from across a room), and the aligned crop is then an upsampled, blurred face. Read through 32 and 24 pixels and back
up, the shipped network's validation accuracy falls from 0.680 to 0.623 and 0.506 (valence UAR 0.775 to 0.679 and
0.562).

What: from ``checkpoints/fer_expression_v2.pt``, ``--epochs`` more epochs on its 25,709 training rows with its loss and
augmentation (``train_face_reader.train_cnn``), plus, for a share ``--low-res`` of each batch, the face shrunk to a
random side in [``--min-side``, 44] pixels and enlarged back to 48 (bilinear, antialiased), as a small face in a video
reaches the reader; learning rate cosine from ``--lr`` to 1 % of it over the run (AdamW). Read after every epoch on the
validation split (3,000 Training rows never trained on; network argmax with flip averaging): sharp faces and the same
faces through 32 and 24 pixels and through JPEG quality 25. PublicTest is read once, sharp and degraded the same way,
for the shipped network and the last epoch, for nothing but the numbers. With ``--write PATH`` the network of the
last epoch is saved there.

With ``--jpeg SHARE`` a share of each batch (drawn independently of ``--low-res``) also goes through a JPEG round trip
at one random quality in ``--jpeg-quality`` (default 15-60) per batch. The small-face network
``checkpoints/fer_expression_small.pt`` was made this way (card: ``checkpoints/face_reader.md``):

    OMP_NUM_THREADS=1 python scripts/face_low_res_finetune.py --data ../shared/data --threads 1 --low-res 0.3 \
        --min-side 16 --jpeg 0.3 --out docs/readers_face_robust.json --write checkpoints/fer_expression_small.pt
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from crossemo_core.clip.expression import (ExpressionModel, ExpressionNet, augment_batch, softmax,  # noqa: E402
                                           standardise)
from crossemo_core.optim import optimiser_step  # noqa: E402
from crossemo_core.paths import atomic_write_text  # noqa: E402
from train_face_reader import (load_fer2013, scores, through_sides, training_loss,  # noqa: E402
                               validation_split)

SIDES = (32, 24)
JPEG_QUALITY = 25


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """``(N, 48, 48)`` uint8 faces through a JPEG round trip at ``quality``."""
    out = []
    for a in images:
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="JPEG", quality=quality)
        out.append(np.asarray(Image.open(buf)))
    return np.stack(out)


def views(images: np.ndarray) -> dict[str, np.ndarray]:
    """The faces sharp, through each of :data:`SIDES` pixels, and through JPEG."""
    return {"sharp": images, **{f"side_{s}": through_sides(images, np.full(len(images), s)) for s in SIDES},
            f"jpeg_{JPEG_QUALITY}": jpeg(images, JPEG_QUALITY)}


def read_views(net: ExpressionNet, faces: dict[str, np.ndarray], labels: np.ndarray) -> dict[str, dict]:
    model = ExpressionModel(copy.deepcopy(net).eval())
    return {name: scores(labels, softmax(model.mirrored_logits(x)))
            for name, x in faces.items()}


def low_res(batch: torch.Tensor, generator: torch.Generator, share: float, min_side: int) -> torch.Tensor:
    """``(N, 48, 48)`` float faces, a random ``share`` of them shrunk to one random side in [min_side, 44] (one per
    batch) and enlarged back (bilinear, antialiased)."""
    chosen = torch.rand(len(batch), generator=generator) < share
    if not chosen.any():
        return batch
    side = int(torch.randint(min_side, 45, (1,), generator=generator))
    x = batch[chosen][:, None]
    small = torch.nn.functional.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    batch = batch.clone()
    batch[chosen] = torch.nn.functional.interpolate(small, size=(48, 48), mode="bilinear", align_corners=False)[:, 0]
    return batch


def jpeg_coded(batch: torch.Tensor, generator: torch.Generator, share: float,
               quality: tuple[int, int]) -> torch.Tensor:
    """``(N, 48, 48)`` float faces in [0, 255], a random ``share`` of them through a JPEG round trip at one random
    quality in [quality[0], quality[1]] (one per batch): the blocking and ringing a compressed video leaves."""
    chosen = torch.rand(len(batch), generator=generator) < share
    if not chosen.any():
        return batch
    q = int(torch.randint(quality[0], quality[1] + 1, (1,), generator=generator))
    coded = jpeg(batch[chosen].round().to(torch.uint8).numpy(), q)
    batch = batch.clone()
    batch[chosen] = torch.from_numpy(coded.astype(np.float32))
    return batch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--network", type=Path, default=REPO / "checkpoints" / "fer_expression_v2.pt")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--low-res", type=float, default=0.5)
    ap.add_argument("--min-side", type=int, default=16)
    ap.add_argument("--jpeg", type=float, default=0.0, help="share of each batch through a JPEG round trip")
    ap.add_argument("--jpeg-quality", type=int, nargs=2, default=(15, 60), metavar=("LO", "HI"))
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "readers_face_low_res.json")
    ap.add_argument("--write", type=Path, help="save the fine-tuned network here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    images, labels, usage = load_fer2013(args.data)
    train_idx, valid_idx = validation_split(usage, 0)  # the shipped network's split
    test_idx = np.flatnonzero(usage == "PublicTest")
    shipped = ExpressionModel.load(args.network, int8=False)
    net = copy.deepcopy(shipped.net).to(memory_format=torch.channels_last)
    valid_views = views(images[valid_idx])

    x_tr = torch.from_numpy(images[train_idx].astype(np.float32))
    y_tr = torch.from_numpy(labels[train_idx])
    loss_fn = training_loss(labels[train_idx])
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    steps = len(train_idx) // args.batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs * steps, eta_min=args.lr / 100)
    gen = torch.Generator().manual_seed(args.seed)

    rows = [{"epoch": 0, "validation": read_views(net, valid_views, labels[valid_idx])}]
    print(json.dumps(rows[-1]), flush=True)
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for s in range(steps):
            idx = order[s * args.batch:(s + 1) * args.batch]
            faces = low_res(augment_batch(x_tr[idx], gen), gen, args.low_res, args.min_side)
            if args.jpeg:
                faces = jpeg_coded(faces, gen, args.jpeg, tuple(args.jpeg_quality))
            loss = loss_fn(net(standardise(faces).contiguous(memory_format=torch.channels_last)), y_tr[idx])
            optimiser_step(opt, loss)
            sched.step()
            total += float(loss.detach())
        rows.append({"epoch": epoch, "train_loss": round(total / steps, 4),
                     "validation": read_views(net, valid_views, labels[valid_idx]),
                     "seconds": round(time.perf_counter() - t0, 1)})
        print(json.dumps(rows[-1]), flush=True)

    test_views = views(images[test_idx])
    report = {"what": "face network fine-tuned with low-resolution" + (" and JPEG-coded" if args.jpeg else "")
                      + " faces (scripts/face_low_res_finetune.py); "
                      "network argmax with flip averaging; aggregates only",
              "command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
              "settings": {k: getattr(args, k) for k in ("epochs", "lr", "low_res", "min_side", "jpeg",
                                                                "jpeg_quality", "batch", "seed")},
              "epochs": rows,
              "publictest": {"shipped": read_views(shipped.net, test_views, labels[test_idx]),
                             "fine_tuned": read_views(net, test_views, labels[test_idx])}}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["publictest"], indent=1))
    if args.write:
        tuned = ExpressionModel(net.eval(), meta={**shipped.meta, "fine_tuned": {
            "from": args.network.name, "command": report["command"], "settings": report["settings"],
            "history": [{k: r[k] for k in ("epoch", "train_loss")} for r in rows[1:]]}})
        tuned.save(args.write)
        print(f"written {args.write}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
