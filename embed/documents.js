// The Documents page (CART_ADMIN_PAGES=on, admins only): upload a file, check and correct the
// proposed metadata, add it and follow the rebuild. Talks only to this server's /api/admin routes;
// nothing is kept in the browser. Served from /admin/documents, so the API is at ../api.
(function () {
  "use strict";
  var api = new URL("../api/admin/", document.baseURI).href;
  var current = null;  // the proposal being reviewed
  var $ = function (id) { return document.getElementById(id); };

  function call(method, path, body, headers) {
    var init = { method: method, headers: headers || {}, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      init.body = body;
    }
    return fetch(api + path, init).then(function (r) {
      return r.json().catch(function () { return { error: "The server answered " + r.status + "." }; })
        .then(function (data) { if (!r.ok) { throw new Error(data.error || ("Error " + r.status)); } return data; });
    });
  }
  function json(method, path, obj) {
    return call(method, path, JSON.stringify(obj), { "Content-Type": "application/json" });
  }
  function text(el, value) { el.textContent = value == null ? "" : String(value); }
  function list(el, items) {
    el.replaceChildren();
    (items || []).forEach(function (item) { var li = document.createElement("li"); text(li, item); el.appendChild(li); });
  }
  function cell(row, value) { var td = document.createElement("td"); text(td, value); row.appendChild(td); return td; }

  function showProposal(p) {
    current = p;
    $("review").hidden = false;
    text($("review-summary"), p.file + ": " + p.file_type + ", " + p.pages + " page(s), " + p.tables +
      " table(s), " + p.characters.toLocaleString() + " characters.");
    var body = $("fields").tBodies[0];
    body.replaceChildren();
    Object.keys(p.fields).forEach(function (name) {
      var f = p.fields[name], row = document.createElement("tr");
      var th = document.createElement("th"); th.scope = "row";
      var label = document.createElement("label"); label.htmlFor = "f-" + name; text(label, name);
      th.appendChild(label); row.appendChild(th);
      var td = document.createElement("td"), input = document.createElement("input");
      input.id = "f-" + name; input.name = name;
      input.value = Array.isArray(f.value) ? f.value.join(", ") : (f.value || "");
      input.placeholder = "(not in the text)";
      td.appendChild(input); row.appendChild(td);
      cell(row, f.evidence ? f.evidence + (f.source ? " (" + f.source + ")" : "") : (f.source || "")).className = "evidence";
      body.appendChild(row);
    });
    list($("problems"), p.problems);
    list($("notes"), p.notes);
    $("add-btn").disabled = p.problems.length > 0;
  }
  function edited() {
    var out = {};
    Array.prototype.forEach.call($("fields").querySelectorAll("input"), function (input) {
      var f = current.fields[input.name], was = Array.isArray(f.value) ? f.value.join(", ") : (f.value || "");
      if (input.value.trim() !== was) { out[input.name] = input.value.trim(); }
    });
    return out;
  }
  function fail(el) { return function (err) { text(el, err.message); el.className = "error"; }; }

  function loadCorpus() {
    return call("GET", "documents").then(function (data) {
      var body = $("corpus").tBodies[0];
      body.replaceChildren();
      data.documents.forEach(function (d) {
        var row = document.createElement("tr");
        cell(row, d.title + " (" + d.id + ")"); cell(row, d.kind); cell(row, d.payer); cell(row, d.effective);
        cell(row, d.reviewed); cell(row, d.version); cell(row, d.original ? d.original + (d.pages ? ", " + d.pages + " pages" : "") : "typed in");
        body.appendChild(row);
      });
      list($("corpus-errors"), data.errors);
      showBuild(data.build);
    }).catch(fail($("build-state")));
  }
  function showBuild(b) {
    var words = { idle: "No rebuild started.", running: "Rebuilding (the current index keeps answering)...",
      built: "Rebuilt: the new index is answering.", "up-to-date": "The index was already up to date.",
      failed: "The rebuild failed; the previous index is still answering." };
    text($("build-state"), (words[b.state] || b.state) + (b.message ? " " + b.message : ""));
    text($("build-lines"), (b.lines || []).join("\n"));
    if (b.state === "running") {
      wasRunning = true;
      setTimeout(function () { call("GET", "build").then(showBuild).catch(fail($("build-state"))); }, 1000);
    } else if (wasRunning) {
      wasRunning = false;
      loadCorpus();
    }
  }
  var wasRunning = false;

  $("upload-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var file = $("file").files[0], status = $("upload-status");
    if (!file) { return; }
    status.className = ""; text(status, "Reading " + file.name + "...");
    file.arrayBuffer().then(function (buf) {
      return call("POST", "uploads", buf, { "Content-Type": "application/octet-stream", "X-File-Name": encodeURIComponent(file.name) });
    }).then(function (p) { text(status, "Read " + p.file + "."); showProposal(p); }).catch(fail(status));
  });
  $("recheck-btn").addEventListener("click", function () {
    json("POST", "uploads/" + current.upload_id, { fields: edited() }).then(showProposal).catch(fail($("upload-status")));
  });
  $("review-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    json("POST", "uploads/" + current.upload_id + "/add", { fields: edited() }).then(function (r) {
      $("review").hidden = true;
      text($("upload-status"), "Added " + r.added + (r.supersedes ? " (a new revision of " + r.supersedes + ")" : "") + ".");
      showBuild(r.build);
    }).catch(fail($("upload-status")));
  });
  $("discard-btn").addEventListener("click", function () {
    call("DELETE", "uploads/" + current.upload_id).then(function () { $("review").hidden = true; current = null;
      text($("upload-status"), "Discarded."); });
  });
  loadCorpus();
})();
