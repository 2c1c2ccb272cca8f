"""The zoo of models users bring (tests/zoo.py: torchvision, timm, Hugging Face; small, random-init),
each exported to a torch.export file (.pt2) and built with `edgeviz build` for the STM32F746, run on
the emulated Cortex-M7 (QEMU mps2-an500, -icount): import paths that read it, build time, peak SRAM,
flash, instructions per inference, bit-exactness with the int8 reference, and int8 against float.

    .venv/bin/python bench/bench_zoo.py [model ...]      # writes results/zoo.json

int8 vs float is measured three times: with the zoo's initialisation (prefix tokens and position
embeddings drawn at std 0.3, as the tests use) and with each library's own (timm and torchvision
start them near zero, which leaves the cls row a few int8 levels in the token matrix's scale), both
on random inputs, and after 300 training steps from the library's init on the built-in digits (on
the 270 test digits).
"""
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "tests"))

from bench_models import print_markdown_table  # noqa: E402
from zoo import EXPORTS, ZOO, export, make_zoo, zoo_inputs  # noqa: E402

from edgeviz.atomic import write_text  # noqa: E402
from edgeviz.device_cli import validate_build  # noqa: E402
from edgeviz.frontend import import_exported, import_onnx, import_torch  # noqa: E402
from edgeviz.frontend import ModelFile
from edgeviz.project import build  # noqa: E402
from edgeviz.quantize import float_logits, quantize, quantize_image, run_int8  # noqa: E402
from edgeviz.runner import api  # noqa: E402
from edgeviz.data import load_digits_data  # noqa: E402

RESULTS = ROOT / "results"
STEPS = 300


def agreement(m, name, calib=None, x=None) -> tuple[float, float]:
    """(top-1 agreement, mean output cosine) of int8 against float, by default on 100 random inputs."""
    g = import_torch(m, torch.zeros((1,) + ZOO[name][1]))
    quantize(g, zoo_inputs(name, 64, seed=1) if calib is None else calib)
    x = zoo_inputs(name, 100, seed=2) if x is None else x
    fl = float_logits(g, x)
    q = np.stack([run_int8(g, quantize_image(g, xi)).reshape(-1) for xi in x]) * g.tensors[g.outputs[0]].scale
    cos = np.sum(q * fl, 1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(fl, axis=1) + 1e-30)
    return float(np.mean(q.argmax(1) == fl.argmax(1))), float(cos.mean())


def library_init(name):
    torch.manual_seed(0)
    m = ZOO[name][0]().eval()
    with torch.no_grad():           # only the classifier: zero-initialised heads tie every logit
        for mod in m.modules():
            if isinstance(mod, torch.nn.Linear) and mod.out_features == 10:
                mod.weight.normal_(0, mod.in_features ** -0.5)
    return m


def digits_at(name, split):
    """The built-in digits at the model's input size, the grey channel repeated to its channels."""
    c, h, _ = ZOO[name][1]
    d = load_digits_data()
    return d.images(split, h).repeat(1, c, 1, 1), d.y[split]


def trained(name, steps=STEPS):
    """The library-initialised model after `steps` Adam steps (batch 32) on the built-in digits."""
    m = library_init(name).train()
    x, y = digits_at(name, "train")
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        i = torch.randint(0, len(x), (32,), generator=gen)
        loss = torch.nn.functional.cross_entropy(m(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


def measure(name: str, d: Path) -> dict:
    m = make_zoo(name)
    shape = ZOO[name][1]
    paths = []
    for how in EXPORTS:
        f = export(m, shape, how, d / f"{name}-{how}")
        try:
            import_exported(f) if how == "pt2" else import_onnx(f)
            paths.append(how)
        except Exception as e:  # noqa: BLE001 - the table says which paths fail
            print(f"{name} {how}: {e}", file=sys.stderr)
    np.savez(d / "calib.npz", x=zoo_inputs(name, 32, seed=1))
    t0 = time.perf_counter()
    s = build(ModelFile(str(d / f"{name}-pt2.pt2")), "stm32f746", d / "b", d / "calib.npz")
    seconds = time.perf_counter() - t0
    prof = api.profile(d / "b", "emulator", n=2)
    v = validate_build(d / "b", "emulator", 10)
    top1, cos = agreement(m, name)
    top1_lib, cos_lib = agreement(library_init(name), name)
    xt, _ = digits_at(name, "test")
    top1_tr, cos_tr = agreement(trained(name), name, digits_at(name, "train")[0][:64].double().numpy(),
                                xt.double().numpy())
    return {"model": name, "imports": len(paths), "import_paths": paths, "build_seconds": round(seconds, 1),
            "peak_sram": s["peak_sram"], "flash": s.get("elf_flash_bytes", s["flash_estimate"]), "macs": s["macs"],
            "instructions": prof["end_to_end"]["median"], "macs_per_instr": s["macs"] / prof["end_to_end"]["median"],
            "bit_exact": f"{v['bit_exact']}/{v['n']}", "top1_int8_vs_float": top1, "cosine": cos,
            "top1_library_init": top1_lib, "cosine_library_init": cos_lib,
            f"top1_trained_{STEPS}": top1_tr, f"cosine_trained_{STEPS}": cos_tr}


def main(names):
    """Measures the models named (default: all) and keeps the other rows already in zoo.json."""
    path = RESULTS / "zoo.json"
    kept = {r["model"]: r for r in json.loads(path.read_text())["rows"]} if path.is_file() else {}
    for n in names:
        with tempfile.TemporaryDirectory() as d:
            kept[n] = measure(n, Path(d))
        print(kept[n], flush=True)
    rows = [kept[n] for n in ZOO if n in kept]
    print_markdown_table(rows, skip=("import_paths",))
    write_text(path, json.dumps({"rows": rows}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:] or list(ZOO))
