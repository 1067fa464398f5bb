// "Copy answer with citations" on the chat page: copies the plain-text answer the server put in
// the (visually hidden) #cart-copy-text box, with its numbered citations and formulas, for an
// appeal or a prior-authorization note. An external script (the page's CSP runs no inline
// code); one listener on the document, because Gradio renders its components after load.
(function () {
  "use strict";
  function fallback(text) {  // http on an intranet host is not a secure context: no Clipboard API
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.left = "-10000px";
    document.body.appendChild(area);
    area.select();
    var ok = document.execCommand("copy");
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("#cart-copy");
    if (!button) {
      return;
    }
    var source = document.querySelector("#cart-copy-text textarea");
    var text = source ? source.value : "";
    var status = document.querySelector("#cart-copy-status");
    if (!text) {
      if (status) { status.textContent = "Ask a question first: there is no answer to copy."; }
      return;
    }
    var copy = navigator.clipboard && window.isSecureContext ? navigator.clipboard.writeText(text) : fallback(text);
    copy.then(function () {
      if (status) { status.textContent = "Copied the answer with its citations."; }
    }, function () {
      if (status) { status.textContent = "The browser refused to copy; select the text in the evidence panel instead."; }
    });
  });
})();
