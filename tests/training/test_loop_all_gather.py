"""`GlobalBatchObjective` on two real gloo processes against one process holding the whole batch."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reid_platform.config.losses import LossesConfig
from reid_platform.losses.build import build_loss
from reid_platform.modeling.output import ModelOutput

WORLD, PER_RANK = 2, 8

WORKER = """
import os, sys
import torch, torch.distributed as dist, torch.multiprocessing as mp
from reid_platform.config.losses import LossesConfig
from reid_platform.losses.build import build_loss
from reid_platform.modeling.output import ModelOutput
from reid_platform.training.all_gather import GlobalBatchObjective

def run(rank, world, per_rank, port, inputs, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    batch = torch.load(inputs)
    rows = slice(rank * per_rank, (rank + 1) * per_rank)
    features = batch["features"][rows].clone().requires_grad_()
    logits = batch["logits"][rows].clone().requires_grad_()
    objective = GlobalBatchObjective(build_loss(LossesConfig(triplet={"enabled": True})))
    output = ModelOutput(embedding=features, logits=(logits,), metric_features=(features,))
    terms = objective(output, batch["targets"][rows])
    torch.stack(list(terms.values())).sum().backward()
    detached = {name: value.detach() for name, value in terms.items()}
    torch.save({"terms": detached, "features": features.grad, "logits": logits.grad},
               f"{out}/rank{rank}.pt")
    dist.destroy_process_group()

if __name__ == "__main__":
    port, inputs, out, world, per_rank = sys.argv[1:]
    # fork: the children inherit the imports (spawning re-imports torch in each).
    args = (int(world), int(per_rank), port, inputs, out)
    mp.start_processes(run, args=args, nprocs=int(world), start_method="fork")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_metric_terms_see_the_global_batch_and_gradients_match(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    n = WORLD * PER_RANK
    batch = {
        "features": torch.randn(n, 6, generator=generator),
        "logits": torch.randn(n, n // 2, generator=generator),
        # 4 ids × 2 images per rank (a P×K shard), ids differ between ranks.
        "targets": torch.arange(n) // 2,
    }
    torch.save(batch, tmp_path / "batch.pt")
    (tmp_path / "worker.py").write_text(WORKER)
    command = [sys.executable, str(tmp_path / "worker.py"), str(free_port())]
    arguments = [str(tmp_path / "batch.pt"), str(tmp_path), str(WORLD), str(PER_RANK)]
    subprocess.run([*command, *arguments], check=True, timeout=120)

    loss = build_loss(LossesConfig(triplet={"enabled": True}))
    features = batch["features"].clone().requires_grad_()
    output = ModelOutput(embedding=features, metric_features=(features,), logits=(batch["logits"],))
    whole = loss(output, batch["targets"])["triplet"]
    (feature_grad,) = torch.autograd.grad(whole, features)
    for rank in range(WORLD):
        saved = torch.load(tmp_path / f"rank{rank}.pt")
        rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        assert list(saved["terms"]) == ["cross_entropy", "triplet"]
        # Every rank computes the triplet loss of the whole batch …
        torch.testing.assert_close(saved["terms"]["triplet"], whole.detach())
        # … and its rows get the gradient summed over ranks (DDP's averaging divides it back).
        torch.testing.assert_close(saved["features"], WORLD * feature_grad[rows])
        # Cross-entropy stays on the rank's own logits.
        logits = batch["logits"][rows].clone().requires_grad_()
        output = ModelOutput(embedding=logits, logits=(logits,), metric_features=(logits,))
        local = loss(output, batch["targets"][rows])["cross_entropy"]
        torch.testing.assert_close(saved["terms"]["cross_entropy"], local.detach())
        torch.testing.assert_close(saved["logits"], torch.autograd.grad(local, logits)[0])
