print("outpost-bench: no benchmarks yet")
