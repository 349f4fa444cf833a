"""Read Inspect AI eval logs (`.eval` and `.json`) without depending on inspect-ai.

Schema followed (inspect-ai ≥ 0.3, checked against logs written by inspect-ai 0.3.285):

* ``.json`` is one EvalLog object: ``eval`` (task, model), ``samples`` (list of EvalSample).
* ``.eval`` is a zip: ``header.json`` (the EvalLog minus samples) and
  ``samples/<id>_epoch_<n>.json`` (one EvalSample each). Recent versions compress members with
  zstd (zip method 93), which Python < 3.14 cannot read: that needs the `zstandard` package
  (`pip install 'trustdiff[inspect]'`).
* EvalSample: ``id``, ``epoch`` (1-based), ``input`` (a string or chat messages), ``messages``,
  ``target``, ``metadata``, ``error``, ``attachments`` (``attachment://HASH`` → text), and
  ``output.choices[0]`` with ``message.content`` (a string or content parts: ``text`` parts and
  ``reasoning`` parts carrying ``reasoning`` text, possibly ``redacted``) and ``stop_reason``
  (``stop``, ``max_tokens``, ``model_length``, …); ``output.usage`` holds token counts.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from trustdiff.imports.common import BadImportError, ImportRow, text_of
from trustdiff.records import Message

ZIP_ZSTANDARD = 93
_ATTACHMENT = "attachment://"


def _zstd_decompress(data: bytes, where: str) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+

        return bytes(zstd.decompress(data))
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise BadImportError(
            f"{where} is zstd-compressed (recent inspect-ai); reading it on Python < 3.14 needs "
            "the zstandard package: pip install 'trustdiff[inspect]' (or pip install zstandard), "
            "or convert it first with `inspect log convert --to json`"
        ) from None
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    return bytes(reader.read())


def _member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> bytes:
    """One zip member's bytes; zstd members are located and decompressed by hand."""
    if info.compress_type != ZIP_ZSTANDARD:
        return zf.read(info)
    fp = zf.fp
    assert fp is not None
    fp.seek(info.header_offset)
    header = fp.read(30)
    if header[:4] != b"PK\x03\x04":
        raise BadImportError(f"{path}: corrupt zip entry {info.filename}")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    fp.seek(info.header_offset + 30 + name_len + extra_len)
    return _zstd_decompress(fp.read(info.compress_size), f"{path}")


def _load_json(blob: bytes, where: str) -> Any:
    try:
        return json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadImportError(f"{where}: not valid JSON ({exc})") from None


def _eval_zip(path: Path) -> tuple[dict[str, Any], Iterator[tuple[str, dict[str, Any]]]]:
    """Header and (member name, sample) pairs of a `.eval` zip log."""
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise BadImportError(f"{path} is not an Inspect .eval log (not a zip file)") from None
    infos = {i.filename: i for i in zf.infolist()}
    header: dict[str, Any] = {}
    if "header.json" in infos:
        header = _load_json(_member(zf, infos["header.json"], path), f"{path}!header.json")
    elif "_journal/start.json" in infos:  # a log still being written
        header = _load_json(_member(zf, infos["_journal/start.json"], path), f"{path}!start")
    else:
        raise BadImportError(f"{path} is not an Inspect .eval log (no header.json)")
    names = sorted(n for n in infos if n.startswith("samples/") and n.endswith(".json"))

    def samples() -> Iterator[tuple[str, dict[str, Any]]]:
        with zf:
            for name in names:
                yield f"{path}!{name}", _load_json(_member(zf, infos[name], path), name)

    return header, samples()


def _resolver(sample: Mapping[str, Any]) -> Any:
    attachments = sample.get("attachments") or {}

    def resolve(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_ATTACHMENT):
            return attachments.get(value[len(_ATTACHMENT) :], value)
        if isinstance(value, list):
            return [resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        return value

    return resolve


def _chat(messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    return [
        Message(role=str(m.get("role", "user")), content=text_of(m.get("content")))
        for m in messages
    ]


def _prompt(sample: Mapping[str, Any]) -> tuple[Message, ...]:
    """The dataset input, preceded by system messages a solver inserted before it."""
    raw_input = sample.get("input")
    if isinstance(raw_input, str):
        prompt = [Message(role="user", content=raw_input)]
    elif isinstance(raw_input, list):
        prompt = _chat(raw_input)
    else:
        raise ValueError("sample has no input")
    systems = []
    for message in sample.get("messages") or []:
        if message.get("role") != "system":
            break
        systems.append(Message(role="system", content=text_of(message.get("content"))))
    extra = [m for m in systems if m not in prompt]
    return tuple(extra + prompt)


def _reply(content: Any) -> tuple[str, str | None]:
    """(text, reasoning) of an assistant message; redacted reasoning shows only its summary."""
    if not isinstance(content, list):
        return text_of(content), None
    text = "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    thoughts = []
    for part in content:
        if part.get("type") == "reasoning":
            visible = part.get("summary") if part.get("redacted") else part.get("reasoning")
            if isinstance(visible, str) and visible:
                thoughts.append(visible)
    return text, ("\n".join(thoughts) if thoughts else None)


def sample_row(sample: Mapping[str, Any], where: str, header: Mapping[str, Any]) -> ImportRow:
    """One EvalSample as an import row (raises ValueError/TypeError on a malformed sample)."""
    sample = _resolver(sample)(dict(sample))
    output = sample.get("output") or {}
    choices = output.get("choices") or []
    message = choices[0].get("message", {}) if choices else {}
    text, reasoning = _reply(message.get("content"))
    usage = output.get("usage") or {}
    error = sample.get("error")
    task = header.get("eval", {}).get("task")
    scores = {k: v.get("value") for k, v in (sample.get("scores") or {}).items()}
    return ImportRow(
        source=where,
        messages=_prompt(sample),
        completion=text,
        reasoning=reasoning,
        item_id=None if sample.get("id") is None else str(sample["id"]),
        labels=dict(sample.get("metadata") or {}),
        finish_reason=choices[0].get("stop_reason") if choices else None,
        k=max(int(sample.get("epoch", 1)) - 1, 0),
        error=(error.get("message") or "error") if isinstance(error, dict) else error,
        prompt_tokens=usage.get("input_tokens"),
        completion_tokens=usage.get("output_tokens"),
        reasoning_tokens=usage.get("reasoning_tokens"),
        latency_s=float(output.get("time") or 0.0),
        raw_fields={
            "inspect_content": message.get("content"),
            "usage": usage,
            "scores": scores,
        },
        meta={"source": where.split("!")[0], "task": task, "target": sample.get("target")},
    )


def read_inspect(paths: Sequence[Path]) -> list[ImportRow]:
    """Rows of every sample of every log; logs of different models cannot share one name."""
    rows: list[ImportRow] = []
    models: dict[str, Path] = {}
    for path in paths:
        if not path.is_file():
            raise BadImportError(f"no such Inspect log: {path}")
        if path.suffix == ".eval":
            header, samples = _eval_zip(path)
        elif path.suffix == ".json":
            log = _load_json(path.read_bytes(), str(path))
            if not isinstance(log, dict) or "eval" not in log:
                raise BadImportError(f"{path} is not an Inspect EvalLog JSON (no `eval` field)")
            header = log
            listed = log.get("samples") or []
            samples = iter((f"{path}!samples[{i}]", s) for i, s in enumerate(listed))
        else:
            raise BadImportError(f"{path}: Inspect logs end in .eval or .json")
        model = str(header.get("eval", {}).get("model", ""))
        models.setdefault(model, path)
        if len(models) > 1:
            seen = ", ".join(f"{m or '?'} ({p.name})" for m, p in models.items())
            raise BadImportError(
                f"these logs are from different models: {seen}; import each "
                "under its own --model name"
            )
        count = 0
        for where, sample in samples:
            try:
                rows.append(sample_row(sample, where, header))
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                raise BadImportError(f"{where}: unreadable Inspect sample: {exc}") from None
            count += 1
        if count == 0:
            raise BadImportError(
                f"{path} holds no samples (was the eval run with log_samples off, or cancelled?)"
            )
    return rows
