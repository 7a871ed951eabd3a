"""Zero-shot label scores: classify with labels the model was never trained on.

Three ways, one per model kind; each returns raw scores (one row per text, one column per
label) that :class:`quintet.apps.classification.Classifier` turns into probabilities:

* **NLI** (a sequence classifier whose labels include ``entailment``, e.g.
  ``facebook/bart-large-mnli``): the text is the premise, ``"This example is {label}."`` the
  hypothesis, as the Hugging Face zero-shot pipeline. Single-label: the entailment logits
  compete across labels (softmax). Multi-label: each label on its own, entailment against
  contradiction (``entail - contradiction`` through a sigmoid).
* **Embedding similarity** (a sentence encoder, e.g. ``minilm-l6`` = all-MiniLM-L6-v2): mean
  pooling over tokens, L2-normalised, cosine similarity to ``"This text is about {label}."``.
  Cosines of one text to several labels sit close together (say 0.10-0.45), so they are
  divided by :data:`EMBEDDING_TEMPERATURE` (0.05) before the softmax: a cosine lead of 0.1
  becomes odds of e^2 = 7.4 to 1. Multi-label: ``sigmoid((cosine - 0.25) / 0.05)``, i.e. a
  label is "on" from a cosine of :data:`EMBEDDING_MULTI_LABEL_CENTER` (a heuristic for
  MiniLM: related sentences score 0.3-0.7, unrelated ones about 0-0.15). Both are starting
  points: :meth:`Classifier.calibrate` fits the temperature on your labelled data.
* **Label likelihood** (an instruct causal model): the chat "Classify the text into exactly
  one of these labels: ... Answer with the label only." and, for each label, the mean
  log-probability of its tokens as the assistant's answer (the mean, so that a label of
  several tokens is not penalised for its length). Single-label only.

Long texts: the classifier and encoder modes read a text longer than the model window in
overlapping chunks and average the chunks' scores (embeddings: the mean of the chunk
embeddings); an instruct model refuses a prompt longer than its window
(:class:`quintet.core.decoding.prompts.InputTooLongError`), never truncating silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from quintet.core.models import Loaded

NLI_TEMPLATE = "This example is {}."
EMBEDDING_TEMPLATE = "This text is about {}."
EMBEDDING_TEMPERATURE = 0.05
EMBEDDING_MULTI_LABEL_CENTER = 0.25
CHUNK_STRIDE = 64  # tokens shared by neighbouring chunks of a long text
MAX_TOKENS = 512  # the most tokens per chunk, whatever the model allows


def window(loaded: Loaded) -> int:
    """Tokens per chunk: the model's window (capped at :data:`MAX_TOKENS`)."""
    return min(loaded.context_window or MAX_TOKENS, MAX_TOKENS)


def encode_chunks(loaded: Loaded, texts: Sequence[str], pairs: Sequence[str] | None = None):
    """Tokenize texts (optionally paired with hypotheses) into chunks that fit the window.

    Returns ``(batch tensors, owner)``: ``owner[i]`` is the text each chunk came from. A text
    that fits is one chunk; a longer one becomes overlapping chunks (``CHUNK_STRIDE``).
    """
    tokenizer = loaded.tokenizer
    limit = window(loaded)
    kwargs = {"padding": True, "max_length": limit, "return_tensors": "pt"}
    if getattr(tokenizer, "is_fast", False):
        # The pair's hypothesis is short: only the text (the first sequence) is chunked.
        stride = min(CHUNK_STRIDE, limit // 4)
        encoded = tokenizer(
            list(texts),
            list(pairs) if pairs is not None else None,
            truncation="only_first" if pairs is not None else True,
            stride=stride,
            return_overflowing_tokens=True,
            **kwargs,
        )
        owner = encoded.pop("overflow_to_sample_mapping").tolist()
    else:  # slow tokenizers cannot chunk: truncate, and say so in the docs of Classifier
        encoded = tokenizer(
            list(texts), list(pairs) if pairs is not None else None, truncation=True, **kwargs
        )
        owner = list(range(len(texts)))
    batch = {k: v.to(loaded.device) for k, v in encoded.items() if k != "offset_mapping"}
    return batch, owner


def _mean_by_owner(rows: torch.Tensor, owner: Sequence[int], n: int) -> torch.Tensor:
    """The mean of each text's chunk rows, one text at a time (see :func:`_chunks_of`)."""
    return torch.stack([rows[chunks].mean(0) for chunks in _chunks_of(owner, n)])


def _chunks_of(owner: Sequence[int], n: int) -> list[list[int]]:
    """The chunk rows of each of ``n`` texts, in order.

    Everything after the forward pass works on one text's rows at a time, in tensors whose
    shapes depend on that text only: the same text then gets the same scores to the last
    digit whatever else is in its batch (a reduction over a batch can round differently
    with the batch's size). The default engines are batch-invariant too
    (:mod:`quintet.core.encoders`).
    """
    chunks: list[list[int]] = [[] for _ in range(n)]
    for row, text in enumerate(owner):
        chunks[text].append(row)
    return chunks


def classifier_logits(loaded: Loaded, texts: Sequence[str]) -> np.ndarray:
    """A fine-tuned classifier's logits, averaged over the chunks of long texts."""
    batch, owner = encode_chunks(loaded, texts)
    logits = loaded.forward(**batch).logits.float()
    return _mean_by_owner(logits, owner, len(texts)).cpu().numpy()


def nli_logits(
    loaded: Loaded, texts: Sequence[str], labels: Sequence[str], entail: int, contra: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Entailment logits and (entailment - contradiction) logits, text x label."""
    hypotheses = [NLI_TEMPLATE.format(label) for label in labels]
    single = np.zeros((len(texts), len(labels)))
    multi = np.zeros((len(texts), len(labels)))
    for row, text in enumerate(texts):
        batch, owner = encode_chunks(loaded, [text] * len(labels), hypotheses)
        logits = _mean_by_owner(loaded.forward(**batch).logits.float(), owner, len(labels))
        logits = logits.cpu().numpy()
        single[row] = logits[:, entail]
        multi[row] = logits[:, entail] - (logits[:, contra] if contra is not None else 0.0)
    return single, multi


def embed(loaded: Loaded, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings (one row per text)."""
    chunks = []
    for begin in range(0, len(texts), batch_size):
        part = texts[begin : begin + batch_size]
        batch, owner = encode_chunks(loaded, part)
        hidden = loaded.forward(**batch).last_hidden_state.float()
        mask = batch["attention_mask"]
        for rows in _chunks_of(owner, len(part)):
            # The text's own width: its rows as they would be padded alone.
            width = int(mask[rows].sum(1).max())
            keep = slice(-width, None) if loaded.tokenizer.padding_side == "left" else slice(width)
            own = hidden[rows][:, keep]
            weights = mask[rows][:, keep].unsqueeze(-1).to(own.dtype)
            pooled = (own * weights).sum(1) / weights.sum(1).clamp(min=1)
            chunks.append(torch.nn.functional.normalize(pooled.mean(0), dim=-1))
    return torch.stack(chunks)


def embedding_similarity(
    loaded: Loaded, texts: Sequence[str], label_embeddings: torch.Tensor, batch_size: int = 32
) -> np.ndarray:
    """Cosine similarity of each text to each label description (a text at a time, see
    :func:`_chunks_of`)."""
    embeddings = embed(loaded, texts, batch_size)
    return torch.stack([label_embeddings @ row for row in embeddings]).cpu().numpy()


def label_embeddings(loaded: Loaded, labels: Sequence[str]) -> torch.Tensor:
    return embed(loaded, [EMBEDDING_TEMPLATE.format(label) for label in labels])


def likelihood_prompt(text: str, labels: Sequence[str]) -> list[dict[str, str]]:
    """The chat an instruct model answers with one label."""
    return [
        {
            "role": "user",
            "content": (
                f"Classify the text into exactly one of these labels: {', '.join(labels)}.\n\n"
                f"Text: {text.strip()}\n\nAnswer with the label only."
            ),
        }
    ]


def likelihood_logits(loaded: Loaded, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Mean log-probability of each label's tokens as the answer, text x label."""
    from quintet.core.decoding.prompts import check_fits, encode

    tokenizer = loaded.tokenizer
    label_ids = [tokenizer.encode(label, add_special_tokens=False) for label in labels]
    longest = max(len(ids) for ids in label_ids)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = []
    for index, text in enumerate(texts):
        prompt = encode(loaded, likelihood_prompt(text, labels))
        check_fits(loaded, index, prompt, longest)
        sequences = [prompt + ids for ids in label_ids]
        width = max(len(s) for s in sequences)
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
        logits = loaded.model(
            input_ids=ids.to(loaded.device), attention_mask=mask.to(loaded.device)
        ).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        scores = []
        for row, label in enumerate(label_ids):
            # The token at position p is predicted by the logits at p - 1.
            positions = torch.arange(len(prompt) - 1, len(prompt) - 1 + len(label))
            picked = logprobs[row, positions, torch.tensor(label)]
            scores.append(picked.mean().item())
        rows.append(scores)
    return np.asarray(rows)
