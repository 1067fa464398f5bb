// The Review page (CART_ADMIN_PAGES=on, admins only): the feedback queue, each answer as it was
// shown, filters, a golden-set case draft per item and the CSV export. Talks only to this server's
// /api/admin/review routes. Stored text goes into the page as textContent only (it is what users
// typed and what the assistant said), and nothing is kept in the browser: no storage, no cache,
// downloads are made from memory and the object URL is revoked at once.
// Served from /admin/review, so the API is at ../api.
(function () {
  "use strict";
  var api = new URL("../api/admin/review/", document.baseURI).href;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text != null) { node.textContent = String(text); }
    return node;
  }
  function plain(markdown) { return String(markdown || "").replace(/\*\*|__/g, ""); }
  function firstParagraph(text) { return plain(String(text || "").trim().split(/\n\s*\n/)[0]); }
  function status(message, isError) {
    $("status").textContent = message;
    $("status").className = isError ? "error" : "";
  }

  function query() {
    var params = new URLSearchParams();
    ["rating", "kind", "from", "to"].forEach(function (name) {
      var value = $(name).value.trim();
      if (value) { params.set(name, value); }
    });
    return params.toString();
  }
  function fail(r) {
    return r.json().catch(function () { return {}; }).then(function (data) {
      throw new Error(data.error || ("The server answered " + r.status + "."));
    });
  }
  function get(path) {
    return fetch(api + path, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r : fail(r); });
  }

  // A download the server made (Content-Disposition names the file), saved from memory.
  function download(path, fallback) {
    return get(path).then(function (r) {
      var named = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
      return r.blob().then(function (blob) {
        var url = URL.createObjectURL(blob), a = document.createElement("a");
        a.href = url;
        a.download = named ? named[1] : fallback;
        document.body.appendChild(a);
        a.click();
        a.remove();
        setTimeout(function () { URL.revokeObjectURL(url); }, 0);
        return a.download;
      });
    });
  }

  function citation(c) {
    var li = el("li", "citation");
    var where = [c.doc_id, c.page ? "page " + c.page : "", c.version || ""].filter(Boolean).join(", ");
    li.appendChild(el("span", "cite-title", "[" + c.marker + "] " + (c.title || c.doc_id) + (c.section ? " — " + c.section : "")));
    li.appendChild(el("span", "cite-where", " (" + where + ")"));
    li.appendChild(el("blockquote", "quote", c.quote));
    return li;
  }
  function calculation(t) {
    var li = el("li", "calc");
    li.appendChild(el("strong", null, t.name));
    li.appendChild(document.createTextNode(": " + plain(t.error || t.summary)));
    if (t.formula) { li.appendChild(el("div", "formula", plain(t.formula))); }
    return li;
  }
  function section(parent, title, list, make) {
    if (!list || !list.length) { return; }
    parent.appendChild(el("h3", null, title));
    var ol = el("ol", "plain");
    list.forEach(function (x) { ol.appendChild(make(x)); });
    parent.appendChild(ol);
  }

  function item(it) {
    var li = el("li", "item");
    li.dataset.id = it.id;
    var meta = el("p", "meta");
    meta.appendChild(el("span", "fid", "#" + it.id));
    meta.appendChild(el("span", null, String(it.created || "").replace("T", " ").replace("+00:00", " UTC")));
    if (it.user) { meta.appendChild(el("span", "user", it.user)); }
    meta.appendChild(el("span", it.rating === 1 ? "rating good" : "rating bad", it.rating === 1 ? "Helpful" : "Not helpful"));
    if (it.reason_label) { meta.appendChild(el("span", "reason", it.reason_label)); }
    meta.appendChild(el("span", "kind", "answer kind: " + (it.kind || "?")));
    li.appendChild(meta);
    li.appendChild(el("h2", "question", it.question));
    li.appendChild(el("p", "lead", firstParagraph(it.answer.text)));
    var full = el("details", "full");
    full.appendChild(el("summary", null, "Full answer"));
    full.appendChild(el("pre", "answer-text", plain(it.answer.text)));
    section(full, "Notes", it.answer.notes, function (n) { return el("li", null, n); });
    li.appendChild(full);
    section(li, "Citations", it.answer.citations, citation);
    section(li, "Calculations", it.answer.tool_calls, calculation);
    if (it.comment) { li.appendChild(el("p", "comment", "Comment: " + it.comment)); }
    var button = el("button", "golden-btn", "Golden case draft");
    button.type = "button";
    button.addEventListener("click", function () {
      button.disabled = true;
      download("items/" + encodeURIComponent(it.id) + "/golden", "review-" + it.id + ".yaml")
        .then(function (name) { status("Downloaded " + name + ": check it with evals/check_golden.py before adding it to evals/."); })
        .catch(function (e) { status(e.message, true); })
        .then(function () { button.disabled = false; });
    });
    li.appendChild(button);
    return li;
  }

  function load() {
    status("Loading…");
    get("items?" + query()).then(function (r) { return r.json(); }).then(function (data) {
      var list = $("items");
      list.replaceChildren();
      data.items.forEach(function (it) { list.appendChild(item(it)); });
      status(data.count === 0 ? "No feedback matches these filters." : data.count >= data.limit
        ? "The newest " + data.count + " items; narrow the dates to see older ones." : data.count + " item(s), newest first.");
    }).catch(function (e) { status(e.message, true); });
  }

  $("filters").addEventListener("submit", function (event) { event.preventDefault(); load(); });
  ["rating", "kind"].forEach(function (id) { $(id).addEventListener("change", load); });
  $("export-btn").addEventListener("click", function () {
    download("export.csv?" + query(), "review-feedback.csv")
      .then(function (name) { status("Downloaded " + name + "."); })
      .catch(function (e) { status(e.message, true); });
  });
  load();
})();
