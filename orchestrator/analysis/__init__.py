"""Statistics of a sweep: pure functions over the runs table (orchestrator.results.tables.runs_table).

The sample unit is the run (one repetition of a cell): every test and interval treats a cell's repetitions as
its independent observations. Iterations inside one run share a process, a warm cache and a thermal state, so
they are not independent; they are summarised into one number per run first (latency percentiles, J/inference).
"""
