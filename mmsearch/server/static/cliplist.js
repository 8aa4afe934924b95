// mmsearch page, the clip list: moments picked across searches (card checkbox, or S on the open moment or a focused
// card), kept in the browser (localStorage), each with its own in / out (±1 s), in an order set by dragging or
// Alt+↑/↓, exported through POST /api/export as a timeline for editing software. Uses app.js's helpers.
"use strict";

const MMClips = (() => {
  const KEY = "mmsearch.cliplist";
  const OPEN_KEY = "mmsearch.cliplist.open";
  const STEP = 1; // seconds per ±1 s button
  const MIN_LENGTH = 0.1; // a clip's out stays after its in
  let clips = load();
  let dragged = null;

  function load() {
    try {
      const data = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(data) ? data : [];
    } catch {
      return [];
    }
  }

  function keyOf(r) {
    return `${r.file_id}@${r.start}-${r.end}@${r.kind}`;
  }

  function has(r) {
    return clips.some((c) => c.key === keyOf(r));
  }

  function save() {
    localStorage.setItem(KEY, JSON.stringify(clips));
    render();
    for (const node of document.querySelectorAll(".card")) {
      if (node.result) node.querySelector(".select").checked = has(node.result);
    }
  }

  function toggle(r, on = !has(r)) {
    if (on && !has(r)) {
      clips.push({
        key: keyOf(r), file_id: r.file_id, path: r.path, kind: r.kind, media_kind: r.media_kind,
        start: r.start, end: r.end, in: r.start, out: r.end, text: r.text, score: r.score,
      });
      showPanel(true);
    } else if (!on) {
      clips = clips.filter((c) => c.key !== keyOf(r));
    }
    save();
  }

  function nudge(i, edge, delta) {
    const c = clips[i];
    const round = (x) => Math.round(x * 1000) / 1000;
    if (edge === "in") c.in = round(Math.min(Math.max(0, c.in + delta), c.out - MIN_LENGTH));
    else c.out = round(Math.max(c.out + delta, c.in + MIN_LENGTH));
    save();
  }

  function move(from, to) {
    if (to < 0 || to >= clips.length || from === to) return;
    const [c] = clips.splice(from, 1);
    clips.splice(to, 0, c);
    save();
    const item = document.querySelectorAll("#clips > li")[to];
    if (item) item.focus();
  }

  function button(label, title, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ghost small";
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.addEventListener("click", (e) => { e.stopPropagation(); action(); });
    return b;
  }

  function item(c, i) {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.draggable = true;
    li.dataset.index = i;
    const name = document.createElement("span");
    name.className = "clip-name";
    name.textContent = baseName(c.path);
    name.title = c.path;
    const when = document.createElement("span");
    when.className = "clip-span";
    when.textContent = c.in === null ? "still" : `${c.in.toFixed(1)}–${c.out.toFixed(1)} s`;
    li.append(name, when);
    if (c.in !== null) {
      const edges = document.createElement("span");
      edges.className = "clip-edges";
      edges.append(
        button("in −1", "Start 1 s earlier", () => nudge(i, "in", -STEP)),
        button("in +1", "Start 1 s later", () => nudge(i, "in", STEP)),
        button("out −1", "End 1 s earlier", () => nudge(i, "out", -STEP)),
        button("out +1", "End 1 s later", () => nudge(i, "out", STEP)),
      );
      li.append(edges);
    }
    li.append(button("✕", `Remove ${baseName(c.path)} from the clip list`, () => { clips.splice(i, 1); save(); }));
    li.addEventListener("keydown", (e) => {
      if (e.altKey && e.key === "ArrowUp") { e.preventDefault(); move(i, i - 1); }
      if (e.altKey && e.key === "ArrowDown") { e.preventDefault(); move(i, i + 1); }
      if (e.key === "Delete") { e.preventDefault(); clips.splice(i, 1); save(); }
    });
    li.addEventListener("dragstart", (e) => { dragged = i; e.dataTransfer.effectAllowed = "move"; e.dataTransfer.setData("text/plain", String(i)); });
    li.addEventListener("dragover", (e) => { e.preventDefault(); e.stopPropagation(); });
    li.addEventListener("drop", (e) => { e.preventDefault(); e.stopPropagation(); if (dragged !== null) move(dragged, i); dragged = null; });
    return li;
  }

  function render() {
    const list = $("#clips");
    list.innerHTML = "";
    clips.forEach((c, i) => list.appendChild(item(c, i)));
    $("#clip-count").textContent = String(clips.length);
    if (!clips.length) list.innerHTML = '<li class="meta empty-list">No clips yet: tick a card, or press S in the player.</li>';
  }

  function showPanel(open) {
    $("#cliplist").hidden = !open;
    localStorage.setItem(OPEN_KEY, open ? "1" : "");
  }

  async function exportList() {
    const status = $("#export-status");
    if (!clips.length) { status.textContent = "The clip list is empty."; return; }
    const format = $("#export-format").value;
    const moments = clips.map((c) => ({ file_id: c.file_id, start: c.in, end: c.out, kind: c.kind, text: c.text, score: c.score }));
    status.textContent = "Exporting…";
    let response;
    try {
      response = await fetch(`/api/export?format=${encodeURIComponent(format)}`, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ title: "mmsearch clip list", moments }),
      });
    } catch {
      status.textContent = "Cannot reach the mmsearch server.";
      return;
    }
    if (!response.ok) {
      const body = await apiError(response);
      status.textContent = body.error + (body.hint ? ` — ${body.hint}` : "");
      return;
    }
    const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
    const url = URL.createObjectURL(await response.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = name ? name[1] : `clip-list.${format}`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    status.textContent = `Exported ${clips.length} clip${clips.length === 1 ? "" : "s"} as ${a.download}.`;
  }

  function typing(e) {
    return e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
  }

  document.addEventListener("DOMContentLoaded", () => {
    render();
    showPanel(localStorage.getItem(OPEN_KEY) === "1" && clips.length > 0);
    $("#show-clips").addEventListener("click", () => showPanel($("#cliplist").hidden));
    $("#hide-clips").addEventListener("click", () => showPanel(false));
    $("#clear-clips").addEventListener("click", () => { clips = []; save(); });
    $("#export").addEventListener("click", exportList);
    $("#add-clip").addEventListener("click", () => { const r = MMTimeline.current(); if (r) toggle(r, true); });
    window.addEventListener("storage", (e) => { if (e.key === KEY) { clips = load(); render(); } }); // another tab
    document.addEventListener("keydown", (e) => {
      if (e.key !== "s" && e.key !== "S") return;
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      const open = $("#player").open && MMTimeline.current();
      const focused = document.activeElement && document.activeElement.closest(".card");
      const r = open || (focused && focused.result);
      if (!r) return;
      e.preventDefault();
      toggle(r);
    });
  });

  return { has, toggle, list: () => clips.map((c) => ({ ...c })) };
})();
