"""Quintet's evaluation harnesses: metrics, the shared runner and reports (one per task)."""
