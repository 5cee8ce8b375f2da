"""Use cases: one module per workflow (a generation, a run of batch lines, what follows saved images).

Commands parse their arguments and call one of these; these never import Typer or a command.
"""
