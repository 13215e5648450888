"""The dashboard page: the HTML report of a view, with controls and a small script
that refreshes the report's content in place. Pure functions of a view: no I/O."""

from __future__ import annotations

import html
import json
from typing import Any

from .._report.html import SCRIPT, STYLE, body
from .index import View

__all__ = ["WINDOWS", "content", "page", "status_line"]

WINDOWS = {"all": "everything", "15m": "last 15 min", "1h": "last hour", "24h": "last 24 h"}
"""The windows the page offers (besides ``custom``), by the value of ``window=``."""


def content(view: View) -> str:
    """What ``#analytics-report`` holds for ``view``: the report's body, or a clear
    empty state (no directory yet, no entries yet, none in this window)."""
    if view.state == "missing":
        return _empty(
            "No data directory yet",
            f"{view.directory} does not exist yet. The page fills in as soon as a writer"
            " creates it and writes entries; nothing needs restarting.",
        )
    if view.state == "empty":
        return _empty(
            "No entries yet",
            f"{view.directory} holds no entries yet. They appear here within seconds"
            " of being written.",
        )
    if view.summary.entries == 0:
        return _empty(
            "No entries in this window",
            f"None of the {view.total_entries:,} entries matches this window and these"
            " filters. Widen the window or clear a filter.",
        )
    return body(view.summary)


def _empty(title: str, text: str) -> str:
    return (
        f'<section class="dashboard-empty" data-empty="true"><h2>{html.escape(title)}</h2>'
        f"<p>{html.escape(text)}</p></section>"
    )


def status_line(view: View) -> str:
    """One line about the view: entries shown, entries in the index, the directory."""
    shown = view.summary.entries
    return (
        f"{shown:,} of {view.total_entries:,} entries"
        f" · {view.directory} · updated {{time}}"  # the script fills in the time
    )


def facets_json(view: View) -> dict[str, Any]:
    return {
        "types": view.facets.types,
        "tools": view.facets.tools,
        "sessions": view.facets.sessions,
    }


def _options(values: list[str], chosen: str | None, every: str) -> str:
    options = [f'<option value="">{html.escape(every)}</option>']
    if chosen and chosen not in values:
        values = [chosen, *values]
    for value in values:
        selected = " selected" if value == chosen else ""
        options.append(
            f'<option value="{html.escape(value)}"{selected}>{html.escape(value)}</option>'
        )
    return "".join(options)


def page(view: View, params: dict[str, str], refresh_seconds: float) -> str:
    """The whole page for ``view``, its controls set from the query ``params``
    (``window``, ``since``, ``until``, ``type``, ``tool``, ``session``)."""
    window = params.get("window") or ("custom" if params.get("since") else "all")
    windows = "".join(
        f'<option value="{key}"{" selected" if key == window else ""}>{label}</option>'
        for key, label in [*WINDOWS.items(), ("custom", "custom…")]
    )
    sessions = "".join(f'<option value="{html.escape(s)}">' for s in view.facets.sessions)
    config = json.dumps({"refreshMs": int(refresh_seconds * 1000)})
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        # No favicon to fetch (a 404 in the console otherwise): the page needs nothing else.
        '<link rel="icon" href="data:,">'
        f"<title>analytics dashboard</title><style>{STYLE}</style><style>{_STYLE}</style>"
        '</head><body><div class="dashboard">'
        '<form id="dashboard-controls" class="dashboard-controls" role="search">'
        '<label>Window <select name="window" id="dashboard-window">'
        f"{windows}</select></label>"
        '<span class="dashboard-custom" id="dashboard-custom">'
        '<label>Since <input type="datetime-local" step="1" name="since-local"'
        ' id="dashboard-since"></label>'
        '<label>Until <input type="datetime-local" step="1" name="until-local"'
        ' id="dashboard-until"></label></span>'
        '<label>Type <select name="type" id="dashboard-type">'
        f"{_options(view.facets.types, params.get('type'), 'all types')}</select></label>"
        '<label>Tool <select name="tool" id="dashboard-tool">'
        f"{_options(view.facets.tools, params.get('tool'), 'all tools')}</select></label>"
        '<label>Session <input name="session" id="dashboard-session" list="dashboard-sessions"'
        f' value="{html.escape(params.get("session", ""))}" placeholder="all sessions"'
        ' autocomplete="off"></label>'
        f'<datalist id="dashboard-sessions">{sessions}</datalist>'
        '<button type="submit">Apply</button></form>'
        '<p id="dashboard-status" class="dashboard-status" aria-live="polite">'
        f"{html.escape(status_line(view).replace('{time}', 'now'))}</p>"
        f'<main id="analytics-report">{content(view)}</main></div>'
        f'<script id="dashboard-config" type="application/json">{config}</script>'
        f"<script>{SCRIPT}</script><script>{_SCRIPT}</script></body></html>\n"
    )


_STYLE = (
    ".dashboard{box-sizing:border-box;max-width:1240px;margin:0 auto;padding:8px 16px 0;"
    'font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}'
    ".dashboard *{box-sizing:border-box}"
    ".dashboard #analytics-report .analytics-report{padding:16px 0}"
    ".dashboard-controls{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:end;"
    "padding:.5em 0;border-bottom:1px solid var(--border);max-width:100%}"
    ".dashboard-controls label{display:flex;flex-direction:column;font-size:.85em;"
    "min-width:0;max-width:100%}"
    ".dashboard-controls select,.dashboard-controls input{max-width:100%;font:inherit}"
    ".dashboard-custom{display:none;gap:.5em 1em;flex-wrap:wrap;max-width:100%}"
    ".dashboard-custom.shown{display:flex}"
    ".dashboard-controls select,.dashboard-controls input,.dashboard-controls button{"
    "background:var(--card);color:var(--fg);border:1px solid var(--border);"
    "border-radius:4px;padding:.25em .4em}"
    ".dashboard-status{font-size:.85em;color:var(--muted);overflow-wrap:anywhere;margin:.4em 0}"
    ".dashboard-status.stale{color:var(--c3)}"
    ".dashboard-empty{padding:2em 1em;margin:16px 0;border:1px dashed var(--border);"
    "border-radius:6px;text-align:center;overflow-wrap:anywhere}"
    "#analytics-report{max-width:100%;overflow-x:auto}"
)

_SCRIPT = r"""
(() => {
  "use strict";
  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  const here = new URLSearchParams(location.search);
  const token = here.get("token");
  const form = document.getElementById("dashboard-controls");
  const windowSelect = document.getElementById("dashboard-window");
  const custom = document.getElementById("dashboard-custom");
  const since = document.getElementById("dashboard-since");
  const until = document.getElementById("dashboard-until");
  const report = document.getElementById("analytics-report");
  const status = document.getElementById("dashboard-status");
  const pad = (n) => String(n).padStart(2, "0");
  const local = (iso) => {
    const d = new Date(iso);
    if (isNaN(d)) return "";
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
      `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  if (here.get("since")) since.value = local(here.get("since"));
  if (here.get("until")) until.value = local(here.get("until"));
  const showCustom = () => custom.classList.toggle("shown", windowSelect.value === "custom");
  showCustom();
  const query = () => {
    const q = new URLSearchParams();
    const w = windowSelect.value;
    if (w === "custom") {
      if (since.value) q.set("since", new Date(since.value).toISOString());
      if (until.value) q.set("until", new Date(until.value).toISOString());
    } else if (w && w !== "all") {
      q.set("window", w);
    }
    for (const name of ["type", "tool", "session"]) {
      const value = form.elements[name].value.trim();
      if (value) q.set(name, value);
    }
    return q;
  };
  const fill = (select, values) => {
    const chosen = select.value;
    const keep = [select.options[0]];
    const all = values.includes(chosen) || !chosen ? values : [chosen, ...values];
    const same = select.options.length === all.length + 1 &&
      all.every((v, i) => select.options[i + 1].value === v);
    if (same) return;
    select.replaceChildren(...keep, ...all.map((v) => new Option(v, v, false, v === chosen)));
  };
  let timer = null;
  let busy = false;
  let again = false;
  const refresh = async () => {
    if (busy) { again = true; return; }
    busy = true;
    clearTimeout(timer);
    const q = query();
    const shown = new URLSearchParams(q);
    if (token) shown.set("token", token);
    history.replaceState(null, "", "?" + shown.toString());
    try {
      const response = await fetch("api/view?" + q.toString(), {
        headers: token ? { Authorization: "Bearer " + token } : {},
        cache: "no-store",
      });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      const data = await response.json();
      report.innerHTML = data.html;
      fill(document.getElementById("dashboard-type"), data.facets.types);
      fill(document.getElementById("dashboard-tool"), data.facets.tools);
      document.getElementById("dashboard-sessions").replaceChildren(
        ...data.facets.sessions.map((s) => new Option("", s)));
      status.textContent = data.status.replace("{time}", new Date().toLocaleTimeString());
      status.classList.remove("stale");
      document.dispatchEvent(new CustomEvent("dashboard:updated", { detail: data }));
    } catch (error) {
      status.textContent = `Could not refresh (${error.message}); retrying.`;
      status.classList.add("stale");
    } finally {
      busy = false;
      timer = setTimeout(refresh, config.refreshMs);
      if (again) { again = false; refresh(); }
    }
  };
  windowSelect.addEventListener("change", () => { showCustom(); refresh(); });
  form.addEventListener("change", (event) => {
    if (event.target !== windowSelect) refresh();
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
  timer = setTimeout(refresh, config.refreshMs);
})();
"""
