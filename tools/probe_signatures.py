"""The catalog's probe signatures: what each catalog model makes of device_check's
test picture on the CPU, shrunk to 8x8 (device_check.signature), which a GPU's
output must match as the model loads. Prints them; with --write, stores them in
models_ncnn/catalog.json. Run it when a catalog model or the test picture changes.

    python tools/probe_signatures.py
    python tools/probe_signatures.py --write
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ncnn_sr import device_check  # noqa: E402
from ncnn_sr.engine import Upscaler  # noqa: E402
from ncnn_sr.models import catalog  # noqa: E402

CATALOG = ROOT / "models_ncnn" / "catalog.json"


def cpu_signature(name: str) -> tuple[int, ...] | None:
    try:
        with Upscaler(name, device=-1) as up:
            return device_check.signature(up._net.run(device_check.probe_picture()))
    except Exception as e:  # noqa: BLE001 - a model not installed here: said, and left without one
        print(f"{name}: {e}", file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="store them in models_ncnn/catalog.json")
    args = parser.parse_args()
    text = CATALOG.read_text(encoding="utf-8")
    for name in catalog():
        found = cpu_signature(name)
        print(name, "none" if found is None else f"{len(found)} values, mean {sum(found) / len(found):.1f}")
        if found is not None:
            text = with_probe(text, name, found)
    json.loads(text)  # still the catalog's JSON
    if args.write:
        CATALOG.write_text(text, encoding="utf-8")


def with_probe(text: str, name: str, probe: tuple[int, ...]) -> str:
    """The catalog's text with model ``name``'s probe line put after its
    cpu_bytes_per_pixel (or replaced), the rest as it was written."""
    start = text.index(f'"{name}": {{')
    end = text.index("}", start)
    entry = re.sub(r',\n\s*"probe": \[[^\]]*\]', "", text[start:end])
    entry = re.sub(r'("cpu_bytes_per_pixel": \d+)', lambda m: f'{m.group(1)},\n      "probe": {list(probe)}', entry)
    return text[:start] + entry + text[end:]


if __name__ == "__main__":
    main()
