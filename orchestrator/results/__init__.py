"""What a sweep leaves: the results directory and its journal, the run record, the merged tables."""
