"""Running a plan: the sweep loop and its runner, the guard (signals, full disk), the host lock, launchers, ONNX artifacts."""
