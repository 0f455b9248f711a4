"""How hard is the synthetic benchmark? Random-init vs trained CNN, and two design choices.

Run on demand (not part of the test suite; about 7 minutes on 2 otherwise idle CPU cores):

    python tests/benchmarks/synthetic_difficulty.py [--ids 120 --cams 4 --images-per-id 12]

It generates a benchmark through the `synthetic` dataset (so the Market-1501 loader's rules
apply: junk dropped, distractors in the gallery), then reports mAP and rank-1 on the test split
under the cross-camera Market protocol (gallery images with the query's pid and camera are
ignored; pid 0 distractors count as non-matches) for:

- a colour-histogram baseline (does colour alone solve it? it should not);
- (a) a randomly initialised ResNet-18-style CNN (torchvision `BasicBlock`s, half the widths by
  default so that training fits a CPU budget; `--width 64` is torchvision's ResNet-18), global
  average (or max) pooling, L2-normalised BNNeck features, cosine distance;
- (b) the same network trained from scratch on the train split (300 iterations of 16 ids x 4
  images, about 2 minutes) with label-smoothed cross-entropy + batch-hard triplet loss (margin
  0.3) and a BNNeck;
- (c) design choices: the same training without the triplet loss, and with max pooling.

The metric is a deliberately plain loop; the platform's evaluator is tested against its own
oracles elsewhere.
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from PIL import Image
from torch import nn
from torchvision.models.resnet import BasicBlock

from reid_platform.data.datasets.synthetic import SyntheticDataset
from reid_platform.data.records import Split

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load_split(split: Split) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Images `(N, 3, H, W)` uint8, pids `(N,)`, camera ids `(N,)` of a split."""
    images = np.stack([np.asarray(Image.open(r.path).convert("RGB")) for r in split.records])
    pids = np.array([r.pid for r in split.records])
    cams = np.array([r.camid for r in split.records])
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), pids, cams


def normalise(batch: torch.Tensor) -> torch.Tensor:
    return (batch.float() / 255.0 - MEAN) / STD


def market_map(
    dist: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray
) -> tuple[float, float]:
    """(mAP, rank-1) under the Market protocol; `dist` is `(Q, G)`, smaller = more similar."""
    aps, hits = [], []
    for i in range(len(q_pids)):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i])) & (g_pids != -1)
        matches = (g_pids[keep] == q_pids[i])[np.argsort(dist[i][keep], kind="stable")]
        if not matches.any():
            continue
        positions = np.flatnonzero(matches)
        aps.append(np.mean((np.arange(len(positions)) + 1) / (positions + 1)))
        hits.append(float(matches[0]))
    return float(np.mean(aps)), float(np.mean(hits))


def resnet18_trunk(width: int) -> nn.Sequential:
    """ResNet-18 without its head, with stage widths `width * (1, 2, 4, 8)` (64 = torchvision's)."""
    layers: list[nn.Module] = [
        nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, stride=2, padding=1),
    ]
    channels = width
    for stage in range(4):
        planes, stride = width * 2**stage, 1 if stage == 0 else 2
        down = None
        if stride != 1 or channels != planes:
            down = nn.Sequential(
                nn.Conv2d(channels, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
            )
        layers += [BasicBlock(channels, planes, stride, down), BasicBlock(planes, planes)]
        channels = planes
    trunk = nn.Sequential(*layers)
    for module in trunk.modules():  # torchvision's ResNet initialisation
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    return trunk


class ReidNet(nn.Module):
    """ResNet-18-style trunk, global pooling, BNNeck and a linear identity classifier."""

    def __init__(self, num_classes: int, pooling: str, width: int) -> None:
        super().__init__()
        self.trunk = resnet18_trunk(width)
        self.pooling = pooling
        self.neck = nn.BatchNorm1d(8 * width)
        self.neck.bias.requires_grad_(False)
        self.classifier = nn.Linear(8 * width, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled features (B, D), BNNeck features (B, D), logits (B, classes))."""
        maps = self.trunk(x)
        pooled = maps.amax(dim=(2, 3)) if self.pooling == "max" else maps.mean(dim=(2, 3))
        embedded = self.neck(pooled)
        return pooled, embedded, self.classifier(embedded)


@torch.no_grad()
def features(model: ReidNet, images: torch.Tensor) -> np.ndarray:
    """L2-normalised BNNeck features `(N, D)`."""
    model.eval()
    out = [model(normalise(images[i : i + 128]))[1] for i in range(0, len(images), 128)]
    return F.normalize(torch.cat(out), dim=1).numpy()


def evaluate_features(q: np.ndarray, g: np.ndarray, test: dict[str, np.ndarray]) -> str:
    m_ap, rank1 = market_map(1.0 - q @ g.T, test["qp"], test["gp"], test["qc"], test["gc"])
    return f"mAP {m_ap:6.1%}  rank-1 {rank1:6.1%}"


def colour_histograms(images: torch.Tensor, bins: int = 8) -> np.ndarray:
    """Hellinger-normalised joint RGB histograms `(N, bins^3)` (a colour-only baseline)."""
    quantised = (images.numpy().astype(np.int64) * bins) // 256
    codes = (quantised[:, 0] * bins + quantised[:, 1]) * bins + quantised[:, 2]
    hist = np.stack([np.bincount(c.ravel(), minlength=bins**3) for c in codes]).astype(float)
    hist = np.sqrt(hist / hist.sum(axis=1, keepdims=True))
    return hist / np.linalg.norm(hist, axis=1, keepdims=True)


def augment(batch: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Random flip, pad-and-crop (10 px) and random erasing on a normalised batch."""
    out = torch.empty_like(batch)
    padded = F.pad(batch, (10, 10, 10, 10))
    height, width = batch.shape[2:]
    for i in range(len(batch)):
        y, x = rng.integers(0, 21, size=2)
        crop = padded[i, :, y : y + height, x : x + width]
        out[i] = crop.flip(2) if rng.random() < 0.5 else crop
        if rng.random() < 0.5:
            eh, ew = (
                int(rng.integers(height // 6, height // 2)),
                int(rng.integers(width // 6, width // 2)),
            )
            ey, ex = int(rng.integers(0, height - eh)), int(rng.integers(0, width - ew))
            out[i, :, ey : ey + eh, ex : ex + ew] = torch.randn(3, eh, ew)
    return out


def batch_hard_triplet(feats: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Batch-hard triplet loss on Euclidean distances of `feats (B, D)`."""
    dist = torch.cdist(feats, feats)
    same = labels[:, None] == labels[None, :]
    hardest_positive = (dist * same).amax(dim=1)
    hardest_negative = dist.masked_fill(same, float("inf")).amin(dim=1)
    return F.relu(hardest_positive - hardest_negative + margin).mean()


def train(
    model: ReidNet,
    images: torch.Tensor,
    labels: np.ndarray,
    *,
    iterations: int,
    margin: float | None,
    seed: int,
) -> float:
    """Train with PK batches (16 ids x 4 images); returns the seconds it took."""
    rng = np.random.default_rng(seed)
    by_label = {label: np.flatnonzero(labels == label) for label in np.unique(labels)}
    optimiser = torch.optim.Adam(model.parameters(), lr=3.5e-4, weight_decay=5e-4)
    started = time.perf_counter()
    model.train()
    for step in range(iterations):
        for group in optimiser.param_groups:
            group["lr"] = (
                3.5e-4 * min(1.0, (step + 1) / 20) * (0.1 if step > 0.8 * iterations else 1)
            )
        chosen = rng.choice(list(by_label), size=16, replace=False)
        index = np.concatenate([rng.choice(by_label[c], size=4, replace=True) for c in chosen])
        batch = augment(normalise(images[index]), rng)
        target = torch.from_numpy(labels[index])
        pooled, _, logits = model(batch)
        loss = F.cross_entropy(logits, target, label_smoothing=0.1)
        if margin is not None:
            loss = loss + batch_hard_triplet(pooled, target, margin)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 25 == 0 or step == iterations - 1:
            print(f"    step {step:4d}  loss {loss.item():.3f}", flush=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ids", type=int, default=120)
    parser.add_argument("--cams", type=int, default=4)
    parser.add_argument("--images-per-id", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=300, help="per trained variant")
    parser.add_argument("--variants", default="b,ce,max", help="trained variants: b, ce, max")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--width", type=int, default=32, help="64: torchvision ResNet-18 widths")
    parser.add_argument("--root", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.root or Path(scratch) / "synthetic"
        dataset = SyntheticDataset(
            root=root,
            ids=args.ids,
            cams=args.cams,
            images_per_id=args.images_per_id,
            height=128,
            width=64,
            seed=args.seed,
        )
        splits = dataset.load()
        train_images, train_pids, _ = load_split(splits.train)
        query, qp, qc = load_split(splits.query)
        gallery, gp, gc = load_split(splits.gallery)
    print(
        f"benchmark: {len(train_images)} train, {len(query)} query, {len(gallery)} gallery "
        f"images ({time.perf_counter() - started:.0f} s)"
    )
    test = {"qp": qp, "gp": gp, "qc": qc, "gc": gc}
    labels = np.unique(train_pids, return_inverse=True)[1]
    classes = int(labels.max()) + 1

    print(
        "colour histogram       ",
        evaluate_features(colour_histograms(query), colour_histograms(gallery), test),
    )
    for pooling in ("avg", "max"):
        torch.manual_seed(args.seed)
        model = ReidNet(classes, pooling, args.width)
        result = evaluate_features(features(model, query), features(model, gallery), test)
        print(f"(a) random init, {pooling} pool", result, flush=True)

    variants = {
        "b": ("(b) CE + triplet, avg pool", "avg", 0.3),
        "ce": ("(c) CE only,      avg pool", "avg", None),
        "max": ("(c) CE + triplet, max pool", "max", 0.3),
    }
    variants = {key: variants[key] for key in args.variants.split(",") if key}
    for title, pooling, margin in variants.values():
        torch.manual_seed(args.seed)
        model = ReidNet(classes, pooling, args.width)
        print(f"{title}: training {args.iterations} iterations", flush=True)
        seconds = train(
            model, train_images, labels, iterations=args.iterations, margin=margin, seed=args.seed
        )
        result = evaluate_features(features(model, query), features(model, gallery), test)
        print(f"{title} ({seconds:.0f} s)", result, flush=True)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
