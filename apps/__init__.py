"""Quintet's task apps (translation, summarization, QA, classification, chat), CLI and UI."""
