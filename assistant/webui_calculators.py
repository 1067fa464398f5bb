"""The Calculators tab: one form per calculator, calling the same registry the engine and an LLM use.

A CalcError is shown as a message under the field it names (or under the form), never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant import render

PRODUCTS = ["Abecma", "Carvykti", "Tecartus"]
INDICATIONS = [("multiple myeloma (MM)", "mm"), ("mantle cell lymphoma (MCL)", "mcl"),
               ("acute lymphoblastic leukemia (ALL)", "all")]


@dataclass
class Field:
    name: str        # the calculator's parameter
    label: str
    kind: str = "text"  # text | number | choice | list
    choices: list | None = None
    value: object = None
    info: str | None = None


FORMS: list[tuple[str, str, str, list[Field]]] = [
    ("bsa", "Body surface area", "Mosteller by default; DuBois on request.", [
        Field("height", "Height", "number", value=170), Field("height_unit", "Height unit", "choice", ["cm", "in"], "cm"),
        Field("weight", "Weight", "number", value=70), Field("weight_unit", "Weight unit", "choice", ["kg", "lb"], "kg"),
        Field("method", "Method", "choice", ["mosteller", "dubois"], "mosteller")]),
    ("dose_units", "Dose → billing units", "Administered amount to units of a HCPCS code, rounded up; "
     "vial sizes (optional) give the discarded amount for a JW line.", [
        Field("code", "HCPCS code", "text", value="J9185"), Field("amount_mg", "Administered per day (mg)", "number", value=55.5),
        Field("days", "Dates of service", "number", value=1),
        Field("vial_sizes", "Vial sizes in mg (optional, comma-separated)", "list", info="e.g. 50 or 80, 200, 400")]),
    ("lymphodepletion_plan", "Lymphodepletion plan", "Daily mg, HCPCS code and units per date of service, "
     "from the product's regimen; give a BSA or height and weight.", [
        Field("product", "Product", "choice", PRODUCTS, "Carvykti"),
        Field("indication", "Indication", "choice", INDICATIONS, "mm"),
        Field("bsa_m2", "BSA (m²)", "number", value=1.85),
        Field("height", "or height (cm)", "number"), Field("weight", "and weight (kg)", "number"),
        Field("infusion_date", "Infusion date (optional, YYYY-MM-DD)", "text")]),
    ("cell_dose", "CAR-T cell dose", "Target CAR-positive T-cell range with the label's cap; the claim "
     "carries 1 unit of the Q-code.", [
        Field("product", "Product", "choice", PRODUCTS, "Carvykti"),
        Field("indication", "Indication", "choice", INDICATIONS, "mm"),
        Field("weight", "Weight", "number", value=120), Field("weight_unit", "Weight unit", "choice", ["kg", "lb"], "kg")]),
    ("tocilizumab_dose", "Tocilizumab for CRS", "8 mg/kg (12 mg/kg under 30 kg), at most 800 mg per dose; J3262 units.", [
        Field("weight", "Weight", "number", value=70), Field("weight_unit", "Weight unit", "choice", ["kg", "lb"], "kg"),
        Field("vial_sizes", "Vial sizes in mg (optional, comma-separated)", "list", info="e.g. 80, 200, 400")]),
    ("payment", "Medicare Part B payment", "Allowed amount, beneficiary coinsurance and Medicare's share "
     "(with and without 2% sequestration) from the payment-limit file of a quarter.", [
        Field("code", "HCPCS code", "text", value="Q2055"), Field("units", "Units", "number", value=1),
        Field("quarter", "Quarter (optional, e.g. 2026Q1; newest if empty)", "text")]),
    ("ndc", "NDC", "10-digit NDC (with hyphens) to the 11-digit 5-4-2 claim format, and the product and "
     "HCPCS code it belongs to; or a 5-digit labeler.", [
        Field("ndc", "NDC or labeler", "text", value="71287-119-01")]),
]


def _clean(field: Field, value):
    """Form value → calculator argument (None when left empty)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if field.kind == "number" and field.value is None and value == 0:
        return None  # an optional number left empty: Gradio's Number shows and sends it as 0
    if field.kind == "list":
        return [v.strip() for v in str(value).replace(";", ",").split(",") if v.strip()]
    if field.kind == "number" and isinstance(value, float) and value.is_integer() and field.name in ("days", "units"):
        return int(value)
    return value


def run_form(name: str, fields: list[Field], values: list) -> tuple[str, list[str]]:
    """Run one calculator from form values: (result HTML, one error message per field)."""
    from assistant.tools.errors import CalcError
    from assistant.tools.registry import run_tool

    args = {f.name: v for f, v in ((f, _clean(f, v)) for f, v in zip(fields, values)) if v is not None}
    errors = [""] * len(fields)
    try:
        result = run_tool(name, **args)
    except CalcError as exc:
        names = [f.name for f in fields]
        if exc.field in names:
            errors[names.index(exc.field)] = f"<span class='cart-field-error'>{render.esc(exc.message)}</span>"
            return "", errors
        return f"<div class='cart-tool cart-error'>{render.esc(exc.message)}</div>", errors
    return render.tool_html({"name": name, "result": result.to_dict()}), errors


def calculators_tab() -> None:
    import gradio as gr

    gr.Markdown("The same calculators the chat uses. Each result shows its formula, the reference rows "
                "it used and any warning (cap applied, retired code, sources that disagree).")
    for name, title, help_text, fields in FORMS:
        with gr.Accordion(title, open=name == "lymphodepletion_plan", elem_id=f"calc-{name}"):
            gr.Markdown(help_text)
            inputs, errs = [], []
            with gr.Row():
                for f in fields:
                    with gr.Column(min_width=140):
                        if f.kind == "choice":
                            comp = gr.Dropdown(f.choices, value=f.value, label=f.label, elem_id=f"calc-{name}-{f.name}")
                        elif f.kind == "number":
                            comp = gr.Number(value=f.value, label=f.label, elem_id=f"calc-{name}-{f.name}")
                        else:
                            comp = gr.Textbox(value=f.value, label=f.label, info=f.info, max_lines=1,
                                              elem_id=f"calc-{name}-{f.name}")
                        inputs.append(comp)
                        errs.append(gr.HTML("", elem_id=f"calc-{name}-{f.name}-error"))
            go = gr.Button("Calculate", variant="primary", size="sm", elem_id=f"calc-{name}-go")
            out = gr.HTML("", elem_id=f"calc-{name}-result")

            def handler(*values, _name=name, _fields=fields):
                html_out, field_errors = run_form(_name, _fields, list(values))
                return [html_out, *field_errors]

            go.click(handler, inputs, [out, *errs])
