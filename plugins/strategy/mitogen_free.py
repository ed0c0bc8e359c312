"""Mitogen's `free` strategy, for the plays that let each host go at its own pace
(site.yml's first role play); see mitogen_linear.py beside it."""

from ansible_mitogen.plugins.strategy.mitogen_free import StrategyModule

__all__ = ["StrategyModule"]
