"""Prompts that turn a task into a chat for instruct models.

Fine-tuning and the apps use the same wording, so a model trained on these prompts is
asked the same way at inference time.
"""

from __future__ import annotations


def looks_like_dialogue(text: str) -> bool:
    """SAMSum-style speaker lines ("Name: text") on most lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    speaker_lines = [line for line in lines if ":" in line[:40]]
    return len(lines) >= 2 and len(speaker_lines) >= 0.6 * len(lines)


def summarize_prompt(text: str) -> str:
    """The user message that asks for a summary of ``text`` (dialogue or document)."""
    what = "dialogue" if looks_like_dialogue(text) else "text"
    return f"Summarize this {what} in one or two sentences.\n\n{text.strip()}"


def translate_prompt(text: str, source_language: str, target_language: str) -> str:
    """The user message that asks an instruct model to translate ``text``."""
    return (
        f"Translate this {source_language} text into {target_language}. Reply with the "
        f"translation only.\n\n{text.strip()}"
    )
