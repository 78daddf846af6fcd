// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Destructive actions ask first.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  });

  function setWidth(bar, percent) {
    bar.style.width = percent + "%";
    bar.textContent = percent + "%";
    var meter = bar.closest("[role='progressbar']");
    if (meter) { meter.setAttribute("aria-valuenow", String(percent)); }
  }

  // Progress bars: the width comes from data-width (inline styles are refused by the CSP),
  // and a running job is polled until it settles.
  document.querySelectorAll(".progress-bar[data-width]").forEach(function (bar) {
    setWidth(bar, parseInt(bar.getAttribute("data-width"), 10) || 0);
  });

  document.querySelectorAll(".job-progress[data-open='true']").forEach(function (box) {
    var url = box.getAttribute("data-progress-url");
    var bar = box.querySelector(".progress-bar");
    // A run's page names its parts by id; a row of the job list marks them inside the row.
    var row = box.closest("[data-job-run]");
    var part = function (name) {
      return row ? row.querySelector("[data-job='" + name + "']") : document.getElementById("job-" + name);
    };
    var poll = function () {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) {
          // A proxy hiccup or a restarting server: keep asking, a little slower.
          if (!response.ok) { throw new Error("progress answered " + response.status); }
          return response.json();
        })
        .then(function (data) {
          setWidth(bar, data.progress);
          var status = part("status");
          if (status) {
            status.innerHTML = "";
            var badge = document.createElement("span");
            badge.className = "badge text-bg-" + data.status_style;
            badge.setAttribute("data-status", data.status);
            badge.textContent = data.status_label;
            status.appendChild(badge);
          }
          var message = part("message");
          if (message) { message.textContent = data.message || ""; }
          var error = part("error");
          if (error) { error.textContent = data.error || ""; }
          var finished = part("finished");
          if (finished && data.finished_at) { finished.textContent = data.finished_at; }
          if (data.open) {
            window.setTimeout(poll, 1000);
          } else {
            bar.classList.remove("progress-bar-striped", "progress-bar-animated");
            if (data.result) {
              var result = part("result");
              if (result) {
                result.innerHTML = "";
                Object.keys(data.result).forEach(function (key) {
                  var line = document.createElement("div");
                  var code = document.createElement("code");
                  code.textContent = key;
                  line.appendChild(code);
                  line.appendChild(document.createTextNode(": " + data.result[key]));
                  result.appendChild(line);
                });
              }
            }
          }
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    window.setTimeout(poll, 1000);
  });
})();
