"""Quintet's shared core: model catalog, model store, loading, decoding and fine-tuning.

The core knows nothing about any single task; the apps in ``apps/`` sit on top of it.
"""
