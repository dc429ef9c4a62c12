"""Encoders: open_clip models, local checkpoints and small deterministic models for tests."""
