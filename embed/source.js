// The source viewer (assistant/source_view.py): shows a cited passage highlighted in its section,
// or a whole document, from this server's /api/documents. Served from /sources/view, so the API is at
// ../api and the whole document at view?doc=ID. Document text only ever goes into textContent, and
// the offsets are the server's (Python: code points), so slicing is done by code points, not UTF-16.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var params = new URLSearchParams(window.location.search);
  var docId = params.get("doc") || "";
  var hasSpan = params.has("start") || params.has("end");

  function text(el, value) { el.textContent = value == null ? "" : String(value); }
  function fail(message) {
    var status = $("status");
    text(status, message);
    status.className = "error";
    text($("doc-title"), "Source not shown");
  }
  function link(href, label, download) {
    var a = document.createElement("a");
    a.href = href;
    text(a, label);
    if (download) { a.setAttribute("download", ""); }
    $("doc-links").appendChild(a);
    return a;
  }
  function meta(label, value) {
    if (!value) { return; }
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    text(dt, label);
    text(dd, value);
    $("doc-meta").append(dt, dd);
  }

  function showHeader(d) {
    document.title = d.title + " - Source";
    text($("doc-title"), d.title);
    meta("Kind", d.kind);
    meta("Payer", d.payer);
    meta("Publisher", d.publisher);
    meta("Effective", d.effective || "not stated");
    meta("Reviewed", d.reviewed || "not stated");
    meta("Version", d.version || "the only version on hand");
    if (d.page) {
      $("doc-page").hidden = false;
      text($("doc-page"), "Quoted passage on page " + d.page + (d.pages ? " of " + d.pages : "") + " of the original file");
    }
    var id = encodeURIComponent(d.id);
    link("view?doc=" + id, "Whole document").id = "whole-document";
    link("../api/documents/" + id + "/text", "Plain text");
    if (d.original) { link("../api/documents/" + id + "/original", "Original file", true).id = "original-file"; }
  }

  function showText(d) {
    var box = $("cart-text"), section = d.section, passage = d.passage;
    box.replaceChildren();
    if (!passage) {
      box.append(document.createTextNode(section.text));
      box.hidden = false;
      return null;
    }
    var chars = Array.from(section.text);  // code points, as the offsets count them
    var a = passage.start - section.start, b = passage.end - section.start;
    var mark = document.createElement("mark");
    mark.id = "cart-passage";
    text(mark, chars.slice(a, b).join(""));
    box.append(document.createTextNode(chars.slice(0, a).join("")), mark,
      document.createTextNode(chars.slice(b).join("")));
    var scope = $("doc-scope");
    scope.hidden = false;
    text(scope, "The section that holds the quoted passage (characters " + section.start + "–" + section.end +
      "); \"Whole document\" shows all of it.");
    box.hidden = false;
    return mark;
  }

  function show(d) {
    showHeader(d);
    var mark = showText(d);
    if (mark) {
      mark.tabIndex = -1;
      mark.scrollIntoView({ block: "center" });
      mark.focus({ preventScroll: true });
    }
  }

  if (!/^[a-z0-9][a-z0-9-]{1,80}$/.test(docId)) {
    fail("This link does not name a source document.");
    return;
  }
  var url = new URL("../api/documents/" + encodeURIComponent(docId), document.baseURI);
  if (hasSpan) {
    url.searchParams.set("start", params.get("start") || "");
    url.searchParams.set("end", params.get("end") || "");
  }
  fetch(url.href, { credentials: "same-origin", cache: "no-store" }).then(function (r) {
    return r.json().catch(function () { return { error: "The server answered " + r.status + "." }; })
      .then(function (data) { if (!r.ok) { throw new Error(data.error || ("Error " + r.status)); } return data; });
  }).then(show).catch(function (err) { fail(err.message); });
})();
