"""What a signal starts, by the model's trigger policy."""

from __future__ import annotations


def signal_decide(signal) -> None:
    """Decide what ``signal`` (saved, matched or not) starts; called in the intake's transaction."""
    raise NotImplementedError
