"""Helpers every list page shares, so sorting behaves the same everywhere."""


def sort_headers(request, current: str, sorts, descending_first=frozenset()) -> dict[str, dict]:
    """Per sortable column: the URL that sorts by it (toggling direction) and its state.

    The other query parameters (filters) are kept; the page number is dropped.
    """
    headers = {}
    for key in sorts:
        params = request.GET.copy()
        params.pop("page", None)
        state = "ascending" if current == key else "descending" if current == f"-{key}" else None
        if state is None:
            params["sort"] = f"-{key}" if key in descending_first else key
        else:
            params["sort"] = f"-{key}" if state == "ascending" else key
        headers[key] = {"url": f"?{params.urlencode()}", "state": state}
    return headers
