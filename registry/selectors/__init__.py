"""Read queries of the registry, by concern:

- ``catalog``: the catalog list and one entry's registered models and versions;
- ``compare``: version references and the comparison of 2 to 4 versions;
- ``freshness``: each source's sync state (the banner, /readyz, /metrics);
- ``cards``: model cards, their revisions, who may edit and review them;
- ``headline``: the headline version of a model (its headline alias, else the latest);
- ``history``: the registry history (events, alias lanes of the timeline, an alias at a
  moment);
- ``metrics``: one metric across every version of a model (the metric chart);
- ``artifacts``: where each version's binary is in Artifactory, and its last check.

Callers use this package's names (``from registry import selectors``).
"""

from .artifacts import (
    ArtifactLocation,
    BinaryStatus,
    artifact_location,
    binary_status,
    binary_statuses,
)
from .cards import (
    card_edit_refusal,
    card_for,
    card_review_refusal,
    card_revisions,
    cards_for,
    user_teams,
)
from .catalog import (
    ALIAS_ANY,
    KEY_METRIC_TAG,
    SORTS,
    UNKNOWN,
    CatalogFilters,
    TeamModels,
    alias_choices,
    catalog_ids_owned_by,
    catalog_model_annotated,
    catalog_model_get,
    catalog_model_list,
    catalog_model_registrations,
    catalog_model_versions,
    catalog_team_choices,
    key_metric_name,
    mlflow_run_url,
    model_version_get,
    owner_names,
    source_list,
    team_models_for,
    version_alias_names,
)
from .compare import (
    COMPARE_MAX,
    COMPARE_MIN,
    CompareError,
    Comparison,
    MetricCell,
    MetricRow,
    ParamRow,
    VersionRef,
    compare_versions_resolve,
    lower_is_better,
    version_comparison,
    version_ref,
    version_refs_parse,
)
from .freshness import (
    REGISTRY_SYSTEM,
    Freshness,
    SourceFreshness,
    registry_freshness,
    sync_status_list,
)
from .headline import (
    Headline,
    default_headline_alias,
    headline_for,
    headlines_attach,
    team_headline_aliases,
    team_preference_list,
)
from .history import ALIAS_OUTCOMES, AliasAnswer, alias_at, alias_lanes, registry_events
from .metrics import MetricSeries, MetricSeriesError, SeriesPoint, metric_series

__all__ = [
    "ALIAS_ANY",
    "ALIAS_OUTCOMES",
    "COMPARE_MAX",
    "COMPARE_MIN",
    "KEY_METRIC_TAG",
    "REGISTRY_SYSTEM",
    "SORTS",
    "UNKNOWN",
    "AliasAnswer",
    "ArtifactLocation",
    "BinaryStatus",
    "CatalogFilters",
    "CompareError",
    "Comparison",
    "Freshness",
    "Headline",
    "MetricCell",
    "MetricRow",
    "MetricSeries",
    "MetricSeriesError",
    "ParamRow",
    "SeriesPoint",
    "SourceFreshness",
    "TeamModels",
    "VersionRef",
    "alias_at",
    "alias_choices",
    "alias_lanes",
    "artifact_location",
    "binary_status",
    "binary_statuses",
    "card_edit_refusal",
    "card_for",
    "card_review_refusal",
    "card_revisions",
    "cards_for",
    "catalog_ids_owned_by",
    "catalog_model_annotated",
    "catalog_model_get",
    "catalog_model_list",
    "catalog_model_registrations",
    "catalog_model_versions",
    "catalog_team_choices",
    "compare_versions_resolve",
    "default_headline_alias",
    "headline_for",
    "headlines_attach",
    "key_metric_name",
    "lower_is_better",
    "metric_series",
    "mlflow_run_url",
    "model_version_get",
    "owner_names",
    "registry_events",
    "registry_freshness",
    "source_list",
    "sync_status_list",
    "team_headline_aliases",
    "team_models_for",
    "team_preference_list",
    "user_teams",
    "version_alias_names",
    "version_comparison",
    "version_ref",
    "version_refs_parse",
]
