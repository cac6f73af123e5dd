"""A WS-Management (WinRM) server impersonating a fleet of Windows hosts on 127.0.0.0/8.

The simulator is the project's demo fleet and the collector's test ground: scenario and generator
(``scenario``, ``generator``), WMI instances (``cim``), WQL (``wql``), SOAP (``soap``), dispatch
(``wsman``), authentication (``auth``), the asyncio server (``server``), address plan and outputs
(``fleet``), ground truth (``truth``), and the test API (``testing``, ``pytest_plugin``). It
imports nothing from ``collectors`` or ``models``. Nothing is created at import time.
"""
