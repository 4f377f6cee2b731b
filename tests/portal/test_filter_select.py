"""The filter bar's select, shared by the list pages (runs, approvals, audit, maturity)."""

from django.template import Context, Template


def render(snippet: str, **context) -> str:
    return Template("{% load portal_ui %}" + snippet).render(Context(context))


def test_pairs_and_plain_strings_render_with_the_selected_one_marked():
    html = render(
        '{% filter_select "kind" "Kind" kinds "ml" any_label="Any kind" testid="k" %}',
        kinds=[("ml", "ML model"), ("rule_based", "Rule-based")],
    )
    assert '<label class="form-label small mb-1" for="id_kind">Kind</label>' in html
    assert 'name="kind" data-testid="k"' in html
    assert '<option value="">Any kind</option>' in html
    assert '<option value="ml" selected>ML model</option>' in html
    assert '<option value="rule_based">Rule-based</option>' in html

    html = render('{% filter_select "team" "Team" teams "risk" %}', teams=["growth", "risk"])
    assert '<option value="risk" selected>risk</option>' in html


def test_a_value_from_the_url_outside_the_options_stays_selected_only_when_kept():
    teams = ["growth"]
    kept = render('{% filter_select "team" "Team" teams "gone" keep_unknown=True %}', teams=teams)
    assert '<option value="gone" selected>gone</option>' in kept
    dropped = render('{% filter_select "team" "Team" teams "gone" %}', teams=teams)
    assert "gone" not in dropped


def test_values_are_escaped():
    html = render('{% filter_select "q" "Q" opts sel keep_unknown=True %}', opts=[], sel='"><x>')
    assert "<x>" not in html
