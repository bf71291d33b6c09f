"""Results: the SQLite index of run records, baselines, aggregation into a leaderboard, legacy import,
plots and the report site."""
