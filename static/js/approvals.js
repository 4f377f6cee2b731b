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
