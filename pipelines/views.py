"""HTML views; each declares its access rule with core.access.

Pages read the mirror only (never ADO inside a request) and show how fresh it is. Queuing a
run records a RunRequest; a task sends it to ADO.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods

from core.access import ANY_ROLE, access, roles
from core.listing import sort_headers

from . import selectors, services
from .forms import RunFilterForm, TriggerForm
from .models import Pipeline, PipelineKind, PipelineRun
from .sections import TRIGGER_ROLES, trigger_label

RUNS_PER_PAGE = 50
# Columns whose first click sorts newest first.
DESCENDING_FIRST = frozenset({"started"})


def _render(request, template, context, status=200):
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


@access(ANY_ROLE)
@require_GET
def run_list(request):
    form = RunFilterForm(request.GET)
    form.is_valid()  # invalid fields are shown as errors and left out of the filters
    filters = form.filters()
    paginator = Paginator(selectors.run_list(filters=filters), RUNS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "form": form,
        "filters": filters,
        "page": page,
        "runs": list(page.object_list),
        "sort_headers": sort_headers(request, filters.sort, selectors.SORTS, DESCENDING_FIRST),
        "filtered": filters.any,
        "freshness": selectors.project_freshness(),
    }
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request and htmx.target == "run-results":
        return _render(request, "pipelines/_run_results.html", context)
    context.update(
        models=selectors.model_choices(),
        kinds=PipelineKind.choices,
        states=selectors.STATE_FILTERS.items(),
        results=selectors.RESULT_FILTERS.items(),
        triggers=selectors.trigger_choices(),
        projects=selectors.project_choices(),
    )
    return _render(request, "pipelines/run_list.html", context)


def _run_or_404(pk: int) -> PipelineRun:
    try:
        return selectors.run_get(pk=pk)
    except PipelineRun.DoesNotExist:
        raise Http404("No such run") from None


@access(ANY_ROLE)
@require_GET
def run_row(request, pk):
    """One row of the runs list, for htmx polling: it polls itself while the run is running."""
    return _render(request, "pipelines/_run_row.html", {"run": _run_or_404(pk)})


@access(ANY_ROLE)
@require_GET
def run_detail(request, pk):
    run = _run_or_404(pk)
    context = {
        "run": run,
        "stages": list(run.stages.all()),
        "run_requests": list(run.requests.all()),
        "parameters": sorted((run.parameters or {}).items())
        if isinstance(run.parameters, dict)
        else [],
        "freshness": selectors.project_freshness(),
    }
    return _render(request, "pipelines/run_detail.html", context)


def _runnable_or_404(pk: int) -> Pipeline:
    try:
        return selectors.pipeline_runnable_get(pk=pk)
    except Pipeline.DoesNotExist:
        raise Http404("No training or scoring pipeline with this id") from None


@access(roles(*TRIGGER_ROLES))
@require_http_methods(["GET", "POST"])
def pipeline_trigger(request, pk):
    """Queue a training (or scoring) run: GET asks for confirmation, POST records the request."""
    pipeline = _runnable_or_404(pk)
    model = pipeline.catalog_model
    label = trigger_label(pipeline)
    form = TriggerForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            # The service fills the conventional parameters (modelName, trigger).
            services.trigger_run(
                pipeline=pipeline,
                parameters={},
                reason="manual",
                note=form.cleaned_data["note"],
                acting_user=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            what = "Scoring" if pipeline.kind == PipelineKind.SCORING else "Training"
            messages.success(request, f"{what} requested: waiting for Azure DevOps")
            return redirect(model.get_absolute_url())
    context = {"pipeline": pipeline, "catalog_model": model, "label": label, "form": form}
    status = 400 if form.errors else 200
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request:
        return _render(request, "pipelines/_trigger_confirm.html", context, status)
    return _render(request, "pipelines/trigger_confirm.html", context, status)
