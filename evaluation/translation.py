"""Translation harness: corpus BLEU, chrF and TER from sacreBLEU (0-100), with signatures.

Data, any of:

- ``--source FILE --reference FILE [FILE ...]``: line-aligned plain text (WMT newstest,
  FLORES), several references allowed;
- ``--data DIR`` holding FLORES-200 files (``eng_Latn.dev`` ...) with ``--src``/``--tgt``;
- ``--data FILE`` (JSONL / CSV / TSV) with source and reference fields
  (``--text-field`` / ``--target-field``; defaults: source/src/text, reference/target/tgt).

``--src``/``--tgt`` are required unless the file names say them (FLORES ``eng_Latn.dev``,
or ``newstest2017.en`` with ``newstest2017.de``). The target language selects sacreBLEU's
tokenizer as its CLI does with ``-l`` (``zh``, ``ja``, ``ko`` get their own).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.data import DataError, read_pairs, read_parallel
from evaluation import metrics
from evaluation.protocol import DataOptions, EvalItem, Prediction, Scores

_SACREBLEU_TOKENIZED_LANGS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}


def _infer_code(path: str | None) -> str | None:
    """``eng_Latn.dev`` -> ``eng_Latn``; ``newstest2017.de`` -> ``de``."""
    if not path:
        return None
    name = Path(path).name
    stem, _, suffix = name.rpartition(".")
    if suffix in ("dev", "devtest") and "_" in stem:
        return stem
    if len(suffix) in (2, 3) and suffix.isalpha():
        return suffix
    return None


class _Predictor:
    def __init__(self, model: str | None, decode: dict[str, Any], src: str, tgt: str) -> None:
        from apps.translation import Translator

        self.translator = Translator(model)
        self.src, self.tgt, self.decode = src, tgt, decode
        route = self.translator.route(src, tgt)
        self.model_name = route.model
        self.settings = {"src": src, "tgt": tgt, "route": route.reason}

    def predict(self, items: Sequence[EvalItem]) -> list[Prediction]:
        results = self.translator.translate(
            [i.inputs["text"] for i in items], self.src, self.tgt, progress=False, **self.decode
        )
        self.settings["style"] = results[0].style if results else ""
        return [
            Prediction(item.id, r.text, {"num_tokens": r.num_tokens, "pieces": r.pieces})
            for item, r in zip(items, results, strict=True)
        ]


class TranslationHarness:
    """Evaluates :class:`apps.translation.Translator` with sacreBLEU."""

    task = "translation"
    primary_metric = "bleu"
    higher_is_better = {"bleu": True, "chrf": True, "ter": False}

    def __init__(self) -> None:
        self._langs: tuple[str | None, str | None] = (None, None)

    def read(self, data: str, options: DataOptions) -> list[EvalItem]:
        from apps.translation import language

        src, tgt = options.src, options.tgt
        if options.source_file:
            refs = list(options.reference_files)
            if not refs:
                raise DataError(options.source_file, 0, "no --reference file given")
            examples = read_parallel(options.source_file, refs)
            src = src or _infer_code(options.source_file)
            tgt = tgt or _infer_code(refs[0])
        elif data and Path(data).is_dir():
            if not (src and tgt):
                raise DataError(data, 0, "a FLORES folder needs --src and --tgt")
            folder = Path(data)
            paths = [folder / f"{language(code).flores}.dev" for code in (src, tgt)]
            for path in paths:
                if not path.is_file():
                    raise DataError(str(path), 0, "no such FLORES file for this language")
            examples = read_parallel(str(paths[0]), [str(paths[1])])
        else:
            examples = read_pairs(data, options.text_field, options.target_field)
        if not (src and tgt):
            raise DataError(
                data or options.source_file or "",
                0,
                "source and target languages unknown: pass --src and --tgt",
            )
        self._langs = (language(src).iso, language(tgt).iso)  # fails early on a bad code
        return [
            EvalItem(ex.id, {"text": ex.source_text}, list(ex.targets), "", ex.source)
            for ex in examples
        ]

    def open(self, model: str | None, decode: dict[str, Any], options: DataOptions) -> _Predictor:
        src, tgt = options.src or self._langs[0], options.tgt or self._langs[1]
        return _Predictor(model, decode, src, tgt)

    def score(self, items: Sequence[EvalItem], predictions: Sequence[Prediction]) -> Scores:
        hyps = [str(p.prediction) for p in predictions]
        n_refs = max(len(item.references) for item in items)
        # sacreBLEU wants reference streams; a segment with fewer references gets its
        # first one repeated (the CLI would need equal-length files).
        streams = [
            [item.references[min(k, len(item.references) - 1)] for item in items]
            for k in range(n_refs)
        ]
        tgt = self._langs[1] or ""
        bleu_options = (
            {"tokenize": _SACREBLEU_TOKENIZED_LANGS[tgt]}
            if tgt in _SACREBLEU_TOKENIZED_LANGS
            else {}
        )
        bleu, bleu_sig = metrics.bleu(hyps, streams, **bleu_options)
        chrf, chrf_sig = metrics.chrf(hyps, streams)
        ter, ter_sig = metrics.ter(hyps, streams)
        from sacrebleu.metrics import CHRF

        sentence = CHRF()
        per_item = [
            {"chrf": sentence.sentence_score(h, list(item.references)).score}
            for h, item in zip(hyps, items, strict=True)
        ]
        return Scores(
            {"bleu": bleu, "chrf": chrf, "ter": ter},
            per_item,
            {"bleu": bleu_sig, "chrf": chrf_sig, "ter": ter_sig},
        )


HARNESS = TranslationHarness()
