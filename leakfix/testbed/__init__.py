"""The embedded testbed: a small Qwen3 model with the real Qwen vocabulary that leaks on purpose."""
