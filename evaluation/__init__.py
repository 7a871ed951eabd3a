"""Quintet's evaluation layer: the shared runner, the task-harness protocol, bootstrap
statistics, comparisons and reports. Each task's harness lives with its app
(``apps/<task>/harness.py``) and is found by name (:mod:`quintet.evaluation.registry`)."""
