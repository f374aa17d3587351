"""A simulated Lync / Skype for Business and Exchange estate speaking real WSMan + PSRP over HTTP.

Built on psrpcore's sans-IO server classes so the real pypsrp client talks to it as to Windows.
Entry points: ``simulator.server.Simulator``, ``simulator.scenario.load_scenario`` and
``simulator.cli.run_simulator``. See simulator/README.md.
"""
