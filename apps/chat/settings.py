"""The chat app's settings that the command line needs without loading the app (no torch)."""

from __future__ import annotations

# What happens to the oldest turns when the context window is full.
STRATEGIES: tuple[str, ...] = ("drop", "summarize")
# Replies are longer than a translation or a label: the chat default is above DecodeConfig's.
DEFAULT_MAX_NEW_TOKENS = 256

# The Chat page's starting decoding. Greedy alone loops on the packaged SmolLM2-135M: four
# Lisbon travel questions (one conversation, travel-assistant system prompt, 160 tokens):
# greedy looped on 2 of 4 and answered the dishes question with the sights answer; greedy with
# repetition penalty 1.1 looped on none and named the most checkable facts (9 hits of a list
# of 23 place / transport / dish words, against 2 for greedy and 0-5 for the model card's
# sampling, temperature 0.2 / top-p 0.9, over three seeds, two of which looped on 2 of 4 too).
# MT-Bench (10 questions, 20 answers, 128 tokens): reference chrF 23.4 (greedy 24.0, card
# sampling 23.2 / 19.4 over two seeds), repetition rate 0% (greedy 5%). On the default int8
# ONNX Runtime GenAI engine (whose penalty counts prompt and output, as transformers'), the
# same four questions: greedy looped on 4 of 4, greedy with penalty 1.1 on none.
CHAT_PAGE_DECODE: dict[str, float] = {"repetition_penalty": 1.1}
