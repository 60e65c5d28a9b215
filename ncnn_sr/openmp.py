"""ncnn, loaded with its OpenMP threads told to sleep soon when they wait.

The ncnn wheel for Linux bundles GNU libgomp, which reads from the environment, once,
as it loads, how many times a thread that waits for the others spins before it
sleeps: 300000 times by default (some milliseconds), but 100 times once it runs more
threads than there are cores. It cannot see other programs: on a machine whose
cores they keep busy, the spinning threads burn the time the thread they wait for
needs, at each of the thousands of waits in a network. Measured on 2 cores with 2
busy loops beside (realesrgan-x4plus, 32x32, ``tools/omp_wait.py``): 41 s a call
with the default spin, 23 s with 30000, 9.2 s with 10000, 1.9 s with 1000 and 2.5 s
with none (OMP_WAIT_POLICY=passive); on cores left to it (run at real-time
priority, beside other programs) all took 0.38-0.57 s, within the noise.

Other modules take ``ncnn`` from here, so that it is loaded this way whichever of them
comes first.
"""
import os
import sys

# Spins before a waiting OpenMP thread sleeps, when the user has set neither
# OMP_WAIT_POLICY nor GOMP_SPINCOUNT: as fast as the default on idle cores, as fast as
# never spinning on busy ones (the figures above), and what libgomp itself uses once
# it knows the cores are oversubscribed (OMP_WAIT_POLICY=active).
SPIN_COUNT = "1000"
USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _load():
    if "ncnn" in sys.modules or any(name in os.environ for name in USER_SETTINGS):
        import ncnn  # loaded already (its runtime has read its settings), or the user's settings
        return ncnn
    os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    try:
        import ncnn
    finally:
        # Only ncnn's own copy of libgomp reads it: programs started later (the
        # reference tool that ``bench`` compares against) and other OpenMP libraries
        # loaded later keep their defaults.
        os.environ.pop("GOMP_SPINCOUNT", None)
    return ncnn


ncnn = _load()
