"""This build's identity in torch.compile's cache keys.

torch's FX-graph and AOT-autograd caches key the traced graph, where mantra's composite
operators (torch.ops.mantra.trivialize, …) appear by name: a cache written by another build of
libmantra would replay that build's decomposition of the maps. mantra therefore appends a hash
of its loaded libraries to ``torch.compiler.config.cache_key_tag`` (torch's documented knob for
breaking caches), so that a rebuilt or upgraded mantra misses the old entries.
"""

import hashlib
import os

import torch


def _loaded_libraries(extension_path):
    """The mantra libraries this process runs: from /proc/self/maps where there is one (the
    libmantra the extension actually loaded), else the files next to the extension."""
    paths = {os.path.realpath(extension_path)}
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1] if "/" in line else ""
                if os.path.basename(path).startswith("libmantra"):
                    paths.add(os.path.realpath(path))
    except OSError:
        folder = os.path.dirname(extension_path)
        paths.update(os.path.realpath(os.path.join(folder, f)) for f in os.listdir(folder) if f.startswith("libmantra"))
    return sorted(paths)


def build_identity(extension_path):
    """A short hash of the contents of the loaded mantra libraries."""
    digest = hashlib.sha256()
    for path in _loaded_libraries(extension_path):
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def tag_compile_caches(extension_path):
    """Appends ``mantra-<identity>`` to torch.compiler.config.cache_key_tag (once); returns the tag."""
    tag = f"mantra-{build_identity(extension_path)}"
    current = torch.compiler.config.cache_key_tag
    if tag not in current.split("|"):
        torch.compiler.config.cache_key_tag = f"{current}|{tag}" if current else tag
    return tag
