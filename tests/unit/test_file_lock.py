"""The file lock that test sessions, migrations and the CPU vLLM's set-up take turns by."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from services.core.file_lock import exclusive

# Another process tries the lock without waiting: exit 0 if it got it, 1 if it is held.
TRY = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_WRONLY)\n"
    "try:\n"
    "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "except BlockingIOError:\n"
    "    sys.exit(1)\n"
)


def other_process_gets(path: Path) -> bool:
    """Whether a separate process could take the lock on path right now."""
    return subprocess.run([sys.executable, "-c", TRY, str(path)], timeout=30).returncode == 0


def test_the_lock_is_held_for_the_block_and_released_after_it(tmp_path: Path) -> None:
    path = tmp_path / "setup.lock"
    with exclusive(path):
        assert oct(path.stat().st_mode & 0o777) == "0o600"
        assert not other_process_gets(path)
    assert other_process_gets(path)


def test_an_exception_in_the_block_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "setup.lock"
    try:
        with exclusive(path):
            raise RuntimeError("set-up failed")
    except RuntimeError:
        pass
    assert other_process_gets(path)


def test_a_lock_file_left_readable_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "ehrsum.db.migrate.lock"
    path.touch(mode=0o644)
    path.chmod(0o644)
    with exclusive(path):
        assert oct(path.stat().st_mode & 0o777) == "0o600"
