"""Everything in operations that changes state (docs/operations.md):

- ``intake``: a request to a signal endpoint → a kept raw payload and normalised signals;
- ``matching``: which catalog model a signal is about (payload field, then the match rules);
- ``triggering``: what the model's trigger policy makes of a signal (start, propose, defer,
  join the open episode, suppress, dry run), and a person's confirmation or refusal;
- ``following``: moving each open episode along as its run, version and approvals progress.
"""

from .following import episode_follow, episodes_follow, evaluation_sentence, stall_reason
from .policies import pipeline_for, policy_for, release_pipeline_for
from .timeline import event_add
from .triggering import (
    ProposalRefused,
    deferred_start_due,
    episode_close,
    episode_start,
    proposal_confirm,
    proposal_decline,
    proposals_expire,
    signal_decide,
)

__all__ = [
    "ProposalRefused",
    "deferred_start_due",
    "episode_close",
    "episode_follow",
    "episode_start",
    "episodes_follow",
    "evaluation_sentence",
    "event_add",
    "pipeline_for",
    "policy_for",
    "proposal_confirm",
    "proposal_decline",
    "proposals_expire",
    "release_pipeline_for",
    "signal_decide",
    "stall_reason",
]
