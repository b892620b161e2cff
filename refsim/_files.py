"""Writing files safely: output paths checked before any work, atomic writes (a temporary file in
the same folder, flushed and fsynced, given normal permissions, then renamed), temporary files
removed on errors and on SIGTERM."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import tempfile

from .errors import ValidationError

_PENDING: set = set()
_HANDLER_SET = False


def _on_sigterm(signum, frame):
    for tmp in list(_PENDING):
        try:
            os.unlink(tmp)
        except OSError:
            pass
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install():
    global _HANDLER_SET
    if not _HANDLER_SET:
        try:
            if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread
            pass
        _HANDLER_SET = True


def require_regular_file(path, what: str) -> str:
    """Refuse, before opening it, anything but an existing regular file (a FIFO or a device would
    block or never end; a folder is not a file). Raises :class:`ValidationError` naming ``what``."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ValidationError(what, "an existing, readable file", f"{path} ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
        raise ValidationError(what, "a regular file", f"{path} is {kind}")
    return path


def check_output(path, option: str, inputs=(), suffix=None) -> str:
    """Check, before any work, that ``path`` can be written: its folder exists and is writable, it is
    not a folder, its name fits the file system, it ends in ``suffix`` when one is given (what will
    be written there), and it is none of ``inputs``. Raises :class:`ValidationError` naming ``option``."""
    path = os.fspath(path)
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if path.endswith(os.sep) or os.path.isdir(full):
        raise ValidationError(option, "a file path", f"{path} is a folder")
    if suffix and not path.lower().endswith(suffix):
        raise ValidationError(option, f"a {suffix} file name (that is the format written)", path)
    if len(os.path.basename(full).encode("utf-8", "surrogateescape")) > 200:
        raise ValidationError(option, "a file name of at most 200 bytes", path)
    if not os.path.isdir(folder):
        raise ValidationError(option, "a path in an existing folder", f"{path} (no folder {folder})")
    if not os.access(folder, os.W_OK):
        raise ValidationError(option, "a path in a writable folder", f"{path} (cannot write to {folder})")
    if os.path.exists(full):
        for i in inputs:
            if i is not None and os.path.exists(os.fspath(i)) and os.path.samefile(os.fspath(i), full):
                raise ValidationError(option, "a path that is not one of the inputs", path)
    return path


def check_output_dir(path, what: str) -> str:
    """An output folder, checked before any work: it is a folder already, or does not exist yet and
    its parent folder does (it is created then). Raises ValidationError naming ``what``."""
    p = os.path.abspath(os.fspath(path))
    if len(os.path.basename(p).encode("utf-8", "surrogateescape")) > 200:
        raise ValidationError(what, "a folder name of at most 200 bytes", os.fspath(path))
    if os.path.exists(p) and not os.path.isdir(p):
        raise ValidationError(what, "a folder (created if missing)", f"{os.fspath(path)} is a file")
    if not os.path.exists(p) and not os.path.isdir(os.path.dirname(p)):
        raise ValidationError(what, "a folder (created if missing) in an existing folder", os.fspath(path))
    return p


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path``; on success it is fsynced, made 0644 and renamed onto
    ``path``; on any error (or SIGTERM) it is removed."""
    _install()
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".refsim-", suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    _PENDING.add(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        _PENDING.discard(tmp)
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path, ".json") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1)
