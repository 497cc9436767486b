"""pdftoppm (Debian's poppler-utils), with which the tests render a report's PDF to pixels.

Installed from Debian's packages when the machine lacks it, as PostgreSQL,
nginx and promtool are (devstack/packages.py): a test that checks what a
PDF shows must find the real renderer on a fresh machine.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from devstack.packages import ensure_binary


def ensure_pdftoppm() -> str:
    """The pdftoppm binary, installed with apt-get (package poppler-utils) when missing."""
    return ensure_binary("pdftoppm", "poppler-utils")


def render_page(pdf: Path, page: int, out_prefix: Path, dpi: int = 50) -> Path:
    """Page `page` of `pdf` as a PNG (pdftoppm -png -singlefile); the PNG's path."""
    subprocess.run(
        [
            ensure_pdftoppm(),
            "-png",
            "-singlefile",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            str(pdf),
            str(out_prefix),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return out_prefix.with_suffix(".png")
