"""Memory: what the machine has available, and what threads share, each holding part
of it while its work is in flight."""
from __future__ import annotations

import collections
import contextlib
import functools
import os
import sys
import threading
from typing import Callable, Iterator

try:
    import resource
except ImportError:  # Windows
    resource = None


class MemoryBudget:
    """Bytes that work in flight may hold together (a Pipeline's animations, whose
    frames are held whole; its stills' results and writing, with the animations, in
    the memory available as its run starts). ``take`` waits until an amount fits
    beside what is held: one of at most ``total`` always does, once the others are
    given back."""

    def __init__(self, total: int):
        self.total = total
        self._held = 0
        self._room = threading.Condition()

    def take(self, amount: int, cancel: threading.Event) -> bool:
        """Hold ``amount`` once it fits; False, holding nothing, if ``cancel`` is set first."""
        with self._room:
            while self._held + amount > self.total:
                if cancel.is_set():
                    return False
                self._room.wait(0.1)
            self._held += amount
            return True

    @property
    def held(self) -> int:
        return self._held

    def give(self, amount: int) -> None:
        if amount:
            with self._room:
                self._held -= amount
                self._room.notify_all()


class WriterRoom:
    """Memory promised to the writers in progress in this process (``ncnn_sr.images``'
    encoders, each promising its guess of what it takes). The memory available counts
    none of it until an encoder allocates: two save workers checking at once each saw
    room for itself alone, and Linux killed the process that took both rather than
    failing an allocation. Unlike MemoryBudget's, the room is what is available at each
    check, which other programs change, and a writer that cannot fit even alone is
    refused rather than left waiting."""

    def __init__(self):
        self._promised = 0
        self._queue: collections.deque = collections.deque()  # writers not yet let in, first come first
        self._room = threading.Condition()

    @property
    def waiting(self) -> int:
        """Writers waiting for the ones in progress to finish."""
        with self._room:
            return len(self._queue)

    @contextlib.contextmanager
    def promise(self, need: int, refusal: Callable[[int], Exception]) -> Iterator[None]:
        """Hold ``need`` bytes while the block runs, once they fit beside what writers in
        progress were promised, waiting for them while it would fit alone (letting in the
        writers that came first first: a large one is not passed over forever). Raises
        ``refusal(bytes available alone)`` where ``need`` cannot fit even alone. Nothing
        is held or refused where the memory available is unknown, nor where ``need`` is
        none (an 8-bit RGBA png), which never waits."""
        # Noted in the same step as promised, inside the try: a Ctrl-C that came out of
        # _take after the promise (at a notify) kept it for good, and a later writer
        # that did not fit beside it waited for ever.
        held = [0]
        try:
            if need:
                self._take(need, refusal, held)
            yield
        finally:
            if held[0]:
                with self._room:
                    self._promised -= held[0]
                    self._room.notify_all()

    def _take(self, need: int, refusal: Callable[[int], Exception], held: list) -> None:
        me = object()
        with self._room:
            self._queue.append(me)
            try:
                while True:
                    available = memory_limit()
                    if available is None:
                        return
                    # What the others were promised is either still free or taken from
                    # ``available`` already: counted twice, it errs on the side of waiting.
                    if need > available + self._promised:
                        raise refusal(available + self._promised)
                    if self._queue[0] is me and need + self._promised <= available:
                        self._promised += need
                        held[0] = need  # no call between: a signal finds both done or neither
                        return
                    self._room.wait()
            finally:
                self._queue.remove(me)
                self._room.notify_all()  # the next in line may fit now


# The one room of this process: writers in different threads share its memory.
WRITERS = WriterRoom()


def _linux_available() -> int | None:
    """What Linux can hand out now: MemAvailable, or less where the cgroups this
    process is in (a container's, a service's) leave less under their limit, or its
    own caps (ulimit -v, ulimit -d) less under theirs."""
    named = _linux_named()
    return None if named is None else named[0]


# What holds the memory to less than the machine has, in a refusal's words.
_CGROUP_WHY = "its container's or service's memory limit"


def _linux_named() -> tuple[int, str] | None:
    """``_linux_available()``'s figure and what holds it there where that is not the
    machine's memory: "ulimit -v" or "ulimit -d" (``_CAPS``), or _CGROUP_WHY; "" where
    it is. The same reads as the figure alone."""
    known = [(found, why) for found, why in ((_meminfo_available(), ""), (_cgroup_room(), _CGROUP_WHY),
                                             _cap_named() or (None, "")) if found is not None]
    return min(known, key=lambda named: named[0], default=None)  # the machine's where they are equal


def _read(path: str) -> bytes | None:
    """The file at ``path``, a small one of /proc or /sys, whole; None where it cannot
    be read."""
    # Read by its descriptor: read 3 times a picture, a text file object took 7 system
    # calls a read, each letting the run's other threads in (120-145 us of CPU a read
    # in a folder run of 16x16 pictures, 75-90 us so). These files are a few kB at
    # most: a read gives them whole.
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.read(fd, 1 << 16)
        finally:
            os.close(fd)
    except OSError:
        return None


def _meminfo_available() -> int | None:
    """MemAvailable: what Linux can hand out now, caches it would drop included."""
    head = _read("/proc/meminfo")  # its third line this one
    try:
        for line in (head or b"").split(b"\n"):
            if line.startswith(b"MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (IndexError, ValueError):
        pass
    return None


# Where the cgroups are: /proc/self/cgroup names this process's, under the folders
# Docker, Kubernetes and systemd mount v2's one hierarchy and v1's memory controller at.
PROC_CGROUP = "/proc/self/cgroup"
CGROUP_V2 = "/sys/fs/cgroup"
CGROUP_V1 = "/sys/fs/cgroup/memory"
# Each version's files: the limit, what is used, and in its stat the file cache
# (which the kernel drops before it kills; v1's total_ lines count its sub-groups).
_V2_FILES = ("memory.max", "memory.current", "memory.stat", (b"active_file", b"inactive_file"))
_V1_FILES = ("memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat",
             (b"total_active_file", b"total_inactive_file"))
# v1 states no limit as 2**63 - 1 rounded to a page; v2 as "max", which int() refuses.
_NO_LIMIT = 1 << 60


@functools.lru_cache(maxsize=1)
def _cgroup_limits() -> tuple[tuple[int, str, str, tuple[bytes, ...]], ...]:
    """(limit, usage file, stat file, the stat's file cache lines) of each cgroup this
    process is in, itself and those above it, whose memory has a limit: none on a
    desktop, whose /proc/meminfo alone says what there is. Looked for once a process:
    a limit is set as a container or service starts."""
    limits = []
    for line in (_read(PROC_CGROUP) or b"").decode("utf-8", "replace").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and not controllers:
            root, files = CGROUP_V2, _V2_FILES
        elif "memory" in controllers.split(","):
            root, files = CGROUP_V1, _V1_FILES
        else:
            continue
        # Its folder and those above it, to the root: without a cgroup namespace the
        # path is the host's (/docker/ID), and the container's own is mounted at the root.
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            folder = os.path.join(root, *parts[:depth])
            try:
                limit = int(_read(os.path.join(folder, files[0])) or b"")
            except ValueError:  # none there, or "max"
                continue
            if limit < _NO_LIMIT:
                limits.append((limit, os.path.join(folder, files[1]), os.path.join(folder, files[2]), files[3]))
    return tuple(limits)


def _cgroup_room() -> int | None:
    """Bytes the cgroups of this process can still take before the kernel kills
    (their limit less what they use, their file cache counted as room); None where
    none has a limit."""
    rooms = []
    for limit, usage_file, stat_file, cache_lines in _cgroup_limits():
        try:
            used = int(_read(usage_file) or b"")
        except ValueError:
            continue
        cache = 0
        for line in (_read(stat_file) or b"").split(b"\n"):
            name, _, value = line.partition(b" ")
            if name in cache_lines and value.strip().isdigit():
                cache += int(value)
        rooms.append(max(0, limit - used + min(cache, used)))
    return min(rooms, default=None)


# This process's status: what it has mapped under each cap below.
PROC_STATUS = "/proc/self/status"
# Each cap a process may have on its own memory, the status line that counts what the
# kernel checks it against (ulimit -v's address space, ulimit -d's private writable
# mappings: since Linux 4.7; the heap alone before, which VmData over-counts), and the
# cap as a refusal names it.
_CAPS = (("RLIMIT_AS", b"VmSize:", "ulimit -v"), ("RLIMIT_DATA", b"VmData:", "ulimit -d"))


def _cap_named() -> tuple[int, str] | None:
    """Bytes this process can still map before a cap of its own (ulimit -v or -d) makes
    an allocation fail: the cap less what it has under it, which counts memory reserved
    and never touched (OpenMP's thread stacks, malloc's arenas), as the kernel does;
    with the cap that leaves them, as the shell sets it ("ulimit -v"). None where no
    cap is set or what is under it is unknown."""
    if resource is None:
        return None
    caps = []
    for name, line, why in _CAPS:
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            soft = resource.getrlimit(which)[0]
        except (OSError, ValueError):
            continue
        if soft != resource.RLIM_INFINITY:
            caps.append((soft, line, why))
    if not caps:  # the usual case: the status file is not read
        return None
    rooms = []
    status = b"\n" + (_read(PROC_STATUS) or b"")
    for soft, name, why in caps:
        start = status.find(b"\n" + name)  # found, not split in lines: read 3 times a picture
        if start >= 0:
            try:
                rooms.append((max(0, soft - int(status[start + 1:].split(None, 2)[1]) * 1024), why))
            except (IndexError, ValueError):
                pass
    return min(rooms, default=None)


def _memory_status_type():
    """MEMORYSTATUSEX, the record GlobalMemoryStatusEx fills (64 bytes)."""
    import ctypes

    class MemoryStatusEx(ctypes.Structure):
        _fields_ = [("dwLength", ctypes.c_uint32), ("dwMemoryLoad", ctypes.c_uint32),
                    ("ullTotalPhys", ctypes.c_uint64), ("ullAvailPhys", ctypes.c_uint64),
                    ("ullTotalPageFile", ctypes.c_uint64), ("ullAvailPageFile", ctypes.c_uint64),
                    ("ullTotalVirtual", ctypes.c_uint64), ("ullAvailVirtual", ctypes.c_uint64),
                    ("ullAvailExtendedVirtual", ctypes.c_uint64)]
    return MemoryStatusEx


def _windows_available() -> int | None:
    """Windows's available physical memory: free pages and the standby cache it would
    drop, as Linux's MemAvailable. Windows has no sysconf; None elsewhere."""
    if sys.platform != "win32":
        return None
    try:
        import ctypes

        status = _memory_status_type()()
        status.dwLength = ctypes.sizeof(status)
        if not ctypes.WinDLL("kernel32").GlobalMemoryStatusEx(ctypes.byref(status)):
            return None
    except (OSError, AttributeError):
        return None
    return status.ullAvailPhys or None


def _vm_statistics64_type():
    """vm_statistics64, the record host_statistics64 fills for HOST_VM_INFO64 (152
    bytes, 8-aligned: macOS's mach/vm_statistics.h)."""
    import ctypes

    natural, count = ctypes.c_uint32, ctypes.c_uint64

    class VmStatistics64(ctypes.Structure):
        _fields_ = [("free_count", natural), ("active_count", natural), ("inactive_count", natural),
                    ("wire_count", natural), ("zero_fill_count", count), ("reactivations", count),
                    ("pageins", count), ("pageouts", count), ("faults", count), ("cow_faults", count),
                    ("lookups", count), ("hits", count), ("purges", count), ("purgeable_count", natural),
                    ("speculative_count", natural), ("decompressions", count), ("compressions", count),
                    ("swapins", count), ("swapouts", count), ("compressor_page_count", natural),
                    ("throttled_count", natural), ("external_page_count", natural),
                    ("internal_page_count", natural), ("total_uncompressed_pages_in_compressor", count)]
    return VmStatistics64


_HOST_VM_INFO64 = 4


@functools.lru_cache(maxsize=1)
def _mach_host():
    """libSystem and this task's send right to the host port: each mach_host_self call
    adds a reference to that right, which a long-lived process calling it per picture
    would run out of."""
    import ctypes

    system = ctypes.CDLL("/usr/lib/libSystem.B.dylib")
    system.mach_host_self.restype = ctypes.c_uint32
    system.mach_host_self.argtypes = []
    system.host_page_size.argtypes = [ctypes.c_uint32, ctypes.POINTER(ctypes.c_size_t)]
    system.host_statistics64.argtypes = [ctypes.c_uint32, ctypes.c_int, ctypes.c_void_p,
                                         ctypes.POINTER(ctypes.c_uint32)]
    return system, system.mach_host_self()


def _macos_available() -> int | None:
    """macOS's available memory: free pages (speculative ones among them) and inactive
    ones, which it takes back without swapping most, as Linux's MemAvailable and
    vm_stat count them. macOS's sysconf counts no available pages; None elsewhere or
    where the kernel does not answer."""
    if sys.platform != "darwin":
        return None
    try:
        import ctypes

        system, host = _mach_host()
        page = ctypes.c_size_t()
        stats = _vm_statistics64_type()()
        count = ctypes.c_uint32(ctypes.sizeof(stats) // 4)
        if (system.host_page_size(host, ctypes.byref(page))
                or system.host_statistics64(host, _HOST_VM_INFO64, ctypes.byref(stats), ctypes.byref(count))):
            return None
    except (OSError, AttributeError):
        return None
    return (stats.free_count + stats.inactive_count) * page.value or None


def available_memory() -> int:
    """Bytes of memory available to this process now (a guess of 4 GiB where unknown)."""
    found = _first(_linux_available, _windows_available, _macos_available, lambda: _pages("SC_AVPHYS_PAGES"))
    return found if found is not None else 4 << 30


def memory_limit() -> int | None:
    """Bytes of memory a run can hope to get, to refuse a result that cannot fit: what
    Linux or Windows says is available, elsewhere (macOS) the machine's whole memory
    (the free-page count there leaves out caches a run would get back); None where
    neither is known."""
    return _first(_linux_available, _windows_available, lambda: _pages("SC_PHYS_PAGES"))


def memory_limit_named() -> tuple[int | None, str]:
    """``memory_limit()``'s bytes and what holds them there where that is not the
    machine's memory (``_linux_named``); for a refusal's words only, as it costs more."""
    named = _linux_named()
    return named if named is not None else (_first(_windows_available, lambda: _pages("SC_PHYS_PAGES")), "")


def cap_room() -> tuple[int, str] | None:
    """Bytes this process can still map under a cap of its own (ulimit -v or -d), with
    the cap as a refusal names it; None where none is set (``_cap_named``)."""
    return _cap_named()


def size_words(count: int, up: bool = False, down: bool = False) -> str:
    """``count`` bytes as a refusal says them: "1.2 GB", or in MB below a GB (kB below
    a MB, bytes below a kB), where a tenth of a GB told nothing ("needs about 0.0 GB,
    more than the 0.0 GB available"), nor "0 kB" (Pipeline(animation_memory=1000)).
    ``up``, ``down``: rounded so, the need and the room of a refusal, where both
    rounded alike read as no shortage ("need about 20 kB, more than the 20 kB" of
    20736 bytes against 20735)."""
    if up or down:
        unit, parts = _size_step(count)
        steps = -(-count * parts // unit) if up else count * parts // unit
        # Said again as a whole number of steps: one rounded up past its unit's last
        # (1023.5 kB) reads in the next ("1.0 MB"), not as "1024 kB".
        count = -(-steps * unit // parts) if up else steps * unit // parts
    if count >= 2**30:
        return f"{count / 2**30:.1f} GB"
    if count >= 10 << 20:
        return f"{count >> 20} MB"
    if count >= 2**20:
        return f"{count / 2**20:.1f} MB"
    return f"{count >> 10} kB" if count >= 2**10 else bytes_words(max(count, 0))


def _size_step(count: int) -> tuple[int, int]:
    """The unit size_words says ``count`` in, and the parts of it it tells apart."""
    if count >= 2**30:
        return 2**30, 10
    if count >= 10 << 20:
        return 2**20, 1
    if count >= 2**20:
        return 2**20, 10
    return (2**10, 1) if count >= 2**10 else (1, 1)


def bytes_words(count: int) -> str:
    """``count`` bytes, under a kB, in words: "1 byte", "900 bytes"."""
    return f"{count} byte{'' if count == 1 else 's'}"


def mb_words(count: int, up: bool = False, down: bool = False) -> str:
    """``count`` bytes in whole MB, as a refusal that compares them with others in MB
    says them, or as size_words says them below a MB, where "0 MB" called some none;
    ``up``, ``down`` as size_words'."""
    if count >= 2**20:
        return f"{-(-count >> 20) if up else count >> 20} MB"
    return size_words(count, up, down)


def room_words(need: int, available: int, half: bool = False, mb: bool = False) -> str:
    """The room a refusal of ``need`` bytes, more than ``available`` (memory_limit()'s,
    perhaps as a run started, with what others hold beside it), names: "the 3.8 GB
    available", or where a cap of the process's own or its cgroup's limit leaves less
    than ``need`` now, that room and what leaves it: "the 3.8 GB this process may still
    use (ulimit -v)", which a user whose machine has 64 GB is not puzzled by. Read
    again here, not with ``available``: memory_limit() is read 3 times a picture. A
    figure no cap or cgroup holds now (memory freed since, or a test's) is said as it
    was. ``half``: the refusal was of more than half of it ("half the 3.8 GB ...").
    ``mb``: said in MB, whatever the size (size_words says a GB and more in GB)."""
    found, why = memory_limit_named()
    share = "half " if half else ""

    def amount(count: int) -> str:
        # Down, as the need beside it is said up (size_words).
        return mb_words(count, down=True) if mb else size_words(count, down=True)
    if why and found is not None and need > (found // 2 if half else found):
        return f"{share}the {amount(found)} this process may still use ({why})"
    return f"{share}the {amount(available)} available"


def _first(*sources: Callable[[], int | None]) -> int | None:
    """The first count of bytes a source knows, asking each in turn: one that knows
    none (None) sends on to the next; 0, a full container's room, is an answer."""
    for source in sources:
        found = source()
        if found is not None:
            return found
    return None


def _pages(name: str) -> int | None:
    """sysconf's count of pages ``name``, in bytes; None where it has none (Windows)."""
    try:
        return os.sysconf(name) * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
