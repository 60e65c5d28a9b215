"""The values a run's settings may take. The commands offer and check them as they
read their flags, and show them in their help: that must not wait for numpy and ncnn
to load (a tenth of a second), so they live here, with nothing to import, and the
engine takes them from here."""

ALPHA_MODES = ("bicubic", "model")
# default: ncnn's choice (fp16 storage on GPUs that have it, 60 dB from fp32). fp32:
# full precision. bf16: bfloat16 storage on the CPU, 54.5 dB from fp32 for 9-15% more
# speed and 8-20% less memory (docs/benchmarks.md). fp16 and int8 storage gained
# nothing on the CPU and are not offered.
PRECISIONS = ("default", "fp32", "bf16")
# The most context (tile_pad) or blend width (overlap) a tile may ask for: the
# reference uses 10 and 0, the default 10 and 16; 100000 padded a picture until
# memory ran out.
MAX_CONTEXT = 512
MIN_TILE = 32
# The longest side a result may be asked to have: past every picture format's limit,
# and a factor of 1e10 would otherwise end in an allocation error.
MAX_SIDE = 1 << 18
# What -g and a library device may name, said where one is wrong.
DEVICE_SPECS = "give auto, cpu, -1 or a device index (0 or gpu0)"
