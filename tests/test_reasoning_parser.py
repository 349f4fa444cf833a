"""Tests for the reasoning/answer parser: every DESIGN §4 case, with exact parts and outcomes."""

from __future__ import annotations

import dataclasses

import pytest

from trustdiff.backends.reasoning import (
    DEFAULT_MARKERS,
    GPT_OSS,
    THINK,
    Markers,
    Parsed,
    parse_output,
    reasoning_from_fields,
)
from trustdiff.records import Outcome

ANSWERED, TRUNCATED, EMPTY = Outcome.ANSWERED, Outcome.TRUNCATED, Outcome.EMPTY


def parts(p: Parsed) -> tuple[str | None, str, Outcome, int]:
    return (p.reasoning, p.answer, p.outcome, p.case)


# --- case 1: full <think>…</think>answer -------------------------------------------------------


def test_case1_full_think_block() -> None:
    text = "<think>\nLet me see: 2+2=4.\n</think>\n\nThe answer is 4."
    p = parse_output(text, finish_reason="stop")
    assert parts(p) == ("Let me see: 2+2=4.", "The answer is 4.", ANSWERED, 1)
    assert p.note == "<think> block"


def test_case1_closed_block_without_answer_is_empty_not_truncated() -> None:
    p = parse_output("<think>R</think>", finish_reason="stop")
    assert parts(p) == ("R", "", EMPTY, 1)


def test_case1_preamble_before_open_tag_goes_to_reasoning() -> None:
    p = parse_output("Okay. <think>R</think>A")
    assert parts(p) == ("Okay.\nR", "A", ANSWERED, 1)


# --- case 2: template-opened thinking ----------------------------------------------------------


def test_case2_template_opened_thinking() -> None:
    p = parse_output("I should refuse.\n</think>\n\nI can't help with that.", thinking_opened=True)
    assert parts(p) == ("I should refuse.", "I can't help with that.", ANSWERED, 2)
    assert "template-opened" in p.note


def test_case2_model_reemits_open_tag_after_prefill_is_case1() -> None:
    p = parse_output("<think>R</think>A", thinking_opened=True)
    assert parts(p) == ("R", "A", ANSWERED, 1)


def test_case2_without_opened_flag_is_orphan_case9() -> None:
    p = parse_output("R</think>A")
    assert parts(p) == ("R", "A", ANSWERED, 9)


# --- case 3: no tags ---------------------------------------------------------------------------


def test_case3_no_tags_whole_text_is_answer() -> None:
    p = parse_output("  Sure, here is a poem.\n", finish_reason="stop")
    assert parts(p) == (None, "Sure, here is a poem.", ANSWERED, 3)


def test_case3_opened_without_close_is_truncated_case5() -> None:
    p = parse_output("Hmm, the user wants a poem. Let me think", thinking_opened=True)
    assert parts(p) == ("Hmm, the user wants a poem. Let me think", "", TRUNCATED, 5)


def test_case3_none_and_empty_content_are_empty() -> None:
    assert parts(parse_output(None)) == (None, "", EMPTY, 3)
    assert parts(parse_output("")) == (None, "", EMPTY, 3)
    assert parts(parse_output(" \n\t ", finish_reason="stop")) == (None, "", EMPTY, 3)


def test_length_with_no_tags_is_answered() -> None:
    p = parse_output("Step one: mix the", finish_reason="length")
    assert parts(p) == (None, "Step one: mix the", ANSWERED, 3)
    assert "answer cut at max tokens" in p.note


# --- case 4: empty think block -----------------------------------------------------------------


def test_case4_empty_think_block() -> None:
    p = parse_output("<think>\n\n</think>\n\nParis.")
    assert parts(p) == ("", "Paris.", ANSWERED, 4)


def test_case4_adjacent_tags() -> None:
    assert parts(parse_output("<think></think>Paris.")) == ("", "Paris.", ANSWERED, 4)


def test_case4_template_opened_empty_block() -> None:
    p = parse_output("\n</think>\n\nParis.", thinking_opened=True)
    assert parts(p) == ("", "Paris.", ANSWERED, 4)


# --- case 5: truncated -------------------------------------------------------------------------


def test_case5_open_without_close_is_truncated() -> None:
    p = parse_output("<think>First, consider the", finish_reason="length")
    assert parts(p) == ("First, consider the", "", TRUNCATED, 5)


@pytest.mark.parametrize("finish", ["stop", None, "eos"])
def test_case5_open_without_close_never_answered_whatever_finish_reason(
    finish: str | None,
) -> None:
    p = parse_output("<think>First, consider the", finish_reason=finish)
    assert parts(p) == ("First, consider the", "", TRUNCATED, 5)


def test_case5_length_with_closed_block_and_empty_answer() -> None:
    p = parse_output("<think>long reasoning</think>\n", finish_reason="length")
    assert parts(p) == ("long reasoning", "", TRUNCATED, 5)
    assert "finish_reason=length" in p.note


def test_case5_length_with_answer_present_is_answered() -> None:
    p = parse_output("<think>R</think>The answer is", finish_reason="length")
    assert parts(p) == ("R", "The answer is", ANSWERED, 1)
    assert "answer cut at max tokens" in p.note


def test_thinking_opened_stop_no_close_is_truncated() -> None:
    text = "Let me think about this carefully."
    p = parse_output(text, thinking_opened=True, finish_reason="stop")
    assert parts(p) == ("Let me think about this carefully.", "", TRUNCATED, 5)
    assert "never closed" in p.note


# --- case 6: separate reasoning field ----------------------------------------------------------


def test_case6_reasoning_field() -> None:
    p = parse_output("\n\nThe answer is 4.", reasoning_field="\n2+2=4\n", finish_reason="stop")
    assert parts(p) == ("2+2=4", "The answer is 4.", ANSWERED, 6)
    assert p.note == "reasoning from server field"


def test_case6_content_with_think_block_is_reparsed() -> None:
    p = parse_output("<think>more thoughts</think>Final.", reasoning_field="server thoughts")
    assert parts(p) == ("server thoughts\nmore thoughts", "Final.", ANSWERED, 6)
    assert "re-parsed" in p.note


def test_case6_content_with_stray_close_is_reparsed() -> None:
    p = parse_output("leaked thoughts</think>\nFinal.", reasoning_field="server thoughts")
    assert parts(p) == ("server thoughts\nleaked thoughts", "Final.", ANSWERED, 6)
    assert "re-parsed" in p.note


def test_case6_field_with_empty_content_and_length_is_truncated() -> None:
    p = parse_output("", reasoning_field="still thinking", finish_reason="length")
    assert parts(p) == ("still thinking", "", TRUNCATED, 5)
    p = parse_output(None, reasoning_field="still thinking", finish_reason="length")
    assert parts(p) == ("still thinking", "", TRUNCATED, 5)


def test_case6_field_with_empty_content_and_stop_is_empty() -> None:
    p = parse_output("", reasoning_field="thought", finish_reason="stop")
    assert parts(p) == ("thought", "", EMPTY, 6)


def test_case6_ignores_thinking_opened_when_server_split() -> None:
    p = parse_output("Answer.", reasoning_field="R", thinking_opened=True)
    assert parts(p) == ("R", "Answer.", ANSWERED, 6)


def test_case6_whitespace_field_is_empty_reasoning() -> None:
    p = parse_output("Answer.", reasoning_field="\n\n")
    assert parts(p) == ("", "Answer.", ANSWERED, 6)


def test_case6_content_reopens_thinking_without_close_is_truncated() -> None:
    p = parse_output("<think>again", reasoning_field="R", finish_reason="length")
    assert parts(p) == ("R\nagain", "", TRUNCATED, 5)


def test_case6_empty_string_field_is_no_field() -> None:
    p = parse_output("Answer.", reasoning_field="")
    assert parts(p) == (None, "Answer.", ANSWERED, 3)


# --- case 7: hidden reasoning ------------------------------------------------------------------


def test_case7_hidden_reasoning_tokens() -> None:
    p = parse_output("Paris.", reasoning_tokens=512, finish_reason="stop")
    assert parts(p) == (None, "Paris.", ANSWERED, 7)
    assert "512" in p.note


def test_case7_hidden_reasoning_cut_before_answer_is_truncated() -> None:
    p = parse_output("", reasoning_tokens=4096, finish_reason="length")
    assert parts(p) == (None, "", TRUNCATED, 5)


def test_case7_hidden_reasoning_empty_answer_on_stop_is_empty() -> None:
    p = parse_output("", reasoning_tokens=10, finish_reason="stop")
    assert parts(p) == (None, "", EMPTY, 7)


def test_case7_zero_tokens_is_plain_case3() -> None:
    assert parts(parse_output("Paris.", reasoning_tokens=0)) == (None, "Paris.", ANSWERED, 3)


def test_case7_visible_tags_win_over_token_count() -> None:
    assert parts(parse_output("<think>R</think>A", reasoning_tokens=3)) == ("R", "A", ANSWERED, 1)


# --- case 8: other tag styles ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("open_", "close"),
    [
        ("<|begin_of_thought|>", "<|end_of_thought|>"),
        ("◁think▷", "◁/think▷"),
        ("<thinking>", "</thinking>"),
    ],
)
def test_case8_other_tag_styles(open_: str, close: str) -> None:
    p = parse_output(f"{open_}\nweigh options\n{close}\n\nOption B.")
    assert parts(p) == ("weigh options", "Option B.", ANSWERED, 8)


def test_case8_begin_of_solution_wrapper_is_unwrapped() -> None:
    text = (
        "<|begin_of_thought|>\n\nR\n\n<|end_of_thought|>\n\n"
        "<|begin_of_solution|>\n\n42\n\n<|end_of_solution|>"
    )
    assert parts(parse_output(text)) == ("R", "42", ANSWERED, 8)


def test_case8_other_style_truncated_is_case5() -> None:
    p = parse_output("◁think▷I am still", finish_reason="length")
    assert parts(p) == ("I am still", "", TRUNCATED, 5)


def test_case8_other_style_empty_block_is_case4() -> None:
    assert parts(parse_output("<thinking></thinking>Hi")) == ("", "Hi", ANSWERED, 4)


def test_case8_custom_markers() -> None:
    custom = Markers("[REASON]", "[/REASON]", "custom")
    p = parse_output("[REASON]check units[/REASON] 5 km", markers=[custom])
    assert parts(p) == ("check units", "5 km", ANSWERED, 8)
    assert "custom" in p.note
    # Only the passed styles are recognised: <think> is plain text then.
    p = parse_output("<think>R</think>A", markers=[custom])
    assert parts(p) == (None, "<think>R</think>A", ANSWERED, 3)


def test_case8_custom_markers_repeated_close_is_case9() -> None:
    custom = Markers("[R]", "[/R]")
    p = parse_output("[R]a[/R]b[/R]c", markers=(custom,))
    assert parts(p) == ("a\nb", "c", ANSWERED, 9)


# --- gpt-oss harmony channels ------------------------------------------------------------------


def test_gpt_oss_channel_format() -> None:
    text = (
        "<|channel|>analysis<|message|>User asks capital. Paris.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>The capital is Paris.<|return|>"
    )
    p = parse_output(text, finish_reason="stop")
    assert parts(p) == ("User asks capital. Paris.", "The capital is Paris.", ANSWERED, 8)
    assert "gpt-oss" in p.note


def test_gpt_oss_with_leading_role_header() -> None:
    text = (
        "<|start|>assistant<|channel|>analysis<|message|>think<|end|>"
        "<|start|>assistant<|channel|>final<|message|>done<|end|>"
    )
    assert parts(parse_output(text)) == ("think", "done", ANSWERED, 8)


def test_gpt_oss_analysis_truncated() -> None:
    p = parse_output("<|channel|>analysis<|message|>We need to", finish_reason="length")
    assert parts(p) == ("We need to", "", TRUNCATED, 5)


def test_gpt_oss_analysis_closed_but_no_final_on_length_is_truncated() -> None:
    text = "<|channel|>analysis<|message|>R<|end|><|start|>assistant"
    assert parts(parse_output(text, finish_reason="length")) == ("R", "", TRUNCATED, 5)


def test_gpt_oss_final_only_is_case3() -> None:
    p = parse_output("<|channel|>final<|message|>Hello!<|return|>")
    assert parts(p) == (None, "Hello!", ANSWERED, 3)


def test_gpt_oss_end_token_alone_is_not_reasoning() -> None:
    # "<|end|>" is also a generic turn terminator (Phi-3): not an orphan close.
    p = parse_output("Hello there.<|end|>")
    assert parts(p) == (None, "Hello there.<|end|>", ANSWERED, 3)


def test_gpt_oss_prefilled_analysis_channel() -> None:
    text = "R<|end|><|start|>assistant<|channel|>final<|message|>A<|return|>"
    assert parts(parse_output(text, thinking_opened=True)) == ("R", "A", ANSWERED, 2)


# --- case 9: repeated / orphan close tags ------------------------------------------------------


def test_case9_repeated_close_splits_at_last() -> None:
    p = parse_output("<think>first</think>second thoughts</think>Answer.")
    assert parts(p) == ("first\nsecond thoughts", "Answer.", ANSWERED, 9)
    assert p.note == "split at last of 2 </think>"


def test_case9_repeated_blocks() -> None:
    p = parse_output("<think>a</think><think>b</think>\nAnswer.")
    assert parts(p) == ("a\nb", "Answer.", ANSWERED, 9)


def test_case9_orphan_close() -> None:
    p = parse_output("Okay so the user wants X.\n</think>\n\nHere is X.")
    assert parts(p) == ("Okay so the user wants X.", "Here is X.", ANSWERED, 9)
    assert "orphan" in p.note


def test_case9_orphan_close_with_length_and_no_answer_is_truncated() -> None:
    p = parse_output("thoughts</think>", finish_reason="length")
    assert parts(p) == ("thoughts", "", TRUNCATED, 5)


# --- formatting robustness ---------------------------------------------------------------------


def test_crlf_and_leading_whitespace() -> None:
    p = parse_output("\r\n  <think>\r\nR line\r\n</think>\r\n\r\n  Answer line\r\n")
    assert parts(p) == ("R line", "Answer line", ANSWERED, 1)
    p = parse_output("\r\n\r\n   plain answer \r\n")
    assert parts(p) == (None, "plain answer", ANSWERED, 3)


def test_non_ascii_text() -> None:
    p = parse_output("<think>用户问的是首都。Ça dépend… 🤔</think>答案：巴黎 ✅")
    assert parts(p) == ("用户问的是首都。Ça dépend… 🤔", "答案：巴黎 ✅", ANSWERED, 1)
    p = parse_output("◁think▷Überlegung: ähnlich◁/think▷Größe 5")
    assert parts(p) == ("Überlegung: ähnlich", "Größe 5", ANSWERED, 8)


def test_earliest_style_wins_when_several_appear() -> None:
    p = parse_output("<thinking>R mentions <think> literally</thinking>A")
    assert parts(p) == ("R mentions <think> literally", "A", ANSWERED, 8)


@pytest.mark.parametrize(
    "text",
    [None, "", "x", "<think>", "</think>", "<think></think>", "<|end|>", "◁think▷", "a</think>"],
)
@pytest.mark.parametrize("finish", [None, "stop", "length"])
@pytest.mark.parametrize("opened", [False, True])
def test_parser_never_returns_error_and_truncated_has_no_answer(
    text: str | None, finish: str | None, opened: bool
) -> None:
    p = parse_output(text, finish_reason=finish, thinking_opened=opened)
    assert p.outcome in {ANSWERED, TRUNCATED, EMPTY}
    assert 1 <= p.case <= 9
    if p.outcome is not ANSWERED:
        assert p.answer == ""
    else:
        assert p.answer and p.answer == p.answer.strip()


# --- reasoning_from_fields ---------------------------------------------------------------------


def test_reasoning_from_fields_priority() -> None:
    msg = {"reasoning_content": "rc", "reasoning": "r", "thinking": "t"}
    assert reasoning_from_fields(msg) == "rc"
    assert reasoning_from_fields({"reasoning": "r", "thinking": "t"}) == "r"
    assert reasoning_from_fields({"thinking": "t"}) == "t"


def test_reasoning_from_fields_skips_none_empty_and_non_str() -> None:
    assert reasoning_from_fields({}) is None
    assert reasoning_from_fields({"reasoning_content": None, "reasoning": None}) is None
    assert reasoning_from_fields({"reasoning_content": "", "reasoning": "r"}) == "r"
    assert reasoning_from_fields({"reasoning_content": None, "thinking": "t"}) == "t"
    odd = {"reasoning_content": 5, "reasoning": ["x"], "thinking": "t"}
    assert reasoning_from_fields(odd) == "t"
    assert reasoning_from_fields({"content": "answer"}) is None


def test_reasoning_from_fields_feeds_parse_output() -> None:
    msg = {"content": "4", "reasoning_content": None, "reasoning": "2+2"}
    p = parse_output(msg["content"], reasoning_field=reasoning_from_fields(msg))
    assert parts(p) == ("2+2", "4", ANSWERED, 6)


# --- API shape ---------------------------------------------------------------------------------


def test_public_markers_and_frozen_records() -> None:
    assert Markers("<think>", "</think>", "think") == THINK
    assert DEFAULT_MARKERS[0] == THINK
    assert GPT_OSS in DEFAULT_MARKERS
    opens = [m.open for m in DEFAULT_MARKERS]
    assert opens == [
        "<think>",
        "<|begin_of_thought|>",
        "◁think▷",
        "<thinking>",
        "<|channel|>analysis<|message|>",
    ]
    p = parse_output("x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(p, "answer", "y")  # noqa: B010
