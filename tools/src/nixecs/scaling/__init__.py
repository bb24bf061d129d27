"""Scaling: AWS step rules and lints (rules), the engine (sim), traces, replay and plots."""
