// Model list: when the server or the network fails to answer a filter change, say so in place
// of the results, so the rows shown before are never taken for the filtered list.
(function () {
  function showFailure(event) {
    var target = event.detail.target;
    if (!target || target.id !== "model-results") {
      return;
    }
    var xhr = event.detail.xhr;
    var reason = xhr && xhr.status ? "the server answered " + xhr.status : "the portal could not be reached";
    var alert = document.createElement("div");
    alert.className = "alert alert-danger";
    alert.setAttribute("role", "alert");
    alert.setAttribute("data-testid", "filter-error");
    var title = document.createElement("p");
    title.className = "fw-semibold mb-1";
    title.textContent = "The list could not be filtered (" + reason + ").";
    var help = document.createElement("p");
    help.className = "mb-0";
    help.append("No rows are shown, so none are mistaken for the filtered list. Try again, or ");
    var reset = document.createElement("a");
    reset.href = window.location.pathname;
    reset.textContent = "reset the filters";
    help.append(reset, ".");
    alert.append(title, help);
    target.replaceChildren(alert);
  }
  document.addEventListener("htmx:responseError", showFailure);
  document.addEventListener("htmx:sendError", showFailure);
})();
