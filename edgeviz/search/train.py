"""Supernet training: sandwich sampling, AdamW, atomic per-epoch checkpoints, resume, DDP (gloo).

Each step trains four subnets on the same batch and takes one optimizer step: the largest, the
smallest and two random ones (the sandwich rule). The smaller subnets also learn from the largest
one's predictions (in-place distillation). The first ``dense_epochs`` epochs train full-rank subnets
only; then every linear layer's low-rank factors are re-initialised from its trained dense weight by
truncated SVD (MCUFormer's recipe) and the whole space is trained.

Run alone, or under ``torchrun --nproc_per_node N -m edgeviz.search.train ...``: then each process
trains on its shard of every batch, gradients are averaged by DistributedDataParallel over gloo, every
process samples the same subnets (the choice is a function of seed, epoch and step) and rank 0 writes
the checkpoints. A killed run started again with the same output path resumes after the last
completed epoch; one stopped by Ctrl-C (one process) first finishes its step and saves the epoch so far
(``epoch_progress``), and resumes at the next step with the same weights as a run never stopped.
``run_train`` is the ``edgeviz train`` job (and this module's ``main``, for torchrun).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import math
import os
import random
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from edgeviz.errors import EdgevizError
from edgeviz.model import ViTConfig
from edgeviz.atomic import remove_stale_temps, torch_save
from edgeviz.data import Dataset, load_data
from edgeviz.search.interrupt import step_boundary_interrupts
from edgeviz.search.space import SearchSpace, load_space
from edgeviz.search.supernet import Supernet

CKPT_FORMAT = "edgeviz-supernet-train/2"
DEFAULT_EPOCHS = 7        # 60-85 s each on 2 quiet cores: the default search finishes in ~10 min
# Measured on a small digits space (6 epochs): batch 16 at 1e-3 gives the smallest subnet 0.93 val
# accuracy against 0.78 at batch 32 / 5e-4 (twice the steps for the same images, each larger).
DEFAULT_LR = 1e-3
DEFAULT_BATCH = 16


@dataclass
class TrainSettings:
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH
    lr: float = DEFAULT_LR
    weight_decay: float = 0.05
    warmup_frac: float = 0.05
    label_smoothing: float = 0.1
    distill: bool = True
    num_random: int = 2
    dense_epochs: int = -1          # -1: epochs // 4
    seed: int = 0
    step_delay: float = 0.0         # testing only: sleep after each step (lets a test kill mid-run)

    def dense(self) -> int:
        return self.epochs // 4 if self.dense_epochs < 0 else self.dense_epochs


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (a
    container's `--cpus`), which os.cpu_count() and torch's default thread count both ignore."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def training_threads(world: int = 1) -> int:
    """torch's intra-op threads for training and evaluation: EDGEVIZ_THREADS (or OMP_NUM_THREADS) when
    set, else the cores no one else is using (the usable cores less the 1-minute load average when the
    job starts, at least one), never more than this process's share of the usable cores. Measured on 2
    cores: alone, torch's two threads ran the default search in 553 s (0.93 s a supernet step); beside
    other work, one thread ran a supernet step 1.8x faster than two (load about 2) and 2.7x faster
    beside two busy processes, where a thread pool spins waiting for cores it does not get
    (bench/bench_threads.py)."""
    share = max(1, usable_cores() // max(1, world))
    asked = os.environ.get("EDGEVIZ_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if not asked:
        try:
            idle = usable_cores() - os.getloadavg()[0]
        except OSError:             # no load average on this system: assume others are busy
            idle = 1
        return max(1, min(share, int(idle + 0.5) // max(1, world)))
    try:
        return max(1, min(share, int(asked)))
    except ValueError:
        raise EdgevizError(f"EDGEVIZ_THREADS / OMP_NUM_THREADS must be a whole number (got {asked!r})") from None


def init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); gloo works on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    torch.set_num_threads(training_threads(world))
    return _dist_info()


def subnets_for_step(space: SearchSpace, seed: int, epoch: int, step: int, n_random: int,
                     dense: bool) -> list[ViTConfig]:
    """Sandwich: largest, smallest, n_random random; a pure function of (seed, epoch, step)."""
    rng = random.Random(f"{seed}:{epoch}:{step}")
    cfgs = [space.largest(), space.smallest()] + [space.sample(rng) for _ in range(n_random)]
    if dense:
        cfgs = [replace(c, rank_ratios=(1.0,) * c.depth) for c in cfgs]
    return cfgs


def lr_at(step: int, total: int, s: TrainSettings) -> float:
    warm = max(1, int(total * s.warmup_frac))
    if step < warm:
        return s.lr * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return s.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


@torch.no_grad()
def accuracy(net: torch.nn.Module, data: Dataset, cfg: ViTConfig, split: str = "val", batch: int = 256) -> float:
    was = net.training
    net.eval()
    x, y = data.images(split, cfg.img_size), data.y[split]
    correct = 0
    for i in range(0, len(y), batch):
        out = net(x[i:i + batch], cfg) if isinstance(net, Supernet) else net(x[i:i + batch])
        correct += int((out.argmax(1) == y[i:i + batch]).sum())
    net.train(was)
    return correct / max(1, len(y))


def load_checkpoint(path: str | Path) -> dict:
    return read_checkpoint(path)[0]


def read_checkpoint(path: str | Path) -> tuple[dict, str]:
    """The checkpoint and a digest of the very bytes it was read from. Read once: `edgeviz train` may
    replace the file meanwhile (atomically), and a digest taken from the path later would name the
    next epoch's weights, not the ones loaded."""
    try:
        raw = Path(path).read_bytes()
        blob = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise EdgevizError(f"supernet checkpoint {path} does not exist") from None
    except Exception as e:  # noqa: BLE001 - truncated / foreign files
        raise EdgevizError(f"cannot read supernet checkpoint {path}: {e}") from None
    if not isinstance(blob, dict) or blob.get("format") != CKPT_FORMAT:
        raise EdgevizError(f"{path} is not an edgeviz supernet checkpoint (train with `edgeviz train`)")
    return blob, hashlib.sha256(raw).hexdigest()[:16]


def supernet_from_checkpoint(blob: dict) -> Supernet:
    return Supernet.from_blob(blob["supernet"])


class ProgressBar:
    """A rich progress bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int, desc: str):
        self.p = None
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self.p = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                              TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                              console=Console(stderr=True), transient=False)
            self.p.start()
            self.task = self.p.add_task(desc, total=total, info="")

    def advance(self, n: int = 1, info: str = "") -> None:
        if self.p:
            self.p.update(self.task, advance=n, info=info)

    def close(self) -> None:
        if self.p:
            self.p.stop()


def train_supernet(space: SearchSpace, data: Dataset, ckpt_path: str | Path, settings: TrainSettings | None = None,
                   log: Callable[[str], None] | None = None, progress: bool = False) -> tuple[Supernet, dict]:
    """Train (or resume training) a supernet; returns it and the checkpoint's summary.

    ``ckpt_path`` is written atomically after every epoch (by rank 0), and on Ctrl-C after the step in
    flight (one process only: under torchrun the ranks would stop at different steps); it is read at
    start to resume. Epochs take 60-85 s with the defaults, so a kill (no chance to save) costs at most
    that much."""
    s = settings or TrainSettings()
    rank, world = _dist_info()
    log = log or (lambda m: print(m, file=sys.stderr))
    say = (lambda m: log(m)) if rank == 0 else (lambda m: None)
    space = space.with_data(data.in_chans, data.num_classes)
    ckpt_path = Path(ckpt_path)
    torch.manual_seed(s.seed)
    net = Supernet(space)
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    start_epoch, history, elapsed = 0, [], 0.0
    partial = None                  # the interrupted epoch's progress: {"step", "loss_sum", "n_loss", "seconds"}
    if rank == 0:
        remove_stale_temps(ckpt_path)          # left by a kill during a save (not a live writer's)
    if ckpt_path.exists():
        blob = load_checkpoint(ckpt_path)
        if blob["space_digest"] != space.digest():
            raise EdgevizError(f"{ckpt_path} was trained on another search space; use another output path")
        if blob["data_digest"] != data.digest:
            raise EdgevizError(f"{ckpt_path} was trained on other data ({blob['data']['name']}); "
                               "use another output path")
        net.load_state_dict(blob["supernet"]["state_dict"])
        if blob.get("optimizer"):
            opt.load_state_dict(blob["optimizer"])
        start_epoch, history, elapsed = blob["epochs_done"], blob["history"], blob.get("train_seconds", 0.0)
        partial = blob.get("epoch_progress")
        if start_epoch < s.epochs:
            say(f"resuming supernet training from {ckpt_path} after epoch {start_epoch}"
                + (f", step {partial['step']}" if partial else ""))
    model = net
    if world > 1:
        # Sliced parameters get gradients with the slice's strides; DDP copies them, which is fine.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        model = DistributedDataParallel(net, find_unused_parameters=True)
    n_train = int(data.y["train"].shape[0])
    per_rank = max(1, s.batch_size // world)
    steps_per_epoch = max(1, n_train // s.batch_size)   # drop the last partial batch
    total_steps = steps_per_epoch * s.epochs
    bar = ProgressBar(progress and rank == 0 and start_epoch < s.epochs, total_steps, "supernet")
    bar.advance(start_epoch * steps_per_epoch + (partial["step"] if partial else 0))
    xres: dict[int, torch.Tensor] = {}
    for epoch in range(start_epoch, s.epochs):
        first_step, loss_sum, n_loss, seconds_before = 0, 0.0, 0, 0.0
        if partial and epoch == start_epoch:
            first_step, loss_sum, n_loss = partial["step"], partial["loss_sum"], partial["n_loss"]
            seconds_before = partial["seconds"]
        t0 = time.time() - seconds_before
        if epoch == s.dense() and first_step == 0:       # done already when resumed in that epoch
            say(f"epoch {epoch}: low-rank factors <- truncated SVD of the trained dense weights")
            net.refresh_low_rank()
            if world > 1:
                for p in net.parameters():
                    dist.broadcast(p.data, 0)
        net.train()
        g = torch.Generator().manual_seed(s.seed * 1000003 + epoch)
        perm = torch.randperm(n_train, generator=g)

        def save_partial(steps_done: int) -> None:
            progress_now = {"step": steps_done, "loss_sum": loss_sum, "n_loss": n_loss, "seconds": time.time() - t0}
            torch_save(_checkpoint(net, opt, space, data, s, epoch, history, elapsed, progress_now), ckpt_path)
            say(f"interrupted: saved epoch {epoch + 1} up to step {steps_done}/{steps_per_epoch} in {ckpt_path}")

        with step_boundary_interrupts(world == 1 and rank == 0) as interrupt:
            for step in range(first_step, steps_per_epoch):
                idx = perm[step * s.batch_size:(step + 1) * s.batch_size][rank::world][:per_rank]
                y = data.y["train"][idx]
                lr = lr_at(epoch * steps_per_epoch + step, total_steps, s)
                for pg in opt.param_groups:
                    pg["lr"] = lr
                opt.zero_grad(set_to_none=True)
                teacher = None
                for i, cfg in enumerate(subnets_for_step(space, s.seed, epoch, step, s.num_random, epoch < s.dense())):
                    if cfg.img_size not in xres:
                        xres[cfg.img_size] = data.images("train", cfg.img_size)
                    x = xres[cfg.img_size][idx]
                    out = model(x, cfg)
                    loss = F.cross_entropy(out, y, label_smoothing=s.label_smoothing)
                    if i == 0:
                        teacher = out.detach().softmax(-1)
                        # distil only from a teacher that is better than guessing on this batch
                        use_kd = s.distill and float((teacher.argmax(-1) == y).float().mean()) >= 0.5
                    elif use_kd:
                        kd = F.kl_div(out.log_softmax(-1), teacher, reduction="batchmean")
                        loss = 0.5 * loss + 0.5 * kd
                    loss.backward()
                    loss_sum += float(loss.detach())
                    n_loss += 1
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                bar.advance(1, f"epoch {epoch + 1}/{s.epochs} loss {loss_sum / max(1, n_loss):.3f}")
                if s.step_delay:
                    time.sleep(s.step_delay)
                interrupt.stop_if_requested(lambda: save_partial(step + 1))
        elapsed += time.time() - t0
        rec = {"epoch": epoch + 1, "loss": loss_sum / max(1, n_loss), "seconds": time.time() - t0}
        if rank == 0:
            rec["val_acc_largest"] = accuracy(net, data, space.largest())
            rec["val_acc_smallest"] = accuracy(net, data, space.smallest())
            history.append(rec)
            torch_save(_checkpoint(net, opt, space, data, s, epoch + 1, history, elapsed), ckpt_path)
            say(f"epoch {epoch + 1}/{s.epochs}: loss {rec['loss']:.3f}, val acc largest "
                f"{rec['val_acc_largest']:.3f} smallest {rec['val_acc_smallest']:.3f}, {rec['seconds']:.1f} s")
        if world > 1:
            dist.barrier()
    bar.close()
    summary = {"epochs_done": max(start_epoch, s.epochs), "history": history, "train_seconds": elapsed,
               "checkpoint": str(ckpt_path)}
    return net, summary


def _checkpoint(net: Supernet, opt, space: SearchSpace, data: Dataset, s: TrainSettings, epochs_done: int,
                history: list, elapsed: float, epoch_progress: dict | None = None) -> dict:
    return {"format": CKPT_FORMAT, "supernet": net.blob(), "optimizer": opt.state_dict(),
            "epochs_done": epochs_done, "epoch_progress": epoch_progress, "settings": asdict(s), "history": history,
            "train_seconds": elapsed,
            "space_digest": space.digest(), "data_digest": data.digest, "data": data.info()}


def as_space(space) -> SearchSpace:
    """``space`` itself if it is a SearchSpace, else the TOML file it names (None: the shipped default)."""
    return space if isinstance(space, SearchSpace) else load_space(space)


def data_for(data, space: SearchSpace, seed: int = 0, subset: int = 0) -> Dataset:
    """``data`` itself if it is a Dataset, else the folder or .npz it names (None: built-in digits) at the
    space's largest resolution; ``subset``: only its first N train images (tests)."""
    d = data if isinstance(data, Dataset) else load_data(data, seed=seed, base=max(space.img_size))
    return d.subset(subset) if subset else d


def run_train(space=None, data=None, epochs: int = DEFAULT_EPOCHS, output: str | Path = "supernet.pt",
              batch_size: int = DEFAULT_BATCH, lr: float | None = None, seed: int = 0, progress: bool = True, subset: int = 0,
              step_delay: float = 0.0, log: Callable[[str], None] | None = None) -> tuple[Supernet, dict]:
    """Train (or resume) the supernet into ``output``. Under torchrun, joins the gloo process group."""
    if epochs < 1:
        raise EdgevizError(f"--epochs must be at least 1 (got {epochs})")
    rank, world = init_distributed()
    try:
        sp = as_space(space)
        d = data_for(data, sp, seed, subset)
        settings = TrainSettings(epochs=epochs, batch_size=batch_size, seed=seed, step_delay=step_delay)
        if lr is not None:
            settings.lr = lr
        t0 = time.perf_counter()
        net, summary = train_supernet(sp, d, output, settings, log=log, progress=progress)
        summary["wall_seconds"] = time.perf_counter() - t0
        summary["world_size"], summary["rank"] = world, rank
        if rank == 0 and summary["history"]:
            h = summary["history"][-1]
            (log or (lambda m: print(m, file=sys.stderr)))(
                f"supernet {output}: {summary['epochs_done']} epochs, {summary['train_seconds']:.1f} s training, "
                f"val acc largest {h['val_acc_largest']:.3f} smallest {h['val_acc_smallest']:.3f}")
        return net, summary
    finally:
        if world > 1:
            dist.destroy_process_group()


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = p or argparse.ArgumentParser(prog="edgeviz train", description="Train the weight-sharing supernet.")
    p.add_argument("--space", default=None, help="search space TOML (default: the shipped digits space)")
    p.add_argument("--data", default=None, help="folder (one subfolder per class) or .npz; default: digits")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"epochs (default {DEFAULT_EPOCHS})")
    p.add_argument("-o", "--output", default="supernet.pt", help="checkpoint path (resumed if it exists)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--lr", type=float, default=DEFAULT_LR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--subset", type=int, default=0, help=argparse.SUPPRESS)       # tests: first N train images
    p.add_argument("--step-delay", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: kill mid-run
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_train(space=args.space, data=args.data, epochs=args.epochs, output=args.output,
                  batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=not args.no_progress,
                  subset=args.subset, step_delay=args.step_delay)
    except EdgevizError as e:
        print(f"edgeviz: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:               # the epoch so far is saved (train_supernet)
        print("edgeviz: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
