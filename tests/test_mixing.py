"""Two trainings of one network mixed as ncnn models: Real-ESRGAN's denoise strength
(-dn), on converted models whose weights the tests make."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import ctrl_c_once_made, picture
from test_cli import run
from test_convert import random_compact, random_rrdb

from ncnn_sr import Upscaler
from ncnn_sr.convert import convert_weights, interpolate_weights, write_model
from ncnn_sr.errors import ModelError, SettingError
from ncnn_sr.mixing import denoised_model, mix_models
from ncnn_sr.models import resolve_model
from ncnn_sr.param_file import parse_param, weight_arrays


def pair(tmp_path, make=random_compact, **kw):
    a, b = make(seed=3, **kw), make(seed=4, **kw)
    write_model(convert_weights(a), tmp_path, "realesr-general-x4v3")
    write_model(convert_weights(b), tmp_path, "realesr-general-wdn-x4v3")
    return a, b, resolve_model(tmp_path / "realesr-general-x4v3.param"), \
        resolve_model(tmp_path / "realesr-general-wdn-x4v3.param")


def weights(spec) -> np.ndarray:
    data = spec.bin_path.read_bytes()
    graph = parse_param(spec.param_path.read_bytes())
    return np.concatenate([np.frombuffer(data, t, n, o).astype(np.float32) for o, t, n in weight_arrays(graph, data)])


@pytest.mark.parametrize("make, kw", [(random_compact, {"upscale": 4}), (random_rrdb, {})])
def test_a_mix_is_the_mix_of_the_pytorch_weights_to_float16s_rounding(tmp_path, make, kw):
    a, b, first, second = pair(tmp_path, make, **kw)
    (tmp_path / "out").mkdir()
    (tmp_path / "ref").mkdir()
    mixed = mix_models(first, second, 0.3, tmp_path / "out", "mix")
    reference = write_model(convert_weights(interpolate_weights(a, b, 0.3)), tmp_path / "ref", "ref")
    got, want = weights(mixed), weights(reference)
    assert got.shape == want.shape and np.abs(got - want).max() <= 2e-3 * np.abs(want).max()
    assert mixed.scale == first.scale and mixed.param_path.read_bytes() == first.param_path.read_bytes()
    image = picture(12, 10)
    with Upscaler(mixed, device=-1) as up, Upscaler(reference, device=-1) as ref:
        assert np.abs(up.upscale(image).astype(int) - ref.upscale(image)).max() <= 1


def test_the_ends_of_the_mix_are_the_two_models_themselves(tmp_path):
    _, _, first, second = pair(tmp_path, upscale=4)
    assert mix_models(first, second, 1, tmp_path, "one").bin_path.read_bytes() == first.bin_path.read_bytes()
    assert mix_models(first, second, 0, tmp_path, "zero").bin_path.read_bytes() == second.bin_path.read_bytes()


def test_two_networks_are_not_mixed(tmp_path):
    write_model(convert_weights(random_compact(upscale=4)), tmp_path, "a")
    write_model(convert_weights(random_compact(convs=3, upscale=4)), tmp_path, "b")
    with pytest.raises(ModelError, match="are not one network"):
        mix_models(resolve_model(tmp_path / "a.param"), resolve_model(tmp_path / "b.param"), 0.5, tmp_path, "m")
    with pytest.raises(SettingError, match="from 0 to 1"):
        mix_models(resolve_model(tmp_path / "a.param"), resolve_model(tmp_path / "a.param"), 1.5, tmp_path, "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.param", "b.bin", "b.param"]


def test_denoise_mixes_the_general_model_as_real_esrgans_dn(tmp_path):
    pair(tmp_path, upscale=4)
    Image.fromarray(picture(8, 9)).save(tmp_path / "in.png")
    outputs = {}
    for strength in ("0", "0.5", "1"):
        run("-i", tmp_path / "in.png", "-o", tmp_path / f"{strength}.png", "-m", tmp_path, "-n",
            "realesr-general-x4v3", "-dn", strength, "-g", "-1")
        outputs[strength] = np.asarray(Image.open(tmp_path / f"{strength}.png"), dtype=int)
    run("-i", tmp_path / "in.png", "-o", tmp_path / "plain.png", "-m", tmp_path, "-n", "realesr-general-x4v3",
        "-g", "-1")
    assert np.array_equal(outputs["1"], np.asarray(Image.open(tmp_path / "plain.png")))
    assert not np.array_equal(outputs["0"], outputs["1"]) and not np.array_equal(outputs["0.5"], outputs["1"])
    assert outputs["0.5"].shape == (32, 36, 3)


@pytest.mark.parametrize("strength, mine, lacking", [
    ("0.5", [], ["realesr-general-x4v3", "realesr-general-wdn-x4v3"]),
    ("0.5", ["realesr-general-x4v3"], ["realesr-general-wdn-x4v3"]),
    ("0.5", ["realesr-general-x4v3", "realesr-general-wdn-x4v3"], []),
    ("1", [], ["realesr-general-x4v3"]),  # the model alone: the second is not looked for
])
def test_denoise_says_which_of_its_models_the_model_folder_lacks(tmp_path, monkeypatch, strength, mine, lacking):
    # -m mine -dn mixed the models found elsewhere, unsaid, where mine's were meant, as
    # a plain -m mine says it runs another's.
    from test_cli import warnings

    (tmp_path / "shelf").mkdir()
    (tmp_path / "mine").mkdir()
    pair(tmp_path / "shelf", upscale=4)
    for name in mine:
        for suffix in (".param", ".bin"):
            shutil.copy(tmp_path / "shelf" / f"{name}{suffix}", tmp_path / "mine")
    monkeypatch.setenv("NCNN_SR_MODEL_PATH", str(tmp_path / "shelf"))
    Image.fromarray(picture(8, 9)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-m", tmp_path / "mine", "-n",
               "realesr-general-x4v3", "-dn", strength, "-g", "-1")
    used = "runs" if strength == "1" else "is mixed in"
    assert warnings(proc) == [f"ncnn-sr: warning: {tmp_path / 'mine'} has no {name}.param: {name} from "
                              f"NCNN_SR_MODEL_PATH folder {tmp_path / 'shelf'} {used} instead" for name in lacking]
    assert (tmp_path / "o.png").exists()


def test_denoise_with_another_model_or_without_the_second_is_refused(tmp_path):
    Image.fromarray(picture(8, 9)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-dn", "0.5", check_ok=False)
    assert proc.returncode == 2 and "give -n realesr-general-x4v3, not realesrgan-x4plus" in proc.stderr
    write_model(convert_weights(random_compact(upscale=4)), tmp_path, "realesr-general-x4v3")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-m", tmp_path, "-n", "realesr-general-x4v3",
               "--denoise", "0.5", check_ok=False)
    assert proc.returncode == 1 and "'ncnn-sr fetch realesr-general-wdn-x4v3'" in proc.stderr
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-dn", "2", check_ok=False)
    assert proc.returncode == 2
    assert not (tmp_path / "o.png").exists()


def test_a_ctrl_c_as_the_denoise_folder_is_made_leaves_no_folder(tmp_path, monkeypatch, in_process):
    # found by a race audit: landing in mkdtemp once it had made the folder, or before
    # its removal was set for the command's end, it left an empty ncnn-sr-denoise-*.
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    Image.fromarray(picture(8, 9)).save(tmp_path / "in.png")
    ctrl_c_once_made(monkeypatch, "ncnn-sr-denoise-")
    status, _ = in_process("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-n", "realesr-general-x4v3",
                           "-dn", "0.5", "-g", "-1")
    assert status == 1  # click's Abort, as the command's entry point is not in the way
    assert os.listdir(tmp_path / "tmp") == [] and sorted(os.listdir(tmp_path)) == ["in.png", "tmp"]


def test_denoise_refuses_nan_as_a_usage_error(tmp_path):
    Image.fromarray(picture(8, 9)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-n", "realesr-general-x4v3", "-dn", "nan",
               check_ok=False)
    assert proc.returncode == 2 and "'nan' is not a number" in proc.stderr


def test_an_interrupt_while_mixing_leaves_no_temporary_model(tmp_path):
    pair(tmp_path, upscale=4)
    Image.fromarray(picture(8, 9)).save(tmp_path / "in.png")
    (tmp_path / "tmp").mkdir()
    script = ("import sys\n"
              "from ncnn_sr import mixing\n"
              "def interrupted(*args):\n"
              "    raise KeyboardInterrupt\n"
              "mixing.mix_models = interrupted\n"
              "from ncnn_sr.entry import ncnn_sr\n"
              "sys.argv = ['ncnn-sr'] + sys.argv[1:]\n"
              "ncnn_sr()\n")
    proc = subprocess.run([sys.executable, "-c", script, "-i", tmp_path / "in.png", "-o", tmp_path / "o.png", "-m",
                           tmp_path, "-n", "realesr-general-x4v3", "-dn", "0.5", "-g", "-1"], capture_output=True,
                          text=True, env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert proc.returncode == 130 and "interrupted" in proc.stderr
    assert os.listdir(tmp_path / "tmp") == []


def test_numpy_weights_mix_and_bools_do_not(tmp_path):
    _, _, first, second = pair(tmp_path, upscale=4)
    plain = mix_models(first, second, 0.25, tmp_path, "plain").bin_path.read_bytes()
    assert mix_models(first, second, np.float32(0.25), tmp_path, "f32").bin_path.read_bytes() == plain
    assert mix_models(first, second, np.int64(1), tmp_path, "one").bin_path.read_bytes() == \
        first.bin_path.read_bytes()
    for weight in (True, np.bool_(False), "0.5", None, float("nan")):
        with pytest.raises(SettingError, match="from 0 to 1"):
            mix_models(first, second, weight, tmp_path, "m")


@pytest.mark.parametrize("which", ["first", "second"])
@pytest.mark.parametrize("given, said", [(3, "3"), (None, "None"),
                                         (bytearray(b"7767517\n"), "8 bytes (a bytearray): a file's contents?")])
def test_a_mix_of_what_is_no_model_names_mix_models_and_which_one(tmp_path, which, given, said):
    # found by a README audit: the README says a path of the wrong kind given to
    # mix_models is a ModelError naming the function; it was resolve_model's "the model
    # must be ...", which named neither mix_models nor which of its two models.
    _, _, first, second = pair(tmp_path, upscale=4)
    models = {"first": first, "second": second, which: given}
    with pytest.raises(ModelError) as refused:
        mix_models(models["first"], models["second"], 0.5, tmp_path, "m")
    assert str(refused.value).startswith(f"mix_models' {which} must be a model's name, a .param file's path or "
                                         f"a ModelSpec, got {said}"), str(refused.value)
    assert not (tmp_path / "m.param").exists()


@pytest.mark.parametrize("name", ["", ".hidden", "../outside", "sub/m", None, "m.param", "realesrgan-x4plus"])
def test_a_mix_needs_a_plain_name_and_writes_nothing_without_one(tmp_path, name):
    _, _, first, second = pair(tmp_path, upscale=4)
    (tmp_path / "out").mkdir()
    with pytest.raises(ModelError):
        mix_models(first, second, 0.5, tmp_path / "out", name)
    assert not list((tmp_path / "out").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out", "realesr-general-x4v3.param", "realesr-general-x4v3.bin", "realesr-general-wdn-x4v3.param",
         "realesr-general-wdn-x4v3.bin"])


@pytest.mark.parametrize("strength", [True, "0.5", None, np.bool_(True), 2, -0.5])
def test_denoised_model_takes_a_strength_from_0_to_1_only(tmp_path, strength):
    from ncnn_sr.mixing import denoised_model

    pair(tmp_path, upscale=4)
    (tmp_path / "out").mkdir()
    with pytest.raises(SettingError, match="denoise strength must be a number from 0 to 1"):
        denoised_model(strength, tmp_path / "out", model_path=tmp_path)
    assert denoised_model(np.float32(0.5), tmp_path / "out", model_path=tmp_path).name == "realesr-general-x4v3-dn0.5"


@pytest.mark.parametrize("existing", [True, False])
@pytest.mark.parametrize("fault", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_a_mix_that_fails_while_written_leaves_the_old_pair_or_none(tmp_path, monkeypatch, existing, fault):
    # The bin and the param were written one after the other: a failure (a full disk,
    # Ctrl-C) between them left the new bin beside the old param, or a bin alone.
    _, _, first, second = pair(tmp_path, upscale=4)
    out = tmp_path / "out"
    out.mkdir()
    if existing:
        (out / "m.param").write_bytes(b"old param")
        (out / "m.bin").write_bytes(b"old bin")
    replace = os.replace

    def failing(source, target, *args, **kwargs):
        if os.fspath(target).endswith(".param"):
            raise fault
        return replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises((KeyboardInterrupt, Exception)):
        mix_models(first, second, 0.5, out, "m")
    monkeypatch.setattr(os, "replace", replace)
    left = {p.name: p.read_bytes() for p in out.iterdir()}
    assert left == ({"m.param": b"old param", "m.bin": b"old bin"} if existing else {})


@pytest.mark.parametrize("weight", [2, -0.5, "0.5"])
def test_a_mixing_weight_out_of_range_is_a_setting_error_a_value_error(tmp_path, weight):
    # It was a ModelError, where Upscaler's, Pipeline's and EncodeOptions' settings are ValueErrors.
    _, _, first, second = pair(tmp_path, upscale=4)
    with pytest.raises(ValueError, match="mixing weight must be a number from 0 to 1") as caught:
        mix_models(first, second, weight, tmp_path, "mix")
    assert isinstance(caught.value, SettingError)


def test_a_folder_that_is_no_path_is_a_one_line_model_error_naming_the_function(tmp_path, monkeypatch):
    # mix_models and write_model met None or 3 as a bare TypeError from Path(), a bytes
    # folder too, and "" wrote the model where the process ran; denoised_model looked
    # its models up first and said one was missing.
    write_model(convert_weights(random_compact()), tmp_path, "a")
    spec, model = resolve_model(tmp_path / "a.param"), convert_weights(random_compact(seed=3))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    for given, said in ((None, "None"), (3, "3"), ("", "''"), (["m"], "['m']")):
        for name, call in (("write_model", lambda: write_model(model, given, "b")),
                           ("mix_models", lambda: mix_models(spec, spec, 0.5, given, "b")),
                           ("denoised_model", lambda: denoised_model(0.5, given, tmp_path))):
            with pytest.raises(ModelError) as refused:
                call()
            assert str(refused.value) == f"{name} needs a folder's path, got {said}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "a.param", "cwd"]
    assert not any((tmp_path / "cwd").iterdir())
    (tmp_path / "b").mkdir()
    assert write_model(model, os.fsencode(tmp_path / "b"), "b").param_path == tmp_path / "b" / "b.param"
    assert mix_models(spec, spec, 0.5, os.fsencode(tmp_path / "b"), "c").param_path == tmp_path / "b" / "c.param"


@pytest.mark.skipif(os.name == "nt", reason="no flock: no folder is proven stale")
def test_a_denoise_folder_a_killed_run_left_goes_with_the_next_denoise_run(tmp_path):
    # -dn mixes its model into $TMPDIR/ncnn-sr-denoise-*: a run SIGKILL ended left it
    # for good, a model's size each time.
    import fcntl

    pair(tmp_path, upscale=4)
    Image.fromarray(picture(8, 9)).save(tmp_path / "in.png")
    temp = tmp_path / "tmp"
    for name in ("ncnn-sr-denoise-stale123", "ncnn-sr-denoise-alive123", "ncnn-sr-denoise-nolock12"):
        (temp / name).mkdir(parents=True)
        (temp / name / "realesr-general-x4v3.bin").write_bytes(b"\0" * 1000)
    for name in ("ncnn-sr-denoise-stale123", "ncnn-sr-denoise-alive123"):  # as a run of it locked it
        (temp / name / ".ncnn-sr-lock").write_bytes(b"\0")
    alive = os.open(temp / "ncnn-sr-denoise-alive123" / ".ncnn-sr-lock", os.O_RDONLY)
    try:
        fcntl.flock(alive, fcntl.LOCK_EX | fcntl.LOCK_NB)  # its run lives (here, this test)
        proc = subprocess.run([sys.executable, "-m", "ncnn_sr", "-i", tmp_path / "in.png", "-o", tmp_path / "o.png",
                               "-m", tmp_path, "-n", "realesr-general-x4v3", "-dn", "0.5", "-g", "-1"],
                              capture_output=True, text=True, timeout=300, env={**os.environ, "TMPDIR": str(temp)})
    finally:
        os.close(alive)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert sorted(os.listdir(temp)) == ["ncnn-sr-denoise-alive123", "ncnn-sr-denoise-nolock12"]
