"""Entry point for ``python -m collectors``; everything lives in ``collectors.cli``."""

from __future__ import annotations

from collectors.cli import app

if __name__ == "__main__":
    app(prog_name="python -m collectors")
