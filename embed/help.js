// Embeds the CAR-T billing assistant in an intranet page, from the server that served this file:
// the assistant's address is where this script came from, never a name typed into the page or
// taken from a request header. Classic script (not a module), so document.currentScript is set.
(function () {
  "use strict";
  var me = document.currentScript;
  var base = new URL("..", me.src);  // .../embed/help.js -> the app's root (CART_ROOT_PATH included)
  var app = base.href.replace(/\/$/, "");
  document.querySelectorAll("gradio-app[data-cart-assistant]").forEach(function (el) {
    el.setAttribute("src", app + "/");
  });
  document.querySelectorAll("iframe[data-cart-assistant]").forEach(function (el) {
    el.setAttribute("src", app + "/");
  });
  document.querySelectorAll("[data-cart-address]").forEach(function (el) {
    el.textContent = app + "/";
  });
  var loader = document.createElement("script");
  loader.type = "module";
  loader.src = app + "/gradio.js";
  document.head.appendChild(loader);
})();
