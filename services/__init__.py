"""Work the dashboard asks of the project's other programs, run as those programs' own commands.

``services.demo`` loads the demo fleet by running ``python -m collectors demo`` in a subprocess. Nothing here
imports ``collectors``, ``simulator`` or ``ui``: the collector runs in its own process, so the dashboard's
process never loads it.
"""
