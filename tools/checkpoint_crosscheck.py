"""Checkpoint cross-check: ncnn_sr.checkpoint against real PyTorch, both ways.

1. Files torch.save writes (zip and legacy format; float32, float16, bfloat16,
   float64 and int64 tensors; a transposed view, a slice at an offset, a strided
   slice, a 0-d and an empty tensor; a module's state dict under params_ema beside
   params; DataParallel's "module." names) read with read_weights as torch.load
   reads them, value for value.
2. Files tests/checkpoints.py writes without torch (the tests' fixtures) load in
   torch.load(weights_only=True) as the arrays they were written from, so the tests
   check read_weights against what PyTorch really writes.
3. The same both ways for safetensors, where the safetensors package is installed.

Needs torch (CPU is enough), which ncnn-sr itself never needs; says so and fails
where it is missing. Prints one line per check and exits 1 on any mismatch.

    python tools/checkpoint_crosscheck.py
    python tools/checkpoint_crosscheck.py --keep /tmp/checkpoints
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ncnn_sr.checkpoint import read_weights  # noqa: E402


def as_numpy(t) -> np.ndarray:
    """A torch tensor as read_weights returns it: floating point as float32."""
    t = t.detach()
    return (t.float() if t.is_floating_point() else t).contiguous().numpy()


def same(got: dict, want: dict) -> str:
    """Where two {name: array} dicts differ, in words; "" where they do not."""
    if sorted(got) != sorted(want):  # safetensors files keep their names sorted
        return f"names differ: {sorted(got)} != {sorted(want)}"
    for name in want:
        a, b = got[name], want[name]
        if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
            return f"{name}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
    return ""


def torch_checkpoints(torch):
    """(name, object to save, the {name: array} read_weights must give)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Conv2d(8, 4, 1))
    ema = {k: as_numpy(v) for k, v in net.state_dict().items()}
    other = {k: v + 1 if v.is_floating_point() else v for k, v in net.state_dict().items()}
    base = torch.randn(4, 6, dtype=torch.float64)
    views = {
        "f32": base.float(), "f16": base.half(), "bf16": base.bfloat16(), "f64": base,
        "i64": torch.arange(5), "transposed": base.float().t(), "offset": base.float()[1:],
        "strided": base.half()[:, ::2], "bf16_t": base.bfloat16().t(), "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3), "param": torch.nn.Parameter(base.float()),
    }
    yield "module state dict in params_ema beside params", \
        {"params": other, "params_ema": net.state_dict(), "iter": 10}, ema
    yield "dtypes and views", views, {k: as_numpy(v) for k, v in views.items()}
    yield "DataParallel names", collections.OrderedDict(("module." + k, v) for k, v in net.state_dict().items()), ema
    yield "training checkpoint", {"state_dict": net.state_dict(), "args": argparse.Namespace(lr=1e-4),
                                  "best": np.float64(30.1), "optimizer": {"lr": 0.1}}, ema


def fixture_checkpoints():
    """(name, object for tests/checkpoints.py to save, the arrays it holds)."""
    import checkpoints as c
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 6)).astype(np.float32)
    b16 = (a.view(np.uint32) & 0xFFFF0000).view(np.float32)  # what bfloat16 holds exactly
    first, second = c.sharing(a, a[0] * 2, "float16")
    objects = {
        "f32": (c.tensor(a), a), "f16": (c.tensor(a, "float16"), a.astype(np.float16)),
        "bf16": (c.tensor(b16, "bfloat16"), b16), "f64": (c.tensor(a, "float64"), a.astype(np.float64)),
        "i64": (c.tensor(np.arange(5), "int64"), np.arange(5)), "transposed": (c.transposed(a), a.T),
        "first": (first, a.astype(np.float16)), "second": (second, (a[0] * 2).astype(np.float16)),
    }
    yield "tests/checkpoints.py fixtures", {"params_ema": {k: t for k, (t, _) in objects.items()}}, \
        {k: v for k, (_, v) in objects.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="write the checkpoints into this folder and leave them there")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed here: nothing was cross-checked (pip install torch, CPU is enough)")
        return 1
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return crosscheck(torch, args.keep, kept=True)
    with tempfile.TemporaryDirectory(prefix="checkpoint-crosscheck-") as folder:
        return crosscheck(torch, Path(folder), kept=False)


def crosscheck(torch, folder: Path, kept: bool) -> int:
    """Every check, with its files written into ``folder``; 1 on any mismatch."""
    import checkpoints as c

    failures = 0

    def check(what: str, problem: str) -> None:
        nonlocal failures
        failures += bool(problem)
        print(f"{'FAIL' if problem else 'ok  '} {what}{': ' + problem if problem else ''}")

    for i, (name, obj, want) in enumerate(torch_checkpoints(torch)):
        for legacy in (False, True):
            path = folder / f"torch{i}{'-legacy' if legacy else ''}.pth"
            torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
            check(f"torch.save {'legacy' if legacy else 'zip'}: {name}", same(read_weights(path), want))

    for name, obj, arrays in fixture_checkpoints():
        for writer in (c.save_zip, c.save_legacy):
            path = writer(folder / f"fixture-{writer.__name__}.pth", obj)
            loaded = torch.load(path, weights_only=True)["params_ema"]
            check(f"torch.load of {writer.__name__}: {name}", same(
                {k: v.contiguous().numpy() if v.dtype != torch.bfloat16 else as_numpy(v) for k, v in loaded.items()},
                arrays))
            check(f"read_weights of {writer.__name__}: {name}", same(
                read_weights(path), {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in arrays.items()}))

    try:
        from safetensors.torch import load_file, save_file
    except ImportError:
        print("safetensors is not installed here: the .safetensors checks did not run")
    else:
        views = {"f32": torch.randn(3, 4), "f16": torch.randn(3, 4).half(), "bf16": torch.randn(3, 4).bfloat16(),
                 "i64": torch.arange(4)}
        save_file(views, folder / "torch.safetensors")
        check("safetensors save_file", same(read_weights(folder / "torch.safetensors"),
                                            {k: as_numpy(v) for k, v in views.items()}))
        arrays = {k: as_numpy(v) for k, v in views.items()}
        c.save_safetensors(folder / "fixture.safetensors", arrays, {"bf16": "bfloat16", "f16": "float16"})
        check("safetensors load_file of save_safetensors", same(
            {k: as_numpy(v) for k, v in load_file(folder / "fixture.safetensors").items()}, arrays))

    print(f"{failures} failed" if failures else "all agree", *([f"(files in {folder})"] if kept else []))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
