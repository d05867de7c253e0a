"""Search: retrieve (dense + lexical), fuse, re-rank, highlight, and assemble result
cards with the customer in context. The API, the CLI and the evaluation all call
:func:`hikitsugi.search.service.search`, so the numbers the evaluation reports are the
numbers users get."""
