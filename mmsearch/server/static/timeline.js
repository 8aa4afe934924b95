// mmsearch page, the player's timeline: every match of the current query in the open file as a marker (coloured by
// kind), the open moment's span highlighted, N / P (and the buttons) to jump between matches, stop or loop at the
// moment's end, the file's transcript and on-screen text beside it (current line highlighted, click to seek),
// "copy link" (a URL that opens this moment) and "download clip". Uses app.js's helpers ($, clock, span, ...).
"use strict";

const MMTimeline = (() => {
  const MATCH_DEPTH = 100; // matches looked up per file: the query's top 100 moments, those in this file
  const searches = new Map(); // search params -> promise of its results, for as long as the page lives
  let current = null;
  let matches = [];
  let media = null;
  let lines = [];
  let stopped = false;

  function allMatches(state) {
    const p = searchParams({ ...state, top_k: String(MATCH_DEPTH) }, state.image ? "image" : "text");
    const key = p.toString();
    if (!searches.has(key)) {
      searches.set(key, fetch(`/api/search?${p}`).then((r) => (r.ok ? r.json() : { results: [] }))
        .then((d) => d.results).catch(() => []));
    }
    return searches.get(key);
  }

  function sameFile(list, r) {
    const seen = new Set();
    return list.filter((x) => x.file_id === r.file_id && x.start !== null).filter((x) => {
      const key = `${x.start}-${x.end}-${x.kind}`;
      return seen.has(key) ? false : seen.add(key);
    }).sort((a, b) => a.start - b.start);
  }

  function length() {
    if (media && Number.isFinite(media.duration) && media.duration > 0) return media.duration;
    return Math.max(1, ...matches.map((m) => m.end || m.start || 0)) * 1.05;
  }

  function draw() {
    const track = $("#track");
    for (const old of track.querySelectorAll(".marker")) old.remove();
    const total = length();
    for (const m of matches) {
      const mark = document.createElement("button");
      mark.type = "button";
      mark.className = `marker m-${m.kind}`;
      mark.dataset.start = m.start;
      mark.style.left = `${(100 * m.start) / total}%`;
      mark.style.width = `${Math.max(0.6, (100 * ((m.end || m.start) - m.start)) / total)}%`;
      mark.title = `${KIND_LABEL[m.kind] || m.kind} ${span(m)}`;
      mark.setAttribute("aria-label", `Match ${span(m)} (${KIND_LABEL[m.kind] || m.kind})`);
      mark.addEventListener("click", () => go(m));
      track.appendChild(mark);
    }
    const spanEl = $("#span");
    const on = current && current.start !== null;
    spanEl.hidden = !on;
    if (on) {
      spanEl.style.left = `${(100 * current.start) / total}%`;
      spanEl.style.width = `${Math.max(0.6, (100 * ((current.end || current.start) - current.start)) / total)}%`;
    }
    $("#tick-end").textContent = clock(total);
    const i = matches.findIndex((m) => same(m, current));
    $("#match-pos").textContent = matches.length ? `match ${i + 1} of ${matches.length}` : "";
  }

  function same(a, b) {
    return a && b && a.file_id === b.file_id && a.start === b.start && a.end === b.end && a.kind === b.kind;
  }

  function show(r) {
    current = r;
    stopped = false;
    $("#player-meta").textContent = [r.media_kind, span(r), `score ${r.score.toFixed(3)}`].filter(Boolean).join(" · ");
    $("#player-text").innerHTML = wordsHtml(r);
    $("#found-by").textContent = foundBy(r);
    $("#found-by").hidden = !foundBy(r);
    const link = $("#download-clip");
    link.hidden = r.start === null || r.media_kind === "image";
    if (!link.hidden) link.href = `/api/clip/${r.file_id}?start=${r.start}&end=${r.end}`;
    $("#link-out").hidden = true;
    draw();
  }

  function go(m) {
    show(m);
    if (media) {
      media.currentTime = m.start;
      media.play().catch(() => {});
    }
  }

  function step(direction) {
    if (!matches.length) return;
    let i = matches.findIndex((m) => same(m, current));
    if (i < 0) {
      const now = media ? media.currentTime : 0;
      i = direction > 0 ? matches.findIndex((m) => m.start > now) - 1 : matches.findIndex((m) => m.start >= now);
      if (i < -1) i = matches.length; // nothing after now: "next" stays, "previous" is the last
    }
    const target = matches[i + direction];
    if (target) go(target);
  }

  function onTime(e) {
    if (!media || e.target !== media) return; // a player element that was closed meanwhile
    const t = media.currentTime;
    $("#playhead").style.left = `${(100 * t) / length()}%`;
    const mode = $("#at-end").value;
    if (current && current.end !== null && t >= current.end && !stopped && mode !== "play") {
      if (mode === "loop") media.currentTime = current.start;
      else { media.pause(); stopped = true; } // pressing play again plays on past the moment
    }
    let now = null;
    for (const li of lines) {
      const on = li.dataset.start <= t && t < Number(li.dataset.end);
      li.classList.toggle("current", on);
      if (on) now = li;
    }
    if (now && !now.dataset.shown) {
      for (const li of lines) delete li.dataset.shown;
      now.dataset.shown = "1";
      now.scrollIntoView({ block: "nearest" });
    }
  }

  async function transcript(r) {
    const list = $("#transcript");
    list.innerHTML = "";
    lines = [];
    list.closest(".transcript-box").hidden = r.media_kind === "image";
    if (r.media_kind === "image") return;
    let found = [];
    try {
      const response = await fetch(`/api/transcript/${r.file_id}`);
      found = response.ok ? await response.json() : [];
    } catch { found = []; }
    if (current !== r && (!current || current.file_id !== r.file_id)) return;
    if (!found.length) {
      list.innerHTML = '<li class="meta">Nothing said or written in this file was indexed.</li>';
      return;
    }
    for (const line of found) {
      const li = document.createElement("li");
      li.className = `line ${line.kind}`;
      li.dataset.start = line.start || 0;
      li.dataset.end = line.end === null ? (line.start || 0) + 1 : line.end;
      const time = document.createElement("button");
      time.type = "button";
      time.className = "time";
      time.textContent = clock(line.start || 0);
      time.setAttribute("aria-label", `Play from ${clock(line.start || 0)}`);
      time.addEventListener("click", () => { if (media) { media.currentTime = line.start || 0; media.play().catch(() => {}); } });
      const text = document.createElement("span");
      text.textContent = line.kind === "ocr" ? `[on screen] ${line.text}` : line.text;
      li.append(time, text);
      list.appendChild(li);
      lines.push(li);
    }
  }

  async function open(r, results, state) {
    media = document.querySelector("#stage video, #stage audio");
    $("#timeline").hidden = !media;
    document.querySelector(".player-nav").hidden = !media;
    matches = sameFile(results, r);
    show(r);
    if (media) {
      media.addEventListener("loadedmetadata", () => { if (current === r || (current && current.file_id === r.file_id)) draw(); });
      media.addEventListener("timeupdate", onTime);
    }
    transcript(r);
    const more = await allMatches(state);
    if (current !== r) return;
    matches = sameFile([...results, ...more], r);
    draw();
  }

  function close() {
    current = null;
    media = null;
    matches = [];
  }

  function link() {
    if (!current) return "";
    const state = { ...(lastState || stateFromUrl()), open: String(current.file_id), t: current.start, tEnd: current.end };
    return `${location.origin}/?${pageParams(state)}`;
  }

  async function copyLink() {
    const out = $("#link-out");
    out.value = link();
    out.hidden = false;
    out.select();
    try { await navigator.clipboard.writeText(out.value); $("#copy-link").textContent = "Link copied"; }
    catch { $("#copy-link").textContent = "Copy link"; } // no clipboard here: the link is shown, selected
  }

  function typing(e) {
    return e.target.closest && e.target.closest("input, textarea, select, [contenteditable]");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#next").addEventListener("click", () => step(1));
    $("#prev").addEventListener("click", () => step(-1));
    $("#copy-link").addEventListener("click", copyLink);
    $("#player").addEventListener("keydown", (e) => {
      if (typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "n" || e.key === "N") { e.preventDefault(); step(1); }
      if (e.key === "p" || e.key === "P") { e.preventDefault(); step(-1); }
    });
  });

  return { open, close, step, link, current: () => current };
})();
