"""Translation harness: corpus BLEU, chrF and TER from sacreBLEU (0-100), with signatures.

Data, any of:

- ``--source FILE --reference FILE [FILE ...]``: line-aligned plain text (WMT newstest,
  FLORES), several references allowed;
- ``--data DIR`` holding FLORES-200 files (``eng_Latn.dev`` ...) with ``--src``/``--tgt``,
  or a WMT pair folder (``en-de/newstest2017.en`` + ``.de``; languages from its name);
- ``--data FILE`` (JSONL / CSV / TSV) with source and reference fields
  (``--text-field`` / ``--target-field``; defaults: source/src/text, reference/target/tgt).

``--src``/``--tgt`` are required unless the file names say them (FLORES ``eng_Latn.dev``,
or ``newstest2017.en`` with ``newstest2017.de``). The target language selects sacreBLEU's
tokenizer as its CLI does with ``-l`` (``zh``, ``ja``, ``ko`` get their own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sacrebleu.metrics import CHRF

from quintet.apps.translation.api import Translator
from quintet.apps.translation.languages import LanguageError, language
from quintet.core import metrics
from quintet.core.data import DataError, read_pairs, read_parallel
from quintet.core.progress import ProgressCallback
from quintet.evaluation.protocol import DataOptions, EvalItem, EvalSet, Prediction, Scores

_SACREBLEU_TOKENIZED_LANGS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}


@dataclass
class TranslationSet(EvalSet):
    """The items and their languages (ISO codes; the target picks sacreBLEU's tokenizer)."""

    src: str = ""
    tgt: str = ""


def _known(code: str) -> str | None:
    try:
        language(code)
    except LanguageError:
        return None
    return code


def _infer_code(path: str | None) -> str | None:
    """``eng_Latn.dev`` -> ``eng_Latn``; ``newstest2017.de`` -> ``de``; ``notes.txt`` -> None.

    Only a suffix that is a language code Quintet knows counts.
    """
    if not path:
        return None
    stem, _, suffix = Path(path).name.rpartition(".")
    if suffix in ("dev", "devtest") and "_" in stem:
        return _known(stem)
    return _known(suffix) if stem else None


def _folder_files(folder: Path, src: str | None, tgt: str | None) -> tuple[Path, Path, str, str]:
    """The source and reference files of a FLORES-200 or WMT folder, and the languages.

    FLORES: ``<flores>.dev`` (or ``.devtest``) per language, with ``--src``/``--tgt``. WMT:
    a pair folder (``en-de``) holding ``<set>.en`` and ``<set>.de``; the languages come from
    its name when not given, and a folder with several sets asks for one.
    """
    if not (src and tgt):
        head, sep, tail = folder.name.partition("-")
        if sep and _known(head) and _known(tail):
            src, tgt = src or head, tgt or tail
    if not (src and tgt):
        raise DataError(str(folder), 0, "a FLORES or WMT folder needs --src and --tgt")
    source, target = language(src), language(tgt)
    for suffix in ("dev", "devtest"):
        paths = [folder / f"{lang.flores}.{suffix}" for lang in (source, target)]
        if all(p.is_file() for p in paths):
            return paths[0], paths[1], src, tgt
    stems = sorted(
        p.stem
        for p in folder.glob(f"*.{source.iso}")
        if (folder / f"{p.stem}.{target.iso}").is_file()
    )
    if len(stems) == 1:
        stem = stems[0]
        return folder / f"{stem}.{source.iso}", folder / f"{stem}.{target.iso}", src, tgt
    if stems:
        raise DataError(
            str(folder),
            0,
            f"holds several test sets ({', '.join(stems)}): pick one with "
            f"--source {folder}/{stems[-1]}.{source.iso} --reference "
            f"{folder}/{stems[-1]}.{target.iso}",
        )
    missing = [f"{lang.flores}.dev" for lang in (source, target)]
    missing = [name for name in missing if not (folder / name).is_file()]
    raise DataError(
        str(folder),
        0,
        f"no {' or '.join(missing)} here (FLORES), nor a *.{source.iso} / *.{target.iso} "
        "pair of files (WMT)",
    )


class _Predictor:
    def __init__(
        self, model: str | None, decode: dict[str, Any], src: str, tgt: str, backend: str = "auto"
    ) -> None:
        self.translator = Translator(model, backend=backend)
        self.src, self.tgt, self.decode = src, tgt, decode
        plan = self.translator.describe(src, tgt)  # loads the model: fails before the run
        self.model_name = plan.pop("model")
        self.settings = {"src": src, "tgt": tgt, **plan}

    def predict(
        self, items: Sequence[EvalItem], progress: ProgressCallback | None = None
    ) -> list[Prediction]:
        # Progress counts the pieces (sentences) translated, which is what takes the time.
        results = self.translator.translate(
            [i.inputs["text"] for i in items], self.src, self.tgt,
            progress=progress or False, **self.decode,
        )  # fmt: skip
        return [
            Prediction(item.id, r.text, {"num_tokens": r.num_tokens, "pieces": r.pieces})
            for item, r in zip(items, results, strict=True)
        ]


class TranslationHarness:
    """Evaluates :class:`quintet.apps.translation.Translator` with sacreBLEU."""

    task = "translation"
    primary_metric = "bleu"
    higher_is_better = {"bleu": True, "chrf": True, "ter": False}

    def read(self, data: str, options: DataOptions) -> TranslationSet:
        src, tgt = options.src, options.tgt
        if options.source_file:
            refs = list(options.reference_files)
            if not refs:
                raise DataError(options.source_file, 0, "no --reference file given")
            examples = read_parallel(options.source_file, refs)
            src = src or _infer_code(options.source_file)
            tgt = tgt or _infer_code(refs[0])
        elif data and Path(data).is_dir():
            source_path, reference_path, src, tgt = _folder_files(Path(data), src, tgt)
            examples = read_parallel(str(source_path), [str(reference_path)])
        else:
            examples = read_pairs(data, options.text_field, options.target_field)
        if not (src and tgt):
            raise DataError(
                data or options.source_file or "",
                0,
                "source and target languages unknown: pass --src and --tgt",
            )
        iso = language(src).iso, language(tgt).iso  # fails early on a bad code
        items = [
            EvalItem(ex.id, {"text": ex.source_text}, list(ex.targets), "", ex.source)
            for ex in examples
        ]
        return TranslationSet(items, self.primary_metric, *iso)

    def open(
        self,
        run: TranslationSet,
        model: str | None,
        decode: dict[str, Any],
        options: DataOptions,
        backend: str = "auto",
    ) -> _Predictor:
        src, tgt = options.src or run.src, options.tgt or run.tgt
        return _Predictor(model, decode, src, tgt, backend)

    def score(
        self, run: TranslationSet, items: Sequence[EvalItem], predictions: Sequence[Prediction]
    ) -> Scores:
        hyps = [str(p.prediction) for p in predictions]
        n_refs = max(len(item.references) for item in items)
        # sacreBLEU wants reference streams; a segment with fewer references gets its
        # first one repeated (the CLI would need equal-length files).
        streams = [
            [item.references[min(k, len(item.references) - 1)] for item in items]
            for k in range(n_refs)
        ]
        tgt = run.tgt
        bleu_options = (
            {"tokenize": _SACREBLEU_TOKENIZED_LANGS[tgt]}
            if tgt in _SACREBLEU_TOKENIZED_LANGS
            else {}
        )
        bleu, bleu_sig = metrics.bleu(hyps, streams, **bleu_options)
        chrf, chrf_sig = metrics.chrf(hyps, streams)
        ter, ter_sig = metrics.ter(hyps, streams)
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
