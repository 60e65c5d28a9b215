"""A GPU that computes a model wrong (black or garbled pictures, as some drivers give
the reference tool's users) is found as the model loads: float32 on it is tried,
then the CPU, each said in a warning. The check itself on the CPU; the GPU as
lavapipe dressed as a discrete GPU (a software device is not checked), with faults
made by hand."""
import logging

import numpy as np
import pytest

from conftest import picture
from ncnn_sr import Upscaler, device_check, get_device
from ncnn_sr import network as network_mod
from ncnn_sr.devices import Device
from ncnn_sr.models import catalog

MODEL = "realesr-animevideov3-x2"


def cpu_output(name):
    with Upscaler(name, device=-1) as up:
        return up._net.run(device_check.probe_picture())


def test_the_test_picture_is_not_flat_and_a_signature_is_8x8_cells_of_3_channels():
    probe = device_check.probe_picture()
    assert probe.shape == (32, 32, 3) and probe.dtype == np.float32 and np.ptp(probe) > 0.5
    assert len(device_check.signature(np.zeros((64, 64, 3)))) == 8 * 8 * 3


@pytest.mark.parametrize("name", [n for n, e in catalog().items() if e.package_files])
def test_the_catalogs_signatures_are_what_the_cpu_gives(name):
    # Made by tools/probe_signatures.py on one machine; another CPU's rounding is a
    # level at most.
    expected = np.array(catalog()[name].probe)
    assert np.abs(np.array(device_check.signature(cpu_output(name))) - expected).max() <= 1


def test_what_counts_as_a_fault():
    out = cpu_output(MODEL)
    expected = device_check.signature(out)
    assert device_check.fault(out, expected) is None and device_check.fault(out, None) is None
    assert device_check.fault(out + 3 / 255, expected) is None  # float16's rounding and more
    assert device_check.fault(np.zeros_like(out), None) == "one flat colour"
    assert device_check.fault(np.full_like(out, 2.0), None) == "one flat colour"  # all clipped to white
    assert device_check.fault(np.where(out > 0.5, np.nan, out), expected) == "NaN or infinite values"
    garbled = np.random.default_rng(0).uniform(0, 1, out.shape)
    assert device_check.fault(garbled, expected).startswith("a picture ") and "grey levels from the CPU's" in \
        device_check.fault(garbled, expected)
    assert device_check.fault(garbled, None) is None  # without a signature only the gross faults show


def dressed(gpu):
    here = get_device(gpu)
    return Device(here.index, here.name, "discrete", here.heap_budget_mb)


def break_gpu(monkeypatch, fp16_only=False, output=np.zeros):
    """GPU runs give ``output`` (zeros: a black picture); with ``fp16_only``, only in
    ncnn's default precision."""
    run = network_mod.Network.run

    def faulty(self, image, keep=None):
        result = run(self, image, keep)
        if self.device.is_gpu and (not fp16_only or self._net.opt.use_fp16_storage):
            return output(result.shape).astype(np.float32)
        return result
    monkeypatch.setattr(network_mod.Network, "run", faulty)


def test_a_gpu_that_computes_the_model_right_keeps_it(gpu, caplog):
    caplog.set_level(logging.WARNING, logger="ncnn_sr")
    with Upscaler(MODEL, device=dressed(gpu)) as up:
        assert up._net.device.is_gpu
    assert "computes" not in caplog.text


def test_a_gpu_that_gives_black_pictures_hands_the_model_to_the_cpu(gpu, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="ncnn_sr")
    break_gpu(monkeypatch)
    with Upscaler(MODEL, device=dressed(gpu)) as up:
        assert not up._net.device.is_gpu
        image = picture(12, 16)
        out = up.upscale(image)
    with Upscaler(MODEL, device=-1) as cpu:
        assert np.array_equal(out, cpu.upscale(image))
    warnings = [r.getMessage() for r in caplog.records if "computes" in r.getMessage()]
    assert len(warnings) == 2
    assert f"computes {MODEL} wrong (one flat colour for a test picture: a driver fault?): running it in float32" \
        in warnings[0]
    assert warnings[1].endswith("running it on the CPU, slower")


def test_a_gpu_wrong_in_float16_only_keeps_the_model_in_float32(gpu, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="ncnn_sr")
    break_gpu(monkeypatch, fp16_only=True, output=lambda shape: np.random.default_rng(1).uniform(0, 1, shape))
    with Upscaler(MODEL, device=dressed(gpu)) as up:
        assert up._net.device.is_gpu and not up._net._net.opt.use_fp16_storage
    assert "grey levels from the CPU's for a test picture" in caplog.text and "running it in float32" in caplog.text
    assert "on the CPU" not in caplog.text


def test_asked_for_float32_a_faulty_gpu_goes_straight_to_the_cpu(gpu, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="ncnn_sr")
    break_gpu(monkeypatch)
    with Upscaler(MODEL, device=dressed(gpu), precision="fp32") as up:
        assert not up._net.device.is_gpu
    assert caplog.text.count("computes") == 1 and "running it on the CPU" in caplog.text


def test_a_software_gpu_is_not_checked(gpu, monkeypatch):
    if get_device(gpu).kind != "cpu":
        pytest.skip("needs a software Vulkan device (lavapipe)")
    break_gpu(monkeypatch)
    with Upscaler(MODEL, device=gpu) as up:
        assert up._net.device.is_gpu
