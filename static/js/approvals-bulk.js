// The inbox's selection for deciding several requests at once: counts what is ticked on the
// "Review selected" button, says at once when the selection mixes environments (only requests
// of one environment are reviewed together) and keeps the button off until it makes sense.
// Without JavaScript the button submits whatever is ticked and the review page says the same.
// Delegated from the document: htmx redraws the results (filters, sorting, pages).
(function () {
  function update(form) {
    var boxes = form.querySelectorAll('input[name="ids"]');
    var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; });
    var environments = {};
    ticked.forEach(function (b) { environments[b.getAttribute("data-environment")] = true; });
    var mixed = Object.keys(environments).length > 1;
    var button = form.querySelector("[data-bulk-submit]");
    var count = form.querySelector("[data-bulk-count]");
    var warning = form.querySelector("[data-bulk-mixed]");
    var hint = form.querySelector("[data-bulk-hint]");
    var all = form.querySelector("[data-bulk-all]");
    if (count) { count.textContent = ticked.length ? " (" + ticked.length + ")" : ""; }
    if (button) { button.disabled = ticked.length === 0 || mixed; }
    if (warning) { warning.classList.toggle("d-none", !mixed); }
    if (hint) { hint.classList.toggle("d-none", mixed); }
    if (all) {
      all.checked = boxes.length > 0 && ticked.length === boxes.length;
      all.indeterminate = ticked.length > 0 && ticked.length < boxes.length;
    }
  }

  function init() {
    var form = document.getElementById("bulk-select");
    if (form) { update(form); }
  }

  document.addEventListener("change", function (event) {
    var form = event.target.closest && event.target.closest("#bulk-select");
    if (!form) { return; }
    if (event.target.hasAttribute("data-bulk-all")) {
      var on = event.target.checked;
      form.querySelectorAll('input[name="ids"]').forEach(function (b) { b.checked = on; });
    }
    update(form);
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id !== "bulk-select") { return; }
    var button = form.querySelector("[data-bulk-submit]");
    if (button && button.disabled) { event.preventDefault(); }
  });
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();
