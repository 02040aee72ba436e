// The reviewer console's progressive enhancement: keyboard review without page reloads.
// Without JavaScript every page still works (links and forms); with it, on an item page:
//   j / k   next / previous item in the current filter      a / r   approve / reject (with the note)
//   c       open the correction editor (Ctrl+Enter saves, Esc cancels)
// A verdict is POSTed as JSON with the page's CSRF token; the next item's panel is fetched and
// swapped in (history.pushState), so the page itself is never reloaded.
(function () {
  "use strict";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function panel() { return document.querySelector("#item article.item"); }

  function notice(text) {
    const el = document.getElementById("notice");
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }

  function query() {
    const p = panel();
    return p && p.dataset.query ? "?" + p.dataset.query : "";
  }

  function signedOut(response) {
    if (response.status === 401) {
      window.location.assign("/ui/signin?expired=1&next=" + encodeURIComponent(location.pathname + location.search));
      return true;
    }
    return false;
  }

  let busy = false;

  async function load(id, push) {
    if (!id) return;
    const q = query();
    const response = await fetch("/ui/items/" + id + (q ? q + "&" : "?") + "fragment=1",
                                 { headers: { accept: "text/html" }, credentials: "same-origin", redirect: "manual" });
    if (response.type === "opaqueredirect" || response.status === 0) {
      window.location.assign("/ui/signin?expired=1");
      return;
    }
    if (signedOut(response)) return;
    if (!response.ok) { notice("Could not load item " + id + " (" + response.status + ")."); return; }
    document.getElementById("item").innerHTML = await response.text();
    const url = "/ui/items/" + id + q;
    if (push) history.pushState({ id: id }, "", url);
    document.title = "Item " + id + " · llm-gateway";
    window.scrollTo(0, 0);
  }

  function showEmpty() {
    document.getElementById("item").innerHTML =
      '<p class="empty" id="empty">Nothing left to review in this view. <a href="/ui/queue">Back to the queue</a>.</p>';
  }

  async function decide(verdict) {
    const p = panel();
    if (!p || busy || p.dataset.state !== "pending") return;
    const body = { verdict: verdict };
    const note = document.getElementById("note");
    if (note && note.value.trim()) body.notes = note.value.trim();
    if (verdict === "correct") {
      const text = document.getElementById("corrected").value;
      if (!text.trim()) { notice("Write the right answer first."); return; }
      body.corrected_output = text;
    }
    busy = true;
    try {
      const response = await fetch("/ui/items/" + p.dataset.itemId + "/verdict" + query(), {
        method: "POST", credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrf },
        body: JSON.stringify(body),
      });
      if (signedOut(response)) return;
      const data = await response.json();
      if (response.status === 409) {
        notice(data.error.message);
        p.dataset.state = data.item.state;
        return;
      }
      if (!response.ok) { notice(data.error ? data.error.message : "The verdict was not recorded."); return; }
      notice("Item " + data.item.id + ": " + data.item.state + ".");
      if (data.next_id) await load(data.next_id, true); else showEmpty();
    } finally {
      busy = false;
    }
  }

  function openCorrection() {
    const box = document.getElementById("correction");
    if (!box || !panel() || panel().dataset.state !== "pending") return;
    box.hidden = false;
    const area = document.getElementById("corrected");
    area.focus();
  }

  function closeCorrection() {
    const box = document.getElementById("correction");
    if (box) box.hidden = true;
    if (document.activeElement) document.activeElement.blur();
  }

  function move(forward) {
    const p = panel();
    if (!p) return;
    notice("");
    load(forward ? p.dataset.nextId : p.dataset.prevId, true);
  }

  document.addEventListener("keydown", function (event) {
    if (!document.getElementById("item")) return;
    const typing = event.target.closest && event.target.closest("textarea, input, select");
    if (event.key === "Escape") { closeCorrection(); return; }
    if (typing) {
      if (event.target.id === "corrected" && event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        decide("correct");
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = { j: () => move(true), k: () => move(false), a: () => decide("approve"),
                      r: () => decide("reject"), c: openCorrection };
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  });

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.verdict === "correct") openCorrection();
    else if (button.dataset.verdict) decide(button.dataset.verdict);
    else if (button.id === "save-correction") decide("correct");
    else if (button.id === "cancel-correction") closeCorrection();
  });

  window.addEventListener("popstate", function (event) {
    if (event.state && event.state.id) load(event.state.id, false);
  });

  // Queue page: changing a filter applies it at once.
  const filters = document.getElementById("filters");
  if (filters) {
    filters.addEventListener("change", function () { filters.requestSubmit(); });
  }
  if (panel()) history.replaceState({ id: panel().dataset.itemId }, "", location.href);
})();
