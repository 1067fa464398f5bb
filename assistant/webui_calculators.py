"""The Calculators tab: one form per calculator component, generated from the registry (the
same components the engine and an LLM call), so a new calculator gets its form with no edit here.

A CalcError is shown as a message under the field it names (or under the form), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant import render
from assistant.answer import ToolCall
from assistant.core.reference import load_reference
from assistant.tools.component import Calculator, Parameter


@dataclass(frozen=True)
class Field:
    name: str        # the calculator's parameter
    label: str
    kind: str = "text"  # text | number | choice | list
    choices: tuple | None = None
    value: object = None
    info: str | None = None


@dataclass(frozen=True)
class Form:
    name: str
    title: str
    help: str
    fields: tuple[Field, ...]


def _choices(spec) -> tuple | None:
    """A parameter's choices: a literal list, or a reference list filled from the data."""
    if spec is None or isinstance(spec, tuple):
        return spec
    ref = load_reference()
    if spec == "products":
        return tuple(p.brand for p in ref.products if p.id in ref.dosing_products())
    if spec == "payers":
        return tuple((p["name"], p["payer"]) for p in ref.policies)
    if spec == "indications":
        names: dict[str, str] = {}
        for pid in ref.dosing_products():
            for key, rule in ref.indications(pid).items():
                names.setdefault(key, f"{rule.get('short_name') or rule.get('name') or key} ({key.upper()})")
        return tuple((label, key) for key, label in names.items())
    raise ValueError(f"unknown choice list {spec!r}")


def _field(p: Parameter) -> Field:
    choices = _choices(p.choices)
    if choices:
        value = p.example if p.example is not None else p.default
        return Field(p.name, p.label, "choice", choices, value)
    if p.kind == "list":
        return Field(p.name, p.label, "list", info=f"e.g. {p.example}" if p.example else None)
    return Field(p.name, p.label, p.kind, value=p.example)


def form_for(calc: Calculator) -> Form:
    return Form(calc.name, calc.title, calc.description, tuple(_field(p) for p in calc.parameters if p.form))


def forms() -> list[Form]:
    """A form per registered calculator, in the router's order."""
    from assistant.tools.registry import calculators

    return [form_for(c) for c in calculators()]


def _clean(field: Field, value):
    """Form value → calculator argument (None when left empty)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if field.kind == "number" and field.value is None and value == 0:
        return None  # an optional number left empty: Gradio's Number shows and sends it as 0
    if field.kind == "list":
        return [v.strip() for v in str(value).replace(";", ",").split(",") if v.strip()]
    return value


def run_form(name: str, fields: tuple[Field, ...], values: list) -> tuple[str, list[str]]:
    """Run one calculator from form values: (result HTML, one error message per field)."""
    from assistant.tools.errors import CalcError
    from assistant.tools.registry import run_tool

    args = {f.name: v for f, v in ((f, _clean(f, v)) for f, v in zip(fields, values, strict=False)) if v is not None}
    errors = [""] * len(fields)
    try:
        result = run_tool(name, **args)
    except CalcError as exc:
        names = [f.name for f in fields]
        if exc.field in names:
            errors[names.index(exc.field)] = f"<span class='cart-field-error'>{render.esc(exc.message)}</span>"
            return "", errors
        return f"<div class='cart-tool cart-error'>{render.esc(exc.message)}</div>", errors
    return render.tool_html(ToolCall(name=name, arguments=args, result=result)), errors


def calculators_tab() -> None:
    import gradio as gr

    gr.Markdown("The same calculators the chat uses. Each result shows its formula, the reference rows "
                "it used and any warning (cap applied, retired code, sources that disagree).")
    for form in forms():
        with gr.Accordion(form.title, open=form.name == "lymphodepletion_plan", elem_id=f"calc-{form.name}"):
            gr.Markdown(form.help)
            inputs, errs = [], []
            with gr.Row():
                for f in form.fields:
                    with gr.Column(min_width=140):
                        elem = f"calc-{form.name}-{f.name}"
                        if f.kind == "choice":
                            comp = gr.Dropdown(list(f.choices or ()), value=f.value, label=f.label, elem_id=elem)
                        elif f.kind == "number":
                            comp = gr.Number(value=f.value, label=f.label, elem_id=elem)
                        else:
                            comp = gr.Textbox(value=f.value, label=f.label, info=f.info, max_lines=1, elem_id=elem)
                        inputs.append(comp)
                        errs.append(render.html_panel("", elem_id=f"{elem}-error"))
            go = gr.Button("Calculate", variant="primary", size="sm", elem_id=f"calc-{form.name}-go")
            out = render.html_panel("", elem_id=f"calc-{form.name}-result")

            def handler(*values, _name=form.name, _fields=form.fields):
                html_out, field_errors = run_form(_name, _fields, list(values))
                return [html_out, *field_errors]

            go.click(handler, inputs, [out, *errs])
