/* Live progress of a batch reprocessing job's admin page (no library, no network beyond our API).
 *
 * Polls GET /api/v1/batch-reprocessing/jobs/{id} (session authentication) every 2 seconds while
 * the job is queued or running, updates the progress bar, the counts and the matching read-only
 * fields of the page, and stops once the job is completed, failed or cancelled.
 */
(function () {
  "use strict";

  var INTERVAL_MS = 2000;
  var FINISHED = { completed: true, failed: true, cancelled: true };
  var LABELS = { queued: "Queued", running: "Running", completed: "Completed", failed: "Failed", cancelled: "Cancelled" };
  // The colours of batch_jobs.admin.progress_bar, for the admin's own progress field.
  var COLOURS = { completed: "#2e7d32", failed: "#c62828", cancelled: "#757575", running: "#1565c0", queued: "#9e9e9e" };

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function number(n) {
    return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
  }

  function setText(id, text) {
    var el = document.getElementById(id);
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  // The admin's own read-only fields below the live panel, so the page never contradicts itself.
  function setField(name, text) {
    var el = document.querySelector(".field-" + name + " .readonly");
    if (el && el.textContent !== text) { el.textContent = text; }
  }

  ready(function () {
    var panel = document.getElementById("job-live");
    if (!panel || panel.dataset.polling !== "true") { return; }
    var url = panel.dataset.url;
    var failures = 0;
    var timer = null;

    function render(job) {
      var pct = Math.max(0, Math.min(100, Number(job.progress_pct) || 0));
      var bar = document.getElementById("job-bar");
      bar.className = "job-bar status-" + job.status;
      bar.setAttribute("aria-valuenow", String(Math.round(pct)));
      bar.firstElementChild.style.width = pct.toFixed(1) + "%";
      panel.dataset.status = job.status;
      setText("job-status", LABELS[job.status] || job.status);
      setText("job-pct", pct.toFixed(1));
      setText("job-processed", number(job.processed_documents));
      setText("job-total", number(job.total_documents));
      setText("job-successful", number(job.successful_documents));
      setText("job-failed", number(job.failed_documents));
      setText("job-skipped", number(job.skipped_documents));
      var eta = job.estimated_completion_at && !FINISHED[job.status]
        ? "· estimated completion " + new Date(job.estimated_completion_at).toLocaleString()
        : "";
      setText("job-eta", eta);
      setField("status", LABELS[job.status] || job.status);
      setField("processed_documents", String(job.processed_documents));
      setField("total_documents", String(job.total_documents));
      setField("successful_documents", String(job.successful_documents));
      setField("failed_documents", String(job.failed_documents));
      setField("skipped_documents", String(job.skipped_documents));
      var inline = document.querySelector(".field-progress .readonly span");
      var inlineBar = document.querySelector(".field-progress .readonly div div");
      if (inline) { inline.textContent = pct.toFixed(1) + "%"; }
      if (inlineBar) {
        inlineBar.style.width = pct + "%";
        inlineBar.style.background = COLOURS[job.status] || COLOURS.running;
      }
      // The page title names the status the page was rendered with: "#12 nightly (running)".
      var title = document.querySelector("#content > h2");
      var shown = panel.dataset.shownStatus || panel.getAttribute("data-initial-status");
      if (title && shown && shown !== job.status) {
        title.textContent = title.textContent.replace("(" + shown + ")", "(" + job.status + ")");
      }
      panel.dataset.shownStatus = job.status;
    }

    function stop(message) {
      panel.dataset.polling = "false";
      if (timer) { window.clearTimeout(timer); timer = null; }
      setText("job-updated", message);
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (job) {
          failures = 0;
          render(job);
          if (FINISHED[job.status]) {
            stop("Finished at " + new Date(job.completed_at || Date.now()).toLocaleString() + ". Reload for the chunks and the results summary.");
          } else {
            setText("job-updated", "Updated " + new Date().toLocaleTimeString() + "; next update in 2 seconds.");
            timer = window.setTimeout(poll, INTERVAL_MS);
          }
        })
        .catch(function (error) {
          failures += 1;
          if (failures >= 5) {
            stop("Live updates stopped (" + error.message + "); reload the page to try again.");
          } else {
            setText("job-updated", "Update failed (" + error.message + "); retrying.");
            timer = window.setTimeout(poll, INTERVAL_MS * failures);
          }
        });
    }

    timer = window.setTimeout(poll, INTERVAL_MS);
  });
})();
