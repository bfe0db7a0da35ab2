/* Keyboard shortcuts of the anomaly review page (no library, no network).
 *
 * j / n: next anomaly of the queue; k / p: previous; u: back to the queue;
 * c / d / f / a / m: the verdict buttons (each button carries its key in data-key);
 * ?: show or hide the help overlay; Esc closes it.
 * Keys typed into a text field, or with a modifier, are left alone.
 */
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    var review = document.getElementById("review");
    if (!review) { return; }
    var help = document.getElementById("shortcut-help");
    var form = document.getElementById("verdict-form");
    var submitted = false;

    function toggleHelp(show) {
      if (!help) { return; }
      help.hidden = show === undefined ? !help.hidden : !show;
    }

    function go(url) {
      if (url) { window.location.assign(url); }
    }

    function verdict(key) {
      if (!form || submitted) { return false; }
      var button = form.querySelector('button[data-key="' + key + '"]');
      if (!button) { return false; }
      submitted = true;  // one verdict per page: a key held down must not post twice
      button.classList.add("pressed");
      if (typeof form.requestSubmit === "function") { form.requestSubmit(button); } else { button.click(); }
      return true;
    }

    var link = document.getElementById("shortcut-help-link");
    if (link) {
      link.addEventListener("click", function (event) { event.preventDefault(); toggleHelp(); });
    }
    if (help) {
      help.addEventListener("click", function (event) { if (event.target === help) { toggleHelp(false); } });
    }
    if (form) {
      form.addEventListener("submit", function () { submitted = true; });
    }

    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey) { return; }
      var target = event.target;
      var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
      if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) {
        if (event.key === "Escape" && target.blur) { target.blur(); }
        return;
      }
      var key = event.key;
      var handled = true;
      if (key === "?") {
        toggleHelp();
      } else if (key === "Escape") {
        toggleHelp(false);
      } else if (key === "j" || key === "n") {
        go(review.dataset.nextUrl);
      } else if (key === "k" || key === "p") {
        go(review.dataset.previousUrl);
      } else if (key === "u") {
        go(review.dataset.queueUrl);
      } else {
        handled = verdict(key);
      }
      if (handled) { event.preventDefault(); }
    });
  });
})();
