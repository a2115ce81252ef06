"""mkdocs hooks: the pages generated from the code, so that they cannot drift from it.

- `spec_fields_markdown()` writes the ExperimentSpec fields table (name, default as YAML, the field's own
  docstring) from `blocAndTools.experiment_spec`; spec-fields.md holds the marker it replaces.
- `on_files` publishes the plots under benchmarks/results/ as `results/...`, so the pages show the
  recorded images themselves, not copies.

mkdocs is imported only inside the hooks: the test suite imports this file without it. The project must be
importable (`python -m pip install -e ".[docs]"`, as CI does).
"""
from __future__ import annotations

import html
import inspect
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_FIELDS_MARKER = "<!-- spec-fields-table -->"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
_SECTION = re.compile(r"^\s+# --- (.+?) ---\s*$")
_FIELD = re.compile(r"^ {4}(\w+)\s*:")


def _sections(spec_class: type, names: list[str]) -> list[tuple[str, list[str]]]:
    """The fields grouped under the `# --- section ---` comments of the class body, in definition order."""
    groups: list[tuple[str, list[str]]] = [("run", [])]
    for line in inspect.getsource(spec_class).splitlines():
        if match := _SECTION.match(line):
            groups.append((match.group(1), []))
        elif (match := _FIELD.match(line)) and match.group(1) in names:
            groups[-1][1].append(match.group(1))
    listed = {name for _, group in groups for name in group}
    groups.append(("other", [name for name in names if name not in listed]))  # never lose a field
    return [(title, group) for title, group in groups if group]


def _cell(text: str) -> str:
    """A docstring as table-cell text: HTML-escaped, pipes escaped, YAML's null for Python's None."""
    text = re.sub(r"\bNone\b", "null", text)
    return html.escape(text, quote=False).replace("|", "\\|")


def spec_fields_markdown() -> str:
    """Every ExperimentSpec field, grouped as in the class: `| `name` | default | meaning |`."""
    from blocAndTools.experiment_spec import ExperimentSpec, field_defaults, field_docs, yaml_text

    docs, defaults = field_docs(), field_defaults()
    lines = ['<div class="spec-fields" markdown>', ""]
    for title, names in _sections(ExperimentSpec, list(defaults)):
        lines += [f"### {title[:1].upper() + title[1:]}", "", "| field | default | meaning |", "|---|---|---|"]
        lines += [f"| `{name}` | `{yaml_text(defaults[name])}` | {_cell(docs.get(name, ''))} |" for name in names]
        lines.append("")
    lines.append("</div>")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if SPEC_FIELDS_MARKER in markdown:
        return markdown.replace(SPEC_FIELDS_MARKER, spec_fields_markdown())
    return markdown


def on_files(files, config):
    """Add benchmarks/results/**/*.png to the site as results/**/*.png."""
    from mkdocs.structure.files import File

    for image in sorted(RESULTS_DIR.rglob("*.png")):
        if ".venv" in image.parts:
            continue
        relative = image.relative_to(RESULTS_DIR.parent).as_posix()  # results/learning/pendulum/curves.png
        files.append(File(relative, src_dir=str(RESULTS_DIR.parent), dest_dir=config["site_dir"],
                          use_directory_urls=config["use_directory_urls"]))
    return files
