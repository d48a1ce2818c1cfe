"""MkDocs hooks that build the parts of the site generated from the repository itself.

- The API reference: one page per public module of the installed package, found by walking the
  package tree (``[tool.setuptools.package-dir]`` of ``pyproject.toml`` maps the layer folders
  to ``conceptid.simulations``, ``conceptid.identifiability`` and ``conceptid.models``), so a
  module added to any layer is documented without editing anything here. The package is staged
  under ``build/docs_api/`` in its installed layout, where mkdocstrings reads it statically.
- The proofs: ``proofs/*.md`` (and the certificate modules they link to) are served under
  ``proofs/`` as they are in the repository; nothing is copied into ``docs/`` by hand.
- Links from the documentation pages to ``../proofs/...`` (right on a repository browser) are
  pointed at the served copy.
- The home page: ``README.md`` replaces what ``docs/index.md`` holds between ``<!-- README -->``
  and ``<!-- /README -->`` (its links into ``docs/`` made relative to the site).
- The command-line reference: ``<!-- cli-help -->`` in a page becomes the ``--help`` of every
  ``conceptid`` subcommand.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import tomllib
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "build" / "docs_api"
PROOFS = ROOT / "proofs"


def package_dirs() -> dict[str, Path]:
    """The installed package names and the repository folders they come from."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setuptools.get("package-dir", {})
    packages = setuptools["packages"]
    return {name: ROOT / mapping.get(name, name.replace(".", "/")) for name in packages}


def public_modules() -> list[str]:
    """Every public module and package of the installed package, in import-name order.

    A module is public when no part of its dotted name starts with an underscore; a package's
    ``__init__`` is the package itself.
    """
    names = []
    for package, folder in package_dirs().items():
        names.append(package)
        for path in sorted(folder.glob("*.py")):
            if not path.stem.startswith("_"):
                names.append(f"{package}.{path.stem}")
    return sorted(set(names))


def stage_package() -> None:
    """Copy the package's sources into ``build/docs_api`` in the layout they install in."""
    if STAGE.exists():
        shutil.rmtree(STAGE)
    for package, folder in package_dirs().items():
        target = STAGE.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for path in folder.glob("*.py"):
            shutil.copy2(path, target / path.name)


def proof_pages() -> list[Path]:
    """proofs/README.md first, then every other proof page by name."""
    pages = sorted(PROOFS.glob("*.md"))
    return sorted(pages, key=lambda p: (p.name != "README.md", p.name))


def api_uri(module: str) -> str:
    return f"api/{module}.md"


@event_priority(100)  # before mkdocstrings reads its configuration
def on_config(config):
    stage_package()
    nav = config["nav"]
    nav.append({"Proofs": [{_title(page): f"proofs/{page.name}"} for page in proof_pages()]})
    modules, packages = public_modules(), package_dirs()
    groups = [
        {
            package: [
                {m: api_uri(m)}
                for m in modules
                if m == package or (_parent(m) == package and m not in packages)
            ]
        }
        for package in packages
    ]

    nav.append({"API reference": ["api/index.md", *groups]})
    return config


def _parent(module: str) -> str:
    return module.rsplit(".", 1)[0]


def _title(page: Path) -> str:
    for line in page.read_text().splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem


def on_files(files, config):
    modules = public_modules()
    index = [
        "# API reference",
        "",
        "Generated from the docstrings of every public module (no part of the name starts with",
        "an underscore). The layers import one way: `conceptid.simulations` <-",
        "`conceptid.identifiability` <- `conceptid.models` <- `conceptid`.",
        "",
    ]
    index += [f"- [`{m}`]({m}.md)" for m in modules]
    files.append(File.generated(config, "api/index.md", content="\n".join(index) + "\n"))
    for module in modules:
        content = f"# `{module}`\n\n::: {module}\n"
        files.append(File.generated(config, api_uri(module), content=content))
    for page in proof_pages():
        files.append(File.generated(config, f"proofs/{page.name}", abs_src_path=str(page)))
    for cert in sorted((PROOFS / "certificates").glob("*.py")):
        uri = f"proofs/certificates/{cert.name}"
        files.append(File.generated(config, uri, abs_src_path=str(cert)))
    return files


_PROOF_LINK = re.compile(r"\]\(\.\./proofs/")
_CERT_DIR = re.compile(r"\]\(certificates/\)")


_README = re.compile(r"<!-- README -->.*?<!-- /README -->", re.S)
_DOCS_LINK = re.compile(r"\]\(docs/")


def readme_body() -> str:
    """README.md without its title, its links into ``docs/`` relative to the site's root."""
    lines = (ROOT / "README.md").read_text().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return _DOCS_LINK.sub("](", "\n".join(lines).strip())


def on_page_markdown(markdown, page, config, files):
    uri = page.file.src_uri
    if uri == "index.md":
        markdown = _README.sub(lambda _: readme_body(), markdown)
    if uri.startswith("proofs/"):
        # the folder itself: its table on the proofs' README
        target = "#certificates" if uri == "proofs/README.md" else "README.md#certificates"
        return _CERT_DIR.sub(f"]({target})", markdown)
    if "/" not in uri:
        markdown = _PROOF_LINK.sub("](proofs/", markdown)
    if "<!-- cli-help -->" in markdown:
        markdown = markdown.replace("<!-- cli-help -->", cli_help())
    return markdown


def cli_help() -> str:
    """``conceptid --help`` and each subcommand's ``--help``, as Markdown."""
    from conceptid.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width: the same every build
    parser = build_parser()

    out = ["```text", parser.format_help().rstrip(), "```", ""]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                help_text = sub.format_help().rstrip()
                out += [f"### `conceptid {name}`", "", "```text", help_text, "```", ""]

    return "\n".join(out)
