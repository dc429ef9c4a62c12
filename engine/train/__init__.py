"""Fine-tuning: objectives (``engine.train.losses``) and the small trainable heads they need.

Nothing here is imported by the index or search packages; the one piece used at search time, EMCL's
inference-only re-ranking, lives in ``engine.models.emcl`` and depends on torch alone.
"""
