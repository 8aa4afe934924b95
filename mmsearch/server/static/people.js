// People on the mmsearch page: a strip of the people found in the index's faces (/api/people). Click a person for
// every moment they are on screen (?person=ID, answered by /api/search), ✎ to name them in place (PATCH), or give a
// photo (pick or drop it on "Find by face…") to find the moments of the person it shows (/api/search/face).
// Uses app.js's `show`, `setStatus`, `escapeHtml`, `stateFromForm` and `searchParams` (plain scripts, one page).
"use strict";

function personLabel(p) {
  return p.name || `person ${p.id}`;
}

function personCount(p) {
  const secs = p.seconds >= 1 ? ` · ${Math.round(p.seconds)} s` : "";
  return `${p.files} file${p.files === 1 ? "" : "s"}${secs}`;
}

async function loadPeople() {
  let response;
  try {
    response = await fetch("/api/people");
  } catch {
    return; // app.js says when the server cannot be reached
  }
  if (!response.ok) return;
  const people = await response.json();
  const strip = document.querySelector("#people");
  const list = document.querySelector("#people-list");
  list.innerHTML = "";
  strip.hidden = people.length === 0;
  const active = new URLSearchParams(location.search).get("person");
  for (const p of people) list.appendChild(personChip(p, String(p.id) === active));
}

function personChip(p, active) {
  const chip = document.createElement("div");
  chip.className = active ? "person active" : "person";
  const face = document.createElement("img");
  face.alt = "";
  if (p.crop_url) face.src = p.crop_url;
  const who = document.createElement("button");
  who.className = "who";
  who.textContent = personLabel(p);
  who.title = `Every moment of ${personLabel(p)}`;
  who.addEventListener("click", () => showPerson(p));
  face.addEventListener("click", () => showPerson(p));
  const rename = document.createElement("button");
  rename.className = "rename";
  rename.textContent = "✎";
  rename.title = `Name ${personLabel(p)}`;
  rename.setAttribute("aria-label", `Name ${personLabel(p)}`);
  rename.addEventListener("click", () => nameInPlace(chip, who, p));
  const count = document.createElement("span");
  count.className = "count";
  count.textContent = personCount(p);
  const line = document.createElement("div");
  line.append(who, rename);
  chip.append(face, line, count);
  return chip;
}

function showPerson(p) {
  const state = { ...stateFromForm(), q: "", then: [], person: String(p.id), like: null };
  const params = searchParams(state);
  history.pushState(null, "", `/?${params}`);
  document.querySelector("#q").value = "";
  for (const chip of document.querySelectorAll(".person")) chip.classList.remove("active");
  setStatus(`Finding ${escapeHtml(personLabel(p))}…`);
  show(() => fetch(`/api/search?${params}`), state);
  loadPeople();
}

function nameInPlace(chip, who, p) {
  const input = document.createElement("input");
  input.value = p.name || "";
  input.placeholder = "Name";
  input.setAttribute("aria-label", `Name of ${personLabel(p)}`);
  who.replaceWith(input);
  input.focus();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const name = input.value.trim();
    if (save && name && name !== p.name) {
      const response = await fetch(`/api/people/${p.id}`, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
        setStatus(escapeHtml(body.error) + (body.hint ? ` <span class="hint">— ${escapeHtml(body.hint)}</span>` : ""), true);
      }
    }
    loadPeople();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); finish(true); }
    if (e.key === "Escape") { e.preventDefault(); finish(false); }
  });
  input.addEventListener("blur", () => finish(true));
}

async function searchFace(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus("That is not an image: give a photo with a face (JPEG, PNG or WebP).", true);
    return;
  }
  const state = stateFromForm();
  const body = new FormData();
  body.append("image", file, file.name || "face");
  const params = searchParams({ ...state, q: "", then: [], channels: [] }, "image");
  history.pushState(null, "", "/");
  document.querySelector("#q").value = "";
  setStatus(`Looking for the face in ${escapeHtml(file.name || "the photo")}…`);
  await show(() => fetch(`/api/search/face?${params}`, { method: "POST", body }), state);
}

function wireFacePick() {
  const pick = document.querySelector("#face-pick");
  const input = document.querySelector("#face-image");
  input.addEventListener("change", (e) => searchFace(e.target.files[0]));
  pick.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); }
  });
  // A photo dropped here searches by face; dropped anywhere else, app.js searches by the whole image.
  pick.addEventListener("dragover", (e) => { e.preventDefault(); pick.classList.add("over"); });
  pick.addEventListener("dragleave", () => pick.classList.remove("over"));
  pick.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    pick.classList.remove("over");
    document.querySelector("#drop").hidden = true;
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) searchFace(file);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireFacePick();
  loadPeople();
});
