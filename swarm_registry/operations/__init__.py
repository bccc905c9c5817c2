"""Operations: for each remote step, the command(s) it runs and a pure parser of their output.

Facts in, commands and verdicts out; no SSH here (see `swarm_registry.remote`).
"""
