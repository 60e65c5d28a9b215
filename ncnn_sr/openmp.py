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

# The process whose ncnn has run OpenMP threads. GNU libgomp keeps its pool of threads
# across a fork without the threads themselves: in the child, ncnn's next parallel
# loop waited for them for ever (a multiprocessing pool that never finished).
_threads_pid: "int | None" = None


def claim_threads(count: int) -> None:
    """Note that ncnn is about to run ``count`` OpenMP threads in this process; a
    DeviceError in a process forked after its parent's ncnn ran threads, where
    those threads do not exist. One thread starts none, and runs anywhere."""
    global _threads_pid
    if count <= 1:
        return
    if _threads_pid not in (None, os.getpid()):
        from .errors import DeviceError
        raise DeviceError("ncnn ran OpenMP threads in the parent of this forked process, which cannot run them "
                          "here (ncnn would wait for them for ever): use threads=1, or start the process with "
                          "multiprocessing's 'spawn' method")
    _threads_pid = os.getpid()
