"""read_weights: PyTorch (zip and legacy) and safetensors checkpoints, read without torch."""
import argparse
import collections
import gc
import io
import json
import os
import pickle
import weakref
import zipfile

import numpy as np
import pytest

from checkpoints import (Storage, Tensor, malicious_pickle, save_legacy, save_safetensors, save_zip, sharing,
                         tensor, transposed)
from ncnn_sr.checkpoint import read_weights
from ncnn_sr.errors import ModelError

# Values that float16 and bfloat16 hold exactly, so every dtype reads back equal.
VALUES = np.array([[0.5, -1.0, 2.0], [3.0, -0.25, 1024.0]], dtype=np.float32)
PICKLED = {"zip": save_zip, "legacy": save_legacy}


def write(kind, path, state):
    """``state`` ({name: Tensor}) written as a file of ``kind``."""
    if kind == "safetensors":
        return save_safetensors(path, {n: _values(t) for n, t in state.items()},
                                {n: t.storage.dtype for n, t in state.items()})
    return PICKLED[kind](path, state)


def _values(t: Tensor):
    raw = t.storage.raw.astype(np.uint32) << 16 if t.storage.dtype == "bfloat16" else t.storage.raw
    flat = raw.view(np.float32) if t.storage.dtype == "bfloat16" else raw
    return np.lib.stride_tricks.as_strided(flat[t.offset:], t.size, [s * flat.itemsize for s in t.stride]).copy()


def refusal(path) -> str:
    with pytest.raises(ModelError) as e:
        read_weights(path)
    message = str(e.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_every_format_and_float_type_reads_as_float32(tmp_path, kind, dtype):
    path = write(kind, tmp_path / "model.pth", {"conv_first.weight": tensor(VALUES, dtype)})
    weights = read_weights(path)
    assert list(weights) == ["conv_first.weight"]
    assert weights["conv_first.weight"].dtype == np.float32
    np.testing.assert_array_equal(weights["conv_first.weight"], VALUES)


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_a_transposed_tensor_reads_as_its_values_laid_out_afresh(tmp_path, kind):
    weights = read_weights(write(kind, tmp_path / "m.pth", {"w": transposed(VALUES, "float16")}))
    np.testing.assert_array_equal(weights["w"], VALUES.T)
    assert weights["w"].flags.c_contiguous


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_tensors_sharing_a_storage_read_from_their_offsets(tmp_path, kind):
    first, second = sharing(VALUES, VALUES[0] * 3, "bfloat16")
    weights = read_weights(write(kind, tmp_path / "m.pth", {"a": first, "b": second}))
    np.testing.assert_array_equal(weights["a"], VALUES)
    np.testing.assert_array_equal(weights["b"], VALUES[0] * 3)


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
def test_integer_tensors_keep_their_type(tmp_path, kind):
    weights = read_weights(write(kind, tmp_path / "m.pth", {"n": tensor(np.array([7, -2**40]), "int64")}))
    assert weights["n"].dtype == np.int64 and weights["n"].tolist() == [7, -2**40]


def test_params_ema_is_preferred_to_params(tmp_path):
    path = save_zip(tmp_path / "m.pth", {"params": {"w": tensor([1.0])}, "params_ema": {"w": tensor([2.0])}})
    assert read_weights(path)["w"].tolist() == [2.0]


@pytest.mark.parametrize("key", ["params", "state_dict", "model"])
def test_the_state_dict_is_found_under_its_usual_keys(tmp_path, key):
    path = save_legacy(tmp_path / "m.pth", {key: collections.OrderedDict(w=tensor([2.0])), "iter": 5})
    assert {n: a.tolist() for n, a in read_weights(path).items()} == {"w": [2.0]}


@pytest.mark.parametrize("outer, inner", [("state_dict", "params_ema"), ("model", "state_dict")])
def test_a_state_dict_under_two_usual_keys_is_found(tmp_path, outer, inner):
    # {"state_dict": {"params_ema": ...}} "holds no tensors", it said.
    path = save_zip(tmp_path / "m.pth", {outer: {inner: {"w": tensor([2.0])}, "iter": 5}})
    assert {n: a.tolist() for n, a in read_weights(path).items()} == {"w": [2.0]}


@pytest.mark.parametrize("content", [{"optimizer": {"state": {0: {"exp_avg": tensor(VALUES)}}}, "iter": 3},
                                     [tensor(VALUES)]])
def test_tensors_where_no_state_dict_is_kept_are_not_said_to_be_none(tmp_path, content):
    # An optimizer's state alone, or a list of tensors, "holds no tensors", it said.
    path = save_zip(tmp_path / "m.pth", content)
    assert refusal(path) == f"{path} holds tensors, but no state dict of a model's weights where one is kept " \
                            "(at its top, or under params_ema, params, state_dict, model or a network's name)"


def test_a_dict_of_networks_reads_as_their_tensors_under_their_keys(tmp_path):
    # {"net_g": ..., "net_d": ...}, as some GAN trainers save; an optimizer's nested state is not read.
    path = save_zip(tmp_path / "m.pth", {"net_g": {"w": tensor(VALUES)}, "net_d": {"w": tensor(2 * VALUES)},
                                         "optimizer": {"state": {0: {"exp_avg": tensor(VALUES)}}}, "iter": 3})
    weights = read_weights(path)
    assert sorted(weights) == ["net_d.w", "net_g.w"]
    assert np.array_equal(weights["net_g.w"], VALUES) and np.array_equal(weights["net_d.w"], 2 * VALUES)


def test_module_prefix_of_data_parallel_is_taken_off(tmp_path):
    path = save_zip(tmp_path / "m.pth", {"module.conv.weight": tensor([1.0]), "body.0.weight": tensor([2.0])})
    assert sorted(read_weights(path)) == ["body.0.weight", "conv.weight"]


def test_training_values_beside_the_tensors_are_left_out(tmp_path):
    state = {"w": tensor([1.0]), "step": 3, "args": argparse.Namespace(lr=1e-4),
             "psnr": np.float64(28.5), "kept": np.zeros(2), "names": ("a", b"b")}
    assert list(read_weights(save_legacy(tmp_path / "m.pth", state))) == ["w"]


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
def test_the_format_is_told_by_content_not_suffix(tmp_path, kind):
    path = write(kind, tmp_path / "model.bin", {"w": tensor(VALUES)})
    np.testing.assert_array_equal(read_weights(path)["w"], VALUES)


def test_a_pickle_that_runs_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    path.write_bytes(malicious_pickle(f"touch {marker}"))
    assert "pickles code (os.system)" in refusal(path)
    assert not marker.exists()


def test_code_in_a_zip_checkpoints_pickle_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", malicious_pickle(f"touch {marker}"))
    assert "pickles code (os.system)" in refusal(path)
    assert not marker.exists()


def test_a_memo_slot_beyond_the_pickle_is_refused_before_it_is_allocated(tmp_path):
    # A damaged byte can turn a memo index into 10^8, for which the C unpickler
    # would fill a list of 2x that many slots (gigabytes) before failing.
    path = tmp_path / "damaged.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}r" + (150_000_000).to_bytes(4, "little") + b".")
    assert "a memo slot 150000000, more than" in refusal(path)


def test_a_torchscript_archive_is_named_as_one(tmp_path):
    # torch.jit.save writes one data.pkl, as a checkpoint has, pickling the module's own classes.
    path = tmp_path / "traced.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("traced/data.pkl", b"\x80\x02c__torch__.arch\nNet\nq\x00.")
        z.writestr("traced/code/__torch__/arch.py", "class Net(Module):\n  pass\n")
        z.writestr("traced/constants.pkl", b"\x80\x02).")
    assert refusal(path) == f"{path} is a TorchScript archive, not a checkpoint: save the model's state_dict()"


def test_a_zip_archive_holding_a_checkpoint_says_to_extract_it(tmp_path):
    inner = save_zip(tmp_path / "m.pth", {"w": tensor(VALUES)})
    path = tmp_path / "4x_Model.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.write(inner, "4x_Model/4x_Model.pth")
        z.writestr("4x_Model/readme.txt", "a model")
    assert refusal(path) == f"{path} is a zip archive of PyTorch weights (4x_Model/4x_Model.pth): extract them " \
                            "and convert them with convert_weights"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "no model")
    assert refusal(path) == f"{path} is a zip file but not a PyTorch checkpoint (no data.pkl in it)"


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
def test_a_truncated_file_is_refused(tmp_path, kind):
    path = write(kind, tmp_path / "m.pth", {"w": tensor(np.ones(64, np.float32))})
    data = path.read_bytes()
    for size in (len(data) - 1, len(data) // 2, 20):
        path.write_bytes(data[:size])
        refusal(path)


def test_a_refusal_is_freed_once_dropped(tmp_path):
    # It was held in a cycle through its traceback (a local of read_weights named it),
    # with the reading's frames and the tensors read so far, until a full collection.
    path = save_zip(tmp_path / "m.pth", {"w": tensor(np.ones(64, np.float32))})
    path.write_bytes(path.read_bytes()[:-1])
    gc.collect()
    gc.disable()  # what a cycle holds stays, as it does between collections
    try:
        with pytest.raises(ModelError) as raised:
            read_weights(path)
        error = weakref.ref(raised.value)
        del raised
        assert error() is None
    finally:
        gc.enable()


def test_a_storage_shorter_than_its_tensor_is_refused(tmp_path):
    path = save_zip(tmp_path / "m.pth", {"w": Tensor(Storage(np.ones(5)), 2, (2, 2), (2, 1))})
    assert "needs 6 elements of its storage, which has 5" in refusal(path)


def test_a_tensor_repeating_its_storage_past_memory_is_refused(tmp_path):
    # A stride of 0 makes a few stored bytes any number of elements.
    path = save_legacy(tmp_path / "m.pth", {"w": Tensor(Storage(np.ones(1)), 0, (2**40, 2**40), (0, 0))})
    assert "tensor w of size (1099511627776, 1099511627776) holds more elements than its storage (1)" in refusal(path)


def test_a_tensor_of_a_type_not_read_is_refused(tmp_path):
    path = save_safetensors(tmp_path / "m.safetensors", {"w": np.ones(2, np.uint8)})
    path.write_bytes(path.read_bytes().replace(b'"U8"', b'"F8"'))
    assert "of type F8, which is not read" in refusal(path)


def test_a_checkpoint_without_tensors_is_refused(tmp_path):
    assert "holds no tensors" in refusal(save_zip(tmp_path / "m.pth", {"epoch": 3}))


def test_a_plain_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0]}, protocol=2))
    assert "not a PyTorch checkpoint" in refusal(path)


@pytest.mark.parametrize("content, words", [
    (b"", "is empty"), (b"hello, not weights", "not a PyTorch (.pth) or safetensors checkpoint"),
    (b"PK\x05\x06" + bytes(18), "not a PyTorch checkpoint (no data.pkl"),
])
def test_files_that_are_not_checkpoints_are_refused(tmp_path, content, words):
    path = tmp_path / "m.pth"
    path.write_bytes(content)
    assert words in refusal(path)


LFS = "is a Git LFS pointer, not the file itself (cloned without git-lfs? run 'git lfs pull' there)"
PAGE = "is a web page (HTML), not the file itself: download it from its raw or release link"


@pytest.mark.parametrize("name,content,words", [
    ("4x-Model.pth", b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 67040989\n", LFS),
    ("4x-Model.pth", b"<!DOCTYPE html>\n<html>", PAGE),
    ("4x-Model.pth", b"\xef\xbb\xbf  <HTML><body>Sign in</body>", PAGE),
    # An ncnn model given to convert: the Upscaler that runs it is in the words (ncnn-sr
    # convert's, the -n: test_convert_command).
    ("4x-Model.param", b"7767517\n2 2\nInput in0 0 1 data\n", "is an ncnn model already (its .param): upscale "
                                                             "with it as it is, Upscaler('{path}')"),
    ("4x-Model.param", b"7767517\r\n2 2\r\n", "is an ncnn model already (its .param): upscale with it as it is, "
                                             "Upscaler('{path}')"),
])
def test_a_file_standing_in_for_a_checkpoint_is_named_as_what_it_is(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    assert refusal(path) == f"{path} {words.format(path=path)}"


def test_an_ncnn_models_bin_given_for_a_checkpoint_names_its_param(tmp_path):
    # found by a user audit: convert -i m.bin, beside m.param, said only "not a PyTorch
    # (.pth) or safetensors checkpoint", where the model runs as it is.
    (tmp_path / "m.param").write_bytes(b"7767517\n2 2\nInput in0 0 1 data\n")
    (tmp_path / "m.bin").write_bytes(b"\x47\x6b\x30\x01" + bytes(64))
    param = tmp_path / "m.param"
    assert refusal(tmp_path / "m.bin") == (f"{tmp_path / 'm.bin'} is the weights of the ncnn model {param}: "
                                           f"upscale with it as it is, Upscaler('{param}')")
    (tmp_path / "m.param").write_bytes(b"not a param")  # pytorch_model.bin beside some other m.param
    assert refusal(tmp_path / "m.bin").endswith("is not a PyTorch (.pth) or safetensors checkpoint")


def test_an_onnx_model_given_for_a_checkpoint_names_what_converts_it(tmp_path):
    # It was "not a PyTorch (.pth) or safetensors checkpoint", where -n m.onnx names pnnx.
    (tmp_path / "m.onnx").write_bytes(b"\x08\x07\x12\x07pytorch\x1a\x052.1.0")
    assert refusal(tmp_path / "m.onnx") == f"{tmp_path / 'm.onnx'} is an ONNX model, not PyTorch weights: pnnx " \
                                           "converts it to ncnn"


def test_a_device_or_pipe_is_refused_unread(tmp_path):
    # /dev/zero has no end: read whole, it filled the memory.
    assert refusal("/dev/zero") == "/dev/zero is not a regular file (a device or a pipe): give a checkpoint file"
    os.mkfifo(tmp_path / "pipe")  # opened, it would block until a writer came
    assert "is not a regular file" in refusal(tmp_path / "pipe")


def test_a_missing_file_is_refused(tmp_path):
    assert "No such file" in refusal(tmp_path / "absent.pth")


def test_compressed_members_and_any_folder_name_are_read(tmp_path):
    # torch stores its members uncompressed under the file's stem (or "archive"); a
    # zip re-packed by another tool is still the same checkpoint.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        source = save_zip(tmp_path / "src.pth", {"w": tensor(VALUES)}, prefix="model_name")
        for info in zipfile.ZipFile(source).infolist():
            z.writestr(info.filename, zipfile.ZipFile(source).read(info))
    (tmp_path / "m.pth").write_bytes(buffer.getvalue())
    np.testing.assert_array_equal(read_weights(tmp_path / "m.pth")["w"], VALUES)


def test_a_pickle_asking_for_a_bytearray_is_refused(tmp_path):
    path = tmp_path / "w.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02c__builtin__\nbytearray\nJ\x00\x00\x00\x40\x85R.")
    with pytest.raises(ModelError, match=r"pickles code \(builtins.bytearray\)"):
        read_weights(path)


def test_a_zip_whose_members_unpack_to_many_times_its_size_is_refused(tmp_path):
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        z.writestr("archive/data/0", bytes(10 << 20))
    with pytest.raises(ModelError, match=r"bomb.pth: its compressed members would unpack to \d+ bytes, \d+ times "
                                         "the file: not a checkpoint"):
        read_weights(path)


def test_python2_module_names_of_protocol_2_are_read(tmp_path):
    # torch.save writes protocol 2, where Python 3 names builtins as __builtin__: a
    # training checkpoint holding a set was refused as code.
    path = save_zip(tmp_path / "w.pth", {"params": {"w": tensor(np.ones((2, 3), np.float32))}, "tags": {1, 2}})
    assert b"__builtin__\nset" in zipfile.ZipFile(path).read("archive/data.pkl")
    assert read_weights(path)["w"].shape == (2, 3)


class _TensorWithState(Tensor):
    """A tensor whose pickle ends in a BUILD that rewrites the rebuilt tensor."""

    def __init__(self, tensor, state):
        super().__init__(tensor.storage, tensor.offset, tensor.size, tensor.stride)
        self.state = state

    def __reduce__(self):
        return (*super().__reduce__(), self.state)


@pytest.mark.parametrize("kind", ["zip", "legacy"])
@pytest.mark.parametrize("state", [{"storage": 5}, {"offset": -7}, (None, {"size": [1 << 40]})])
def test_a_pickle_rewriting_a_tensor_it_rebuilt_is_refused(tmp_path, kind, state):
    # BUILD wrote into the frozen tensor's __dict__: its storage became an int and
    # reading it raised AttributeError, or its checked offset and size anything.
    path = write(kind, tmp_path / "m.pth", {"w": _TensorWithState(tensor(VALUES), state)})
    assert "damaged" in refusal(path)


@pytest.mark.parametrize("kind", ["zip", "legacy"])
@pytest.mark.parametrize("size, stride", [((1 << 20000,), (0,)), ((1,), (1 << 70,)), ((1,) * 100, (1,) * 100)])
def test_a_tensor_of_numbers_past_int64_or_of_too_many_dimensions_is_refused(tmp_path, kind, size, stride):
    # A size of 6,000 digits could not be put in the message (ValueError, not
    # ModelError); thousands of dimensions took minutes to multiply out.
    path = write(kind, tmp_path / "m.pth", {"w": Tensor(Storage(VALUES), 0, size, stride)})
    assert "damaged" in refusal(path)


@pytest.mark.parametrize("shape", [[10 ** 200] * 30, [1 << 62] * 1000])
def test_a_safetensors_shape_past_int64_or_of_too_many_dimensions_is_refused(tmp_path, shape):
    header = json.dumps({"w": {"dtype": "F32", "shape": shape, "data_offsets": [0, 24]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + VALUES.tobytes())
    assert "malformed" in refusal(path)


@pytest.mark.parametrize("method", [8, 12, 14])  # Deflate, bzip2, LZMA
def test_a_stored_zip_member_said_to_be_compressed_is_damage(tmp_path, method):
    # found by the fuzzer: data.pkl stored as it is (as torch.save stores each
    # member) but said to be Deflate-compressed was a traceback, zlib.error.
    path = save_zip(tmp_path / "m.pth", {"w": tensor(VALUES)})
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")  # the first member's entry: data.pkl
    data[central + 10] = method  # its compression method
    path.write_bytes(bytes(data))
    assert refusal(path).startswith(f"{path} is damaged (truncated?): cannot read archive/data.pkl: ")


@pytest.mark.parametrize("offset, value", [(6, 1), (8, 99), (4, 99)])  # encrypted, compression, version
def test_a_zip_member_of_an_unknown_method_or_version_or_encrypted_is_refused(tmp_path, offset, value):
    # zipfile raises NotImplementedError or RuntimeError for these, not BadZipFile.
    path = save_zip(tmp_path / "m.pth", {"w": tensor(VALUES)})
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")  # the first member's entry: data.pkl
    data[central + offset + 2] = value  # the central entry has 2 more bytes before these fields
    path.write_bytes(bytes(data))
    assert "data.pkl cannot be read" in refusal(path) or offset == 4  # the version is checked on opening


@pytest.mark.parametrize("name, damaged", [(b"_rebuild_tensor_v2", b"_rebuild_te;sor_v2"),
                                           (b"FloatStorage", b"Flo\x7ftStorage")], ids=["function", "storage"])
def test_a_name_in_a_pickle_that_no_python_name_can_be_is_damage(name, damaged, tmp_path):
    # found by the fuzzer: a byte of a pickled name damaged was "pickles code
    # (torch._utils._re;uild_tensor_v2), which is not read: ... (re-save the weights
    # alone ...)", or "it holds a tensor of type Flo\x7ftStorage, which is not read",
    # as if the checkpoint were whole.
    path = save_legacy(tmp_path / "good.pth", {"w": tensor(np.ones((2, 3), np.float32))})
    data = path.read_bytes()
    assert data.count(name) == 1 and len(name) == len(damaged)
    path.write_bytes(data.replace(name, damaged))
    said = refusal(path)
    assert said.startswith(f"{path} is damaged: its pickle names "), said
    assert "not read" not in said


def test_names_from_the_file_are_shown_on_one_line(tmp_path):
    # A tensor's name, or a global's that STACK_GLOBAL takes from strings, came
    # into the message with its line breaks.
    header = json.dumps({"a\nb": {"dtype": "F99", "shape": [1], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    assert "tensor a\\nb is of type F99" in refusal(path)
    path = tmp_path / "m.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x04\x8c\x03o\ns\x94\x8c\x06sys\ntm\x94\x93)R.")
    assert "its pickle names o\\ns.sys\\ntm," in refusal(path)


class _Call:
    """Pickles as ``function(*args)``, with ``state`` after it if given."""

    def __init__(self, function, *args, state=None):
        self.function, self.args, self.state = function, args, state

    def __reduce__(self):
        return (self.function, self.args) if self.state is None else (self.function, self.args, self.state)


def test_a_pickle_copying_one_value_again_and_again_is_refused(tmp_path):
    # list(s) repeated on one memoized string: 7 bytes of pickle for each copy, and
    # a file of a megabyte could ask for gigabytes.
    text = "x" * 10_000
    path = save_zip(tmp_path / "m.pth", {"w": tensor(VALUES), "junk": [_Call(list, text) for _ in range(200)]})
    assert len(path.read_bytes()) < 20_000
    assert "not a state dict" in refusal(path)


def test_attributes_pickled_onto_an_ordered_dict_again_and_again_cost_nothing(tmp_path):
    # BUILD copied the same memoized dict into each OrderedDict's attributes.
    import tracemalloc
    state = {f"k{i}": None for i in range(10_000)}
    junk = [_Call(collections.OrderedDict, state=state) for _ in range(200)]
    path = save_zip(tmp_path / "m.pth", {"w": tensor(VALUES), "junk": junk})
    tracemalloc.start()
    try:
        assert list(read_weights(path)) == ["w"]
        assert tracemalloc.get_traced_memory()[1] < 20 << 20
    finally:
        tracemalloc.stop()


def test_a_state_pickled_onto_a_function_is_refused(tmp_path):
    # BUILD wrote into the reader's own function's __dict__, for every later read.
    path = tmp_path / "m.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02ctorch._utils\n_rebuild_parameter\n}X\x01\x00\x00\x00aK\x01sb.")
    assert "a state given to a function" in refusal(path)


def test_a_safetensors_header_nested_too_deep_is_refused(tmp_path):
    # json.loads raised RecursionError, not ModelError.
    header = b'{"__metadata__":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    path = tmp_path / "m.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    assert "header is not JSON" in refusal(path)


def test_a_path_as_bytes_reads_and_no_path_is_a_model_error(tmp_path):
    path = save_zip(tmp_path / "m.pth", {"w": tensor(VALUES)})
    assert np.array_equal(read_weights(os.fsencode(path))["w"], VALUES)
    for given in (None, 3, np.zeros(3)):
        with pytest.raises(ModelError, match="read_weights needs a file's path"):
            read_weights(given)
    with pytest.raises(ModelError, match="NUL byte"):
        read_weights(str(path) + "\0x")
    data = path.read_bytes()  # the file's contents in its path's place: printed whole
    with pytest.raises(ModelError, match=rf"^read_weights needs a file's path, got {len(data)} bytes holding"):
        read_weights(data)


def test_a_files_contents_or_an_open_file_is_refused_as_read_image_refuses_them(tmp_path):
    # read_weights had its own copy of the path check, which said "got an object of
    # type bytearray", "got <memory at 0x...>" or "got <_io.BufferedReader ...>" where
    # read_image says what to give instead.
    path = save_zip(tmp_path / "m.pth", {"w": tensor(VALUES)})
    data = path.read_bytes()
    for given, kind in ((bytearray(data), "bytearray"), (memoryview(data), "memoryview")):
        with pytest.raises(ModelError) as refused:
            read_weights(given)
        assert str(refused.value) == (f"read_weights needs a file's path, got {len(data)} bytes (a {kind}): "
                                      "a file's contents? save them to a file and give its path")
    with open(path, "rb") as f, pytest.raises(ModelError) as refused:
        read_weights(f)
    assert str(refused.value) == f"read_weights needs a file's path, got an open file: give its path, {f.name!r}"
    with pytest.raises(ModelError) as refused:
        read_weights(io.BytesIO(data))
    assert str(refused.value) == ("read_weights needs a file's path, got an open file with no name (a BytesIO): "
                                  "give a file's path")
    with pytest.raises(ModelError, match=r"^read_weights needs a file's path, got ''$"):
        read_weights("")  # it was ". is a folder, not a checkpoint"
