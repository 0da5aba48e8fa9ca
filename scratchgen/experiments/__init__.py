"""Small experiments that demonstrate the theory behind the models (run each with python -m)."""
