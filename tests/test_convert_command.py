"""ncnn-sr convert, run as a user runs it: PyTorch weights in, a model the other
commands take out, and nothing written when it cannot be done."""
import os
import subprocess
import zipfile

import click
import numpy as np
import pytest
from PIL import Image

from checkpoints import malicious_pickle, save_safetensors, save_zip, tensor
from conftest import picture
from test_cli import CMD, run
from test_convert import one_upsampling_state, random_compact

from ncnn_sr import Upscaler
from ncnn_sr.convert import convert_weights
from ncnn_sr.errors import shell_word


def weights_file(folder, name="4x-Mine.pth", state=None):
    state = random_compact() if state is None else state
    return save_zip(folder / name, {"params_ema": {k: tensor(v) for k, v in state.items()}})


def test_a_pth_becomes_a_model_the_upscale_command_takes_by_path_and_by_name(tmp_path):
    source = weights_file(tmp_path)
    proc = run("convert", "-i", source, "-o", tmp_path / "models")
    param = tmp_path / "models" / "4x-Mine.param"
    assert proc.stdout.splitlines() == [
        f"{param} and 4x-Mine.bin: SRVGGNetCompact, 2 convolutions, 8 features, x2",
        f"use it with: ncnn-sr -i IN -o OUT -n {param}"]
    Image.fromarray(picture(9, 11)).save(tmp_path / "in.png")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "by_path.png", "-n", param, "-g", "-1")
    run("-i", tmp_path / "in.png", "-o", tmp_path / "by_name.png", "-m", tmp_path / "models", "-n", "4x-Mine",
        "-g", "-1")
    with Upscaler(param, device="cpu") as upscaler:
        expected = upscaler.upscale(picture(9, 11))
    for out in ("by_path.png", "by_name.png"):
        assert np.array_equal(np.asarray(Image.open(tmp_path / out)), expected)


def test_the_model_goes_beside_the_weights_named_after_them_by_default(tmp_path):
    run("convert", "-i", save_safetensors(tmp_path / "net.safetensors", random_compact()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.bin", "net.param", "net.safetensors"]


def test_fp32_keeps_float32_weights(tmp_path):
    source = weights_file(tmp_path)
    run("convert", "-i", source, "-n", "half")
    run("convert", "-i", source, "-n", "full", "--fp32")
    assert (tmp_path / "full.bin").read_bytes() == convert_weights(random_compact(), fp16=False).weights
    assert (tmp_path / "half.bin").stat().st_size < (tmp_path / "full.bin").stat().st_size


def test_an_existing_model_is_replaced_only_with_force(tmp_path):
    run("convert", "-i", weights_file(tmp_path), "-n", "m")
    other = weights_file(tmp_path, "other.pth", random_compact(seed=7))
    proc = run("convert", "-i", other, "-n", "m", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {tmp_path / 'm.param'} exists: replace it (--force), " \
                          "or give another name\n"
    assert (tmp_path / "m.bin").read_bytes() == convert_weights(random_compact()).weights
    run("convert", "-i", other, "-n", "m", "--force")
    assert (tmp_path / "m.bin").read_bytes() == convert_weights(random_compact(seed=7)).weights


@pytest.mark.parametrize("file_name, said", [
    ("realesrgan-x4plus.pth", "realesrgan-x4plus is the name of a catalog model: give the converted one another name"),
    ("x.param.pth", "a model's name must be a file name without folder or suffix, got 'x.param'"),
    (".pth", "a model's name must be a file name without folder or suffix, got '.pth'"),
])
def test_a_name_taken_from_the_weights_file_that_cannot_be_used_says_to_give_one(tmp_path, file_name, said):
    # The name was refused, and nothing said that it came from the file, nor how to give another.
    source = weights_file(tmp_path, file_name)
    proc = run("convert", "-i", source, "-o", tmp_path / "out", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {said} (the name is the weights' file's: -n NAME gives another)\n"
    assert not (tmp_path / "out").exists()
    run("convert", "-i", source, "-o", tmp_path / "out", "-n", "mine")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["mine.bin", "mine.param"]


def test_a_catalog_models_name_is_refused(tmp_path):
    proc = run("convert", "-i", weights_file(tmp_path), "-n", "realesrgan-x4plus", check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "realesrgan-x4plus is the name of a catalog model" in proc.stderr
    assert not list(tmp_path.glob("realesrgan-x4plus*"))


@pytest.mark.parametrize("name", ["realesrnet-x4plus", "realesr-general-x4v3"])
def test_the_name_of_a_catalog_model_to_fetch_is_refused(tmp_path, monkeypatch, name):
    # found by a bug hunt: an x2 model converted as realesrnet-x4plus into the fetched
    # models folder was listed by `ncnn-sr models` as converted from the official
    # weights, its sha256 checked, and `-n realesrnet-x4plus` failed: "its scale is not 4"
    monkeypatch.setenv("NCNN_SR_FETCHED_MODELS", str(tmp_path / "fetched"))
    proc = run("convert", "-i", weights_file(tmp_path), "-o", tmp_path / "fetched", "-n", name, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {name} is the name of a catalog model (ncnn-sr fetch {name} installs " \
                          "the official one): give the converted one another name\n"
    assert not (tmp_path / "fetched").exists()


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_weights_named_like_the_bin_to_write_are_never_written_over(tmp_path, force):
    # found by a bug hunt: -i pytorch_model.bin (Hugging Face's name) said "exists: replace
    # it (--force...)", and --force replaced the weights with the converted model
    source = weights_file(tmp_path, "pytorch_model.bin")
    kept = source.read_bytes()
    proc = run("convert", "-i", source, *force, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {source} is the weights to convert (-i): give the model another " \
                          "name (-n) or folder (-o)\n"
    assert source.read_bytes() == kept and sorted(p.name for p in tmp_path.iterdir()) == ["pytorch_model.bin"]
    other = weights_file(tmp_path, "other.pth", random_compact(seed=7))
    proc = run("convert", "-i", other, "--dni", source, "-n", "pytorch_model", *force, check_ok=False)
    assert proc.returncode == 1 and "is the weights to convert (--dni)" in proc.stderr
    assert source.read_bytes() == kept
    run("convert", "-i", source, "-n", "mine")


def test_a_catalog_familys_name_is_refused(tmp_path):
    # -m FOLDER -n realesr-animevideov3 runs the catalog's realesr-animevideov3-x4, not a model of that name.
    proc = run("convert", "-i", weights_file(tmp_path), "-n", "realesr-animevideov3", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == "ncnn-sr: error: realesr-animevideov3 names the catalog's realesr-animevideov3 models " \
                          "(-n realesr-animevideov3 would pick one of them): give the converted one another " \
                          "name\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]


def test_an_ncnn_model_given_to_convert_says_the_n_that_runs_it(tmp_path):
    # The library says Upscaler('PATH'); the command its flag.
    param = tmp_path / "4x-Model.param"
    param.write_bytes(b"7767517\n2 2\nInput in0 0 1 data\n")
    proc = run("convert", "-i", param, "-n", "other", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {param} is an ncnn model already (its .param): upscale with it as it is, " \
                          f"-n {param}\n"


def test_an_ncnn_model_by_a_path_to_quote_or_in_a_zip_says_the_n_that_runs_it(tmp_path):
    # found by a walk of downloaded-model forms: "-n /x/my model.param" was said as
    # two words, and a zip of a model's .param and .bin was "a zip file but not a
    # PyTorch checkpoint (no data.pkl in it)", where one of a .pth said to extract it.
    param, weights = tmp_path / "my model.param", tmp_path / "my model.bin"
    param.write_bytes(b"7767517\n2 2\nInput in0 0 1 data\n")
    weights.write_bytes(b"\x01\x02\x03\x04")
    with zipfile.ZipFile(tmp_path / "4x-Model.zip", "w") as z:
        z.write(param, "4x-Model/4x-Model.param")
        z.write(weights, "4x-Model/4x-Model.bin")
    runs = f"upscale with it as it is, -n {shell_word(str(param))}"
    for given, said in ((param, f"{param} is an ncnn model already (its .param): {runs}"),
                        (weights, f"{weights} is the weights of the ncnn model {param}: {runs}"),
                        (tmp_path / "4x-Model.zip", f"{tmp_path / '4x-Model.zip'} is a zip archive of an ncnn model "
                                                   "(4x-Model/4x-Model.param): extract it and give its .param to -n")):
        proc = run("convert", "-i", given, "-o", tmp_path / "out", check_ok=False)
        assert (proc.returncode, proc.stderr) == (1, f"ncnn-sr: error: {said}\n")
    assert not (tmp_path / "out").exists()


def test_weights_of_another_architecture_write_nothing(tmp_path):
    source = weights_file(tmp_path, state={"encoder.weight": np.ones((4, 3, 3, 3), np.float32)})
    proc = run("convert", "-i", source, check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "an architecture not known here (keys such as encoder.weight)" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]


def test_weights_refused_for_what_they_hold_are_named(tmp_path):
    # found by a walk of downloaded-model forms: a SwinIR-like file, or one missing a
    # key, was refused by its keys alone; with several files (or --dni) none was named.
    swin = weights_file(tmp_path, "4x-Swin.pth", {"layers.0.residual_group.blocks.0.attn.qkv.weight":
                                                  np.ones((6, 2), np.float32)})
    state = random_compact()
    del state["body.2.bias"]
    cut = weights_file(tmp_path, "cut.pth", state)
    good = weights_file(tmp_path, "good.pth")
    for args, named in (([swin], swin), ([cut], cut), ([good, "--dni", swin], f"{good} and {swin}")):
        proc = run("convert", "-i", *args, "-o", tmp_path / "out", check_ok=False)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith(f"ncnn-sr: error: {named}: "), proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_help_and_the_refusal_name_every_architecture_convert_takes(tmp_path):
    # found by a README audit: --help named RRDBNet and SRVGGNetCompact alone, and the
    # refusal left out PLKSR, which the README lists with SPAN and RealPLKSR
    source = weights_file(tmp_path, state={"encoder.weight": np.ones((4, 3, 3, 3), np.float32)})
    refusal = run("convert", "-i", source, check_ok=False).stderr
    helped = " ".join(run("convert", "--help").stdout.split())
    for name in ("RRDBNet", "SRVGGNetCompact", "SPAN", "RealPLKSR", " PLKSR"):
        assert name in refusal and name in helped, name


def test_a_checkpoint_that_pickles_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as z:
        z.writestr("archive/data.pkl", malicious_pickle(f"touch {marker}"))
    proc = run("convert", "-i", tmp_path / "evil.pth", check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "pickles code (os.system)" in proc.stderr
    assert not marker.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["evil.pth"]


def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path):
    (tmp_path / "photo.pth").write_bytes(b"\xff\xd8\xff\xe0 not weights")
    proc = run("convert", "-i", tmp_path / "photo.pth", check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert str(tmp_path / "photo.pth") in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.pth"]


@pytest.mark.parametrize("source", ["/dev/zero", "fifo", "folder"])
def test_a_device_pipe_or_folder_with_a_sha256_to_check_is_refused_unread(tmp_path, source):
    # Without --sha256 it was refused at once; with it, /dev/zero was hashed for ever
    # and a pipe nobody writes to waited for ever.
    if source == "fifo":
        os.mkfifo(tmp_path / "fifo")
    elif source == "folder":
        (tmp_path / "folder").mkdir()
    said = "is a folder, not a checkpoint" if source == "folder" else \
        "is not a regular file (a device or a pipe): give a checkpoint file"
    source = source if source.startswith("/") else tmp_path / source
    proc = run("convert", "-i", source, "--sha256", "0" * 64, "-o", tmp_path / "out", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {source} {said}\n"
    assert not (tmp_path / "out").exists()


def test_a_sha256_that_is_none_is_a_usage_error(tmp_path):
    # It was status 1, where the command's other bad values are usage errors (2).
    (tmp_path / "m.pth").write_bytes(b"weights")
    proc = run("convert", "-i", tmp_path / "m.pth", "--sha256", "00", check_ok=False)
    assert proc.returncode == 2
    assert "Invalid value for '--sha256': a sha256 is 64 hexadecimal digits, got '00'" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]


@pytest.mark.parametrize("name", ["4x-Mine.pth", "my model.pth", os.fsdecode(b"caf\xe9.pth")])
def test_an_upscale_given_the_weights_says_how_to_convert_them(tmp_path, name):
    # The command is one to copy: a name with a space ('my model.pth') or a Latin-1
    # byte went in as it was, two words or another name (found by a README walk).
    source = weights_file(tmp_path, name)
    Image.fromarray(picture(4, 4)).save(tmp_path / "in.png")
    proc = run("-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", source, "-g", "-1", check_ok=False)
    assert proc.returncode != 0
    said = proc.stderr.split("convert them once with ncnn-sr convert -i ", 1)[1].split(", then give the .param")[0]
    read = subprocess.run(["bash", "-c", f"printf %s {said}"], capture_output=True, check=True).stdout
    assert read == os.fsencode(source), proc.stderr


def test_dni_interpolates_two_trainings_as_real_esrgans_denoise_strength(tmp_path):
    general, weak = random_compact(seed=3), random_compact(seed=4)
    run("convert", "-i", weights_file(tmp_path, "general.pth", general), "--dni",
        weights_file(tmp_path, "wdn.pth", weak), "--dni-weight", "0.3", "-n", "mixed")
    mixed = {key: 0.3 * general[key] + 0.7 * weak[key] for key in general}
    assert (tmp_path / "mixed.bin").read_bytes() == convert_weights(mixed).weights


def test_ctrl_c_during_the_trial_run_leaves_no_model_and_no_new_folder(tmp_path, monkeypatch):
    # The files are written whole before the trial run; interrupted then, they were left untried.
    from ncnn_sr import cli
    from ncnn_sr import convert as convert_mod

    def interrupted(param, scale, name):
        assert param.exists() and param.with_suffix(".bin").exists()
        raise KeyboardInterrupt
    monkeypatch.setattr(convert_mod, "_trial_run", interrupted)
    source = weights_file(tmp_path)
    with pytest.raises(click.exceptions.Abort):  # click's word for the KeyboardInterrupt
        cli.main.main(["convert", "-i", str(source), "-o", str(tmp_path / "new" / "models")], standalone_mode=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]


def test_a_failed_write_takes_back_the_folders_it_made(tmp_path):
    proc = run("convert", "-i", weights_file(tmp_path), "-o", tmp_path / "new" / "models", "-n", "bad.bin",
               check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]


def test_an_output_that_is_a_file_is_named_as_not_a_folder(tmp_path):
    (tmp_path / "afile").write_bytes(b"x")
    proc = run("convert", "-i", weights_file(tmp_path), "-o", tmp_path / "afile", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {tmp_path / 'afile'} is not a folder: -o names the folder to write " \
                          "NAME.param and NAME.bin in\n"


@pytest.mark.parametrize("given", ["Mine.param", "Mine.BIN"])
def test_an_output_named_like_a_model_file_is_refused_with_the_folder_and_name_meant(tmp_path, given):
    # found by a user audit: -o models/Mine.param made a folder Mine.param and wrote
    # models/Mine.param/4x-Mine.param in it.
    proc = run("convert", "-i", weights_file(tmp_path), "-o", tmp_path / "models" / given, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {tmp_path / 'models' / given} is named like a model's file: -o names " \
                          f"the folder to write NAME.param and NAME.bin in (-o {tmp_path / 'models'} -n Mine)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]
    (tmp_path / "models" / given).mkdir(parents=True)  # a folder so named, there already, is one
    run("convert", "-i", weights_file(tmp_path), "-o", tmp_path / "models" / given)
    assert (tmp_path / "models" / given / "4x-Mine.param").is_file()


def test_a_read_only_output_folder_is_one_line_and_leaves_nothing(tmp_path):
    # It was a traceback: the temporary files' cleanup met the read-only file system.
    from test_batch_cli import READ_ONLY, library_in_read_only, run_read_only
    from test_cli import CMD

    source = weights_file(tmp_path)
    out = tmp_path / "models"
    proc = run_read_only(out, [CMD, "convert", "-i", str(source), "-o", str(out)])
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: cannot write into {out}: {READ_ONLY}\n"
    assert list(out.iterdir()) == []
    # The library's write_model too: an InputError naming the file, not an OSError.
    proc = library_in_read_only(out, "from ncnn_sr import convert_weights, read_weights, write_model",
                                f"write_model(convert_weights(read_weights({str(source)!r})), {str(out)!r}, 'm')")
    assert proc.stderr == f"refused: cannot write {out / 'm.bin'}: {READ_ONLY}\n"
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("kept", ["param", "bin"])
def test_force_over_a_model_file_that_cannot_be_replaced_names_it_and_keeps_the_old_pair(tmp_path, kept):
    # An immutable file (chattr +i; root too is refused) was named by the hidden name it
    # was to step aside to: "cannot write .m.1a2b3c4d.old.param".
    run("convert", "-i", weights_file(tmp_path), "-n", "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fixed = tmp_path / f"m.{kept}"
    if subprocess.run(["chattr", "+i", fixed], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        proc = run("convert", "-i", weights_file(tmp_path, "other.pth", random_compact(seed=7)), "-n", "m",
                   "--force", check_ok=False)
    finally:
        subprocess.run(["chattr", "-i", fixed])
    assert proc.returncode == 1
    # Refused before the work, as a file write-protected by its mode (chattr -i makes it writable).
    assert proc.stderr == f"ncnn-sr: error: cannot replace {fixed}: it is write-protected (read-only): make it " \
                          "writable to replace it\n"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name != "other.pth"} == before


def test_weights_in_a_read_only_folder_and_no_output_folder_say_to_give_one(tmp_path):
    # The model goes beside the weights by default: where they cannot be written, -o is the way out.
    from test_batch_cli import READ_ONLY, run_read_only
    from test_cli import CMD

    shelf = tmp_path / "shelf"
    shelf.mkdir()
    source = weights_file(shelf)
    proc = run_read_only(shelf, [CMD, "convert", "-i", str(source)])
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: cannot write into {shelf}: {READ_ONLY} (-o FOLDER writes the model " \
                          "elsewhere)\n"
    assert [p.name for p in shelf.iterdir()] == ["4x-Mine.pth"]


def test_a_name_or_folder_too_long_for_the_file_system_is_one_line_and_leaves_nothing(tmp_path):
    # A traceback (OSError: File name too long) once the output folder was made: a
    # 250-character name makes a 256-byte NAME.param; fetch -o such a folder too.
    source = weights_file(tmp_path)
    long = "a" * 250
    proc = run("convert", "-i", source, "-o", tmp_path / "out", "-n", long, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: cannot write {tmp_path / 'out' / long}.param: File name too long\n"
    folder = tmp_path / ("f" * 300)
    for args in (("convert", "-i", source, "-o", folder), ("fetch", "realesr-general-x4v3", "-o", folder)):
        proc = run(*args, check_ok=False)
        assert proc.returncode == 1
        assert proc.stderr.endswith(f"cannot write into {folder}: File name too long\n")
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]


def test_a_name_and_folder_that_are_not_utf8_make_a_model_that_loads(tmp_path):
    # Latin-1 bytes (a weights file from an old archive) were refused as "not UTF-8
    # text, which ncnn cannot open", though the model loads from such a path.
    latin, folder = os.fsdecode(b"caf\xe9"), tmp_path / os.fsdecode(b"mod\xe8les")
    source = weights_file(tmp_path, f"{latin}.pth")
    proc = subprocess.run([CMD, "convert", "-i", source, "-o", folder], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    param = folder / f"{latin}.param"
    # its bytes as every message says them (\xe9), and as a shell reads them back
    assert proc.stdout.decode("ascii").splitlines() == [
        f"{tmp_path}/mod\\xe8les/caf\\xe9.param and caf\\xe9.bin: SRVGGNetCompact, 2 convolutions, 8 features, x2",
        f"use it with: ncnn-sr -i IN -o OUT -n {tmp_path}/mod$'\\xe8'les/caf$'\\xe9'.param"]
    assert sorted(os.listdir(folder)) == [f"{latin}.bin", f"{latin}.param"]
    for given, where in ((param, None), (latin, folder)):
        with Upscaler(given, device="cpu", model_path=where) as up:
            assert up.upscale(picture(5, 6)).shape == (10, 12, 3)


def test_standard_input_is_said_to_be_no_source_of_weights(tmp_path):
    # "-" reads standard input in the upscale commands; here it was "cannot read -: No
    # such file or directory".
    proc = run("convert", "-i", "-", "-o", tmp_path / "out", check_ok=False, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr == "ncnn-sr: error: convert reads the weights from a file or an https:// address, not " \
                          "from standard input (-i -): save them first\n"
    assert list(tmp_path.iterdir()) == []


def test_dni_weight_without_dni_is_refused(tmp_path):
    proc = run("convert", "-i", weights_file(tmp_path), "--dni-weight", "0.3", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == "ncnn-sr: error: --dni-weight needs --dni, the model to interpolate with\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]


def test_weights_too_large_for_fp16_name_the_flag_that_keeps_them(tmp_path):
    state = random_compact()
    state["body.2.weight"][0, 0, 0, 0] = 1e6
    source = weights_file(tmp_path, state=state)
    proc = run("convert", "-i", source, check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr.endswith("too large for fp16: keep float32 weights (--fp32)\n")
    run("convert", "-i", source, "--fp32")


def test_an_old_esrgan_model_named_3x_converts_as_x3_and_upscales_by_3(tmp_path):
    # Its keys are an x2 model's too: the community's name for it decides.
    source = weights_file(tmp_path, "3x_Old.pth", one_upsampling_state()[1])
    proc = run("convert", "-i", source)
    assert proc.stderr == ""
    assert "growth channels, x3 (as its name says; its keys allow x2 or x3)" in proc.stdout
    Image.fromarray(picture(9, 11)).save(tmp_path / "in.png")
    run("upscale", "-i", tmp_path / "in.png", "-o", tmp_path / "out.png", "-n", tmp_path / "3x_Old.param",
        "-g", "-1")
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (33, 27)


def test_an_old_esrgan_model_of_no_scale_by_name_is_x2_with_a_warning_naming_scale(tmp_path):
    source = weights_file(tmp_path, "Old.pth", one_upsampling_state()[1])
    proc = run("convert", "-i", source)
    assert proc.stderr == "ncnn-sr: warning: RRDBNet (ESRGAN names) with one upsampling convolution is x2 or x3 " \
                          "alike by its keys: converted as x2; give --scale 3 for an x3 model\n"
    assert proc.stdout.splitlines()[0].endswith(", x2 (its keys allow x2 or x3)")
    proc = run("convert", "-i", source, "-n", "Old3", "--scale", "3")
    assert proc.stderr == "" and proc.stdout.splitlines()[0].endswith("growth channels, x3")
    with Upscaler(tmp_path / "Old3.param", device="cpu") as upscaler:
        assert upscaler.scale == 3


def test_scale_overrides_the_name(tmp_path):
    proc = run("convert", "-i", weights_file(tmp_path, "3x_Old.pth", one_upsampling_state()[1]), "--scale", "2")
    assert proc.stderr == "" and proc.stdout.splitlines()[0].endswith("growth channels, x2")


def test_a_scale_the_keys_contradict_writes_nothing(tmp_path):
    proc = run("convert", "-i", weights_file(tmp_path), "--scale", "3", check_ok=False)
    assert proc.returncode == 1
    assert proc.stderr == f"ncnn-sr: error: {tmp_path / '4x-Mine.pth'}: SRVGGNetCompact, 2 convolutions, 8 features, x2: its keys say x2, not x3 " \
                          "(--scale 3); a scale is chosen only for ESRGAN names with one upsampling " \
                          "convolution, x2 or x3\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["4x-Mine.pth"]


def test_a_name_that_contradicts_the_keys_is_no_error(tmp_path):
    proc = run("convert", "-i", weights_file(tmp_path, "3x_Compact.pth"))
    assert proc.stderr == "" and proc.stdout.splitlines()[0].endswith(", x2")


@pytest.mark.parametrize("dtype", ["int32", "uint8"])
def test_weights_stored_as_integers_are_refused_not_converted_as_numbers(tmp_path, dtype):
    # found by a user audit: a safetensors of int32 weights (a quantized model, whose
    # scales are elsewhere) became a model, exit 0, that upscales to noise.
    state = {k: (v * 100).astype(dtype) for k, v in random_compact().items()}
    proc = run("convert", "-i", save_safetensors(tmp_path / "q.safetensors", state), check_ok=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.endswith(f"x2: body.0.weight holds {dtype} values, not floating-point weights "
                                "(a quantized model?): convert takes float32, float16, bfloat16 or float64 ones\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.safetensors"]


def test_a_conversion_whose_reader_went_away_is_status_0_without_a_word(tmp_path):
    # ncnn-sr convert ... | head -1 was status 1, the model written: its lines tell of
    # work done, as a listing's do, and the reader took what it wanted. A pipe closed
    # before the command starts breaks its first write, whatever the timing.
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([CMD, "convert", "-i", weights_file(tmp_path), "-o", tmp_path / "models"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert (tmp_path / "models" / "4x-Mine.bin").read_bytes() == convert_weights(random_compact()).weights
