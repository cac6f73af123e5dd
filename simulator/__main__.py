"""Entry point of ``python -m simulator`` (see ``simulator.cli``)."""

from __future__ import annotations

from simulator.cli import main

if __name__ == "__main__":
    main()
