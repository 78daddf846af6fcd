// The PEC panel's progressive enhancement: every page works without this file.
(function () {
  "use strict";

  function field(container, name) {
    return container.querySelector("[name$='" + name + "']");
  }

  // --- the comune proposes provincia and CAP as it is typed -------------------------------
  document.querySelectorAll(".pec-address[data-comuni-url]").forEach(function (box) {
    var url = box.getAttribute("data-comuni-url");
    var comune = field(box, "comune");
    var provincia = field(box, "provincia");
    var cap = field(box, "cap");
    var list = box.querySelector(".pec-comuni");
    if (!comune || !list) { return; }
    var timer = null;
    var asked = 0;

    function close() { list.classList.add("d-none"); list.innerHTML = ""; }

    function choose(item) {
      comune.value = item.name;
      if (provincia) { provincia.value = item.sigla; }
      if (cap) {
        if (item.cap) {
          cap.value = item.cap;
        } else {
          // Several CAPs (or none in the data): the CAP stays for the person to choose or type.
          if (item.caps.indexOf(cap.value) < 0) { cap.value = ""; }
          cap.setAttribute("placeholder", item.caps.slice(0, 3).join(", ") + (item.caps.length > 3 ? "…" : ""));
          var options = document.getElementById(cap.id + "-caps") || document.createElement("datalist");
          options.id = cap.id + "-caps";
          options.innerHTML = "";
          item.caps.forEach(function (value) {
            var option = document.createElement("option");
            option.value = value;
            options.appendChild(option);
          });
          cap.after(options);
          cap.setAttribute("list", options.id);
          cap.focus();
        }
      }
      close();
    }

    function show(items) {
      list.innerHTML = "";
      items.forEach(function (item) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "list-group-item list-group-item-action py-1";
        button.setAttribute("role", "option");
        button.setAttribute("data-comune", item.label);
        button.textContent = item.label;
        var detail = document.createElement("span");
        detail.className = "small text-body-secondary ms-2";
        detail.textContent = item.cap ? item.cap : (item.caps.length ? item.caps.length + " CAP" : "");
        button.appendChild(detail);
        button.addEventListener("click", function () { choose(item); });
        list.appendChild(button);
      });
      list.classList.toggle("d-none", items.length === 0);
    }

    comune.addEventListener("input", function () {
      window.clearTimeout(timer);
      var text = comune.value.trim();
      if (text.length < 2) { close(); return; }
      timer = window.setTimeout(function () {
        var mine = ++asked;
        fetch(url + "?q=" + encodeURIComponent(text), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
          .then(function (response) { return response.ok ? response.json() : { comuni: [] }; })
          .then(function (data) { if (mine === asked) { show(data.comuni || []); } })
          .catch(close);
      }, 150);
    });
    comune.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { close(); }
      if (event.key === "ArrowDown" && list.firstChild) { event.preventDefault(); list.firstChild.focus(); }
    });
    list.addEventListener("keydown", function (event) {
      var current = document.activeElement;
      if (event.key === "ArrowDown" && current.nextSibling) { event.preventDefault(); current.nextSibling.focus(); }
      if (event.key === "ArrowUp") { event.preventDefault(); (current.previousSibling || comune).focus(); }
      if (event.key === "Escape") { close(); comune.focus(); }
    });
    document.addEventListener("click", function (event) { if (!box.contains(event.target)) { close(); } });
  });

  // --- the wizard: the holder's codice fiscale finds an existing holder ----------------------
  var boxForm = document.getElementById("box-form");
  if (boxForm) {
    var lookup = boxForm.getAttribute("data-lookup-url");
    var cf = field(boxForm, "codice_fiscale");
    var found = document.getElementById("holder-found");
    var fresh = document.getElementById("new-holder");
    var check = function () {
      var code = cf.value.replace(/\s/g, "");
      if (code.length !== 11 && code.length !== 16) { return; }
      fetch(lookup + "?cf=" + encodeURIComponent(code), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (data.holder) {
            found.querySelector("[data-holder-name]").textContent = data.holder.name;
            found.hidden = false;
            fresh.hidden = true;
          } else {
            found.hidden = true;
            fresh.hidden = false;
          }
        })
        .catch(function () { /* the Verify button asks the server instead */ });
    };
    cf.addEventListener("change", check);
    cf.addEventListener("blur", check);
    // A code typed while the page was still loading left no event for the listeners above.
    if (cf.value && !found.querySelector("[data-holder-name]").textContent) { check(); }
    var agentChoice = document.getElementById("agent-choice");
    var radios = boxForm.querySelectorAll("[name='want_agent']");
    var sync = function () {
      var yes = boxForm.querySelector("[name='want_agent']:checked");
      agentChoice.hidden = !(yes && yes.value === "yes");
    };
    radios.forEach(function (radio) { radio.addEventListener("change", sync); });
    sync();
  }

  // --- a box awaiting activation turns ATTIVA on screen ------------------------------------
  var state = document.querySelector("#box-state[data-poll-url]");
  if (state) {
    var poll = function () {
      fetch(state.getAttribute("data-poll-url"), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { state: "pending" }; })
        .then(function (data) {
          if (data.state !== "pending") { window.location.reload(); } else { window.setTimeout(poll, 2000); }
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    };
    window.setTimeout(poll, 2000);
  }
})();
