"""Use cases: prepare an event, run its plan step by step, and the decisions people make."""
