"""Where the Inception weights come from: a file the user names, or pytorch-fid's published file,
downloaded once (on request) into the user's cache and checked against its published checksum.

``--inception PATH`` names a file; ``--inception download`` fetches FID_WEIGHTS_URL into
``cache_dir()`` unless it is there already; with no option, the cached file is used when present.
The checksum is the one published in the file's name, as torch.hub checks it: the SHA-256 of the file
begins with those hex digits. Nothing here runs at test time against the network (tests download
from a file:// URL).
"""
from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from onnxgan.errors import UserError, first_line
from onnxgan.files import atomic_write

FILE_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FILE_NAME}"
SHA256_PREFIX = FILE_NAME.rsplit("-", 1)[1].split(".")[0]  # "6726825d"
DOWNLOAD = "download"
HOW_TO = (f"--inception {FILE_NAME} (pytorch-fid's Inception weights, {FID_WEIGHTS_URL}) or --inception "
          f"{DOWNLOAD} (fetched once into {{cache}})")
_CHUNK = 1 << 20


def cache_dir() -> Path:
    """$ONNXGAN_CACHE, else $XDG_CACHE_HOME/onnxgan, else ~/.cache/onnxgan."""
    if os.environ.get("ONNXGAN_CACHE"):
        return Path(os.environ["ONNXGAN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "onnxgan"


def how_to_get_weights() -> str:
    """The options that give the weights, for a one-line message (the cache folder spelled out)."""
    return HOW_TO.format(cache=cache_dir())


def resolve_weights(spec: str | None) -> Path | None:
    """``spec`` (None, "download" or a path) -> the weights file to read, or None when there is none."""
    cached = cache_dir() / FILE_NAME
    if spec is None:
        return cached if cached.is_file() else None
    if spec == DOWNLOAD:
        return cached if cached.is_file() else download(FID_WEIGHTS_URL, cached)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(f"--inception {spec}: no such file; pass {how_to_get_weights()}")
    return path


def download(url: str, destination: Path, sha256_prefix: str = SHA256_PREFIX) -> Path:
    """Fetch ``url`` into ``destination`` atomically (nothing is left behind on failure) and check that
    its SHA-256 begins with ``sha256_prefix``."""
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_write(destination) as f:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                f.write(chunk)
            if not digest.hexdigest().startswith(sha256_prefix):
                raise UserError(f"{url}: the download's SHA-256 {digest.hexdigest()[:16]}... does not begin with the "
                                f"published {sha256_prefix}; nothing was kept")
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise UserError(f"cannot download the Inception weights from {url} ({first_line(e)}); download them "
                        f"yourself and pass --inception PATH") from None
    return destination
