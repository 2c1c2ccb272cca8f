"""HTML reports that gather the plots and tables a person would rather look at."""
from __future__ import annotations

import html
from pathlib import Path

from .atomic import write_text


def table(rows: list[dict], cols: list[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = cols or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return html.escape("" if v is None else str(v))


def _section(heading: str, body: str) -> str:
    return f"<h2>{html.escape(heading)}</h2>\n{body}"


def page(title: str, sections: list[tuple[str, str]]) -> str:
    css = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
           "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
           "th{background:#f3f3f3}td:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}")
    parts = [_section(h, body) for h, body in sections]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{css}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(parts) + "</body></html>\n")


def write_build_report(path: Path, summary: dict, compiled) -> None:
    p = compiled.plan
    overview = [{"quantity": k, "value": summary.get(k)} for k in (
        "target", "model_id", "peak_sram", "lower_bound_bytes", "weights_bytes", "flash_estimate",
        "elf_flash_bytes", "elf_arena_bytes", "macs", "build_seconds")]
    banks = [{"bank": b, "arena bytes": n} for b, n in p.banks.items()]
    steps = [{"step": k, "layer": st.name, "output": st.output, "overwrites": st.alias or "",
              "scratch": st.scratch, "live bytes": sum(b.size for b in p.live_at(k))}
             for k, st in enumerate(compiled.schedule.steps)]
    sections = [("Overview", table(overview)), ("Arena per RAM bank", table(banks)),
                ("Memory timeline", "<img src='memory.png' alt='memory timeline'>"),
                ("Steps", table(steps))]
    acc = summary.get("accuracy")
    if acc:
        sections.insert(1, ("Accuracy on held-out data", table([acc])))
    for extra in ("latency.png", "pareto.png"):
        if (path.parent / extra).exists():
            sections.append((extra.split(".")[0].title(), f"<img src='{extra}'>"))
    write_text(path, page(f"edgeviz build: {Path(summary['model']).name}", sections))


def put_section(path: Path, heading: str, body: str) -> None:
    """Add a section to a report page (before its end), or replace the one with this heading: results
    that come after the page was written (a profile of the build) join it."""
    text = path.read_text()
    head = f"<h2>{html.escape(heading)}</h2>\n"
    if head in text:      # sections run to the next heading or the end of the page
        start = text.index(head)
        ends = [i for i in (text.find("<h2>", start + len(head)), text.find("</body>", start)) if i >= 0]
        text = text[:start] + text[min(ends):]
    end = text.rindex("</body>")
    write_text(path, text[:end].rstrip("\n") + "\n" + _section(heading, body) + text[end:])
