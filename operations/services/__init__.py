"""Everything in operations that changes state (docs/operations.md):

- ``intake``: a request to a signal endpoint → a kept raw payload and normalised signals;
- ``matching``: which catalog model a signal is about (payload field, then the match rules);
- ``triggering``: what the model's trigger policy makes of a signal (start, propose, defer,
  join the open episode, suppress, dry run), and a person's confirmation or refusal;
- ``following``: moving each open episode along as its run, version and approvals progress.
"""
