"""perpguard benchmarks: `make bench` (python -m bench) prints one table and writes bench/results.json."""
