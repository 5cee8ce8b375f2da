"""A faithful local stand-in for RunComfy's Model API, for trying the tool and for tests."""

from .server import Faults, Sandbox

__all__ = ["Faults", "Sandbox"]
