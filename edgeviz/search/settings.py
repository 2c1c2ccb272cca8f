"""The search's settings as one frozen dataclass: what ``edgeviz search``'s flags set, with their defaults.

``SearchSettings`` checks its values when it is made, so a bad one is a one-line EdgevizError naming the
flag before any work starts; sizes and counts may be given as text (the CLI hands them over as typed)
and are kept as whole numbers (bytes, counts). ``edgeviz.search.run.run_search`` takes one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeviz.data import check_builtin
from edgeviz.errors import EdgevizError
from edgeviz.search.budget import parse_duration, parse_size
from edgeviz.targets import load_target

DEFAULT_TARGET = "stm32f746"
DEFAULT_OUT = "search-out"
DEFAULT_POPULATION = 20
DEFAULT_GENERATIONS = 10
# The second stage (see run_search). Measured on digits with the default 7-epoch supernet, over 11
# finalists of the 320KB and 128KB searches: the Spearman correlation of val accuracy with that of the
# same subnet trained alone (546 steps) is 0.00 for the supernet's estimate and 0.57 / 0.71 / 0.65 /
# 0.75 after 50 / 100 / 200 / 400 fine-tuning steps; lr 1e-3 beat 5e-4 and 2e-3 (at 200 steps). So the
# stage is successive halving: 9 finalists x 33 steps, the best 3 x 100, the best one x 300: 27 s wall
# on 2 cores at 320KB (6 finalists x 300 steps each took 98 s, 60 of them for the 400-token one, and
# chose the same subnet); at 128KB it chose a subnet 0.4 points better on test in 22 s.
DEFAULT_FINALISTS = 9
DEFAULT_FINETUNE_STEPS = 300
FINETUNE_LR = 1e-3


def whole(value: Any, flag: str, least: int) -> int:
    """A count given as int or text (the CLI passes text, so a bad value is one EdgevizError line)."""
    try:
        v = int(str(value).strip()) if not isinstance(value, (bool, float)) else None
    except ValueError:
        v = None
    if v is None or v < least:
        raise EdgevizError(f"{flag} must be a whole number >= {least} (got {value!r})")
    return v


@dataclass(frozen=True)
class SearchSettings:
    """Everything a search run is told. Field names are the ``edgeviz search`` flags (``--supernet`` ->
    ``supernet``, ``-o/--out`` -> ``out``); the defaults are the flags' defaults."""

    budget: int
    """Peak SRAM budget in bytes; text such as "320KB", "320KiB" or "0.3125MB" is accepted (1 KB = 1024 B)."""
    target: str = DEFAULT_TARGET
    """Board (targets/*.toml) whose planner judges memory."""
    flash: int | None = None
    """Flash limit in bytes (text accepted like ``budget``); None: the target's flash."""
    data: Any = None
    """Built-in data ("digits", "shapes": edgeviz.datagen), an image folder (one subfolder per class), an .npz
    with x, y, or an edgeviz.data.Dataset; None: built-in digits."""
    supernet: str | Path | None = None
    """A trained supernet checkpoint (``edgeviz train``); None: train one into ``out``/supernet.pt (or resume it)."""
    epochs: int | None = None
    """Supernet training epochs when training; None: edgeviz.search.train.DEFAULT_EPOCHS."""
    population: int = DEFAULT_POPULATION
    """Evolution's population size (>= 2)."""
    generations: int = DEFAULT_GENERATIONS
    """Evolution's generations (>= 1); a finished search resumed with more goes on from where it stopped."""
    out: Path = Path(DEFAULT_OUT)
    """Output folder (subnet.json, model.pt, model.onnx, pareto.*, search.log, state for resuming)."""
    json: bool = False
    """Print subnet.json on stdout when done."""
    space: Any = None
    """Search space TOML file or an edgeviz.search.space.SearchSpace; None: the shipped default space."""
    macs: int | None = None
    """Optional MAC limit per inference."""
    latency: Any = None
    """Optional latency limit per inference in seconds (text such as "50ms" accepted): the backend's estimate
    (MCU: the kernels' instruction model at the target's clock; FPGA: the HLS estimate at the board clock)."""
    seed: int = 0
    """Seed of the supernet training, the search and the fine-tuning."""
    evolve_space: bool = False
    """First shift the rank-ratio and patch windows of the space by fit rate and error (MCUFormer)."""
    kv_per_head: bool = False
    """Judge candidates with K and V made one head at a time (``edgeviz build --kv-per-head``: a lower
    attention peak for 12-42% more instructions, kept per candidate only where it plans a smaller arena);
    MCU targets only. The search's folder records it, and a build of that folder uses it."""
    baselines: bool = False
    """Also run random search and uniform ViTs (from scratch and through the same two stages)."""
    finalists: int = DEFAULT_FINALISTS
    """Finalists fine-tuned by successive halving after the search (>= 0; 0: export the search's choice as is)."""
    finetune_steps: int = DEFAULT_FINETUNE_STEPS
    """Fine-tuning steps of the winner, the last rung (>= 1)."""
    progress: bool | None = None
    """Progress bars on stderr; None: only on a terminal and when neither ``json`` nor ``quiet``."""
    quiet: bool = False
    """No log lines on stderr (search.log still gets them); the CLI sets it with --json."""
    subset: int = 0
    """Tests only: train and evaluate on the first N train images (0: all)."""
    step_delay: float = 0.0
    """Tests only (hidden flag --step-delay): seconds of sleep after each training step and each supernet
    evaluation, so a test can interrupt a stage in the middle."""

    def __post_init__(self) -> None:
        # Checked in the order the search checked its arguments before; each failure is one line.
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 - frozen
        set_("budget", parse_size(self.budget, "budget"))
        if self.flash is not None:
            set_("flash", parse_size(self.flash, "flash limit"))
        if self.latency is not None:
            set_("latency", parse_duration(self.latency))
        if self.population < 2 or self.generations < 1:
            raise EdgevizError("--population must be >= 2 and --generations >= 1")
        set_("finalists", whole(self.finalists, "--finalists", 0))
        set_("finetune_steps", whole(self.finetune_steps, "--finetune-steps", 1))
        set_("out", Path(self.out))
        check_builtin(self.data)
        if self.kv_per_head and load_target(self.target).kind == "fpga":
            raise EdgevizError(f"--kv-per-head: {self.target} builds without it (the FPGA attention templates "
                               "have no per-head form); leave it out for FPGA targets")


__all__ = ["DEFAULT_FINALISTS", "DEFAULT_FINETUNE_STEPS", "DEFAULT_GENERATIONS", "DEFAULT_OUT", "DEFAULT_POPULATION",
           "DEFAULT_TARGET", "FINETUNE_LR", "SearchSettings", "whole"]
