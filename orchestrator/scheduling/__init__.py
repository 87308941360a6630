"""Scale-out: a sweep's plan split into shards, handed to a cluster scheduler, and the shards' journals merged."""
