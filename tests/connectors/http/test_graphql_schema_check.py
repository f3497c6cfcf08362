"""`engine validate --connect` checks GraphQL documents against the server's schema, fetched by
introspection, and reports each error where it is: the .graphql file's line and column, or
the inline `query` of the pipeline file."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import invoke

PIPELINE = """\
[pipeline]
name = "gql-check"

[sources.shop]
type = "graphql"
url = "{url}/graphql"
{document}
records = "products.edges[].node"

[sinks.created]
type = "graphql"
inputs = ["shop"]
url = "{url}/graphql"
query_file = "create.graphql"
"""

GOOD_QUERY = """\
query Products($after: String) {
  products(first: 2, after: $after) {
    edges { node { id sku title } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

BAD_QUERY = """\
query Products($after: String) {
  products(first: 2, after: $after) {
    edges { node { id sku price } }
    pageInfo { hasNextPage endCursor }
  }
}
"""

GOOD_MUTATION = """\
mutation Create($input: ProductInput!) {
  createProduct(input: $input) { id }
}
"""

BAD_MUTATION = """\
mutation Create($input: ProductInput!) {
  createProduct(input: $input, dryRun: true) { id }
}
"""


def _write(tmp_path: Path, url: str, query: str, mutation: str, inline: bool = False) -> Path:
    if inline:
        document = f'query = """\n{query}"""'
    else:
        (tmp_path / "products.graphql").write_text(query)
        document = 'query_file = "products.graphql"'
    (tmp_path / "create.graphql").write_text(mutation)
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(url=url, document=document))
    return path


def test_documents_that_match_the_schema_are_valid(tmp_path: Path, server_url: str) -> None:
    path = _write(tmp_path, server_url, GOOD_QUERY, GOOD_MUTATION)
    code, _, err = invoke("validate", "--connect", str(path))
    assert code == 0, err


def test_schema_errors_are_located_in_the_graphql_files(tmp_path: Path, server_url: str) -> None:
    path = _write(tmp_path, server_url, BAD_QUERY, BAD_MUTATION)
    code, _, err = invoke("validate", "--connect", str(path))
    assert code == 78
    assert f"{tmp_path / 'products.graphql'}:3:27: error[E091]" in err
    assert "Cannot query field 'price' on type 'Product'" in err
    assert f"{tmp_path / 'create.graphql'}:2:32: error[E091]" in err
    assert "dryRun" in err
    # without --connect nothing is fetched: the documents parse, so the file is valid
    assert invoke("validate", str(path))[0] == 0


def test_an_inline_query_is_located_at_its_key(tmp_path: Path, server_url: str) -> None:
    path = _write(tmp_path, server_url, BAD_QUERY, GOOD_MUTATION, inline=True)
    code, out, _ = invoke("validate", "--connect", "--format", "json", str(path))
    assert code == 78
    [diag] = [d for d in json.loads(out)["diagnostics"] if d["code"] == "E091"]
    assert (diag["file"], diag["line"]) == (str(path), 7)
    assert "'price'" in diag["message"] and "query line 3, column 27" in diag["message"]
