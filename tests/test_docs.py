"""The documentation is tested: its examples run, and the API reference covers the API.

Every ```python block of every page in ``docs/`` and of ``README.md`` runs, in order, in one
namespace per page, in a fresh temporary working directory, so a page reads top to bottom
like a session. A block fenced as ```{.python .no-run} is shown but not run; it is for code
that truly cannot run here (it needs a server, say), and each one must say so in its first
line. (```python no-run is not a fence to mkdocs: it renders the block as prose.)

The built site is checked against the Markdown: every code block of a page, and only those,
is a code block of its HTML, and every heading of its HTML is a heading of its Markdown, so
a fence mkdocs does not understand fails the tests instead of garbling the page.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest

import diskstore

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), ROOT / "README.md"]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)[ \t]*(?P<info>[^\n`]*)$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the first line of code
    info: str  # after the fence: "python", "python no-run", "{.python .no-run}", "console"
    code: str

    @property
    def _words(self) -> list[str]:
        # Python-Markdown (so mkdocs) only renders extra words in the attribute form,
        # ``{.python .no-run}``; both forms mean the same here.
        return [word.lstrip(".") for word in self.info.strip("{}").split()]

    @property
    def language(self) -> str:
        return self._words[0] if self._words else ""

    @property
    def runs(self) -> bool:
        return self.language == "python" and "no-run" not in self._words[1:]


def code_blocks(page: Path) -> list[Block]:
    """Every fenced code block of *page*, in order (indented fences, as in lists, included)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence, info = opening["indent"], opening["fence"], opening["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        else:
            raise AssertionError(f"{page.name}:{i + 1}: code fence is never closed")
        blocks.append(Block(page, i + 2, info, textwrap.dedent("\n".join(body)) + "\n"))
        i = j + 1
    return blocks


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


# -- the extractor itself -----------------------------------------------------------------
def test_code_blocks_finds_fences_languages_and_line_numbers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n"
        "```python\n"
        "x = 1\n"
        "```\n"
        "text\n"
        "```console\n"
        "$ diskstore version\n"
        "```\n"
        "1. In a list:\n"
        "\n"
        "    ```python no-run\n"
        "    # needs a server\n"
        "    serve()\n"
        "    ```\n"
    )
    blocks = code_blocks(page)
    assert [(b.language, b.runs, b.line) for b in blocks] == [
        ("python", True, 3),
        ("console", False, 7),
        ("python", False, 12),
    ]
    assert blocks[0].code == "x = 1\n"
    assert blocks[2].code == "# needs a server\nserve()\n"


def test_an_unclosed_fence_is_an_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n")
    with pytest.raises(AssertionError, match="never closed"):
        code_blocks(page)


def test_a_failing_example_fails_with_its_page_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = tmp_path / "broken.md"
    page.write_text("```python\nx = 1\n```\n\n```python\nassert x == 2, 'x is not 2'\n```\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AssertionError, match=r"broken\.md:6.*x is not 2"):
        run_page(page)


# -- running the pages --------------------------------------------------------------------
def run_page(page: Path) -> int:
    """Run the page's python blocks in order in one namespace; return how many ran."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    ran = 0
    for block in code_blocks(page):
        if not block.runs:
            continue
        # Parse with the page's line numbers, so a traceback points into the page.
        source = "\n" * (block.line - 1) + block.code
        compiled = compile(ast.parse(source, str(block.page)), str(block.page), "exec")
        try:
            exec(compiled, namespace)
        except Exception as exc:
            raise AssertionError(
                f"{block.page.name}:{block.line}: example failed: {type(exc).__name__}: {exc}"
            ) from exc
        ran += 1
    return ran


@pytest.mark.timeout(120)
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_page(page)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_no_run_blocks_say_why(page: Path) -> None:
    for block in code_blocks(page):
        if block.language == "python" and not block.runs:
            first = block.code.lstrip().splitlines()[0] if block.code.strip() else ""
            assert first.startswith("#"), (
                f"{page.name}:{block.line}: a no-run block must start with a comment saying "
                "why it cannot run"
            )


def test_the_pages_that_teach_have_runnable_examples() -> None:
    for name in ("getting-started.md", "tutorial.md", "differences.md"):
        blocks = [b for b in code_blocks(DOCS / name) if b.runs]
        assert len(blocks) >= 3, f"{name} should teach with runnable examples"
    assert [b for b in code_blocks(ROOT / "README.md") if b.runs], "README has no tour"


# -- the API reference --------------------------------------------------------------------
def _documented_identifiers() -> set[str]:
    """The objects that docs/api.md renders with mkdocstrings (``::: path``)."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    return set(re.findall(r"^:::\s*([\w.]+)\s*$", text, flags=re.MULTILINE))


def _resolve(identifier: str) -> object:
    module_name, _, attribute = identifier.rpartition(".")
    while module_name:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            attribute = f"{head}.{attribute}"
            continue
        obj: object = module
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return obj
    return importlib.import_module(identifier)


def test_every_api_reference_entry_exists() -> None:
    identifiers = _documented_identifiers()
    assert identifiers, "docs/api.md renders nothing"
    for identifier in sorted(identifiers):
        try:
            _resolve(identifier)
        except (ImportError, AttributeError) as exc:
            raise AssertionError(f"docs/api.md names {identifier}, which does not exist") from exc


def test_every_public_name_is_in_the_api_reference() -> None:
    documented = _documented_identifiers()
    missing = []
    for name in diskstore.__all__:
        obj = getattr(diskstore, name)
        paths = {f"diskstore.{name}"}
        module = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if isinstance(module, str) and isinstance(qualname, str):
            paths.add(f"{module}.{qualname}")
        if not paths & documented:
            missing.append(name)
    assert not missing, f"names in diskstore.__all__ missing from docs/api.md: {missing}"


def _has_own_docstring(obj: object) -> bool:
    if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj):
        return bool((obj.__doc__ or "").strip())
    return False


def _attribute_docstrings() -> dict[str, str]:
    """Docstrings of module-level names, as griffe (and so mkdocstrings) reads them."""
    import griffe

    package = griffe.load("diskstore", search_paths=[str(ROOT)], resolve_aliases=True)
    found: dict[str, str] = {}
    for name in diskstore.__all__:
        member = package.members.get(name)
        if member is None:
            continue
        target = member.final_target if isinstance(member, griffe.Alias) else member
        if target.docstring is not None and target.docstring.value.strip():
            found[name] = target.docstring.value
    return found


def test_every_public_name_has_a_docstring() -> None:
    attribute_docs = _attribute_docstrings()
    undocumented = [
        name
        for name in diskstore.__all__
        if not _has_own_docstring(getattr(diskstore, name)) and name not in attribute_docs
    ]
    assert not undocumented, (
        f"public names without a docstring: {undocumented} (for a constant, put a string "
        "literal right after its assignment; mkdocstrings shows it)"
    )


def test_public_classes_document_their_public_methods() -> None:
    undocumented = []
    for name in diskstore.__all__:
        obj = getattr(diskstore, name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        for attribute, member in vars(obj).items():
            if attribute.startswith("_") or not callable(member):
                continue
            # An override may inherit its documentation, as help() shows it.
            if not (inspect.getdoc(getattr(obj, attribute)) or "").strip():
                undocumented.append(f"{name}.{attribute}")
    assert not undocumented, f"public methods without a docstring: {undocumented}"


# -- the site -----------------------------------------------------------------------------
def _nav_pages() -> list[str]:
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    return re.findall(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$", text, flags=re.MULTILINE)


def test_every_docs_page_is_in_the_nav() -> None:
    nav = set(_nav_pages())
    pages = {page.name for page in DOCS.glob("*.md")}
    assert pages <= nav, f"pages missing from mkdocs.yml nav: {sorted(pages - nav)}"


def test_pages_link_only_to_pages_that_exist() -> None:
    link = re.compile(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)")
    broken = []
    for page in PAGES:
        for target in link.findall(page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            if not (page.parent / target).resolve().exists():
                broken.append(f"{_page_id(page)} -> {target}")
    assert not broken, f"links to missing pages: {broken}"


def test_the_version_in_the_docs_is_the_package_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", diskstore.__version__)
    for page in PAGES:
        for match in re.finditer(r"diskstore (\d+\.\d+\.\d+)", page.read_text(encoding="utf-8")):
            assert match.group(1) == diskstore.__version__, f"{_page_id(page)}: {match.group()}"


def build_site(site: Path, docs: Path = DOCS) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of *docs* (the project's by default) into *site*."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[dev]')")
    config = ROOT / "mkdocs.yml"
    if docs != DOCS:  # the project's configuration, pointed at other pages
        text = config.read_text(encoding="utf-8").replace("docs_dir: docs", f"docs_dir: {docs}")
        # The docstrings of this checkout, whatever the new configuration's directory.
        text = text.replace("        python:\n", f"        python:\n          paths: [{ROOT}]\n", 1)
        config = site.parent / "mkdocs.yml"
        config.write_text(text, encoding="utf-8")
    return subprocess.run(
        [str(mkdocs), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documentation built as ``make docs`` builds it, once for this module."""
    built = tmp_path_factory.mktemp("site") / "site"
    result = build_site(built)
    assert result.returncode == 0, result.stderr
    return built


@pytest.mark.timeout(300)
def test_the_site_builds_and_works_offline(site: Path) -> None:
    """``make docs`` in strict mode: a broken link, nav entry or docstring fails it."""
    # The site works offline: no script, stylesheet or font is fetched from elsewhere.
    remote = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"(?:https?:)?//[^\"]+\"")
    for page in site.rglob("*.html"):
        found = remote.findall(page.read_text(encoding="utf-8"))
        assert not found, f"{page.relative_to(site)} loads {found[0]}"
    for sheet in site.rglob("*.css"):
        assert "@import url(http" not in sheet.read_text(encoding="utf-8"), sheet


class _Rendered(HTMLParser):
    """The headings and code blocks of a built page's main column (mkdocstrings' own
    headings, generated from docstrings, left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.code: list[str] = []
        self._depth = 0  # inside the main column: count of open <div>s, 0 outside
        self._heading: list[str] | None = None
        self._pre: list[str] | None = None
        self._skip = 0  # inside a heading's permalink

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self._depth == 0:
            if tag == "div" and attributes.get("role") == "main":
                self._depth = 1
            return
        if tag == "div":
            self._depth += 1
        elif re.fullmatch(r"h[1-6]", tag) and "doc-heading" not in (attributes.get("class") or ""):
            self._heading = []
        elif tag == "a" and attributes.get("class") == "headerlink":
            self._skip += 1
        elif tag == "pre" and "doc-signature" not in (attributes.get("class") or ""):
            self._pre = []

    def handle_endtag(self, tag: str) -> None:
        if self._depth == 0:
            return
        if tag == "div":
            self._depth -= 1
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None
        elif tag == "a" and self._skip:
            self._skip -= 1
        elif tag == "pre" and self._pre is not None:
            self.code.append("".join(self._pre))
            self._pre = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        for sink in (self._heading, self._pre):
            if sink is not None:
                sink.append(data)


def _markdown_headings(page: Path) -> list[str]:
    """The ATX headings of *page*, outside code blocks, as their text renders."""
    lines = page.read_text(encoding="utf-8").splitlines()
    inside = {block.line - 1 + offset for block in code_blocks(page)
              for offset in range(-1, block.code.count("\n") + 1)}  # fmt: skip
    found = []
    for number, line in enumerate(lines):
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match and number not in inside:
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))
            found.append(text.replace("`", ""))
    return found


def _built_page(site: Path, page: Path) -> Path:
    return site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")


def rendering_problems(site: Path, page: Path) -> list[str]:
    """What the built *page* shows that its Markdown does not say, or leaves out."""
    rendered = _Rendered()
    rendered.feed(_built_page(site, page).read_text(encoding="utf-8"))
    problems = []
    expected_headings = _markdown_headings(page)
    for heading in rendered.headings:
        if heading not in expected_headings:
            problems.append(f"a heading that is not in the Markdown: {heading!r}")
    written = [block.code.rstrip("\n") for block in code_blocks(page)]
    shown = [text.rstrip("\n") for text in rendered.code]
    if page.name == "api.md":  # docstrings add examples of their own
        shown = [text for text in shown if text in written]
    for text in shown:
        if text not in written:
            first = next((line for line in text.splitlines() if line.strip()), "")
            problems.append(f"a code block that is not one in the Markdown: {first!r} ...")
    for text in written:
        if text not in shown:
            first = next((line for line in text.splitlines() if line.strip()), "")
            problems.append(f"a code block of the Markdown that is not rendered as one: {first!r}")
    return problems


@pytest.mark.timeout(300)
@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=_page_id)
def test_the_built_page_shows_the_markdown_as_written(site: Path, page: Path) -> None:
    problems = rendering_problems(site, page)
    assert not problems, f"{_page_id(page)} renders garbled:\n" + "\n".join(problems)


@pytest.mark.timeout(300)
def test_a_fence_mkdocs_does_not_understand_is_found(tmp_path: Path) -> None:
    """What the two garbled pages did: ```python no-run is not a fence to mkdocs."""
    docs = tmp_path / "docs"
    shutil.copytree(DOCS, docs)
    page = docs / "django.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("```{.python .no-run}", "```python no-run", 1), encoding="utf-8")
    result = build_site(tmp_path / "site", docs)
    assert result.returncode == 0, result.stderr  # mkdocs --strict does not notice
    problems = rendering_problems(tmp_path / "site", page)
    assert any("heading that is not in the Markdown" in p for p in problems), problems
    assert any("not one in the Markdown" in p for p in problems), problems


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=_page_id)
def test_fences_are_ones_mkdocs_understands(page: Path) -> None:
    """One word (``python``, ``console``) or attributes (``{.python .no-run}``)."""
    for block in code_blocks(page):
        assert re.fullmatch(r"\{[^}]*\}|\.?[\w#.+-]*", block.info), (
            f"{page.name}:{block.line - 1}: mkdocs does not read the fence {block.info!r} as a "
            "fence (write ```{.python .no-run} for a block that is not run)"
        )


def test_the_api_reference_shows_cache_memoize_with_every_keyword(site: Path) -> None:
    text = (site / "api" / "index.html").read_text(encoding="utf-8")
    start = text.find('id="diskstore.Cache.memoize"')
    assert start >= 0, "the API reference has no Cache.memoize entry"
    signature = re.sub(r"<[^>]+>", "", text[start : text.find("</code>", start)])
    for name in inspect.signature(diskstore.Cache.memoize).parameters:
        if name not in ("self", "unknown"):
            assert f"{name}:" in signature, f"Cache.memoize's signature in the docs lacks {name}"


@pytest.mark.parametrize(
    ("anchor", "facade"),
    [("diskstore.AsyncCache", "diskstore:AsyncCache"),
     ("diskstore.redis.AsyncRedisCache", "diskstore.redis:AsyncRedisCache")],
)  # fmt: skip
def test_the_api_reference_shows_forwarded_methods_with_their_parameters(
    site: Path, anchor: str, facade: str
) -> None:
    """The async facades' methods made from the engine's (``set = _threaded(Cache.set)``)
    are written as attributes; the reference still lists each as an async method with the
    engine's parameters and docstring (docs/_ext/forwarded.py)."""
    module, _, name = facade.partition(":")
    cls = getattr(importlib.import_module(module), name)
    forwarded = [
        attribute
        for attribute, member in vars(cls).items()
        if inspect.iscoroutinefunction(member) and hasattr(member, "__wrapped__")
    ]
    assert len(forwarded) >= 9, forwarded
    text = (site / "api" / "index.html").read_text(encoding="utf-8")
    for attribute in forwarded:
        start = text.find(f'id="{anchor}.{attribute}"')
        assert start >= 0, f"the API reference has no {anchor}.{attribute} entry"
        end = text.find(f'id="{anchor}.', start + 1)
        entry = re.sub(r"<[^>]+>", "", text[start : end if end > 0 else None])
        wrapped = getattr(cls, attribute).__wrapped__
        for parameter in list(inspect.signature(wrapped).parameters)[1:]:
            assert f"{parameter}:" in entry, f"{anchor}.{attribute} lacks {parameter}"
        assert "async" in entry.split("(", 1)[0], f"{anchor}.{attribute} is not marked async"
        summary = inspect.getdoc(wrapped).split("\n", 1)[0]  # type: ignore[union-attr]
        words = " ".join(re.sub(r"[*`]", "", summary).split()[:3])
        assert words in entry, f"{anchor}.{attribute} lacks its doc"
