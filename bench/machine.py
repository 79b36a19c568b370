"""Describe the machine and the software versions a benchmark ran on, for its report header.

The benchmarks run as scripts (`python bench/NAME.py`), so Python puts bench/
on sys.path and they import this module as `machine`.
"""

import logging
import os
import platform
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

logger = logging.getLogger(__name__)


def cpu_model() -> str:
    """Return the CPU's model name from /proc/cpuinfo, else what the platform module reports."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def machine_line() -> str:
    """Return "CPU: MODEL, N cores, PLATFORM" for a benchmark's first output line."""
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores, {platform.platform()}"


def postgres_version(engine: Engine) -> str:
    """Return the version of the PostgreSQL server behind `engine`."""
    with engine.connect() as connection:
        return str(connection.execute(text("SHOW server_version")).scalar_one())


def postgres_version_at(url: str) -> str:
    """Return the version of the PostgreSQL server at SQLAlchemy URL `url`."""
    engine = create_engine(url)
    try:
        return postgres_version(engine)
    finally:
        engine.dispose()
