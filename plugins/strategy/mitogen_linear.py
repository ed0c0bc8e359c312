"""The Mitogen strategy (the `mitogen` package pinned in requirements.txt), under the name
ansible.cfg selects: `strategy = mitogen_linear`. Mitogen keeps one Python interpreter per
host for the whole run instead of starting one per task, which halves a run that changes
nothing. The stock strategy still works: ANSIBLE_STRATEGY=linear (see README, "Speed")."""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
