"""Read lm-evaluation-harness ``--log_samples`` output (``samples_<task>_<date>.jsonl``).

Schema followed (lm-eval 0.4, checked against files written by lm-eval 0.4.13): one JSON object
per document and filter, with ``doc_id``, ``doc`` (the dataset row), ``target``,
``arguments`` (``{"gen_args_0": {"arg_0": prompt, "arg_1": generation kwargs}}``; with
``--apply_chat_template`` the prompt is a JSON string of chat messages, sometimes wrapped in a
one-element list), ``resps`` (per request, the list of raw generations: ``repeats`` > 1 gives
several, which become k = 0, 1, …), ``filtered_resps`` and ``filter``. The raw ``resps`` are
imported (filters such as regex extraction are not the model's output); a document logged once
per filter is imported once. lm-eval records no finish reason and drops server reasoning fields,
so think blocks left in the text are split by trustdiff's parser.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trustdiff.imports.common import BadImportError, ImportRow, numbered_lines, text_of
from trustdiff.records import Message

_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[0-9.:\-]+)\.jsonl$")
MAX_SHOWN = 5


def task_name(path: Path) -> str:
    """Task of a samples file, from lm-eval's file name (the name itself when it differs)."""
    match = _NAME.match(path.name)
    return match["task"] if match else path.stem


def _messages(prompt: Any) -> tuple[Message, ...]:
    """Chat messages from lm-eval's logged prompt (JSON chat string or plain text)."""
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise ValueError(f"arguments.gen_args_0.arg_0 is not a prompt string: {prompt!r:.80}")
    stripped = prompt.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            chat = json.loads(stripped)
        except json.JSONDecodeError:
            chat = None
        if isinstance(chat, list) and chat and all(isinstance(m, dict) for m in chat):
            return tuple(
                Message(role=str(m.get("role", "user")), content=text_of(m.get("content")))
                for m in chat
            )
    return (Message(role="user", content=prompt),)


def doc_rows(record: Mapping[str, Any], where: str, task: str) -> list[ImportRow]:
    """The generations of one logged document (raises ValueError on a malformed record)."""
    args = record.get("arguments")
    if isinstance(args, list):  # older lm-eval logged the argument tuples as lists
        args = {
            f"gen_args_{i}": {f"arg_{j}": a for j, a in enumerate(arg)}
            for i, arg in enumerate(args)
        }
    if not isinstance(args, Mapping) or not args:
        raise ValueError("no `arguments`")
    resps = record.get("resps")
    if not isinstance(resps, list) or len(resps) != len(args):
        raise ValueError("`resps` must hold one list of generations per request")
    doc = record.get("doc")
    labels = {k: v for k, v in doc.items() if v is not None} if isinstance(doc, Mapping) else {}
    rows = []
    for request, (arg, outputs) in enumerate(zip(args.values(), resps, strict=True)):
        if not isinstance(outputs, list) or not all(isinstance(o, str) for o in outputs):
            raise ValueError(
                "`resps` holds no generated text (a loglikelihood / multiple-choice task?): "
                "only generate_until tasks can be imported"
            )
        messages = _messages(arg.get("arg_0"))
        for k, output in enumerate(outputs):
            rows.append(
                ImportRow(
                    source=f"{where} request {request} k={k}" if len(args) > 1 else where,
                    messages=messages,
                    completion=output,
                    item_id=None,
                    labels=labels,
                    k=k,
                    raw_fields={
                        "lm_eval_filtered": record.get("filtered_resps"),
                        "lm_eval_gen_kwargs": arg.get("arg_1"),
                    },
                    meta={
                        "source": where.rsplit(":", 1)[0],
                        "task": task,
                        "doc_id": record.get("doc_id"),
                        "target": record.get("target"),
                    },
                )
            )
    return rows


def read_lmeval(paths: Sequence[Path], *, skip_bad: bool = False) -> tuple[list[ImportRow], int]:
    """Rows of every samples file and the number of bad records skipped (see `read_jsonl`)."""
    rows: list[ImportRow] = []
    bad: list[str] = []
    for path in paths:
        task = task_name(path)
        seen: set[Any] = set()
        for number, line in numbered_lines(path):
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                if record.get("doc_id") in seen and "doc_id" in record:
                    continue  # the same document logged again for another filter
                rows += doc_rows(record, where, task)
                seen.add(record.get("doc_id"))
            except (ValueError, TypeError, AttributeError) as exc:
                bad.append(f"{where}: {exc}")
    if bad and not skip_bad:
        shown = "; ".join(bad[:MAX_SHOWN])
        more = f" (and {len(bad) - MAX_SHOWN} more)" if len(bad) > MAX_SHOWN else ""
        raise BadImportError(
            f"{len(bad)} bad lm-eval record(s), nothing imported: {shown}{more}; "
            "fix them or pass --skip-bad"
        )
    if not rows:
        raise BadImportError(f"no generations to import in {', '.join(str(p) for p in paths)}")
    return rows, len(bad)
