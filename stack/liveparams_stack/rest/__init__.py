"""``/rest/v1``: the subset of PostgREST that supabase-py and supabase-js use here.

Tables: ``GET`` (``select``, the filter operators of ``tables.py`` plus ``in``,
``is`` and full-text search, each with ``not.``, ``order``, ``limit``,
``offset``, single object via ``Accept: application/vnd.pgrst.object+json``),
``POST`` (insert; upsert with ``Prefer: resolution=merge-duplicates|ignore-duplicates``
and ``on_conflict``; ``Prefer: missing=default``), ``PATCH`` (update) and
``DELETE``, each honouring ``Prefer: return=representation`` and ``Prefer:
count=exact``. Functions: ``POST``/``GET /rpc/<name>`` with named arguments, or
one unnamed json/jsonb parameter that takes the whole body. Everything else
PostgREST offers (embedding, ``or``/``and``, ``Range``, CSV, …) is refused with
`not_supported`, never answered differently. ``Prefer: tx`` is accepted and
ignored, as on ``supabase start`` (its PostgREST runs with ``db-tx-end=commit``).

One module per stage of a request (``api.py`` runs them in order):

- ``reading``: the request's schema, the features it uses, ``Prefer`` and its body;
- ``tables`` / ``functions``: the SQL of a table request, or which function ``/rpc`` calls and how;
- ``database``: running it in a transaction as the caller (role and JWT claims set as
  PostgREST sets them, so grants and Row Level Security decide), JSON rendered by PostgreSQL;
- ``responses``: status, ``Content-Range`` and body as PostgREST answers them;
- ``errors``: PostgREST's error body and its SQLSTATE → HTTP status table.
"""

from liveparams_stack.rest.api import RestApi
from liveparams_stack.rest.errors import PostgrestError, status_for_sqlstate

__all__ = ["PostgrestError", "RestApi", "status_for_sqlstate"]
