"""The optional LLM composer, end to end over HTTP against a scripted local endpoint."""

import pytest
from llama_index.core.tools import FunctionTool

from assistant.engine import Engine
from assistant.llm import LLMComposer, LLMSettings
from assistant.tools import function_tools
from llm_stub import ScriptedLLM, quote_first_passage, user_prompt

QUESTION = "What is the Q2056 payment limit?"


def body_mass(weight_kg: float, height_m: float) -> dict:
    """Body mass index (a stand-in calculator for the wire test)."""
    return {"bmi": round(weight_kg / height_m ** 2, 1), "formula": f"{weight_kg} / {height_m}^2"}


@pytest.fixture()
def stub():
    with ScriptedLLM() as s:
        yield s


def _engine(retriever, stub, tools=None, timeout=2.0):
    settings = LLMSettings(base_url=stub.base_url, model="stub-model", api_key="x", timeout=timeout)
    return Engine(retriever, retriever.cfg, llm=LLMComposer(settings, tools=tools))


def test_good_llm_answer_is_shown_and_sees_only_passages(retriever, stub):
    stub.script = [quote_first_passage]
    a = _engine(retriever, stub).ask(QUESTION)
    assert a.composer == "llm" and a.text.startswith("According to the guide:") and a.text.endswith("[1]")
    assert [c.marker for c in a.citations] == [1]
    prompt = user_prompt(stub.requests[0])
    assert "Passages:" in prompt and QUESTION in prompt and "[6]" in prompt and "[7]" not in prompt


def test_invented_number_falls_back_to_default_answer(retriever, stub):
    stub.script = [lambda b: {"content": "The Q2056 payment limit is $612,000.00 per dose [1]."}]
    a = _engine(retriever, stub).ask(QUESTION)
    assert a.composer == "default" and "612,000" not in a.text
    assert "numbers found in no source" in a.notes[-1] and "612000" in a.context["llm_fallback"]
    assert "$588,494.808" in a.text


def test_citation_to_a_passage_it_was_not_given_falls_back(retriever, stub):
    stub.script = [lambda b: {"content": "It is in the policy [9]."}]
    a = _engine(retriever, stub).ask(QUESTION)
    assert a.composer == "default" and "cited passages it was not given: [9]" in a.notes[-1]


def test_timeout_falls_back(retriever, stub):
    stub.script = ["timeout"]
    a = _engine(retriever, stub, timeout=0.5).ask(QUESTION)
    assert a.composer == "default" and "endpoint failed" in a.notes[-1]


def test_server_error_falls_back(retriever, stub):
    stub.script = [lambda b: "error"]
    a = _engine(retriever, stub).ask(QUESTION)
    assert a.composer == "default" and "endpoint failed" in a.notes[-1]


def test_tool_call_round_trip(retriever, stub):
    tool = FunctionTool.from_defaults(fn=body_mass)
    stub.script = [lambda b: {"tool_call": ("body_mass", {"weight_kg": 70, "height_m": 1.75})},
                   lambda b: {"content": "The calculator gives 22.9 [1]."}]
    a = _engine(retriever, stub, tools=[tool]).ask(QUESTION)
    first, second = stub.requests
    assert first["tools"][0]["function"]["name"] == "body_mass"
    assert "weight_kg" in first["tools"][0]["function"]["parameters"]["properties"]
    tool_msgs = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_msgs and "22.9" in tool_msgs[0]["content"]
    llm_calls = [t for t in a.tool_calls if t.name == "body_mass"]  # after the router's own calls
    assert a.composer == "llm" and len(llm_calls) == 1
    assert llm_calls[0].arguments == {"weight_kg": 70, "height_m": 1.75}


def test_calculator_tools_on_the_wire_valid_and_invalid_arguments(retriever, stub):
    """The registry's own FunctionTools: every parameter described in the schema the endpoint
    receives; a valid call's result and an invalid call's error both reach the LLM, and the
    answer records the invalid one as a failed call."""
    stub.script = [lambda b: {"tool_call": ("bsa", {"height": 170, "weight": 70})},
                   lambda b: {"content": "BSA 1.82 m² [1]."}]
    a = _engine(retriever, stub, tools=function_tools()).ask(QUESTION)
    first, second = stub.requests
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in first["tools"]}
    assert set(schemas) == {"bsa", "dose_units", "lymphodepletion_plan", "cell_dose", "tocilizumab_dose",
                            "payment", "ndc", "code_on_date", "rule_on_date", "payer_policy", "payment_change", "label_check"}
    assert all(p.get("description") for s in schemas.values() for p in s["properties"].values())
    assert schemas["bsa"]["properties"]["height"]["description"] == "Height (cm unless height_unit='in')"
    reply = next(m for m in second["messages"] if m["role"] == "tool")
    assert '"bsa_m2": "1.82"' in reply["content"] and not reply["content"].startswith("Error")
    made = [t for t in a.tool_calls if t.name == "bsa"]
    assert a.composer == "llm" and len(made) == 1 and made[0].result is not None and made[0].error is None

    stub.requests.clear()
    stub.script = [lambda b: {"tool_call": ("bsa", {"height": -5, "weight": "seventy"})},
                   lambda b: {"content": "I could not compute the BSA [1]."}]
    a = _engine(retriever, stub, tools=function_tools()).ask(QUESTION)
    reply = next(m for m in stub.requests[1]["messages"] if m["role"] == "tool")
    assert reply["content"].startswith("Error:") and "must be a number" in reply["content"]
    failed = [t for t in a.tool_calls if t.name == "bsa"]
    assert len(failed) == 1 and failed[0].result is None and "must be a number" in failed[0].error
    assert a.to_dict()["tool_calls"][-1]["error"] == failed[0].error


def test_llm_is_off_without_configuration(retriever, monkeypatch):
    monkeypatch.delenv("CART_LLM_BASE_URL", raising=False)
    assert Engine(retriever, retriever.cfg).llm is None
