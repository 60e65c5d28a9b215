"""What differs on Windows and macOS, simulated here: functions and modules those
systems lack are taken away, and the code must take its other way."""
import os

import pytest

from ncnn_sr import files as files_mod


def test_atomic_write_works_without_fchmod(tmp_path, monkeypatch):
    # Windows has no os.fchmod before Python 3.13: every picture's write failed there.
    monkeypatch.delattr(os, "fchmod")
    target = tmp_path / "a.png"
    files_mod.atomic_write(target, lambda f: f.write(b"whole"))
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
