"""The UI in Chromium, one server and one browser for the module (Playwright's sync API keeps an
event loop running until it stops, which the async tests after this module need gone).

First the acceptance path: home → Flows → a flow → Execute → the execution page shows SUCCESS, its
tasks and its log line as they happen → Executions lists it; a bad task type typed in the editor is
marked on its line. Then every other page with its main interactions. No console error allowed.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
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


def run(ui: Any, flow: str, **inputs: Any) -> str:
    """Start an execution through the API and wait until the projection has it; its id."""
    with httpx.Client(base_url=ui.base, timeout=30) as client:
        r = client.post(f"/api/v1/executions/ui.demo/{flow}", json=inputs)
        assert r.status_code == 200, r.text
        execution_id: str = r.json()["id"]
        for _ in range(200):
            found = client.get("/api/v1/executions/search", params={"q": execution_id}).json()
            if found["total"]:
                return execution_id
    raise AssertionError(f"execution {execution_id} never indexed")


def test_flows_search_and_namespace_filter_kept_in_the_url(ui: Any) -> None:
    page = ui.goto("/ui/flows")
    page.get_by_label("Search").fill("shap")
    expect(page.locator("#flows-list tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=shap"))
    page.get_by_label("Search").fill("")
    page.get_by_label("Namespace").select_option("ui.demo")
    expect(page).to_have_url(re.compile(r"namespace=ui.demo"))
    expect(page.locator("#flows-list tbody tr")).to_have_count(3)
    page.reload()
    ui.ready()
    expect(page.get_by_label("Namespace")).to_have_value("ui.demo")


def test_flow_topology_shows_every_flowable_and_errors_finally(ui: Any) -> None:
    page = ui.goto("/ui/flows/ui.demo/shapes")
    svg = page.locator("#topology svg")
    for task in (
        "fan",
        "left",
        "right",
        "choose",
        "case_a",
        "case_b",
        "each",
        "item",
        "graph",
        "first",
        "second",
        "dag_failed",
        "alert",
        "cleanup",
    ):
        expect(svg.locator(f"g.node[data-task='{task}']")).to_have_count(1)
    expect(svg.locator("rect.section.errors")).to_have_count(2)  # the flow's and the Dag's
    expect(svg.locator("rect.section.finally")).to_have_count(1)
    # Parallel branches side by side, a Dag's dependent below its dependency.
    left, right = (
        svg.locator("g.node[data-task=left]").bounding_box(),
        svg.locator("g.node[data-task=right]").bounding_box(),
    )
    assert left and right and abs(left["y"] - right["y"]) < 1 and right["x"] > left["x"]
    first, second = (
        svg.locator("g.node[data-task=first]").bounding_box(),
        svg.locator("g.node[data-task=second]").bounding_box(),
    )
    assert first and second and second["y"] > first["y"] + first["height"]
    ui.shot("flow-topology")
    page.get_by_role("tab", name="Triggers").click()
    expect(page.get_by_role("cell", name="daily", exact=True)).to_be_visible()
    ui.shot("flow-triggers")


def test_new_flow_then_a_new_revision_with_a_diff(ui: Any) -> None:
    page = ui.goto("/ui/flows/new?editor=plain")
    area = page.get_by_label("Flow source (YAML)")
    area.fill(
        "id: created\nnamespace: ui.edit\ntasks:\n  - id: one\n"
        "    type: io.kestra.plugin.core.log.Log\n    message: first\n"
    )
    expect(page.locator("#validity")).to_have_text("Valid.")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/ui/flows/ui.edit/created$"))
    ui.ready()
    page.get_by_role("link", name="Edit").click()
    ui.ready()
    page.locator(".CodeMirror-code > div", has_text="message: first").click()
    page.keyboard.press("End")
    page.keyboard.type(" and second")
    expect(page.locator("#validity")).to_have_text("Valid.")
    page.get_by_role("button", name="Save (new revision)").click()
    page.wait_for_url(re.compile(r"/ui/flows/ui.edit/created$"))
    ui.ready()
    expect(page.get_by_text("revision 2")).to_be_visible()
    page.get_by_role("tab", name="Revisions").click()
    expect(page.locator("#diff .del")).to_have_text("-     message: first")
    expect(page.locator("#diff .add")).to_have_text("+     message: first and second")
    ui.shot("flow-revisions")


def test_execute_form_is_typed_with_a_file_and_a_select(ui: Any, tmp_path: Any) -> None:
    page = ui.goto("/ui/flows/ui.demo/shapes/execute")
    expect(page.locator("select[name=kind]")).to_have_value("a")
    page.locator("select[name=kind]").select_option("b")
    data = tmp_path / "data.txt"
    data.write_text("some data\n")
    page.locator("input[type=file][name=data]").set_input_files(str(data))
    page.get_by_label("Labels").fill("origin:ui")
    page.get_by_role("button", name="Execute").click()
    page.wait_for_url(re.compile(r"/ui/executions/\w+"))
    ui.ready()
    expect(page.locator("#state [data-state]")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("#gantt [data-task=case_b]")).to_be_visible()
    expect(page.locator("#gantt [data-task=case_a]")).to_have_count(0)
    expect(page.locator("#summary")).to_contain_text("origin:ui")
    expect(page.locator("#summary")).to_contain_text("kestra://")  # the uploaded file's URI
    page.get_by_role("tab", name="Topology").click()
    expect(page.locator("#topology g.node[data-task=case_b]")).to_have_attribute("data-state", "SUCCESS")
    expect(page.locator("#topology g.node[data-task=case_a]")).not_to_have_attribute("data-state", "SUCCESS")
    page.get_by_role("tab", name="Files").click()
    expect(page.locator("#files a", has_text="data.txt")).to_be_visible()
    ui.shot("execution-shapes")


def test_logs_filter_by_level_and_search(ui: Any) -> None:
    execution_id = run(ui, "shapes")
    page = ui.goto(f"/ui/executions/{execution_id}")
    expect(page.locator("#state [data-state]")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("#logs .line", has_text="item 3")).to_be_visible()
    page.get_by_label("Search", exact=True).fill("item 2")
    expect(page.locator("#logs .line")).to_have_count(1)
    expect(page.locator("#log-count")).to_have_text("1 lines")
    page.get_by_label("Search", exact=True).fill("")
    page.get_by_label("Minimum level").select_option("ERROR")
    expect(page.locator("#log-count")).to_have_text("0 lines")


def test_history_slider_shows_the_execution_as_of_an_event(ui: Any) -> None:
    execution_id = run(ui, "hello", name="Slider")
    page = ui.goto(f"/ui/executions/{execution_id}")
    expect(page.locator("#state [data-state]")).to_have_text("SUCCESS", timeout=20_000)
    page.get_by_role("tab", name="History").click()
    slider = page.get_by_label("As of event")
    expect(page.locator("#state-at [data-state]").first).to_have_text("SUCCESS")
    slider.focus()
    page.keyboard.press("Home")
    expect(page.locator("#as-of")).to_contain_text("as of event 1 of")
    expect(page.locator("#state-at p")).to_contain_text(re.compile(r" [012] taskruns"))  # not yet the 3
    ui.shot("execution-history")
    page.get_by_role("tab", name="Outputs").click()
    expect(page.locator("#outputs")).to_contain_text("SLIDER")


def test_pause_resume_with_inputs_then_replay_from_a_taskrun(ui: Any) -> None:
    execution_id = run(ui, "approve")
    page = ui.goto(f"/ui/executions/{execution_id}")
    expect(page.locator("#state [data-state]")).to_have_text("PAUSED", timeout=20_000)
    page.get_by_label("Resume inputs (JSON)").fill('{"answer": "yes"}')
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("#state [data-state]")).to_have_text("SUCCESS", timeout=20_000)
    expect(page.locator("#logs .line", has_text="answer yes")).to_be_visible()
    ui.shot("execution-resumed")
    said = page.locator("select[name=replayFrom] option", has_text="said").get_attribute("value")
    page.get_by_label("Replay from").select_option(said)
    page.get_by_role("button", name="Replay").click()
    page.wait_for_url(lambda url: execution_id not in url)
    ui.ready()
    expect(page.locator("#summary")).to_contain_text(execution_id)  # "Replay of"


def test_kill_then_restart(ui: Any) -> None:
    execution_id = run(ui, "approve")
    page = ui.goto(f"/ui/executions/{execution_id}")
    expect(page.locator("#state [data-state]")).to_have_text("PAUSED", timeout=20_000)
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Kill").click()
    expect(page.locator("#state [data-state]")).to_have_text("KILLED", timeout=20_000)
    page.get_by_role("button", name="Restart").click()
    expect(page.locator("#status")).to_contain_text("Restart: done")


def test_executions_filters_kept_in_the_url_and_bulk_kill(ui: Any) -> None:
    ids = [run(ui, "approve") for _ in range(2)]
    page = ui.goto("/ui/executions?namespace=ui.demo&flowId=approve&state=PAUSED")
    for execution_id in ids:
        expect(page.locator(f"tr[data-id='{execution_id}']")).to_be_visible(timeout=20_000)
    expect(page.get_by_label("Flow", exact=True)).to_have_value("approve")
    ui.shot("executions-filtered")
    for execution_id in ids:
        page.get_by_label(f"Select {execution_id}").check()
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Kill selected").click()
    expect(page.locator("#status")).to_contain_text("done")
    page.get_by_label("State").select_option("KILLED")
    expect(page).to_have_url(re.compile(r"state=KILLED"))
    for execution_id in ids:
        expect(page.locator(f"tr[data-id='{execution_id}']")).to_be_visible(timeout=20_000)


def test_triggers_disable_enable_and_a_backfill(ui: Any) -> None:
    page = ui.goto("/ui/triggers")
    row = page.locator("tr[data-trigger='ui.demo.shapes.daily']")
    expect(row).to_contain_text("enabled")
    row.get_by_role("button", name="Disable daily").click()
    expect(row).to_contain_text("disabled")
    row.get_by_role("button", name="Enable daily").click()
    expect(row).to_contain_text("enabled")
    row.get_by_label("Backfill start of daily").fill("2026-01-01T00:00")
    row.get_by_label("Backfill end of daily").fill("2026-01-03T00:00")
    row.get_by_role("button", name="Backfill").click()
    expect(row).to_contain_text(re.compile(r"(RUNNING|DONE|\d+/\d+)"), timeout=20_000)
    ui.shot("triggers")
    page = ui.goto("/")
    expect(page.locator("#h-next ~ table")).to_contain_text("ui.demo.shapes")
    expect(page.locator("#daily svg rect").first).to_be_visible()
    ui.shot("dashboard-after")


def test_kv_set_read_delete(ui: Any) -> None:
    page = ui.goto("/ui/kv?namespace=ui.kv")
    page.get_by_label("Key", exact=True).fill("answer")
    page.get_by_label("Value (JSON or text)").fill('{"n": 42}')
    page.get_by_role("button", name="Set").click()
    page.locator("tr[data-key=answer]").get_by_role("button", name="answer", exact=True).click()
    expect(page.locator("#kv-value")).to_contain_text('"n": 42')
    expect(page.locator("#kv-value h2")).to_have_text("answer (JSON)")
    ui.shot("kv")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete answer").click()
    expect(page.locator("#kv-list")).to_contain_text("No key in ui.kv")


def test_namespace_files_upload_view_delete(ui: Any, tmp_path: Any) -> None:
    page = ui.goto("/ui/files?namespace=ui.files")
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    page.get_by_label("File", exact=True).set_input_files(str(script))
    page.get_by_label("Path").fill("scripts/hello.py")
    page.get_by_role("button", name="Upload").click()
    page.get_by_role("button", name="scripts/").click()
    page.get_by_role("button", name="hello.py", exact=True).click()
    expect(page.locator("#file-view pre")).to_have_text("print('hello')\n")
    ui.shot("files")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete scripts/hello.py").click()
    expect(page.locator("#files-list")).not_to_contain_text("hello.py")


def test_keyboard_reaches_the_navigation_and_tabs(ui: Any) -> None:
    page = ui.goto("/ui/flows/ui.demo/hello")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.get_by_role("tab", name="Topology").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Revisions")).to_be_focused()
    expect(page.get_by_role("tab", name="Revisions")).to_have_attribute("aria-selected", "true")
