"""What the package is made of, as it would be published: the sdist and the files a
wheel installs, built from a copy of this tree with setuptools, as pip builds them.

Found by a new-user audit: the sdist held the package alone, so the README's two
commands, run in it, failed (`docs/sample.jpg: file not found`, and pytest found no
tests); and `packages` in setup.cfg names each package, so a sub-package added to
ncnn_sr would be left out of the wheel without a word.
"""
from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a release is built from: the tree without its build outputs and caches.
SOURCES = ("ncnn_sr", "models_ncnn", "tests", "tools", "docs", ".ci", "README.md", "LICENSE", "setup.cfg",
           "pyproject.toml", "MANIFEST.in")
CACHES = ("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache")

setuptools = pytest.importorskip("setuptools", minversion="61")  # in the test extra


def files_under(folder: Path) -> set[str]:
    """Each file below ``folder``, as a path relative to it, caches left out."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the sources, with a compiled module beside a test, as a run of the
    tests leaves one, and a stray build folder."""
    copy = tmp_path / "tree"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns(*CACHES))
        elif (ROOT / name).exists():
            copy.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / "tests" / "__pycache__").mkdir()
    (copy / "tests" / "__pycache__" / "conftest.cpython-311.pyc").write_bytes(b"\0" * 16)
    return copy


def build(tree: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, *args], cwd=tree, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_sdist_holds_what_the_readme_s_commands_and_the_tests_need(tree, tmp_path):
    build(tree, "-c", f"import setuptools.build_meta as b; b.build_sdist({str(tmp_path / 'dist')!r})")
    [sdist] = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        held = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        ci = archive.getmember(f"{sdist.name.removesuffix('.tar.gz')}/.ci/run")
    assert ci.mode & 0o111  # the README says to run .ci/run
    sources = set()
    for name in SOURCES:
        if (tree / name).is_dir():
            sources |= {f"{name}/{f}" for f in files_under(tree / name)}
        elif (tree / name).exists():
            sources.add(name)
    assert sources - held == set()
    # docs/sample.jpg for `ncnn-sr -i docs/sample.jpg`, every test for `pytest`
    assert {"docs/sample.jpg", "tests/conftest.py", "tests/test_packaging.py", ".ci/run"} <= held
    assert not [name for name in held if "__pycache__" in name or name.endswith(".pyc")]


def test_the_wheel_installs_every_module_and_the_catalog_and_no_tests(tree, tmp_path):
    # build_py is the step of a wheel's build that picks the packages' files.
    lib = tmp_path / "lib"
    (tree / "ncnn_sr" / "later").mkdir()
    (tree / "ncnn_sr" / "later" / "__init__.py").write_text('"""A sub-package added later."""\n')
    build(tree, "-c", "import setuptools; setuptools.setup()", "-q", "build_py", "--build-lib", str(lib))
    installed = files_under(lib)
    expected = {f"ncnn_sr/{f}" for f in files_under(tree / "ncnn_sr")}
    expected |= {f"models_ncnn/{f}" for f in files_under(tree / "models_ncnn")}
    assert installed == expected
    assert {"ncnn_sr/later/__init__.py", "models_ncnn/catalog.json"} <= installed
    # Each command the wheel installs is a function there.
    config = configparser.ConfigParser()
    config.read(tree / "setup.cfg", encoding="utf-8")
    scripts = [line.split("=") for line in config["options.entry_points"]["console_scripts"].split("\n") if line]
    assert {name.strip() for name, _ in scripts} == {"ncnn-sr", "realesrgan-ncnn-vulkan"}
    for _, target in scripts:
        module, function = target.strip().split(":")
        assert f"def {function}(" in (lib / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8")


def test_the_readme_names_the_python_the_package_requires():
    # The README said 3.10 after the video code had come to need PyAV 18, which 3.10 has none of.
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg", encoding="utf-8")
    required = config["options"]["python_requires"].strip()
    said = re.search(r"^Python (3\.\d+) or newer\.", (ROOT / "README.md").read_text(encoding="utf-8"), re.M)[1]
    assert required == f">={said}"
