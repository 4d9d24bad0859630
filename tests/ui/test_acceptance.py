"""The acceptance path of the UI in Chromium: home → Flows → a flow → Execute → the execution page
shows SUCCESS, its tasks and its log line as they happen → Executions lists it; a bad task type
typed in the editor is marked on its line."""

from __future__ import annotations

import re
from typing import Any

import pytest
from browser import browser_context, server, ui_fixture  # noqa: F401  (the fixtures)
from playwright.sync_api import expect

from webserver.ui import editor_available

pytestmark = pytest.mark.integration


def test_home_flows_flow_execute_execution_executions(ui: Any) -> None:
    page = ui.goto("/")
    ui.shot("dashboard")
    for link in ("Flows", "Executions"):
        expect(page.get_by_role("navigation").get_by_role("link", name=link, exact=True)).to_be_visible()
    page.get_by_role("navigation").get_by_role("link", name="Flows", exact=True).click()
    ui.ready()
    expect(page.get_by_role("link", name="hello", exact=True)).to_be_visible()
    ui.shot("flows")
    page.get_by_role("link", name="hello", exact=True).click()
    ui.ready()
    expect(page.locator("#topology g.node[data-task=greet]")).to_be_visible()
    ui.shot("flow")
    page.get_by_role("link", name="Execute", exact=True).click()
    ui.ready()
    page.get_by_label(re.compile(r"^name")).fill("Ada")
    ui.shot("execute")
    page.get_by_role("button", name="Execute").click()
    page.wait_for_url(re.compile(r"/ui/executions/\w+"))
    ui.ready()
    execution_id = re.search(r"/ui/executions/(\w+)", page.url).group(1)  # type: ignore[union-attr]
    # The flow sleeps a second: the page shows the run live, then its end.
    expect(page.locator("#gantt [data-task=greet]")).to_be_visible()
    expect(page.locator("#logs .line", has_text="Hello, Ada!")).to_be_visible()
    expect(page.locator("#state [data-state]")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("#gantt [data-task=compute][data-state=SUCCESS]")).to_be_visible()
    expect(page.locator("#taskrun-count")).to_have_text("3")
    ui.shot("execution")
    page.get_by_role("navigation").get_by_role("link", name="Executions", exact=True).click()
    ui.ready()
    row = page.locator(f"tr[data-id='{execution_id}']")
    expect(row).to_be_visible()
    expect(row.locator("[data-state]")).to_have_text("SUCCESS")
    ui.shot("executions")


def test_editor_marks_a_bad_task_type_on_its_line(ui: Any) -> None:
    if not editor_available():
        pytest.fail("the editor component is not installed: run `npm ci` in the checkout (.ci/run does)")
    page = ui.goto("/ui/flows/ui.demo/hello/edit")
    expect(page.locator("#validity")).to_have_text("Valid.")
    editor = page.locator(".CodeMirror")
    expect(editor).to_be_visible()
    lines = page.locator(".CodeMirror-code > div")
    texts = lines.all_inner_texts()
    line = next(n for n, text in enumerate(texts, 1) if "core.log.Log" in text)
    lines.nth(line - 1).click()  # then type at the end of the task's type, as a person would
    page.keyboard.press("End")
    page.keyboard.type("Nope")
    marker = page.locator(f".problem-marker[data-line='{line}']")
    expect(marker).to_be_visible()
    expect(page.locator(f".line-problem[data-line='{line}']")).to_contain_text("LogNope")
    expect(page.locator("#problems li")).to_have_count(1)
    ui.shot("editor-problem")


def test_plain_editor_marks_the_line_too(ui: Any) -> None:
    page = ui.goto("/ui/flows/ui.demo/hello/edit?editor=plain")
    expect(page.locator("#editor-note")).to_contain_text("npm ci")
    area = page.get_by_label("Flow source (YAML)")
    text = area.input_value()
    line = text.split("\n").index(next(x for x in text.split("\n") if "core.log.Log" in x)) + 1
    area.fill(text.replace("core.log.Log", "core.log.Nope"))
    gutter = page.locator(f".gutter .problem[data-line='{line}']")
    expect(gutter).to_be_visible()
    expect(gutter).to_have_attribute("title", re.compile("Nope"))
    ui.shot("editor-plain")
