// Approvals pages: let htmx swap the decision box's own 4xx answers (a form error, a refused
// decision) into the page, so the person reads why. htmx leaves 4xx answers out by default.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  var target = event.detail.target;
  if (status >= 400 && status < 500 && target && target.id === "decision-box") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// After htmx redraws the decision box in answer to the person's own POST (Approve, Reject,
// Confirm, Cancel, a form error), focus goes to the new box (its error, else its first control,
// else its heading) instead of falling to <body>, and the live region beside it reads out what
// the box now says. A redraw by polling only speaks when the box says something new.
(function () {
  var focusNext = false;
  var initial = document.getElementById("decision-box");
  var lastAnnounced = initial ? initial.getAttribute("data-announce") : null;

  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "decision-box") {
      var config = event.detail.requestConfig || {};
      focusNext = String(config.verb || "").toLowerCase() === "post";
    }
  });

  function focusTarget(box) {
    var invalid = box.querySelector("[aria-invalid=true], .is-invalid");
    if (invalid) return invalid;
    var error = box.querySelector("[data-testid=decision-error]");
    if (error) return error;
    var control = box.querySelector(
      "button:not([disabled]), textarea, input:not([type=hidden]), select, a[href]"
    );
    if (control) return control;
    var heading = box.querySelector("#decision-heading");
    if (heading) heading.setAttribute("tabindex", "-1");
    return heading;
  }

  document.addEventListener("htmx:load", function (event) {
    var box = event.detail.elt;
    if (!box || box.id !== "decision-box") return;
    var text = box.getAttribute("data-announce") || "";
    var live = document.getElementById("decision-live");
    if (live && text && (focusNext || text !== lastAnnounced)) {
      live.textContent = "";
      window.setTimeout(function () {
        live.textContent = text;
      }, 50);
    }
    lastAnnounced = text;
    if (!focusNext) return;
    focusNext = false;
    var target = focusTarget(box);
    if (target) target.focus();
  });
})();
