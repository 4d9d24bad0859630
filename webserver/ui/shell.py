"""The HTML shell every page shares: the navigation, the page's title and the module that fills it."""

from __future__ import annotations

from html import escape

NAV = [
    ("/", "Dashboard"),
    ("/ui/flows", "Flows"),
    ("/ui/executions", "Executions"),
    ("/ui/triggers", "Triggers"),
    ("/ui/kv", "KV"),
    ("/ui/files", "Files"),
]

CODEMIRROR_ASSETS = (
    '<link rel="stylesheet" href="/ui/vendor/codemirror/lib/codemirror.css">'
    '<script src="/ui/vendor/codemirror/lib/codemirror.js"></script>'
    '<script src="/ui/vendor/codemirror/mode/yaml/yaml.js"></script>'
)


# The modules each page imports, announced up front so the browser fetches them in parallel.
MODULES = {"execution": ("pages/flow.js", "pages/logview.js")}


def page(name: str, title: str, **data: str) -> str:
    """The document of page ``name``; ``data`` becomes ``data-*`` attributes of ``<body>``."""
    attrs = "".join(f' data-{escape(k)}="{escape(v)}"' for k, v in data.items())
    nav = "".join(f'<a href="{href}">{escape(label)}</a>' for href, label in NAV)
    extra = CODEMIRROR_ASSETS if data.get("editor") == "codemirror" else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · engine</title>"
        '<link rel="icon" href="data:,">'
        f"{extra}"  # before ui.css, whose rules (the editor's height) come last and win
        '<link rel="stylesheet" href="/ui/static/ui.css">'
        f'<script type="module" src="/ui/static/app.js"></script>'
        + "".join(
            f'<link rel="modulepreload" href="/ui/static/{m}">'
            for m in ("lib.js", f"pages/{name}.js", *MODULES.get(name, ()))
        )
        + f'</head><body data-page="{escape(name)}"{attrs}>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><nav aria-label="Main"><span class="brand">engine</span>{nav}</nav></header>'
        f'<main id="main" tabindex="-1"><h1>{escape(title)}</h1>'
        '<div id="status" role="status" aria-live="polite"></div><div id="content"></div></main>'
        "</body></html>"
    )
