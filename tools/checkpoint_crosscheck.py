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
4. RealPLKSR checkpoints with a DySample upsampler, as the tests make them, load
   into a PyTorch RealPLKSR (written here after neosr's and traiNNer-redux's, its
   DySample after the paper's: grid_sample, bilinear, border, align_corners=False)
   with strict=True, and the converted ncnn model gives its output: on the CPU, and
   with ``--gpu N`` on Vulkan device N too, in fp32 and in ncnn's default precision.

Needs torch (CPU is enough), which ncnn-sr itself never needs; says so and fails
where it is missing. Check 4 also runs ncnn and the tests' model builders (so pytest):
a venv of its own for torch needs the system's site-packages too. Prints one line per
check and exits 1 on any mismatch.

    python tools/checkpoint_crosscheck.py
    python tools/checkpoint_crosscheck.py --keep /tmp/checkpoints
    python tools/checkpoint_crosscheck.py --gpu 0
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
    parser.add_argument("--gpu", type=int, help="also run the converted DySample models on this Vulkan device")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        print("torch is not installed here: nothing was cross-checked (pip install torch, CPU is enough)")
        return 1
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return crosscheck(torch, args.keep, kept=True, gpu=args.gpu)
    with tempfile.TemporaryDirectory(prefix="checkpoint-crosscheck-") as folder:
        return crosscheck(torch, Path(folder), kept=False, gpu=args.gpu)


def crosscheck(torch, folder: Path, kept: bool, gpu: int | None = None) -> int:
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

    for problem, what in dysample_checks(torch, folder, gpu):
        check(what, problem)

    print(f"{failures} failed" if failures else "all agree", *([f"(files in {folder})"] if kept else []))
    return 1 if failures else 0


# --- RealPLKSR with DySample against PyTorch ----------------------------------------

def torch_realplksr(torch, dim: int, blocks: int, pdim: int, kernel: int, scale: int, layer_norm: bool,
                    attention: bool, groups: int, scope: bool, end: bool):
    """RealPLKSR as neosr and traiNNer-redux build it, with a DySample upsampler."""
    nn, F = torch.nn, torch.nn.functional

    class LayerNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = nn.Parameter(torch.ones(dim)), nn.Parameter(torch.zeros(dim))

        def forward(self, x):
            u = x.mean(1, keepdim=True)
            s = (x - u).pow(2).mean(1, keepdim=True)
            return self.weight[:, None, None] * ((x - u) / torch.sqrt(s + 1e-6)) + self.bias[:, None, None]

    class Large(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(pdim, pdim, kernel, 1, kernel // 2)

        def forward(self, x):
            return torch.cat([self.conv(x[:, :pdim]), x[:, pdim:]], 1)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1), nn.Sigmoid())

        def forward(self, x):
            return x * self.f(x)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer_norm = LayerNorm() if layer_norm else nn.Identity()
            self.channel_mixer = nn.Sequential(nn.Conv2d(dim, 2 * dim, 3, 1, 1), nn.Mish(),
                                               nn.Conv2d(2 * dim, dim, 3, 1, 1))
            self.lk = Large()
            self.attn = Attention() if attention else nn.Identity()
            self.refine = nn.Conv2d(dim, dim, 1)
            self.norm = nn.Identity() if layer_norm else nn.GroupNorm(4, dim)

        def forward(self, x):
            h = self.attn(self.lk(self.channel_mixer(self.layer_norm(x))))
            return self.norm(self.refine(h)) + x

    class DySample(nn.Module):
        def __init__(self, channels):
            super().__init__()
            n = 2 * groups * scale * scale
            self.offset = nn.Conv2d(channels, n, 1)
            if scope:
                self.scope = nn.Conv2d(channels, n, 1, bias=False)
            steps = (torch.arange(scale) - (scale - 1) / 2) / scale
            rows, cols = torch.meshgrid(steps, steps, indexing="ij")
            self.register_buffer("init_pos", torch.stack([cols, rows]).repeat(1, groups, 1).reshape(1, -1, 1, 1))
            if end:
                self.end_conv = nn.Conv2d(channels, 3, 1)

        def forward(self, x):
            b, _, h, w = x.shape
            gain = self.scope(x).sigmoid() * 0.5 if scope else 0.25
            offset = (self.offset(x) * gain + self.init_pos).view(b, 2, -1, h, w)
            rows, cols = torch.meshgrid(torch.arange(h, dtype=x.dtype) + 0.5, torch.arange(w, dtype=x.dtype) + 0.5,
                                        indexing="ij")
            size = torch.tensor([w, h], dtype=x.dtype).view(1, 2, 1, 1, 1)
            coords = 2 * (torch.stack([cols, rows]).view(1, 2, 1, h, w) + offset) / size - 1
            grid = F.pixel_shuffle(coords.reshape(b, -1, h, w), scale).view(b, 2, -1, h * scale, w * scale)
            grid = grid.permute(0, 2, 3, 4, 1).flatten(0, 1)
            out = F.grid_sample(x.reshape(b * groups, -1, h, w), grid, mode="bilinear", padding_mode="border",
                                align_corners=False).view(b, -1, h * scale, w * scale)
            return self.end_conv(out) if end else out

    class RealPLKSR(nn.Module):
        def __init__(self):
            super().__init__()
            self.feats = nn.Sequential(nn.Conv2d(3, dim, 3, 1, 1), *[Block() for _ in range(blocks)], nn.Dropout2d(0),
                                       nn.Conv2d(dim, 3 * scale * scale, 3, 1, 1))
            self.to_img = DySample(3 * scale * scale)

        def forward(self, x):
            return self.to_img(self.feats(x) + torch.repeat_interleave(x, scale * scale, 1))

    return RealPLKSR()


def run_converted(spec, x: np.ndarray, gpu: int | None, fp32: bool) -> np.ndarray:
    """The model of ``spec`` on ``x`` (C x H x W): on the CPU, or Vulkan device ``gpu``."""
    import ncnn

    net = ncnn.Net()
    net.opt.num_threads = 2
    net.opt.use_vulkan_compute = gpu is not None
    if gpu is not None:
        net.set_vulkan_device(gpu)
    if fp32:
        for option in ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(net.opt, option, False)
    assert net.load_param(str(spec.param_path)) == 0 and net.load_model(str(spec.bin_path)) == 0
    ex = net.create_extractor()
    # A copy of its own, as the engine gives it: on Vulkan the numpy-backed Mat came out
    # as other numbers (lavapipe, ncnn 1.0.20261020).
    ex.input(spec.input_blob, ncnn.Mat(np.ascontiguousarray(x)).clone())
    ret, out = ex.extract(spec.output_blob)
    assert ret == 0, ret
    result = np.array(out).copy()
    del ex, out
    net.clear()
    return result


def dysample_checks(torch, folder: Path, gpu: int | None):
    """(problem or "", what) for each DySample model and device."""
    import checkpoints as c
    from ncnn_sr.convert import convert_weights, write_model
    from test_plksr import random_plksr

    cases = [dict(scale=2, layer_norm=True, dysample="dynamic"), dict(scale=3, layer_norm=False, dysample="static"),
             dict(scale=4, layer_norm=False, dysample="dynamic", attention=False)]
    for i, case in enumerate(cases):
        state = random_plksr(blocks=2, dim=8, pdim=2, kernel=5, seed=10 + i, **case)
        path = c.save_zip(folder / f"dysample{i}.pth", {"params_ema": {k: c.tensor(v) for k, v in state.items()}})
        scale = case["scale"]
        model = torch_realplksr(torch, 8, 2, 2, 5, scale, case["layer_norm"], case.get("attention", True),
                                3 if scale % 2 else 4, case["dysample"] == "dynamic", True).double().eval()
        try:
            model.load_state_dict(torch.load(path, weights_only=True)["params_ema"], strict=True)
        except RuntimeError as e:
            yield str(e).splitlines()[0], f"torch load_state_dict of DySample checkpoint {i}"
            continue
        x = np.random.default_rng(i).uniform(0, 1, (3, 19, 23)).astype(np.float32)
        with torch.no_grad():
            want = model(torch.from_numpy(x.astype(np.float64))[None])[0].numpy()
        converted = convert_weights(state, fp16=False)
        (folder / f"dysample{i}").mkdir(exist_ok=True)
        spec = write_model(converted, folder / f"dysample{i}", "net")
        devices = [(None, True)] + ([(gpu, True), (gpu, False)] if gpu is not None else [])
        for device, fp32 in devices:
            got = run_converted(spec, x, device, fp32)
            error = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
            peak = float(np.abs(want).max())
            mse = float(np.mean((np.clip(got, 0, 1) - np.clip(want, 0, 1)) ** 2)) if got.shape == want.shape else 1
            psnr = float("inf") if mse == 0 else 10 * np.log10(1 / mse)
            where = "CPU" if device is None else f"Vulkan {device}, {'fp32' if fp32 else 'default precision'}"
            limit = 1e-3 * max(1.0, peak) if fp32 else 0.05 * max(1.0, peak)
            yield ("" if error <= limit else f"max error {error:.3g} over {limit:.3g}"), \
                f"{converted.architecture} on {where}: max abs error {error:.2e}, PSNR {psnr:.1f} dB"


if __name__ == "__main__":
    sys.exit(main())
