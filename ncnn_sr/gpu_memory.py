"""How much Vulkan device memory this process is using, for benchmarks.

ncnn does not say how much device memory its allocators hold, but Vulkan does:
VK_EXT_memory_budget reports each heap's usage by the calling process, whichever
instance allocated it. This module asks the Vulkan loader directly (ctypes), so it
counts what ncnn's own instance holds: weights, blobs and staging buffers.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import struct
import sys
from functools import lru_cache

_APPLICATION_INFO = 0
_INSTANCE_CREATE_INFO = 1
_MEMORY_PROPERTIES_2 = 1000059006
_MEMORY_BUDGET_PROPERTIES = 1000237000
_HEAP_DEVICE_LOCAL = 0x1
_API_1_1 = (1 << 22) | (1 << 12)
_MAX_HEAPS = 16
# VkPhysicalDeviceProperties is 824 bytes; only its leading fields are read.
_PROPERTIES_BYTES = 1024


class _AppInfo(ctypes.Structure):
    _fields_ = [("sType", ctypes.c_uint32), ("pNext", ctypes.c_void_p), ("pApplicationName", ctypes.c_char_p),
                ("applicationVersion", ctypes.c_uint32), ("pEngineName", ctypes.c_char_p),
                ("engineVersion", ctypes.c_uint32), ("apiVersion", ctypes.c_uint32)]


class _InstanceInfo(ctypes.Structure):
    _fields_ = [("sType", ctypes.c_uint32), ("pNext", ctypes.c_void_p), ("flags", ctypes.c_uint32),
                ("pApplicationInfo", ctypes.POINTER(_AppInfo)), ("enabledLayerCount", ctypes.c_uint32),
                ("ppEnabledLayerNames", ctypes.c_void_p), ("enabledExtensionCount", ctypes.c_uint32),
                ("ppEnabledExtensionNames", ctypes.c_void_p)]


class _MemoryHeap(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint64), ("flags", ctypes.c_uint32)]


class _MemoryType(ctypes.Structure):
    _fields_ = [("propertyFlags", ctypes.c_uint32), ("heapIndex", ctypes.c_uint32)]


class _MemoryProperties2(ctypes.Structure):
    _fields_ = [("sType", ctypes.c_uint32), ("pNext", ctypes.c_void_p),
                ("memoryTypeCount", ctypes.c_uint32), ("memoryTypes", _MemoryType * 32),
                ("memoryHeapCount", ctypes.c_uint32), ("memoryHeaps", _MemoryHeap * _MAX_HEAPS)]


class _Budget(ctypes.Structure):
    _fields_ = [("sType", ctypes.c_uint32), ("pNext", ctypes.c_void_p),
                ("heapBudget", ctypes.c_uint64 * _MAX_HEAPS), ("heapUsage", ctypes.c_uint64 * _MAX_HEAPS)]


class _Extension(ctypes.Structure):
    _fields_ = [("extensionName", ctypes.c_char * 256), ("specVersion", ctypes.c_uint32)]


def loader_name() -> str:
    """The Vulkan loader's library on this system: find_library looks for vulkan.dll
    on Windows, whose loader is vulkan-1.dll, and finds a macOS one only in a few
    folders (the Vulkan SDK's is libvulkan.1.dylib)."""
    if sys.platform == "win32":
        return "vulkan-1.dll"
    found = ctypes.util.find_library("vulkan")
    if found:
        return found
    return "libvulkan.1.dylib" if sys.platform == "darwin" else "libvulkan.so.1"


class _Vulkan:
    """One Vulkan instance of our own, kept for the life of the process."""

    def __init__(self):
        self.lib = lib = ctypes.CDLL(loader_name())
        app = _AppInfo(_APPLICATION_INFO, None, b"ncnn-sr", 1, b"ncnn-sr", 1, _API_1_1)
        info = _InstanceInfo(_INSTANCE_CREATE_INFO, None, 0, ctypes.pointer(app), 0, None, 0, None)
        self.instance = ctypes.c_void_p()
        if lib.vkCreateInstance(ctypes.byref(info), None, ctypes.byref(self.instance)) != 0:
            raise OSError("vkCreateInstance failed")
        count = ctypes.c_uint32()
        lib.vkEnumeratePhysicalDevices(self.instance, ctypes.byref(count), None)
        handles = (ctypes.c_void_p * count.value)()
        lib.vkEnumeratePhysicalDevices(self.instance, ctypes.byref(count), handles)
        self.devices = list(handles)[:count.value]
        lib.vkGetPhysicalDeviceMemoryProperties2.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.vkGetPhysicalDeviceProperties.argtypes = [ctypes.c_void_p, ctypes.c_void_p]

    def _properties(self, device) -> bytes:
        raw = ctypes.create_string_buffer(_PROPERTIES_BYTES)
        self.lib.vkGetPhysicalDeviceProperties(device, raw)
        return raw.raw

    def identity(self, device) -> tuple[int, int, str]:
        """(vendor id, device id, name) of a physical device."""
        raw = self._properties(device)
        _, _, vendor, device_id = struct.unpack_from("=4I", raw)
        return vendor, device_id, raw[20:276].split(b"\0", 1)[0].decode(errors="replace")

    def has_budget(self, device) -> bool:
        """Whether the device reports its heaps' usage: VK_EXT_memory_budget, and
        Vulkan 1.1 for the query itself."""
        if struct.unpack_from("=I", self._properties(device))[0] < _API_1_1:
            return False
        count = ctypes.c_uint32()
        self.lib.vkEnumerateDeviceExtensionProperties(ctypes.c_void_p(device), None, ctypes.byref(count), None)
        found = (_Extension * count.value)()
        self.lib.vkEnumerateDeviceExtensionProperties(ctypes.c_void_p(device), None, ctypes.byref(count), found)
        return any(e.extensionName == b"VK_EXT_memory_budget" for e in found[:count.value])

    def heaps(self, device) -> list[tuple[int, bool, int]]:
        """(size, device-local?, this process's usage) of each memory heap; usage is 0
        where the driver does not report it."""
        budget = _Budget(_MEMORY_BUDGET_PROPERTIES, None)
        props = _MemoryProperties2(_MEMORY_PROPERTIES_2, ctypes.cast(ctypes.pointer(budget), ctypes.c_void_p))
        self.lib.vkGetPhysicalDeviceMemoryProperties2(device, ctypes.byref(props))
        return [(props.memoryHeaps[i].size, bool(props.memoryHeaps[i].flags & _HEAP_DEVICE_LOCAL),
                 budget.heapUsage[i]) for i in range(props.memoryHeapCount)]


@lru_cache(maxsize=1)
def _vulkan() -> _Vulkan | None:
    try:
        return _Vulkan()
    except (OSError, AttributeError):
        return None


@lru_cache(maxsize=None)
def _physical_device(index: int):
    """Our handle of ncnn's GPU ``index``: the same (vendor, device, name), counted in
    the loader's order, which ncnn follows too."""
    from . import devices
    from .openmp import ncnn

    vk = _vulkan()
    if vk is None or index < 0:
        return None
    devices.gpu_count()  # ncnn's instance, made here by get_gpu_count, printed its device notes on stderr
    if index >= ncnn.get_gpu_count():
        return None
    ours = [vk.identity(d) for d in vk.devices]

    def key(i: int) -> tuple[int, int, str]:
        info = ncnn.get_gpu_info(i)
        return info.vendor_id(), info.device_id(), info.device_name()

    wanted = key(index)
    nth = sum(1 for i in range(index) if key(i) == wanted)
    matches = [d for d, ident in zip(vk.devices, ours) if ident == wanted]
    if nth >= len(matches) or not vk.has_budget(matches[nth]):
        return None
    return matches[nth]


def used_bytes(index: int) -> int | None:
    """Bytes of device-local memory this process holds on ncnn's GPU ``index``; None
    where the driver cannot tell (no VK_EXT_memory_budget) or there is no such GPU."""
    device = _physical_device(index)
    if device is None:
        return None
    return sum(usage for _, local, usage in _vulkan().heaps(device) if local)
