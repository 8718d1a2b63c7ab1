"""Sample development plans, written by us: python -m bench.plan_samples [samples/plans]

A fictitious municipality's plan in realistic Spanish, as PDFs: a complete one, one whose
third page is a scanned image (no text layer: the OCR mitigation), one with a broken
investment table and incomplete programmes, a short one with no table, and a corrupt file.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
PERIOD = "2024-2027"

DIAGNOSTICO = (
    "San Isidro de los Andes es un municipio de categoría sexta con 18.450 habitantes, el 61 % de ellos "
    "en la zona rural. La deserción escolar rural alcanza el 8,4 % y solo el 42 % de los jóvenes de 15 a 16 "
    "años cursa la educación media. El 27 % de las viviendas rurales no tiene acceso a agua potable y la "
    "tasa de mortalidad infantil es de 14,2 por cada mil nacidos vivos. La economía depende del café y de la "
    "ganadería de doble propósito, con baja asociatividad de los productores y vías terciarias en mal estado "
    "durante la temporada de lluvias."
)

EJES = [
    (
        "Eje estratégico 1: Educación de calidad para el campo",
        "Objetivo 1: Aumentar la cobertura y la permanencia escolar en la zona rural.",
        [
            (
                "1.1",
                "Aulas rurales dignas",
                "Mediante la construcción y dotación de 12 aulas en las veredas, se ampliarán los cupos en educación "
                "media, lo que contribuirá a reducir la deserción escolar rural.",
                "Tasa de deserción escolar rural",
                "8,4 % (2023)",
                "5,0 % (2027)",
                "Secretaría de Educación",
            ),
            (
                "1.2",
                "Transporte y alimentación escolar",
                "A través de rutas escolares y del programa de alimentación, los estudiantes llegarán a tiempo y "
                "nutridos, con el fin de mejorar la asistencia y el rendimiento escolar.",
                "Estudiantes rurales beneficiados con transporte",
                "640 (2023)",
                "1.100 (2027)",
                "Secretaría de Educación",
            ),
        ],
    ),
    (
        "Eje estratégico 2: Salud y agua para la vida",
        "Objetivo 2: Reducir la mortalidad infantil y ampliar el acceso a agua potable.",
        [
            (
                "2.1",
                "Acueductos veredales",
                "Mediante la construcción de 6 acueductos veredales y plantas de tratamiento, se llevará agua potable "
                "a 1.300 viviendas rurales, lo que permitirá reducir las enfermedades de origen hídrico.",
                "Viviendas rurales con agua potable",
                "73 % (2023)",
                "90 % (2027)",
                "Secretaría de Infraestructura",
            ),
            (
                "2.2",
                "Salud materno infantil",
                "A través de brigadas de atención y controles prenatales en las veredas, las gestantes recibirán "
                "atención oportuna, para reducir la mortalidad infantil.",
                "Tasa de mortalidad infantil por mil nacidos vivos",
                "14,2 (2023)",
                "10,0 (2027)",
                "Secretaría de Salud",
            ),
        ],
    ),
    (
        "Eje estratégico 3: Desarrollo económico rural",
        "Objetivo 3: Aumentar los ingresos de los productores rurales.",
        [
            (
                "3.1",
                "Café especial y asociatividad",
                "Mediante la capacitación técnica de 400 caficultores y el apoyo a 8 asociaciones, se mejorará la "
                "calidad del café, lo que contribuirá a aumentar el ingreso de las familias productoras.",
                "Ingreso promedio mensual de las familias productoras",
                "1,1 SMMLV (2023)",
                "1,5 SMMLV (2027)",
                "Secretaría de Desarrollo Económico",
            ),
            (
                "3.2",
                "Vías terciarias para la producción",
                "Mediante el mejoramiento de 45 km de vías terciarias, se reducirán los tiempos de transporte de la "
                "cosecha, con el fin de bajar los costos de comercialización.",
                "Kilómetros de vías terciarias en buen estado",
                "38 km (2023)",
                "83 km (2027)",
                "Secretaría de Infraestructura",
            ),
        ],
    ),
]

BUDGET = [
    ("1.1 Aulas rurales dignas", [850, 1200, 900, 450]),
    ("1.2 Transporte y alimentación escolar", [620, 640, 660, 680]),
    ("2.1 Acueductos veredales", [1500, 2100, 1800, 900]),
    ("2.2 Salud materno infantil", [310, 320, 330, 340]),
    ("3.1 Café especial y asociatividad", [240, 260, 280, 300]),
    ("3.2 Vías terciarias para la producción", [1100, 1300, 1250, 1000]),
]


def _amount(value: float) -> str:
    return f"{value:,.0f}".replace(",", ".")


def _pdf():
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_font("DejaVu", "", FONT)
    pdf.add_font("DejaVu", "B", FONT.replace("Sans.ttf", "Sans-Bold.ttf"))
    pdf.set_font("DejaVu", size=10.5)
    return pdf


def _lines(pdf, text: str, bold: bool = False) -> None:
    pdf.set_font("DejaVu", "B" if bold else "", 10.5)
    pdf.multi_cell(0, 5.5, text, new_x="LMARGIN", new_y="NEXT")


def _programme_lines(
    code: str,
    name: str,
    prose: str,
    indicator: str | None,
    baseline: str | None,
    target: str | None,
    responsible: str | None,
) -> list[str]:
    lines = [f"Programa {code}: {name}", prose]
    for label, value in (
        ("Indicador", indicator),
        ("Línea base", baseline),
        ("Meta", target),
        ("Responsable", responsible),
    ):
        if value:
            lines.append(f"{label}: {value}")
    return lines


def _page_text(eje: tuple, drop: dict[str, tuple[str, ...]]) -> list[tuple[str, bool]]:
    title, objective, programmes = eje
    out = [(title, True), (objective, False)]
    for code, name, prose, indicator, baseline, target, responsible in programmes:
        gone = drop.get(code, ())
        fields = {"indicator": indicator, "baseline": baseline, "target": target, "responsible": responsible}
        fields = {k: (None if k in gone else v) for k, v in fields.items()}
        for number, line in enumerate(_programme_lines(code, name, prose, **fields)):
            out.append((line, number == 0))
    return out


def _scanned_page(pdf, lines: list[tuple[str, bool]]) -> None:
    """A page that is only a picture of its text, as a scanner would produce."""
    import textwrap

    from PIL import Image, ImageDraw, ImageFont

    width, height = 1654, 2339  # A4 at 200 dpi
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    regular = ImageFont.truetype(FONT, 30)
    bold = ImageFont.truetype(FONT.replace("Sans.ttf", "Sans-Bold.ttf"), 30)
    y = 150
    for text, is_bold in lines:
        for wrapped in textwrap.wrap(text, 85):
            draw.text((150, y), wrapped, fill=0, font=bold if is_bold else regular)
            y += 44
        y += 10
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf.add_page()
    pdf.image(buffer, x=0, y=0, w=210, h=297)


def write_plan(
    path: Path,
    *,
    scanned_page: int | None = None,
    broken_budget: bool = False,
    drop: dict[str, tuple[str, ...]] | None = None,
) -> None:
    pdf = _pdf()
    pdf.add_page()
    _lines(pdf, f"PLAN DE DESARROLLO MUNICIPAL {PERIOD}", bold=True)
    _lines(pdf, "«San Isidro de los Andes, territorio que avanza»")
    _lines(pdf, "Municipio de San Isidro de los Andes, departamento de Antioquia")
    pdf.ln(4)
    _lines(pdf, "1. Diagnóstico", bold=True)
    _lines(pdf, DIAGNOSTICO)
    for number, eje in enumerate(EJES, 2):
        lines = _page_text(eje, drop or {})
        if scanned_page == number:
            _scanned_page(pdf, lines)
            continue
        pdf.add_page()
        for text, bold in lines:
            _lines(pdf, text, bold)
            if bold:
                continue
            pdf.ln(1)
    pdf.add_page()
    _lines(pdf, "5. Plan plurianual de inversiones (millones de pesos)", bold=True)
    years = ["2024", "2025", "2026", "2027"] if not broken_budget else ["2024", "2025", "2027", "2028"]
    rows = BUDGET if not broken_budget else [r for r in BUDGET if not r[0].startswith("2.2")]
    pdf.set_font("DejaVu", size=9)
    with pdf.table(
        col_widths=(60, 22, 22, 22, 22, 26), text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    ) as table:
        table.row(["Programa", *years, "Total"])
        sums = [0.0] * 4
        for number, (name, values) in enumerate(rows):
            total = sum(values)
            if broken_budget and number == 2:
                total += 700  # a row total that does not add up
            for k, v in enumerate(values):
                sums[k] += v
            table.row([name, *(_amount(v) for v in values), _amount(total)])
        stated = sums if not broken_budget else [s + (250 if k == 1 else 0) for k, s in enumerate(sums)]
        table.row(["Total", *(_amount(v) for v in stated), _amount(sum(stated))])
    path.write_bytes(bytes(pdf.output()))


BRIEF = (
    "Plan de desarrollo del corregimiento El Retiro 2024-2027. La administración se propone mejorar la "
    "calidad de vida de sus habitantes. Se adelantará un programa de mejoramiento de vivienda y una "
    "estrategia para la seguridad alimentaria, con recursos propios y de cofinanciación."
)


def write_brief(path: Path) -> None:
    pdf = _pdf()
    pdf.add_page()
    _lines(pdf, BRIEF)
    path.write_bytes(bytes(pdf.output()))


def write_corrupt(path: Path, good: Path) -> None:
    """The first kilobytes of a real plan, the rest lost (an interrupted download)."""
    data = good.read_bytes()
    path.write_bytes(data[:1500] + b"\x00" * 512)


SAMPLES = {
    "plan-bueno": {"municipality": "San Isidro de los Andes"},
    "plan-escaneado": {"municipality": "San Isidro de los Andes"},
    "plan-presupuesto-roto": {"municipality": "San Isidro de los Andes"},
    "plan-breve": {"municipality": "El Retiro"},
    "plan-corrupto": {"municipality": "San Isidro de los Andes"},
}


def write_all(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_plan(folder / "plan-bueno.pdf")
    write_plan(folder / "plan-escaneado.pdf", scanned_page=3)
    write_plan(
        folder / "plan-presupuesto-roto.pdf",
        broken_budget=True,
        drop={"1.2": ("baseline",), "2.1": ("responsible", "target"), "3.2": ("indicator", "baseline")},
    )
    write_brief(folder / "plan-breve.pdf")
    write_corrupt(folder / "plan-corrupto.pdf", folder / "plan-bueno.pdf")
    for name, extra in SAMPLES.items():
        (folder / f"{name}.json").write_text(
            json.dumps({"plan_id": name, "path": f"{name}.pdf", **extra}, ensure_ascii=False) + "\n"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", nargs="?", type=Path, default=Path(__file__).resolve().parents[1] / "samples" / "plans"
    )
    write_all(parser.parse_args().folder)
